"""Reading structures frame by frame and validating them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from ase import Atoms

from atominfo.errors import InputError


@dataclass
class Frame:
    """One structure and where it came from (file name or '<memory>', frame number)."""

    atoms: Atoms
    source: str
    index: int


def _is_pathlike(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def iter_frames(structures, index=":", format=None, *, validate=True) -> Iterator[Frame]:
    """Yield `Frame`s from an Atoms, a list of Atoms, a file path or a list of paths.

    Files are streamed with `ase.io.iread`, so a trajectory is never held whole.
    `index` is an ASE frame selection (":" all, "-1" last, "::10", "3:7").
    """
    if isinstance(structures, Atoms):
        items: Iterable = [structures]
    elif _is_pathlike(structures):
        items = [structures]
    else:
        items = list(structures)
    memory_count = 0
    for item in items:
        if isinstance(item, Atoms):
            if validate:
                validate_atoms(item, "<memory>", memory_count)
            yield Frame(item, "<memory>", memory_count)
            memory_count += 1
        elif _is_pathlike(item):
            yield from _iter_file(Path(item), index, format, validate)
        else:
            raise InputError(f"expected ase.Atoms or a file path, got {type(item).__name__}")


def _iter_file(path: Path, index, format, validate) -> Iterator[Frame]:
    import ase.io

    name = str(path)
    if not path.exists():
        raise InputError("file not found", source=name)
    if path.is_dir():
        raise InputError("is a directory, not a structure file", source=name)
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=name)
    try:
        open(path, "rb").close()
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=name) from None
    selection = index if index is not None else ":"
    count = 0
    frame_number = _first_frame_number(selection)
    step = _frame_step(selection)
    reader = ase.io.iread(name, index=selection, format=format)
    while True:
        try:
            atoms = next(reader)
        except StopIteration:
            break
        except InputError:
            raise
        except Exception as exc:  # ASE raises many types for malformed files
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"cannot read ({type(exc).__name__}: {msg})",
                             source=name, frame=frame_number) from None
        if validate:
            validate_atoms(atoms, name, frame_number)
        yield Frame(atoms, name, frame_number)
        count += 1
        frame_number += step
    if count == 0:
        raise InputError(f"no frames selected by index {selection!r}", source=name)


def _first_frame_number(selection) -> int:
    """Frame number of the first selected frame, for messages (best effort)."""
    if isinstance(selection, int):
        return selection
    if isinstance(selection, str):
        head = selection.split(":")[0]
        try:
            return int(head) if head else 0
        except ValueError:
            return 0
    return 0


def _frame_step(selection) -> int:
    if isinstance(selection, str) and selection.count(":") == 2:
        try:
            return int(selection.split(":")[2] or 1)
        except ValueError:
            return 1
    return 1


def validate_atoms(atoms: Atoms, source: str, frame: int) -> None:
    """Raise InputError for a structure the descriptor cannot be computed on."""
    if len(atoms) == 0:
        raise InputError("structure has no atoms", source=source, frame=frame)
    pos = atoms.get_positions()
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        raise InputError("coordinate is NaN or infinite", source=source, frame=frame,
                         atom=int(np.argmax(bad)))
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        cell = np.asarray(atoms.cell[:], dtype=float)
        if not np.isfinite(cell).all():
            raise InputError("cell is NaN or infinite", source=source, frame=frame)
        periodic_vectors = cell[pbc]
        sv = np.linalg.svd(periodic_vectors, compute_uv=False)
        if sv.min() < 1e-8 * max(1.0, sv.max()):
            raise InputError(
                f"periodic cell has zero volume (pbc={tuple(bool(p) for p in pbc)})",
                source=source, frame=frame)


def read_frames(structures, index=":", format=None) -> list[Frame]:
    """All frames of `structures` in memory (see `iter_frames`)."""
    return list(iter_frames(structures, index=index, format=format))
