"""LAMMPS text dumps: the frame header, and the `ase.Atoms` ASE would read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atominfo.structures.fastread.tokens import (
    FLOAT,
    INT,
    STRING,
    Unsupported,
    column_getter,
    find_byte,
    parse_lines,
    string_column,
)
from atominfo.structures.lammps import check_box_bounds

_POSITION_SETS = (("x", "y", "z"), ("xs", "ys", "zs"), ("xu", "yu", "zu"), ("xsu", "ysu", "zsu"))


@dataclass
class LammpsHeader:
    """The header of one LAMMPS dump frame (ASE's conventions for cell and pbc)."""

    timestep: int
    n_atoms: int
    cell: np.ndarray
    celldisp: np.ndarray
    pbc: list
    columns: list
    body: int  # byte offset of the first atom line


def parse_lammps_header(lines: list[str], *, source="<text>", frame=None) -> LammpsHeader:
    """Header items of a frame from its lines (up to and including ITEM: ATOMS).

    Raises InputError naming `source` and `frame` for box bounds no LAMMPS box
    has (`atominfo.structures.lammps.check_box_bounds`), `Unsupported` for a
    header not reproduced here.
    """
    timestep = n_atoms = None
    cell = celldisp = bounds = tilts = None
    pbc = [False, False, False]
    columns = None
    i = 0
    try:
        while i < len(lines):
            line = lines[i]
            if line.startswith("ITEM: TIMESTEP"):
                timestep = int(lines[i + 1].split()[0])
                i += 2
                continue
            if line.startswith("ITEM: NUMBER OF ATOMS"):
                n_atoms = int(lines[i + 1].split()[0])
                i += 2
                continue
            if line.startswith("ITEM: BOX BOUNDS"):
                bounds, tilts, cell, celldisp, pbc = _box(line, lines[i + 1 : i + 4])
                i += 4
                continue
            if line.startswith("ITEM: ATOMS"):
                columns = line.split()[2:]
                break
            if line.startswith("ITEM:"):
                raise Unsupported(f"header item {line.strip()!r}")
            i += 1
    except (IndexError, ValueError):
        raise Unsupported("unusual header") from None
    if timestep is None or n_atoms is None or columns is None or bounds is None:
        raise Unsupported("incomplete header")
    assert cell is not None and celldisp is not None and tilts is not None  # set with bounds
    check_box_bounds(bounds, tilts, pbc, source=source, frame=frame)
    return LammpsHeader(timestep, n_atoms, cell, celldisp, pbc, columns, 0)


def _box(line: str, rows: list[str]):
    """Bounds ((lo, hi) per axis), tilts (xy, xz, yz), and the cell, origin and pbc
    ASE builds of ITEM: BOX BOUNDS (orthogonal or tilted)."""
    items = line.split()[3:]
    data = np.array([[float(v) for v in r.split()] for r in rows])
    if data.shape[0] != 3 or data.shape[1] not in (2, 3):
        raise Unsupported("box bounds")
    if items and items[0] == "abc":
        raise Unsupported("general triclinic box")
    diag = data[:, :2].flatten()
    if data.shape[1] > 2:
        off = data[:, 2]
        if len(items) >= 3:
            off = off[[items.index(t) for t in ("xy", "xz", "yz")]]
    else:
        off = np.zeros(3)
    xlo, xhi, ylo, yhi, zlo, zhi = diag
    xy, xz, yz = off
    cell = np.array(
        [
            [(xhi - xlo) - abs(xy) - abs(xz), 0, 0],
            [xy, (yhi - ylo) - abs(yz), 0],
            [xz, yz, zhi - zlo],
        ]
    )
    disp = np.array([xlo - min(0, xy) - min(0, xz), ylo - min(0, yz), zlo])
    flags = items[-3:] if len(items) >= 3 else ["f", "f", "f"]
    return data[:, :2], off, cell, disp, ["p" in d.lower() for d in flags]


def _lammps_kinds(columns: list[str]) -> list[int]:
    kinds = []
    for name in columns:
        if name in ("id", "type") or name.startswith(("i_", "i2_")):
            kinds.append(INT)
        elif name == "element":
            kinds.append(STRING)
        else:
            kinds.append(FLOAT)
    return kinds


def check_lammps_columns(columns: list[str]) -> tuple[str, ...]:
    """The position columns of a dump's ``ITEM: ATOMS`` (x y z, xs ys zs, xu yu zu or
    xsu ysu zsu), checked for what the fast readers handle.

    Raises `Unsupported` for incomplete or several position sets, no species
    (neither element nor type: ASE would guess it from masses), quaternions
    and repeated columns.
    """
    for names in _POSITION_SETS:
        if names[0] in columns:
            if not all(n in columns for n in names):
                raise Unsupported("incomplete position columns")
            if names is not _POSITION_SETS[0] and "x" in columns:
                raise Unsupported("several position sets")
            break
    else:
        raise Unsupported("no positions")
    if "element" not in columns and "type" not in columns:
        raise Unsupported("no species")  # ASE would try masses
    if any(c.startswith("c_q[") for c in columns):
        raise Unsupported("quaternions")
    if len(set(columns)) != len(columns):
        raise Unsupported("repeated column")
    return names


def _header_lines(buf: np.ndarray) -> tuple[list[str], int]:
    """Lines up to and including 'ITEM: ATOMS', and the offset of the next byte."""
    pos = 0
    lines = []
    while True:
        nl = find_byte(buf, 10, pos)
        if nl < 0:
            raise Unsupported("no ITEM: ATOMS")
        line = bytes(buf[pos:nl]).decode("utf-8", "replace")
        lines.append(line)
        pos = nl + 1
        if line.startswith("ITEM: ATOMS"):
            return lines, pos
        if len(lines) > 64:
            raise Unsupported("long header")


def lammps_atoms(data: bytes, *, source: str = "<text>", frame: int | None = None):
    """The `ase.Atoms` ase.io.read makes of one LAMMPS text dump frame (its bytes).

    Same atoms in the same order (sorted by id), positions, cell, celldisp,
    pbc, numbers, ``arrays["type"]``, compute/fix/variable columns, velocities,
    charges, forces (a SinglePointCalculator with energy 0, as ASE), and
    ``info["timestep"]``. Raises `Unsupported` for a frame ASE reads in a way
    not reproduced here (masses as species, quaternions, general triclinic boxes).
    """
    from ase import Atoms
    from ase.data import atomic_numbers

    buf = np.frombuffer(data, dtype=np.uint8)
    lines, body = _header_lines(buf)
    head = parse_lammps_header(lines, source=source, frame=frame)
    names = check_lammps_columns(head.columns)
    kinds = _lammps_kinds(head.columns)
    cols, end = parse_lines(buf, body, head.n_atoms, kinds, source=source, frame=frame)
    if bytes(buf[end:]).strip():
        raise Unsupported("text after the atom lines")
    get = column_getter(head.columns, kinds, cols)
    order = None
    if "id" in head.columns:
        order = np.argsort(get("id"))
    if "element" in head.columns:
        unique, inverse = string_column(cols, cols.slots[head.columns.index("element")])
        try:
            table = np.array([atomic_numbers[str(s)] for s in unique], dtype=int)
        except KeyError:
            raise Unsupported("unknown element") from None
        numbers = table[inverse]
    else:
        numbers = get("type")
    n = head.n_atoms

    def sort(a):
        return a if order is None else a[order]

    def stack(labels):
        return sort(np.column_stack([get(c) for c in labels]).astype(float))

    kwargs = dict(
        numbers=sort(numbers).reshape(n), pbc=head.pbc, celldisp=head.celldisp, cell=head.cell
    )
    if names[0] in ("x", "xu"):
        atoms = Atoms(positions=stack(names), **kwargs)
    else:
        atoms = Atoms(scaled_positions=stack(names), **kwargs)
    if any(c in head.columns for c in ("vx", "q", "fx")):
        from ase.calculators.lammps import convert  # units: imported only when needed

        if all(c in head.columns for c in ("vx", "vy", "vz")):
            atoms.set_velocities(convert(stack(("vx", "vy", "vz")), "velocity", "metal", "ASE"))
        if "q" in head.columns:
            q = convert(stack(("q",)), "charge", "metal", "ASE")
            atoms.set_initial_charges([c[0] for c in q])
        if all(c in head.columns for c in ("fx", "fy", "fz")):
            from ase.calculators.singlepoint import SinglePointCalculator

            forces = convert(stack(("fx", "fy", "fz")), "force", "metal", "ASE")
            atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=forces)
    for name in head.columns:
        if name.startswith(("f_", "v_", "d_", "d2_")) or (name.startswith("c_")):
            atoms.new_array(name, sort(get(name)), dtype="float")
        elif name.startswith(("i_", "i2_")):
            atoms.new_array(name, sort(get(name)), dtype="int")
        elif name == "type":
            atoms.new_array(name, sort(get("type")), dtype="int")
    atoms.info.update({"timestep": head.timestep})
    return atoms
