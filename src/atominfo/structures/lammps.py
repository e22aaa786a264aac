"""Numeric LAMMPS atom types and the species they stand for.

A LAMMPS dump without an ``element`` column (and a LAMMPS data file) gives
each atom a numeric type only. ASE then keeps the types in
``atoms.arrays["type"]`` and sets the atomic number to the type, so type 1
reads as H, type 2 as He, and so on: the species are wrong unless a type map
(``{1: "Cu", 2: "O"}``) says what the types are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from atominfo.errors import InputError


class UntypedDumpWarning(UserWarning):
    """A LAMMPS dump has numeric types but no element column, and no type map was given."""


def parse_type_map(text) -> dict[int, str] | None:
    """A type map from its command-line text ``"1=Cu,2=O"`` (or a mapping, checked).

    Returns ``{type: symbol}``, or None for None or an empty text. Raises
    InputError for a malformed entry, a type that is not a positive integer,
    a repeated type or an unknown chemical symbol.
    """
    if text is None:
        return None
    if isinstance(text, Mapping):
        items = list(text.items())
    elif isinstance(text, str):
        if not text.strip():
            return None
        items = []
        for entry in text.split(","):
            key, sep, value = entry.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InputError(
                    f"type map entry {entry.strip()!r} is not TYPE=SYMBOL (e.g. 1=Cu,2=O)"
                )
            items.append((key.strip(), value.strip()))
    else:
        raise InputError(f"type map must be like '1=Cu,2=O' or {{1: 'Cu'}}, got {text!r}")
    mapping: dict[int, str] = {}
    for key, symbol in items:
        try:
            number = int(key)
            if isinstance(key, float) or number != float(key) or number < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(
                f"type map: LAMMPS type must be a positive integer, got {key!r}"
            ) from None
        if number in mapping:
            raise InputError(f"type map: type {number} given twice")
        if not isinstance(symbol, str) or symbol not in chemical_symbols[1:]:
            raise InputError(f"type map: {symbol!r} is not a chemical symbol")
        mapping[number] = symbol
    return mapping


def apply_type_map(
    atoms: Atoms, type_map: Mapping[int, str] | None, *, source: str = "<memory>", frame: int = 0
) -> Atoms:
    """`atoms` with species set from its numeric types (a copy; the input is untouched).

    Applies to structures that carry numeric types (``atoms.arrays["type"]``,
    as ASE reads LAMMPS dumps and data files); the map overrides an element
    column. Structures without types, or no map, are returned as they are.
    Raises InputError naming the first atom whose type the map lacks.
    """
    if not type_map or "type" not in atoms.arrays:
        return atoms
    types = np.asarray(atoms.arrays["type"])
    known = np.isin(types, list(type_map))
    if not known.all():
        a = int(np.argmax(~known))
        raise InputError(
            f"LAMMPS type {types[a]} is not in the type map {format_type_map(type_map)}",
            source=source,
            frame=frame,
            atom=a,
        )
    mapped = atoms.copy()
    mapped.set_chemical_symbols([type_map[int(t)] for t in types])
    return mapped


def format_type_map(type_map: Mapping[int, str]) -> str:
    """The command-line text of a type map, ``"1=Cu,2=O"``."""
    return ",".join(f"{t}={s}" for t, s in sorted(type_map.items()))


def untyped_message(source: str) -> str:
    return (
        f"{source}: LAMMPS dump has atom types but no element column, so ASE reads type 1 as"
        " H, type 2 as He, ...; give a type map (e.g. type_map={1: 'Cu', 2: 'O'}, on the"
        " command line --type-map 1=Cu,2=O) to name the species"
    )


def dump_has_elements(columns) -> bool:
    """Whether a LAMMPS ``ITEM: ATOMS`` header names the species of the atoms."""
    return columns is not None and "element" in columns
