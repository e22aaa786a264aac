"""The configuration of a running LAMMPS instance as ase.Atoms.

LAMMPS holds positions, types and IDs in per-atom arrays and the box as
bounds and tilts; `lammps_atoms` turns them into an ase.Atoms ordered by
atom ID, with the LAMMPS box as its cell and species from a type map or the
per-type masses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, chemical_symbols

from atominfo.errors import InputError

__all__ = [
    "DECIMALS",
    "LAMMPS_SOURCE",
    "atoms_by_id",
    "check_units",
    "frame_atoms",
    "ghost_descriptors",
    "lammps_atoms",
    "rows_descriptors",
    "symbols_by_id",
]

# LAMMPS unit styles whose lengths are Å (the descriptors are in 1/Å).
ANGSTROM_UNITS = ("metal", "real")
# Largest difference, in g/mol, between a type's mass and an element's for the
# element to be recognised from the mass.
MASS_TOLERANCE = 0.05
# Positions are rounded to this many decimals (1e-8 Å), the precision with
# which extxyz stores them: a saved frame then holds exactly the positions its
# dH was computed from, and reading it back gives the same dH.
DECIMALS = 8
# What the errors about an instance's configuration name as their source.
LAMMPS_SOURCE = "<lammps>"


def _symbols_by_type(lmp, types: np.ndarray, type_map: Mapping[int, str] | None) -> dict:
    """{LAMMPS type: chemical symbol} for the types present, from the map or the masses."""
    present = np.unique(types)
    if type_map:
        missing = [int(t) for t in present if int(t) not in type_map]
        if missing:
            from atominfo.structures.lammps import format_type_map

            a = int(np.argmax(np.isin(types, missing)))
            raise InputError(
                f"LAMMPS type {missing[0]} is not in the type map {format_type_map(type_map)}",
                source=LAMMPS_SOURCE,
                atom=a,
            )
        return {int(t): type_map[int(t)] for t in present}
    masses = lmp.numpy.extract_atom("mass")
    if masses is None:
        raise InputError(
            "the atoms have per-atom masses, which do not name elements: give "
            "a type map (e.g. type_map={1: 'Cu'}, --type-map 1=Cu)",
            source=LAMMPS_SOURCE,
        )
    table = np.asarray(atomic_masses[1:], dtype=float)
    symbols = {}
    for t in present:
        m = float(masses[int(t)])
        near = np.flatnonzero(np.abs(table - m) <= MASS_TOLERANCE)
        if len(near) != 1:
            why = "no element has" if len(near) == 0 else "several elements have"
            raise InputError(
                f"LAMMPS type {int(t)} has mass {m:g}: {why} that mass (within "
                f"{MASS_TOLERANCE:g}); give a type map (e.g. type_map={{1: 'Cu'}}, "
                "--type-map 1=Cu)",
                source=LAMMPS_SOURCE,
            )
        symbols[int(t)] = chemical_symbols[int(near[0]) + 1]
    return symbols


def check_units(lmp) -> str:
    """The instance's unit style; InputError unless its lengths are in Å (metal, real)."""
    units = str(lmp.extract_global("units"))
    if units not in ANGSTROM_UNITS:
        raise InputError(
            f"LAMMPS units {units} do not measure lengths in Å; the descriptors "
            f"need units {' or '.join(ANGSTROM_UNITS)}",
            source=LAMMPS_SOURCE,
        )
    return units


def simulation_time(lmp, step: int) -> float:
    """Elapsed simulation time at `step`, in the units' time unit (ps for metal, fs for real)."""
    return float(lmp.extract_global("atime")) + (
        step - int(lmp.extract_global("atimestep"))
    ) * float(lmp.extract_global("dt"))


