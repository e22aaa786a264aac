"""The spatial boxes of a snapshot: cell basis, fractional coordinates, box grid, halos.

Coordinates are those of the descriptor kernel (fractional, wrapped along
periodic directions), so a box's atoms and their halo reproduce exactly the
environments the kernel computes on the whole frame.
"""

from __future__ import annotations

import math

import numpy as np

from atominfo.structures.geometry import cell_heights, complete_cell


def basis(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray | None:
    """The cell the descriptor kernel uses (None: no periodicity, Cartesian coordinates)."""
    if not pbc.any():
        return None
    return complete_cell(cell, pbc)


def fractional(pos: np.ndarray, basis, pbc) -> np.ndarray:
    """Coordinates as the kernel sees them: fractional and wrapped along periodic axes."""
    if basis is None:
        return pos.copy()
    frac = pos @ np.linalg.inv(basis)
    frac[:, pbc] -= np.floor(frac[:, pbc])
    frac[:, pbc] %= 1.0
    return frac


def heights(basis) -> np.ndarray:
    """Heights of the basis, Å (ones without periodicity: coordinates are Cartesian)."""
    return np.ones(3) if basis is None else cell_heights(basis)


def grid(n_atoms: int, chunk_atoms: int, lo, hi, heights) -> np.ndarray:
    """Boxes per direction: about n_atoms / chunk_atoms boxes, as cubic as the cell allows."""
    extent = np.maximum((hi - lo) * heights, 1e-9)
    target = max(1, math.ceil(n_atoms / chunk_atoms))
    side = (float(np.prod(extent)) / target) ** (1 / 3)
    n = np.maximum(1, np.round(extent / side)).astype(np.int64)
    while int(np.prod(n)) < target:  # rounding down: split the longest side
        n[int(np.argmax(extent / n))] += 1
    return n


def box_index(frac, lo, hi, n) -> np.ndarray:
    """Flat box of each atom (clamped to the grid: rounding at the edges)."""
    idx = np.floor((frac - lo) / (hi - lo) * n).astype(np.int64)
    np.clip(idx, 0, n - 1, out=idx)
    return (idx[:, 0] * n[1] + idx[:, 1]) * n[2] + idx[:, 2]


def edges(lo, hi, n) -> list[np.ndarray]:
    out = []
    for d in range(3):
        e = lo[d] + (hi[d] - lo[d]) * np.arange(n[d] + 1) / n[d]
        e[-1] = hi[d]
        out.append(e)
    return out


def sources(box3, edges, pad, pbc, n):
    """(neighbour box, shift) pairs whose atoms may lie in box `box3`'s halo."""
    per_dir = []
    for d in range(3):
        a, b = edges[d][box3[d]] - pad[d], edges[d][box3[d] + 1] + pad[d]
        span = edges[d][-1] - edges[d][0]
        reps = int(math.ceil(pad[d] / span)) + 1 if pbc[d] else 0
        found = []
        for s in range(-reps, reps + 1):
            for j in range(n[d]):
                lo_j = edges[d][j] + s * span if j > 0 or pbc[d] else -np.inf
                hi_j = edges[d][j + 1] + s * span if j < n[d] - 1 or pbc[d] else np.inf
                if lo_j <= b and hi_j >= a:
                    found.append((j, s))
        per_dir.append(found)
    return [
        ((jx * n[1] + jy) * n[2] + jz, (sx, sy, sz))
        for jx, sx in per_dir[0]
        for jy, sy in per_dir[1]
        for jz, sz in per_dir[2]
    ]


def coordinates(frac: np.ndarray, basis) -> np.ndarray:
    """Cartesian coordinates, Å, as the descriptor kernel computes its ghosts."""
    return frac.copy() if basis is None else frac @ basis
