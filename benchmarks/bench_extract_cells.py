"""Periodic cut-outs (`atominfo extract --mode cell`): clashes at carved faces, before and
after the margin, and what the margin costs.

Sources: EMT Cu with 256 atoms (4x4x4 cubic cells, 14.4 Å): two frames of a 3000 K
Langevin melt (`atominfo.structures.datasets.md_frames`), and a crystal with one
vacancy, every atom displaced at random by up to 0.05 Å. For every --stride-th atom
and each cutoff + buffer, `cut_cell` carves a cell; "before" is the same cell with
its margin taken off (the carve alone, as before issue 21), "after" the cell
written. Distances by ASE's neighbour list (periodic images included), against
the source frame's smallest distance. Time per cut: best of --repeats, a cell
against a cluster of the same atoms (`cut_cluster`, the baseline) in the same run.

Usage: python benchmarks/bench_extract_cells.py [--stride 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ase.build import bulk  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from atominfo.structures.datasets import md_frames  # noqa: E402
from atominfo.structures.geometry import cell_heights  # noqa: E402
from atominfo.workflows.labelling_cut import CLASH_RATIO, cut_cell, cut_cluster  # noqa: E402

CUTS = [(4.0, 1.0), (5.0, 2.0), (3.0, 0.62)]  # (cutoff, buffer), Å


def smallest(atoms, within: float) -> float:
    d = neighbor_list("d", atoms, within)
    return float(d.min()) if len(d) else float("inf")


def unpadded(cut):
    """The cell without its margin, the atoms where they are relative to the centre."""
    cell = cut.cell[:]
    heights = cell_heights(cell)
    tight = cell * ((heights - np.asarray(cut.info["cell_margin"])) / heights)[:, None]
    out = cut.copy()
    out.set_cell(tight)
    out.positions = cut.positions - 0.5 * cell.sum(0) + 0.5 * tight.sum(0)
    return out


def best_time(cut, atoms, centres, cutoff: float, buffer: float, repeats: int) -> float:
    """Best of `repeats` mean seconds per call of cut(atoms, centre, cutoff, buffer)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for c in centres:
            cut(atoms, c, cutoff, buffer)
        times.append((time.perf_counter() - start) / len(centres))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    melt = md_frames(bulk("Cu", cubic=True) * (4, 4, 4), 3000, 2, interval=20, equilibration=200)
    vacancy = bulk("Cu", cubic=True) * (4, 4, 4)
    del vacancy[10]
    vacancy.rattle(0.05, seed=2)
    for name, atoms in [
        ("melt, frame 0", melt[0]),
        ("melt, frame 1", melt[1]),
        ("vacancy", vacancy),
    ]:
        source = smallest(atoms, 3.0)
        centres = range(0, len(atoms), args.stride)
        for cutoff, buffer in CUTS:
            cells = [cut_cell(atoms, c, cutoff, buffer) for c in centres]
            after = np.array([smallest(c, 2 * source) for c in cells])
            before = np.array([smallest(unpadded(c), 2 * source) for c in cells])
            margin = np.array([np.max(c.info["cell_margin"]) for c in cells])
            timing = (atoms, centres, cutoff, buffer, args.repeats)
            cell_s, cluster_s = best_time(cut_cell, *timing), best_time(cut_cluster, *timing)
            lengthened = margin[margin > 0]
            print(
                f"{name}: R = {cutoff + buffer:g} Å, source {source:.3f} Å | before: closest "
                f"{before.min():.2f} Å, {np.mean(before < CLASH_RATIO * source):.0%} of "
                f"{len(cells)} cells clash | after: closest {after.min():.3f} Å = "
                f"{after.min() / source:.3f} x source, {len(lengthened)} lengthened, margin "
                f"median {np.median(lengthened) if len(lengthened) else 0:.2f} max "
                f"{margin.max():.2f} Å | {cell_s * 1e3:.0f} ms/cell, "
                f"{cell_s / cluster_s:.1f} x a cluster",
                flush=True,
            )


if __name__ == "__main__":
    main()
