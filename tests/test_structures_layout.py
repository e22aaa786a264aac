"""The shape of `atominfo.structures`, checked on its source: small modules, one job each,
no private name imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STRUCTURES = Path(__file__).resolve().parents[1] / "src" / "atominfo" / "structures"
FASTREAD = STRUCTURES / "fastread"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


def _modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", _modules(STRUCTURES), ids=lambda p: p.name)
def test_no_module_over_600_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_no_private_name_imported_from_another_module():
    found = []
    for path in _modules(STRUCTURES):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("atominfo"):
                found += [
                    f"{path.relative_to(STRUCTURES)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert not found, "\n".join(found)


def test_fastread_functions_are_short():
    long = [
        f"{path.name}:{name} {lines} lines"
        for path in _modules(FASTREAD)
        for name, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)
    steps = dict(_functions(FASTREAD / "extxyz.py"))
    assert steps["extxyz_atoms"] < 60


def test_stream_jobs_live_in_their_own_modules():
    """The line reader, the streamed frame and whole-frame reading are separate modules."""
    from atominfo.structures.fastread import frame, lines, stream

    assert lines.LineReader.__module__ == lines.__name__ and hasattr(lines, "READ_CHUNK")
    assert stream.StreamedFrame.__module__ == stream.__name__
    assert not hasattr(stream, "READ_CHUNK")  # the setting lives where it is read
    assert frame.read_snapshot.__module__ == frame.frame_atoms.__module__ == frame.__name__
