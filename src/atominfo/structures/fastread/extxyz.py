"""Extended XYZ: the comment line's key=value pairs, and the `ase.Atoms` ASE would read."""

from __future__ import annotations

import re

import numpy as np

from atominfo.structures.fastread.tokens import (
    FLOAT,
    INT,
    STRING,
    Unsupported,
    parse_lines,
    string_column,
)

# ase.io.extxyz's tables (a test checks them against the installed ASE)
SPECIAL_3_3_KEYS = {"Lattice", "virial", "stress"}
UNPROCESSED_KEYS = {"uid"}
REV_PROPERTY_NAME_MAP = {
    "pos": "positions",
    "Z": "numbers",
    "charge": "charges",
    "species": "symbols",
}
_SIMPLE_PAIR = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_\-]*)="
    r'(?:"([^"\\{}\[\]\']*)"|([^\s"\\{}\[\]\'=]+))'
)
_PARTS = re.compile(r"[^\s,]+")
# A token no int or float conversion accepts: it starts with a letter that cannot
# begin "inf", "infinity" or "nan" (Python's and numpy's float() take no other words).
_NOT_A_NUMBER = re.compile(r"[^\W\diInN_]")
_BOOLS = {
    "T": True,
    "F": False,
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
}


def comment_info(line: str) -> dict:
    """The key=value pairs of an extxyz comment line, converted as ASE converts them.

    Handles ``key=value`` and ``key="several values"`` (numbers become int or
    float scalars or arrays, T/F booleans, special 3x3 keys reshaped);
    anything else (brackets, escapes, JSON, bare keys) raises `Unsupported`.
    """
    text = line.strip()
    out: dict = {}
    pos = 0
    while pos < len(text):
        found = _SIMPLE_PAIR.match(text, pos)
        if not found:
            raise Unsupported("comment line")
        key = found.group(1)
        value = found.group(2) if found.group(2) is not None else found.group(3)
        pos = found.end()
        if pos < len(text) and not text[pos].isspace():
            raise Unsupported("comment line")
        out[key] = _convert(key, value)
    return out


def _convert(key: str, value: str):
    if key.lower() in UNPROCESSED_KEYS or value.startswith("_JSON"):
        raise Unsupported("unprocessed key or JSON")
    parts = _PARTS.findall(value)
    converted: object = value
    if not any(_NOT_A_NUMBER.match(p) for p in parts):  # else both conversions fail
        try:
            try:
                if any("." in p for p in parts):  # not an int: skip the failing try
                    raise ValueError
                number = np.array(parts, dtype=int)
            except (ValueError, OverflowError):
                number = np.array(parts, dtype=float)
            converted = number[0] if len(number) == 1 else number
        except (ValueError, OverflowError):
            pass
    if key in SPECIAL_3_3_KEYS:
        if not isinstance(converted, np.ndarray) or converted.shape != (9,):
            raise Unsupported("special 3x3 key")
        converted = np.array(converted).reshape((3, 3), order="F")
    if isinstance(converted, str):
        try:
            flags = [_BOOLS[p] for p in parts]
            converted = flags[0] if len(flags) == 1 else flags
        except KeyError:
            pass
    return converted


def parse_properties(text: str) -> list[tuple[str, str, int]]:
    """The columns an extxyz ``Properties=`` value declares: (name, type, count) each,
    type one of R (real), I (integer), S (string), L (logical).

    Raises `Unsupported` for a malformed value or a repeated name.
    """
    fields = text.split(":")
    if len(fields) % 3:
        raise Unsupported("Properties")
    try:
        out = [(n, t, int(c)) for n, t, c in zip(fields[::3], fields[1::3], fields[2::3])]
    except ValueError:
        raise Unsupported("Properties") from None
    if any(t not in "RISL" or len(t) != 1 or c < 1 for _, t, c in out):
        raise Unsupported("Properties")
    if len({n for n, _, _ in out}) != len(out):
        raise Unsupported("repeated property")
    return out


def extxyz_atoms(data: bytes, *, source: str = "<text>", frame: int | None = None):
    """The `ase.Atoms` ase.io.read makes of one extxyz frame (its bytes).

    Same positions, cell, pbc, numbers, per-atom arrays (with their dtypes),
    info and calculator results. Raises `Unsupported` for what is not
    reproduced here (constraints, VEC lines, brackets or JSON in the comment).
    """
    from ase import Atoms

    buf = np.frombuffer(data, dtype=np.uint8)
    n, comment, body = _frame_head(bytes(data))
    info = comment_info(comment) if comment.strip() else {}
    pbc = info.pop("pbc") if "pbc" in info else ([True] * 3 if "Lattice" in info else None)
    cell = info.pop("Lattice").T if "Lattice" in info else None
    props = parse_properties(info.pop("Properties", "species:S:1:pos:R:3"))
    kinds = []
    for _, ptype, count in props:
        kinds += [{"R": FLOAT, "I": INT, "S": STRING, "L": STRING}[ptype]] * count
    cols, end = parse_lines(buf, body, n, kinds, source=source, frame=frame)
    if bytes(buf[end:]).strip():
        raise Unsupported("text after the atom lines (VEC lines)")
    arrays, species = _property_arrays(cols, props)
    if "move_mask" in arrays:
        raise Unsupported("constraints")
    atoms = Atoms(
        numbers=_atomic_numbers(arrays, species, n),
        positions=arrays.pop("positions", None),
        charges=arrays.pop("initial_charges", None),
        cell=cell,
        pbc=pbc,
        info=info,
    )
    _calc_and_arrays(atoms, arrays)
    return atoms


