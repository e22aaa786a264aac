"""Numeric LAMMPS atom types and the species they stand for; LAMMPS box checks.

A LAMMPS dump without an ``element`` column (and a LAMMPS data file) gives
each atom a numeric type only. ASE then keeps the types in
``atoms.arrays["type"]`` and sets the atomic number to the type, so type 1
reads as H, type 2 as He, and so on: the species are wrong unless a type map
(``{1: "Cu", 2: "O"}``) says what the types are.

A box LAMMPS never writes (``xlo > xhi``, bounds narrower than the tilts, a
periodic edge of zero length) would be read by ASE as a cell with a negative
or zero edge, and the descriptors of its atoms would be silently wrong:
`check_box_bounds` (on the dump's text) and `check_lammps_cell` (on a cell ASE
built) refuse it.
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


_AXES = "xyz"


def check_box_bounds(bounds, tilts, pbc, *, source=None, frame=None) -> None:
    """Raise InputError for ``ITEM: BOX BOUNDS`` that no LAMMPS box has.

    `bounds` is the three (lo, hi) rows, `tilts` (xy, xz, yz) (zeros for an
    orthogonal box), `pbc` the periodic flags. Refused, naming the bound: lo >
    hi on an axis; a tilted box whose x (y) bounds are narrower than
    ``|xy| + |xz|`` (``|yz|``), which leaves an edge of negative length; and
    an edge of zero length on a periodic axis (a flat periodic box). NaN
    bounds are left to the cell checks (`atominfo.structures.frames.validate_atoms`).
    """
    xy, xz, yz = (float(t) for t in tilts)
    tilt_spans = ((abs(xy) + abs(xz), "|xy| + |xz|"), (abs(yz), "|yz|"), (0.0, ""))
    for axis, (lo, hi), periodic, (span, span_name) in zip(
        _AXES, bounds, pbc, tilt_spans, strict=True
    ):
        lo, hi = float(lo), float(hi)
        if hi < lo:
            raise InputError(
                f"BOX BOUNDS: {axis}lo {lo:g} > {axis}hi {hi:g} (an inverted box)",
                source=source,
                frame=frame,
            )
        if hi - lo < span:
            raise InputError(
                f"BOX BOUNDS: {axis}hi - {axis}lo = {hi - lo:g} is less than the tilts "
                f"{span_name} = {span:g} (the box would have a negative {axis} edge)",
                source=source,
                frame=frame,
            )
        if periodic and hi - lo - span == 0:
            raise InputError(
                f"BOX BOUNDS: the periodic {axis} edge has zero length ({axis}lo = {axis}hi"
                f" = {lo:g}" + (f", less the tilts {span_name})" if span else ")"),
                source=source,
                frame=frame,
            )


def check_lammps_cell(atoms: Atoms, *, source=None, frame=None) -> None:
    """`check_box_bounds` for a frame ASE read from a LAMMPS file (its cell only).

    ASE builds a LAMMPS box as a lower-triangular cell whose diagonal is each
    edge's length (``xhi - xlo`` less the tilts): a negative diagonal is an
    inverted box, a zero one on a periodic axis a flat box. A general
    triclinic box (any other cell) is left to the cell checks.
    """
    cell = np.asarray(atoms.cell[:], dtype=float)
    if np.triu(cell, 1).any():
        return
    for axis, length, periodic in zip(_AXES, np.diag(cell), atoms.pbc, strict=True):
        if length < 0:
            raise InputError(
                f"the box {axis} edge is {length:g} Å long ({axis}lo > {axis}hi in BOX "
                "BOUNDS, or bounds narrower than the tilts: an inverted box)",
                source=source,
                frame=frame,
            )
        if periodic and length == 0:
            raise InputError(
                f"the periodic box {axis} edge has zero length ({axis}lo = {axis}hi)",
                source=source,
                frame=frame,
            )