def lammps_atoms(
    lmp, type_map: Mapping[int, str] | None = None, *, decimals: int | None = DECIMALS
) -> Atoms:
    """The current configuration of a (serial) LAMMPS instance as ase.Atoms.

    Atoms are ordered by LAMMPS atom ID. The cell is the LAMMPS box (edge
    vectors ``(lx, 0, 0)``, ``(xy, ly, 0)``, ``(xz, yz, lz)``) with its origin
    at ``boxlo``, so positions are ``x - boxlo``, in Å; `pbc` follows the
    box's periodicity. Species come from `type_map` ({type: symbol}), else
    from the per-type masses. ``arrays['id']`` and ``arrays['type']`` keep the
    LAMMPS IDs and types; ``info`` holds 'timestep', 'time' and 'time_unit'.

    Parameters
    ----------
    lmp : lammps.lammps
    type_map : mapping int -> str, optional
    decimals : int or None
        Round positions to this many decimals (default 8: 1e-8 Å, as extxyz
        stores them, so the frame reads back exactly); None keeps them as they are.

    Raises
    ------
    InputError
        For units whose lengths are not Å (lj, si, ...), several MPI
        processes, a type missing from `type_map`, or a mass that names no
        single element (without a map).
    """
    from atominfo.structures.lammps import parse_type_map

    type_map = parse_type_map(type_map)
    if int(lmp.extract_setting("world_size")) != 1:
        raise InputError("atominfo reads LAMMPS configurations on one MPI process only")
    if not int(lmp.extract_setting("box_exist")):
        raise InputError(
            "LAMMPS has no simulation box yet (create_box or read_data first)", source=LAMMPS_SOURCE
        )
    units = check_units(lmp)
    nlocal = int(lmp.extract_setting("nlocal"))
    step = int(lmp.extract_global("ntimestep"))
    if nlocal == 0:
        ids = np.zeros(0, dtype=np.int64)
        types = np.zeros(0, dtype=np.int64)
        x = np.zeros((0, 3))
    else:
        # the arrays hold ghost atoms after the local ones
        ids = np.array(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        types = np.array(lmp.numpy.extract_atom("type")[:nlocal], dtype=np.int64)
        x = np.array(lmp.numpy.extract_atom("x")[:nlocal], dtype=float)
    return atoms_by_id(lmp, ids, types, x, type_map, step, units, decimals)[0]


def atoms_by_id(lmp, ids, types, x, type_map, step: int, units: str, decimals):
    """(atoms, order): the atoms of `ids`, `types`, positions `x` sorted by ID, and the
    local index of each of its atoms (as `lammps_atoms`, from arrays already gathered)."""
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo, hi = np.asarray(boxlo, dtype=float), np.asarray(boxhi, dtype=float)
    cell = np.array(
        [[hi[0] - lo[0], 0.0, 0.0], [xy, hi[1] - lo[1], 0.0], [xz, yz, hi[2] - lo[2]]], dtype=float
    )
    order = np.argsort(ids, kind="stable")
    positions = x[order] - lo
    if decimals is not None:
        positions = np.round(positions, decimals)
    symbols = _symbols_by_type(lmp, types, type_map)
    atoms = Atoms(
        [symbols[int(t)] for t in types[order]],
        positions=positions,
        cell=cell,
        pbc=[bool(p) for p in periodicity],
    )
    atoms.arrays["id"] = ids[order].copy()
    atoms.arrays["type"] = types[order].copy()
    atoms.info["timestep"] = int(step)
    atoms.info["time"] = simulation_time(lmp, step)
    atoms.info["time_unit"] = "ps" if units == "metal" else "fs"
    return atoms, order


def frame_atoms(lmp, tag, x, type_map, step: int):
    """(atoms, rows): every atom of the instance as ase.Atoms ordered by ID, and the index
    in it of each of this MPI rank's atoms (IDs `tag`, positions `x`, local order).

    On one process the atoms are this process's. On several (a domain-decomposed
    run) every rank gathers every atom (``gather_atoms``: collective, so every rank
    calls it at the same point, even one without atoms); atom IDs must be 1 to N.
    """
    units = check_units(lmp)
    ids = np.array(tag, dtype=np.int64)
    if int(lmp.extract_setting("world_size")) == 1:
        types = np.array(lmp.numpy.extract_atom("type")[: len(ids)], dtype=np.int64)
        positions = np.array(x, dtype=float)
        atoms, order = atoms_by_id(lmp, ids, types, positions, type_map, step, units, None)
        rows = np.empty(len(ids), dtype=np.int64)
        rows[order] = np.arange(len(ids))
        return atoms, rows
    n = int(lmp.get_natoms())
    gathered = (lmp.gather_atoms("x", 1, 3), lmp.gather_atoms("type", 0, 1))
    if gathered[0] is None or gathered[1] is None or (len(ids) and ids.max() > n):
        raise InputError(
            "LAMMPS could not gather the atoms of its MPI ranks: atom IDs must be 1 to N",
            source=LAMMPS_SOURCE,
        )
    positions = np.array(np.ctypeslib.as_array(gathered[0]), dtype=float).reshape(n, 3)
    types = np.array(np.ctypeslib.as_array(gathered[1]), dtype=np.int64)
    every = np.arange(1, n + 1, dtype=np.int64)
    atoms, _ = atoms_by_id(lmp, every, types, positions, type_map, step, units, None)
    return atoms, ids - 1


def rows_descriptors(atoms: Atoms, rows: np.ndarray, k: int, cutoff: float, where: str):
    """Descriptors (len(rows), 2k-1), 1/Å, of the atoms `rows` of `atoms` (periodic
    images included, as `atominfo.descriptor.kernel.structure_descriptors`)."""
    from atominfo.descriptor.kernel import describe_points, ghost_atoms, structure_descriptors

    if len(rows) == len(atoms):  # every atom: the one function that describes structures
        return structure_descriptors(atoms, k, cutoff, source=where, frame=None)[rows]  # type: ignore[arg-type]
    if len(rows) == 0:
        return np.zeros((0, 2 * k - 1))
    points, owner = ghost_atoms(atoms, cutoff, source=where, frame=None)  # type: ignore[arg-type]
    out = np.empty((len(atoms), 2 * k - 1))
    try:
        coincident = describe_points(points, rows, k, cutoff, out, owner=owner)
    except InputError as exc:
        raise exc.located(where, None) from None
    bad = np.flatnonzero(coincident >= 0)
    if bad.size:
        a = int(rows[bad[0]])
        other = int(owner[coincident[bad[0]]])
        raise InputError(
            f"two atoms at the same position (atoms {a} and {other})", source=where, atom=a
        )
    return out[rows]


def symbols_by_id(lmp, type_map) -> np.ndarray:
    """The chemical symbol of every atom of a domain-decomposed run, by ID (``gather_atoms``
    of the types: collective, so every rank calls it at the same point; IDs 1 to N)."""
    n = int(lmp.get_natoms())
    gathered = lmp.gather_atoms("type", 0, 1)
    if gathered is None:
        raise InputError(
            "LAMMPS could not gather the atoms of its MPI ranks: atom IDs must be 1 to N",
            source=LAMMPS_SOURCE,
        )
    types = np.array(np.ctypeslib.as_array(gathered), dtype=np.int64)[:n]
    symbols = _symbols_by_type(lmp, types, type_map)
    return np.array([symbols[int(t)] for t in types], dtype=str)


def ghost_descriptors(lmp, k: int, cutoff: float, type_map, where: str, species=None):
    """(ids, X): the IDs and descriptors (nlocal, width), 1/Å, of this MPI rank's atoms,
    from its own and its ghost atoms alone (a domain-decomposed run: nothing gathered);
    with a `species` list of two or more, the multicomponent rows
    (`atominfo.descriptor.multicomponent`: each species' block from the local and ghost
    atoms of that species, their LAMMPS types through `type_map`), else the plain ones.

    The ghosts must reach at least `cutoff` beyond every local atom (the monitor sets
    ``comm_modify cutoff``). Positions are taken as a serial check takes them: each
    atom (local or ghost) wrapped into the box along its periodic directions and
    rounded to `DECIMALS`, and a ghost then moved back by its whole periodic image,
    with the same arithmetic as `atominfo.descriptor.kernel.ghost_atoms`: the
    neighbours, and so the descriptors, are those of the serial run.

    Raises InputError (naming no file: the caller redoes a failed check on the
    gathered frame, whose error is the serial run's) for a type missing from
    `type_map`, a coordinate that is NaN or infinite, or two atoms at one position.
    """
    from ase.geometry import wrap_positions

    from atominfo.descriptor.kernel import describe_points
    from atominfo.descriptor.multicomponent import descriptor_width
    from atominfo.structures.geometry import complete_cell

    nlocal = int(lmp.extract_setting("nlocal"))
    if nlocal == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, descriptor_width(k, species)))
    n = nlocal + int(lmp.extract_setting("nghost"))
    ids = np.array(lmp.numpy.extract_atom("id", nelem=n), dtype=np.int64)
    types = np.array(lmp.numpy.extract_atom("type", nelem=n), dtype=np.int64)
    x = np.array(lmp.numpy.extract_atom("x", nelem=n, dim=3), dtype=float)
    _symbols_by_type(lmp, types[:nlocal], type_map)  # the serial run's refusal of a type
    if not np.isfinite(x).all():
        raise InputError("coordinate is NaN or infinite", source=where)
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo, hi = np.asarray(boxlo, dtype=float), np.asarray(boxhi, dtype=float)
    cell = np.array(
        [[hi[0] - lo[0], 0.0, 0.0], [xy, hi[1] - lo[1], 0.0], [xz, yz, hi[2] - lo[2]]], dtype=float
    )
    pbc = np.array([bool(p) for p in periodicity])
    raw = x - lo
    wrapped = np.round(wrap_positions(raw, cell, pbc=pbc), DECIMALS)
    if pbc.any():
        full = complete_cell(cell, pbc)
        inv = np.linalg.inv(full)
        frac = wrapped @ inv  # then wrapped again, exactly as ghost_atoms does
        frac[:, pbc] -= np.floor(frac[:, pbc])
        frac[:, pbc] %= 1.0
        image = np.zeros_like(frac)
        image[:, pbc] = np.round((raw @ inv)[:, pbc] - frac[:, pbc])
        points = (frac + image) @ full
    else:
        points = wrapped
    owner = ids - 1  # atoms numbered in ID order, as in the serial frame
    out = np.empty((nlocal, 2 * k - 1))
    coincident = describe_points(points, np.arange(nlocal), k, cutoff, out, owner=owner)
    bad = np.flatnonzero(coincident >= 0)
    if bad.size:
        a, other = int(owner[bad[0]]), int(owner[coincident[bad[0]]])
        raise InputError(f"two atoms at the same position (atoms {a} and {other})", source=where)
    if species is None or len(species) < 2:
        return ids[:nlocal], out
    names = _symbols_by_type(lmp, types, type_map)
    symbols = np.array([names[int(t)] for t in types], dtype=str)
    return ids[:nlocal], _species_blocks(points, symbols, nlocal, out, species, k, cutoff)


def _species_blocks(points, symbols, nlocal: int, plain, species, k: int, cutoff: float):
    """The multicomponent rows of the `nlocal` first `points` (their `plain` rows, then one
    block per species from that species' points alone), as `multicomponent_descriptors`."""
    from atominfo.descriptor.kernel import describe_points
    from atominfo.descriptor.multicomponent import BLOCK_SCALE

    width = 2 * k - 1
    X = np.zeros((nlocal, width * (1 + len(species))))
    X[:, :width] = plain * BLOCK_SCALE
    for s, symbol in enumerate(species):
        mask = symbols == symbol
        local = np.flatnonzero(mask[:nlocal])  # first among the points of `mask`, in order
        if local.size:
            block = np.empty((local.size, width))
            describe_points(points[mask], np.arange(local.size), k, cutoff, block)
            X[local, width * (1 + s) : width * (2 + s)] = block * BLOCK_SCALE
    return X