def _frame_head(data: bytes) -> tuple[int, str, int]:
    """(atom count, comment line, offset of the first atom line) of a frame's bytes."""
    nl = data.find(b"\n")
    nl2 = data.find(b"\n", nl + 1) if nl >= 0 else -1
    if nl2 < 0:
        raise Unsupported("header")
    try:
        n = int(data[:nl])
    except ValueError:
        raise Unsupported("count") from None
    try:
        comment = data[nl + 1 : nl2].decode("utf-8")
    except UnicodeDecodeError:
        raise Unsupported("not UTF-8") from None
    return n, comment, nl2 + 1


def _property_arrays(cols, props) -> tuple[dict, tuple | None]:
    """({ASE array name: values} of the parsed columns, species).

    Species, the (distinct symbols, inverse) of a species:S:1 column, stand
    in for its array: no array of a million strings is made.
    """
    arrays: dict = {}
    species = None
    c = 0
    for name, ptype, count in props:
        ase_name = REV_PROPERTY_NAME_MAP.get(name, name)
        if ase_name == "positions" and ptype == "R" and count == 3:
            # a view (Atoms copies it): no per-column copies and no stacking
            first = cols.slots[c]
            arrays[ase_name] = cols.floats[:, first : first + 3]
        elif ase_name == "symbols" and ptype == "S" and count == 1:
            species = string_column(cols, cols.slots[c])
        else:
            blocks = [_column(cols, cols.slots[c + j], ptype) for j in range(count)]
            arrays[ase_name] = blocks[0] if count == 1 else np.vstack(blocks).T
        c += count
    return arrays, species


def _column(cols, slot: int, ptype: str) -> np.ndarray:
    """One parsed column as ASE types it: float, C int, bool (L) or str (S)."""
    if ptype == "R":
        return cols.floats[:, slot].copy()
    if ptype == "I":
        values = cols.ints[:, slot]
        if np.any(values != values.astype(np.int32)):
            raise Unsupported("integer beyond int32")
        return values.astype(np.intc)
    unique, inverse = string_column(cols, slot)
    if ptype == "S":
        return unique[inverse]
    table = [{"T": True, "F": False, "True": True, "False": False}.get(u) for u in unique]
    if any(t is None for t in table):
        raise Unsupported("logical value")
    return np.array(table, dtype=bool)[inverse]


def _atomic_numbers(arrays: dict, species, n: int) -> np.ndarray:
    """Atomic numbers of the frame: its Z column, else of its species or symbols
    (capitalised, as ASE). Takes both out of `arrays`."""
    from ase.data import atomic_numbers

    numbers = arrays.pop("numbers", None)
    symbols = arrays.pop("symbols", None)
    if numbers is not None:
        return numbers
    if symbols is None and species is None:
        raise Unsupported("no species")
    distinct, which = (
        species if species is not None else np.unique(symbols.astype(str), return_inverse=True)
    )
    try:
        species_numbers = np.array([atomic_numbers[s.capitalize()] for s in distinct], dtype=int)
    except KeyError:
        raise Unsupported("unknown species") from None
    return species_numbers[which].reshape(n)


def _calc_and_arrays(atoms, arrays: dict) -> None:
    """Calculator results to a SinglePointCalculator, the rest to atoms.arrays (as ASE)."""
    from ase.calculators.calculator import all_properties

    results = {}
    for name, array in arrays.items():
        if name in all_properties:
            results[name] = array
        else:
            atoms.new_array(name, array)
    config = [key for key in atoms.info if key in all_properties]
    if config:
        from ase.outputs import ArrayProperty, all_outputs

        for key in config:
            spec = all_outputs.get(key)
            if isinstance(spec, ArrayProperty) and spec.shapespec[0] == "natoms":
                continue
            results[key] = atoms.info.pop(key)
            if key == "stress" and np.shape(results[key]) == (3, 3):
                s = results[key]
                results[key] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    if results:
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms.calc = SinglePointCalculator(atoms, **results)
