"""Documentation that runs: docstring examples, and the method sections the code cites.

Every module of the package whose source contains an example (``>>>``) is
run through `doctest`, so examples added to any docstring are tested without
registering them anywhere. Keep examples small (well under a second each):
they run with the rest of the suite. Mark an example that needs files or
heavy work with ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "atominfo"
METHOD = ROOT / "docs" / "method.md"

# Modules whose examples are not collected: the command line has its own tests.
EXCLUDED = ("atominfo.cli",)
# Optional dependencies: a module that needs a missing one is skipped, not failed.
OPTIONAL = {"torch", "dask", "distributed", "sklearn"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name.startswith(EXCLUDED):
            continue
        if ">>>" in path.read_text(encoding="utf-8"):
            names.append(name)
    return names


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional {exc.name}")
        raise
    # A fixed print width, so that array reprs in examples do not depend on numpy's settings.
    with np.printoptions(precision=8, linewidth=75, legacy=False):
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True
        )
    if result.attempted == 0:
        pytest.skip(f"{name}: every example is marked +SKIP")
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def test_example_collection_finds_modules_with_examples():
    # The collector itself: it must see examples wherever they are, packages included.
    names = _modules_with_examples()
    assert all(n.startswith("atominfo") for n in names)
    assert not any(n.startswith("atominfo.cli") for n in names)
    assert _module_name(PACKAGE / "engine" / "__init__.py") == "atominfo.engine"
    assert (
        _module_name(PACKAGE / "engine" / "index" / "clusters.py")
        == "atominfo.engine.index.clusters"
    )


# ---------------------------------------------------------------------------
# "docs/method.md, section 3.2" in the code must name a section that exists.

_CITATION = re.compile(r"method\.md,? sections? (\d+(?:\.\d+)?)")
# "## 3. Information quantities" and "### 3.2 Diversity D"
_HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", re.MULTILINE)


def _method_sections() -> set[str]:
    return set(_HEADING.findall(METHOD.read_text(encoding="utf-8")))


def _citations() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number in _CITATION.findall(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), number))
    return sorted(set(found))


def test_method_sections_are_numbered():
    sections = _method_sections()
    # Top-level sections 1..N without gaps, so that a citation can be checked by number.
    top = sorted(int(s) for s in sections if "." not in s)
    assert top == list(range(1, len(top) + 1))
    assert len(top) >= 6
    subsections = [s for s in sections if "." in s]
    assert subsections, "no numbered subsections found"
    for sub in subsections:
        assert sub.split(".")[0] in sections


@pytest.mark.parametrize("source,number", _citations())
def test_cited_method_section_exists(source, number):
    assert number in _method_sections(), f"{source} cites docs/method.md section {number}"
