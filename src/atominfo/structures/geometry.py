"""Geometry of a structure's cell and coordinates, shared by readers, descriptors and workflows.

* `cell_heights`: the distance between opposite faces of a cell, per direction
  (how far a periodic image is at the least: what a cutoff is measured against).
* `complete_cell`: a cell whose degenerate non-periodic vectors are filled in,
  so that fractional coordinates exist.
* `check_periodic_cell`, `check_coordinates`: the InputErrors (naming file,
  frame and atom) for a cell or coordinates no descriptor can be computed on.
"""

from __future__ import annotations

import numpy as np

from atominfo.errors import InputError

# Largest |coordinate| in Å: beyond it distances lose all precision.
MAX_COORDINATE = 1e9


def cell_heights(cell) -> np.ndarray:
    """Heights of a cell, shape (3,), Å: ``volume / |a_j x a_k|`` for each vector a_i.

    Height i is the distance between the two faces of the cell spanned by the
    other two vectors (equal to 1 / |b_i|, b the reciprocal vectors without
    2 pi). A cell of zero volume has no heights: `complete_cell` fills in its
    degenerate non-periodic vectors first. Raises InputError for a flat cell.
    """
    cell = np.asarray(cell, dtype=float)
    volume = abs(float(np.linalg.det(cell)))
    faces = np.array(
        [np.linalg.norm(np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])) for d in range(3)]
    )
    if not volume > 0 or not (faces > 0).all():
        raise InputError("cell has zero volume: its heights are not defined")
    return volume / faces


def complete_cell(cell, pbc) -> np.ndarray:
    """A copy of `cell` whose degenerate non-periodic vectors are replaced by unit vectors
    orthogonal to the rest, so that fractional coordinates exist.

    Their length does not matter: those directions are not periodic. A cell
    of non-zero volume is returned as it is (copied).
    """
    cell = np.array(cell, dtype=float)
    for axis in np.flatnonzero(~np.asarray(pbc, dtype=bool)):
        if abs(np.linalg.det(cell)) > 1e-9 * max(1.0, np.prod(np.linalg.norm(cell, axis=1))):
            break
        others = np.delete(cell, axis, axis=0)
        cell[axis] = np.linalg.svd(others)[2][-1]  # orthogonal to the other two
    return cell


def check_periodic_cell(cell, pbc, *, source: str, frame: int) -> None:
    """Raise InputError unless the periodic part of the cell is finite with non-zero volume.

    Only the vectors of periodic directions are checked (a molecule's cell may be
    zero); `source` and `frame` name the structure.
    """
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return
    cell = np.asarray(cell, dtype=float)
    if not np.isfinite(cell).all():
        raise InputError("cell is NaN or infinite", source=source, frame=frame)
    sv = np.linalg.svd(cell[pbc], compute_uv=False)
    if sv.min() < 1e-8 * max(1.0, sv.max()):
        raise InputError(
            f"periodic cell has zero volume (pbc={tuple(bool(p) for p in pbc)})",
            source=source,
            frame=frame,
        )


def check_coordinates(positions, *, source: str, frame: int, first_atom: int = 0) -> None:
    """Raise InputError for a NaN or infinite coordinate, or one beyond `MAX_COORDINATE`.

    `positions` (n, 3) Å are atoms ``first_atom, first_atom + 1, ...`` of the
    frame: the error names the first bad one. Two reductions over the array
    when every coordinate is fine (a streamed block has millions).
    """
    positions = np.asarray(positions, dtype=float)
    if positions.size == 0:
        return
    low, high = positions.min(), positions.max()  # NaN if any is
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = ~np.isfinite(positions).all(axis=1)
        raise InputError(
            "coordinate is NaN or infinite",
            source=source,
            frame=frame,
            atom=first_atom + int(np.argmax(bad)),
        )
    if max(-low, high) > MAX_COORDINATE:
        far = np.abs(positions).max(axis=1) > MAX_COORDINATE
        a = int(np.argmax(far))
        raise InputError(
            f"coordinate {np.abs(positions[a]).max():.3g} Å is beyond "
            f"{MAX_COORDINATE:.0e} Å: distances would lose all precision",
            source=source,
            frame=frame,
            atom=first_atom + a,
        )
