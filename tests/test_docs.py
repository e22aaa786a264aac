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
import importlib.util
import re
import warnings
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


# ---------------------------------------------------------------------------
# The code of the README and of the documentation pages: every ```python block
# runs, every `atominfo ...` command line parses with the real parser.

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_SKIP = re.compile(r"^\s*<!--\s*skip:\s*(.*?)\s*-->\s*$")
# Blocks the tests cannot run (a GPU, a cluster, a LAMMPS input): few, each with its reason.
MAX_SKIPPED = 5


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _fenced_blocks(path: Path) -> list[tuple[int, str, str, str | None]]:
    """(first line, language, code, skip reason or None) of each fenced block of a page."""
    blocks = []
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        skip = _SKIP.match(previous)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        code = "\n".join(line[len(indent) :] for line in lines[i + 1 : end])
        blocks.append((i + 2, language, code, skip.group(1) if skip else None))
        i = end + 1
    return blocks


def _python_blocks(path: Path):
    return [
        (line, code, skip) for line, lang, code, skip in _fenced_blocks(path) if lang == "python"
    ]


def _lammps_dump(frames) -> str:
    """A LAMMPS text dump (id type x y z; one type) of orthorhombic frames."""
    out = []
    for step, atoms in enumerate(frames):
        out += [f"ITEM: TIMESTEP\n{100 * step}", f"ITEM: NUMBER OF ATOMS\n{len(atoms)}"]
        out.append("ITEM: BOX BOUNDS pp pp pp")
        out += [f"0.0 {length!r}" for length in atoms.cell.lengths().tolist()]
        out.append("ITEM: ATOMS id type x y z")
        out += [
            f"{i + 1} 1 {x!r} {y!r} {z!r}" for i, (x, y, z) in enumerate(atoms.positions.tolist())
        ]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def example_data(tmp_path_factory):
    """The example files of the pages, made by the page's own block (Getting started)."""
    import ase.io

    directory = tmp_path_factory.mktemp("example_data")
    (code,) = [
        code
        for _, code, _ in _python_blocks(ROOT / "docs" / "getting-started.md")
        if 'write("train.extxyz"' in code
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        exec(compile(code, "getting-started.md: example data", "exec"), {})
    frames = ase.io.read(directory / "md.extxyz", index=":")
    (directory / "md.lammpstrj").write_text(_lammps_dump(frames))
    return directory


@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p)], ids=_page_id)
@pytest.mark.slow
def test_python_blocks_run(page, example_data, tmp_path, monkeypatch):
    # The blocks of a page run in order in one namespace, as in a notebook, in a
    # directory holding the example data.
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for item in example_data.iterdir():
        shutil.copy(item, tmp_path / item.name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for line, code, skip in _python_blocks(page):
        if skip is not None:
            continue
        try:
            # warnings a block gives are what a reader running it sees (the nucleation
            # example warns that its reference is a warm crystal): recorded, not shown
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                exec(compile(code, f"{_page_id(page)}:{line}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"{_page_id(page)}, block at line {line}: {type(exc).__name__}: {exc}")
        finally:
            plt.close("all")
        ran += 1
    assert ran, f"{_page_id(page)}: every Python block is skipped"


def test_skipped_blocks_are_few_and_say_why():
    skipped = [
        (_page_id(page), line, reason)
        for page in PAGES
        for line, _, _, reason in _fenced_blocks(page)
        if reason is not None
    ]
    assert all(reason for _, _, reason in skipped), skipped
    assert len(skipped) <= MAX_SKIPPED, skipped


def _command_lines(path: Path) -> list[tuple[int, list[str]]]:
    """`atominfo ...` lines of every block of a page (shell or console), split as the shell would."""
    import shlex

    found = []
    for first, _, code, _ in _fenced_blocks(path):
        logical, start = "", 0
        for offset, raw in enumerate(code.split("\n")):
            start = start if logical else offset
            logical += raw.rstrip()
            if logical.endswith("\\"):
                logical = logical[:-1] + " "
                continue
            text, logical = logical.strip(), ""
            text = text[2:] if text.startswith("$ ") else text
            if text.startswith("atominfo "):
                found.append((first + start, shlex.split(text, comments=True)))
    return found


@pytest.mark.parametrize("page", [p for p in PAGES if _command_lines(p)], ids=_page_id)
def test_command_lines_parse(page):
    from atominfo.cli import COMMANDS, command_parser

    for line, argv in _command_lines(page):
        name, options = argv[1], argv[2:]
        where = f"{_page_id(page)}:{line}: {' '.join(argv)}"
        if name.startswith("-") or name.isupper() or "--help" in options:
            continue  # `atominfo --help`, `atominfo COMMAND --help`
        assert name in COMMANDS, f"{where}: no command {name!r}"
        try:
            command_parser(name)[0].parse_args(options)
        except Exception as exc:
            pytest.fail(f"{where}: {exc}")


def test_command_line_collection_reads_continuations_and_prompts(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\natominfo dh a.xyz --ref b.xyz \\\n    -o c.npy  # comment\n```\n\n"
        "```console\n$ atominfo entropy a.xyz\natominfo: error: output line\n```\n"
    )
    assert _command_lines(page) == [
        (2, ["atominfo", "dh", "a.xyz", "--ref", "b.xyz", "-o", "c.npy"]),
        (7, ["atominfo", "entropy", "a.xyz"]),
    ]


# ---------------------------------------------------------------------------
# The API reference: every public module is on a page, every page names modules that exist.


def _api_targets() -> list[tuple[str, str, bool]]:
    """(page, module, whether its submodules are rendered) of every ``:::`` block."""
    spec = importlib.util.spec_from_file_location("api_modules", ROOT / "docs" / "api_modules.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    targets = []
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        text = hook.expand(page.read_text(encoding="utf-8"))
        for block in re.split(r"^(?=::: )", text, flags=re.MULTILINE)[1:]:
            name = block.split()[1]
            submodules = "show_submodules: false" not in block.split("\n\n")[0]
            targets.append((page.name, name, submodules))
    return targets


def test_api_pages_cover_every_public_module():
    spec = importlib.util.spec_from_file_location("api_modules", ROOT / "docs" / "api_modules.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    targets = _api_targets()
    documented = {name for _, name, _ in targets}
    missing = [name for name in documented if name not in hook.module_names()]
    assert not missing, f"API pages name modules that do not exist: {missing}"
    packages = [name for _, name, submodules in targets if submodules]
    uncovered = [
        module
        for module in hook.module_names()
        if not module.startswith("atominfo.cli")
        and module not in documented
        and not any(module.startswith(package + ".") for package in packages)
    ]
    assert not uncovered, f"modules on no page of docs/api/: {uncovered}"
