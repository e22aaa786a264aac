"""Descriptor throughput (atoms/s) on a 100k-atom thermal FCC Cu cell (k=32, rc=5 Å).

Baseline in the same run: the same maths in a plain per-atom numpy loop over
an ASE neighbour list, timed on a 2,000-atom slice and reported per atom.
Usage: python benchmarks/bench_descriptors.py [--atoms 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from atominfo.descriptor import structure_descriptors
from atominfo.structures.datasets import rattled_fcc_cu


def numpy_reference(atoms, k=32, rc=5.0, n_centres=2000):
    """Straightforward numpy transcription of docs/method.md, section 1 (ASE neighbour list)."""
    from ase.neighborlist import neighbor_list

    i, D = neighbor_list("iD", atoms, rc)  # sorted by i
    starts = np.searchsorted(i, np.arange(n_centres + 1))
    out = np.zeros((n_centres, 2 * k - 1))
    for a in range(n_centres):
        vec = D[starts[a] : starts[a + 1]]
        r = np.linalg.norm(vec, axis=1)
        order = np.argsort(r)[:k]
        vec, r = vec[order], r[order]
        w = (1 - (r / rc) ** 2) ** 2
        out[a, : len(r)] = w / r
        diff = np.linalg.norm(vec[:, None] - vec[None], axis=-1)
        np.fill_diagonal(diff, np.inf)
        M = np.sqrt(np.outer(w, w)) / diff
        rows = -np.sort(-M, axis=1)[:, : len(r) - 1]
        out[a, k : k + len(r) - 1] = rows.sum(axis=0) / k
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--atoms", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    side = (args.atoms / 4) ** (1 / 3)
    reps = (round(side), round(side), max(1, round(args.atoms / (4 * round(side) ** 2))))
    atoms = rattled_fcc_cu(reps, sigma=0.1, seed=0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}"
    )
    print(f"input: thermal FCC Cu (rattled 0.1 Å), {len(atoms)} atoms, k=32, rc=5 Å")
    structure_descriptors(atoms[:64])  # compile / load cache
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        X = structure_descriptors(atoms)
        times.append(time.perf_counter() - t)
    best = min(times)
    rate = len(atoms) / best
    print(f"atominfo: {best:.3f} s best of {args.repeats} -> {rate:,.0f} atoms/s")
    t = time.perf_counter()
    ref = numpy_reference(atoms)
    t_ref = time.perf_counter() - t
    ref_rate = len(ref) / t_ref
    print(
        f"numpy reference: {ref_rate:,.0f} atoms/s (2,000 centres; ASE neighbour list of "
        "the whole cell included)"
    )
    print(f"max |difference| on those 2,000 rows: {np.abs(X[: len(ref)] - ref).max():.2e}")
    print(f"speed-up vs numpy reference: {rate / ref_rate:.1f}x")
    quests_baseline(reps, rate)


def quests_baseline(reps, rate):
    """The published QUESTS descriptor on the same cell, black-box, from its own environment
    (QUESTS_PYTHON or /tmp/quests-venv/bin/python; skipped when absent)."""
    import json
    import subprocess
    from pathlib import Path

    python = os.environ.get("QUESTS_PYTHON", "/tmp/quests-venv/bin/python")
    if not Path(python).exists():
        print("published QUESTS package: not installed in a separate environment (skipped)")
        return
    script = Path(__file__).with_name("quests_baseline.py")
    proc = subprocess.run(
        [
            python,
            str(script),
            "descriptors",
            json.dumps({"repeat": list(reps), "sigma": 0.1, "seed": 0}),
        ],
        capture_output=True,
        text=True,
    )
    try:
        q = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"published QUESTS package failed: {proc.stderr.strip()[-300:]}")
        return
    q_rate = q["atoms"] / q["seconds"]
    print(
        f"published QUESTS package: {q['seconds']:.2f} s -> {q_rate:,.0f} atoms/s "
        f"(JIT warmed up); atominfo {rate / q_rate:.1f}x faster"
    )


if __name__ == "__main__":
    main()
