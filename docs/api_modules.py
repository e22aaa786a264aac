"""MkDocs hook: a ``::: name*`` line in a page is one ``:::`` block per module whose name matches.

The API pages of a family of modules (``atominfo.workflows.snapshot*``) then
document a new member of the family without an edit to the page, and a
renamed one without a broken build. `tests/test_docs.py` uses `expand` to
check that every public module is on some page.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_names() -> list[str]:
    """Every public module and package under src/, as dotted names, sorted."""
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


def expand(markdown: str) -> str:
    """`markdown` with each ``::: pattern*`` line replaced by the blocks it matches."""
    lines = []
    for line in markdown.split("\n"):
        if line.startswith("::: ") and "*" in line:
            pattern = line[4:].strip()
            matches = [name for name in module_names() if fnmatch.fnmatchcase(name, pattern)]
            lines.append("\n\n".join(f"::: {name}" for name in matches))
        else:
            lines.append(line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_) -> str:  # noqa: D103 - MkDocs' hook
    return expand(markdown)
