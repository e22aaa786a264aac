"""Biased exploration against plain MD at equal numbers of selected structures (issue 24).

EMT Cu, 32-atom cubic cell; the starting dataset is 10 frames of 300 K MD. Each
method adds N structures (N = 10, 30):

* plain MD at 300 K (the baseline: same temperature) and at 1200 K: a frame every
  `INTERVAL` steps;
* biased exploration at 300 K and 1200 K (`atominfo.workflows.explore`, defaults: weight 0.1 eV/nat
  on the largest dH, bias capped at 1 eV/Å per atom): a snapshot whenever the largest dH
  against the growing dataset reaches 0, checked every `INTERVAL` steps.

Figures: (a) entropy H of the N structures' environments and of the whole dataset,
(b) coverage of held-out hard environments (a (100) slab, a vacancy, a 3% strained crystal,
a 2500 K melt; all 300 K MD frames except the melt): fraction with dH <= 0 against the
dataset, (c) structures with a smallest interatomic distance below 1.8 Å, (d) MD steps
and wall time. Means over `SEEDS`; wall time the best over the seeds.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_explore.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small matrices: BLAS threads only contend

import time  # noqa: E402

import numpy as np  # noqa: E402
from ase.build import bulk, fcc100  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402

from atominfo import delta_entropy, entropy  # noqa: E402
from atominfo.descriptor.kernel import min_distance, structure_descriptors  # noqa: E402
from atominfo.structures.datasets import md_frames  # noqa: E402
from atominfo.workflows.explore import BiasOptions, ExploreOptions, explore  # noqa: E402

H = 0.015
INTERVAL = 10
SIZES = (10, 30)
SEEDS = (0, 1, 2)
MAX_STEPS = 3000  # biased runs stop here if they have not found N snapshots
CELL = bulk("Cu", cubic=True) * (2, 2, 2)


def held_out() -> dict[str, np.ndarray]:
    vacancy = CELL * (1, 1, 1)
    del vacancy[0]
    strained = CELL.copy()
    strained.set_cell(strained.cell * 1.03, scale_atoms=True)
    slab = fcc100("Cu", (2, 2, 4), vacuum=6.0)
    sets = {
        "slab": md_frames(slab, 300.0, 2, seed=11),
        "vacancy": md_frames(vacancy, 300.0, 2, seed=12),
        "strained": md_frames(strained, 300.0, 2, seed=13),
        "melt": md_frames(CELL, 2500.0, 2, equilibration=300, seed=14),
    }
    return {
        name: np.concatenate([structure_descriptors(f) for f in fs]) for name, fs in sets.items()
    }


def select(method: str, n: int, seed: int, start: np.ndarray):
    """(structures, steps, seconds) of `method` adding n structures."""
    t0 = time.perf_counter()
    temperature = 300.0 if method.endswith("300 K") else 1200.0
    if method.startswith("plain"):
        frames = md_frames(CELL, temperature, n, interval=INTERVAL, seed=seed)
        return frames, 100 + n * INTERVAL, time.perf_counter() - t0
    options = ExploreOptions(
        temperature=temperature,
        steps=MAX_STEPS,
        interval=INTERVAL,
        target=0.0,
        max_snapshots=n,
        seed=seed,
        bias=BiasOptions(),
    )
    run = explore(CELL, EMT(), start, options)
    return run.snapshots, run.steps_run, time.perf_counter() - t0


def main() -> None:
    start = np.concatenate([structure_descriptors(f) for f in md_frames(CELL, 300.0, 10)])
    tests = held_out()
    print(f"start: {len(start)} environments (10 frames, 300 K); h = {H} 1/Å")
    print("held out:", ", ".join(f"{k} {len(v)}" for k, v in tests.items()))
    header = "| N | method | H(new) | H(dataset) | coverage | " + " | ".join(tests)
    print(header + " | invalid | steps | wall s (best) |")
    for n in SIZES:
        for method in ("plain MD 300 K", "plain MD 1200 K", "biased 300 K", "biased 1200 K"):
            rows = []
            for seed in SEEDS:
                structures, steps, seconds = select(method, n, seed, start)
                new = np.concatenate([structure_descriptors(s) for s in structures])
                data = np.concatenate([start, new])
                cover = {
                    k: float((delta_entropy(v, data, H) <= 0).mean()) for k, v in tests.items()
                }
                all_cover = float(np.mean([cover[k] for k in tests]))
                invalid = sum(min_distance(s) < 1.8 for s in structures)
                rows.append(
                    [len(structures), entropy(new, H), entropy(data, H), all_cover]
                    + [cover[k] for k in tests]
                    + [invalid, steps, seconds]
                )
            r = np.array(rows, dtype=float)
            mean = r.mean(axis=0)
            cells = [f"{mean[1]:.2f}", f"{mean[2]:.2f}", f"{mean[3]:.2f}"]
            cells += [f"{x:.2f}" for x in mean[4 : 4 + len(tests)]]
            cells += [f"{r[:, -3].sum():.0f}", f"{mean[-2]:.0f}", f"{r[:, -1].min():.1f}"]
            label = f"{n}" + ("" if (r[:, 0] == n).all() else f" (got {r[:, 0].min():.0f})")
            print(f"| {label} | {method} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
