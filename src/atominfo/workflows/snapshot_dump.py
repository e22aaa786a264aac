"""The per-atom LAMMPS dump of a snapshot (columns id type x y z dH novel), for OVITO."""

from __future__ import annotations

import numpy as np


def dump_header(h, basis) -> str:
    """ITEM lines of the per-atom dump (LAMMPS conventions; the cell must be LAMMPS-shaped)."""
    cell = np.asarray(h.cell, dtype=float)
    flags = " ".join("pp" if p else "ff" for p in h.pbc)
    lines = [f"ITEM: TIMESTEP\n{h.timestep or 0}\n", f"ITEM: NUMBER OF ATOMS\n{h.n_atoms}\n"]
    x0, y0, z0 = (float(v) for v in h.origin)
    lx, ly, lz = (float(v) for v in (cell[0, 0], cell[1, 1], cell[2, 2]))
    xy, xz, yz = (float(v) for v in (cell[1, 0], cell[2, 0], cell[2, 1]))
    if xy == 0 and xz == 0 and yz == 0:
        lines.append(
            f"ITEM: BOX BOUNDS {flags}\n{x0!r} {x0 + lx!r}\n{y0!r} {y0 + ly!r}\n"
            f"{z0!r} {z0 + lz!r}\n"
        )
    else:
        xlo_b = x0 + min(0.0, xy, xz, xy + xz)
        xhi_b = x0 + lx + max(0.0, xy, xz, xy + xz)
        ylo_b, yhi_b = y0 + min(0.0, yz), y0 + ly + max(0.0, yz)
        lines.append(
            f"ITEM: BOX BOUNDS xy xz yz {flags}\n{xlo_b!r} {xhi_b!r} {xy!r}\n"
            f"{ylo_b!r} {yhi_b!r} {xz!r}\n{z0!r} {z0 + lz!r} {yz!r}\n"
        )
    lines.append("ITEM: ATOMS id type x y z dH novel\n")
    return "".join(lines)


def check_dump_cell(cell) -> bool:
    """Whether a cell can be written as a LAMMPS box (a along x, b in the xy plane)."""
    cell = np.asarray(cell, dtype=float)
    return bool(cell[0, 1] == 0 and cell[0, 2] == 0 and cell[1, 2] == 0)


def dump_rows(core: np.ndarray, dh: np.ndarray, novel: np.ndarray) -> bytes:
    n = len(core)
    if n == 0:
        return b""
    pos = core["pos"]
    values = np.empty((n, 7), dtype=object)
    values[:, 0] = core["id"]
    values[:, 1] = core["type"]
    values[:, 2:5] = pos
    values[:, 5] = dh
    values[:, 6] = novel.astype(np.int64)
    line = "%d %d %.8g %.8g %.8g %.6g %d\n"
    return ((line * n) % tuple(values.ravel().tolist())).encode()
