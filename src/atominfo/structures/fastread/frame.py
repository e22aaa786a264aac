"""One whole frame at once: `read_snapshot` into arrays (any size, plain or .gz, by
`StreamedFrame`), `frame_atoms` into the `ase.Atoms` ASE would read (a frame's bytes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atominfo.structures.fastread.extxyz import extxyz_atoms
from atominfo.structures.fastread.lammps import lammps_atoms
from atominfo.structures.fastread.stream import StreamedFrame
from atominfo.structures.fastread.tokens import Unsupported


@dataclass
class Snapshot:
    """One frame as arrays: positions (n, 3) Å, cell (3, 3) Å, pbc (3,), numbers (n,),
    ids (n,), types (n,), origin (3,) Å; source and frame say where it came from."""

    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    numbers: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    origin: np.ndarray
    source: str
    frame: int
    timestep: int | None = None

    def to_atoms(self):
        """An `ase.Atoms` of the arrays (file order, LAMMPS types in ``arrays["type"]``)."""
        from ase import Atoms

        atoms = Atoms(
            numbers=self.numbers,
            positions=self.positions,
            cell=self.cell,
            pbc=self.pbc,
            celldisp=self.origin,
        )
        atoms.new_array("type", self.types, dtype="int")
        return atoms


def read_snapshot(
    path, frame: int = 0, *, format: str | None = None, type_map=None, atoms: bool = False
):
    """Read one frame of a LAMMPS text dump or extxyz file (plain or .gz) into arrays.

    Parameters
    ----------
    path : str or Path.
    frame : int >= 0, the frame number in the file.
    format : 'lammps-dump-text' or 'extxyz' (default: from the file name).
    type_map : ``{1: "Cu"}`` or ``"1=Cu"``: species of LAMMPS types.
    atoms : return an `ase.Atoms` instead of a `Snapshot`.

    Notes
    -----
    Atoms stay in file order (ASE's LAMMPS reader sorts them by id; use
    `lammps_atoms` for ASE's exact Atoms).
    """
    with StreamedFrame(path, frame, format=format, type_map=type_map) as stream:
        blocks = list(stream.blocks())
        h = stream.header
    assert h is not None
    snap = Snapshot(
        np.concatenate([b.positions for b in blocks]),
        h.cell,
        h.pbc,
        np.concatenate([b.numbers for b in blocks]),
        np.concatenate([b.ids for b in blocks]),
        np.concatenate([b.types for b in blocks]),
        h.origin,
        h.source,
        h.frame,
        h.timestep,
    )
    return snap.to_atoms() if atoms else snap


def frame_atoms(data: bytes, fmt: str, *, source: str = "<text>", frame: int | None = None):
    """`ase.Atoms` of one frame's bytes as ase.io.read gives them, or `Unsupported`."""
    if fmt == "lammps-dump-text":
        return lammps_atoms(data, source=source, frame=frame)
    if fmt == "extxyz":
        return extxyz_atoms(data, source=source, frame=frame)
    raise Unsupported(fmt)
