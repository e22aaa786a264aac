"""The shape of the package, checked on its source (no import of atominfo needed).

Layers, from the bottom: each imports only from its own layer and below, and
no two packages import each other (directly or through others). The
architecture page of the docs draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "atominfo"

LAYERS = [
    # what every layer may use: errors, ranges, result base, value objects
    ["errors", "params", "_version", "_jit_cache", "results", "settings"],
    # reading structures, computing descriptors, kernel engines
    ["structures", "descriptor", "engine"],
    # the mathematics of the method on descriptor matrices
    ["information", "information_gradient", "reference"],
    # running: guard, staged outputs, checkpoints; presenting: plots, HTML, chemiscope
    ["runs", "outputs"],
    # one module per task, owning its run
    ["workflows"],
    # the command line and the package's front door
    ["cli", "__main__", "__init__"],
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(("atominfo", *path.relative_to(SRC).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = path
    return out


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    top = package(module)
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: package {top!r} is in no layer of tests/test_architecture.py")


def imports(path: Path) -> list[str]:
    """Every atominfo module imported by `path`, at the top or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("atominfo."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("atominfo.")]
    return found


def test_every_package_has_a_layer():
    for module in modules():
        layer(module)


def test_no_import_goes_up_a_layer():
    upward = [
        f"{module} imports {target}"
        for module, path in modules().items()
        for target in imports(path)
        if layer(target) > layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_two_packages_import_each_other():
    edges: dict[str, set[str]] = {}
    for module, path in modules().items():
        for target in imports(path):
            if package(target) != package(module):
                edges.setdefault(package(module), set()).add(package(target))

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    cycles = sorted({a for a in edges if a in reachable(a)})
    assert not cycles, f"packages on an import cycle: {cycles}"


# -- size and shape --------------------------------------------------------------------------

# command modules are "parse, one workflow call, print"; these three are shared helpers
CLI_HELPERS = {"atominfo.cli", "atominfo.cli.options", "atominfo.cli.report", "atominfo.cli.load"}


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_modules_are_small():
    too_long = {
        module: n
        for module, path in modules().items()
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert not too_long, f"modules over 600 lines: {too_long}"


def test_commands_are_thin():
    too_long = {
        module: n
        for module, path in modules().items()
        if module.startswith("atominfo.cli.")
        and module not in CLI_HELPERS
        and (n := len(path.read_text().splitlines())) > 150
    }
    assert not too_long, f"command modules over 150 lines: {too_long}"


def test_functions_are_short_and_take_few_parameters():
    long, wide = [], []
    for module, path in modules().items():
        for fn in _functions(path):
            if fn.name.startswith("_"):
                continue
            if fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > 100:
                long.append(f"{module}.{fn.name}")
            args = fn.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            if names and names[0] in ("self", "cls"):
                names = names[1:]
            if len(names) > 10:
                wide.append(f"{module}.{fn.name} ({len(names)})")
    assert not long, f"public functions over 100 lines: {long}"
    assert not wide, f"public functions with more than 10 parameters: {wide}"


def test_no_private_name_is_imported_from_another_module():
    found = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if not node.module.startswith("atominfo.") or node.module == module:
                continue
            found += [
                f"{module} imports {node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
    assert not found, "\n".join(found)
