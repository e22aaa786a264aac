"""Candidate generation: speed of a Monte Carlo step, and what the candidates add.

Data: a dataset of rattled FCC Cu supercells (`datasets.rattled_fcc_cu`,
sigma 0.05 Å, seeds 0..F-1), seeds: the first frame of it.

1. Time per Monte Carlo step, atominfo, two ways in the same run on the same
   trajectory (same seed): recomputing only the descriptors of atoms within
   the cutoff of the moved atom (the default), and recomputing all of them
   (``local=False``). The runs use an unreachable target so that every step
   is run; best of `--repeats`. The script checks that both give the same
   candidates byte for byte.
2. Quality: N candidates (target max dH in [1, 5] nats, 2 generations):
   max dH reached per candidate, entropy gain of the dataset per added
   structure, diversity among candidates (novelty of each candidate against
   the other candidates only, and the diversity D of the candidates'
   environments), and the rate of physically invalid candidates (a pair of
   atoms, images included, closer than 0.8 x the seed's shortest distance,
   checked independently with ase.neighborlist).
3. QUESTS (the published package, as a black box in its own venv,
   `--quests /tmp/quests-venv/bin/quests`): its documented command
   ``quests mcmc DATA -i 0 -n STEPS -t TARGET -j 1`` on the same data; time
   per step from the time it reports ("Structure sampled in"), and the wall
   time of the process (its start-up and JIT included). It writes the
   structure it reaches only when -o ends in .xyz; this script passes -o
   out.json, so dH reached, diversity and validity are not measured for it.

Usage: python benchmarks/bench_generate.py [--repeat-cell 4] [--frames 10] [--steps 300]
       [--candidates 10] [--repeats 3] [--quests PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import ase.io
import numba
import numpy as np
from ase.neighborlist import neighbor_list

import atominfo
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.generate import generate, min_distance, write_candidates

H = 0.015


def dataset(repeat: int, frames: int) -> list:
    return [rattled_fcc_cu((repeat,) * 3, 0.05, seed=s) for s in range(frames)]


def time_steps(seed_atoms, X, steps, local, repeats):
    """Best seconds per step over `repeats` runs, and the candidates' bytes of the last."""
    best = np.inf
    data = b""
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = generate(
                seed_atoms,
                X,
                1,
                steps=steps,
                seed=0,
                local=local,
                target=(1e3, 1e4),
                objective="target",
            )
        best = min(best, c.seconds_per_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = generate(seed_atoms, X, 1, steps=steps, seed=0, local=local, target=(1.0, 5.0))
    with tempfile.TemporaryDirectory() as d:
        write_candidates(c, Path(d) / "c.extxyz")
        data = (Path(d) / "c.extxyz").read_bytes()
    return best, data


def quality(seed_atoms, X, n, steps):
    c = generate(seed_atoms, X, n, steps=steps, seed=1, generations=2, target=(1.0, 5.0))
    cands = [atominfo.descriptors(a) for a in c.candidates]
    max_dh = [a.info["max_dH"] for a in c.candidates]
    gains = [g["entropy_gain"] / max(g["candidates"], 1) for g in c.generations]
    # novelty of each candidate against all the other candidates: of all its environments,
    # and whether its most novel environment (against the dataset) is new to the others too
    others, top_new = [], []
    for i, Y in enumerate(cands):
        rest = np.concatenate([Z for j, Z in enumerate(cands) if j != i])
        others.append(float(atominfo.novelty(Y, rest, H, method="exact")))
        top = Y[[int(np.argmax(c.candidates[i].arrays["dH"]))]]
        top_new.append(float(atominfo.delta_entropy(top, rest, H)[0]) > 0)
    allc = np.concatenate(cands)
    H_c, D_c = atominfo.entropy_and_diversity(allc, H)
    d0 = min_distance(seed_atoms)
    invalid = 0
    for a in c.candidates:
        d = neighbor_list("d", a, 0.8 * d0)
        invalid += int(len(d) > 0)
    return {
        "candidates": len(c.candidates),
        "requested": 2 * n,
        "max_dH_mean": float(np.mean(max_dh)),
        "max_dH_min": float(np.min(max_dh)),
        "max_dH_max": float(np.max(max_dh)),
        "steps_per_candidate": c.steps / max(len(c.candidates), 1),
        "entropy_gain_per_structure": gains,
        "novelty_against_other_candidates_mean": float(np.mean(others)),
        "most_novel_environment_new_to_other_candidates": float(np.mean(top_new)),
        "candidates_H": float(H_c),
        "candidates_D": float(D_c),
        "candidates_log_n": float(np.log(len(allc))),
        "invalid_fraction": invalid / max(len(c.candidates), 1),
        "min_distance_threshold": 0.8 * d0,
    }


def quests_mcmc(quests: str, frames, steps: int, target: int, repeats: int):
    """Its reported sampling time at `steps` and at steps // 3 (best of `repeats`): the
    difference over the extra steps is the marginal time per step (start-up and JIT
    compilation, paid in every process, cancel out)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.extxyz"
        ase.io.write(path, frames, format="extxyz")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        reported, wall = {}, {}
        for n in (steps // 3, steps):
            for _ in range(repeats):
                start = time.perf_counter()
                proc = subprocess.run(
                    [
                        quests,
                        "mcmc",
                        str(path),
                        "-i",
                        "0",
                        "-n",
                        str(n),
                        "-t",
                        str(target),
                        "-j",
                        "1",
                        "-o",
                        str(Path(d) / "out.json"),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=d,
                    env=env,
                )
                wall[n] = min(wall.get(n, np.inf), time.perf_counter() - start)
                m = re.search(r"sampled in:\s*([\d.]+)\s*(ms|s)\b", proc.stdout + proc.stderr)
                if m:
                    t = float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1.0)
                    reported[n] = min(reported.get(n, np.inf), t)
        wrote = sorted(p.name for p in Path(d).iterdir() if p.name != "data.extxyz")
    if len(reported) < 2:
        return {"error": "no timing reported", "returncode": proc.returncode}
    lo, hi = steps // 3, steps
    return {
        "seconds_per_step": reported[hi] / hi,
        "marginal_seconds_per_step": (reported[hi] - reported[lo]) / (hi - lo),
        "process_seconds": wall[hi],
        "files_written": wrote,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat-cell", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quests", default=None, help="path of the quests executable")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "load_average": os.getloadavg(),
        }
    }
    for r in args.repeat_cell:
        frames = dataset(r, args.frames)
        X = atominfo.descriptors(frames)
        seed_atoms = frames[0]
        generate(seed_atoms, X, 1, steps=2, seed=0)  # compile the kernels once
        local, a = time_steps(seed_atoms, X, args.steps, True, args.repeats)
        full, b = time_steps(seed_atoms, X, args.steps, False, args.repeats)
        row = {
            "atoms": len(seed_atoms),
            "dataset_environments": len(X),
            "ms_per_step_local": local * 1e3,
            "ms_per_step_full": full * 1e3,
            "speedup": full / local,
            "same_candidates": a == b,
        }
        print(
            f"{len(seed_atoms)} atoms, dataset {len(X)} environments: "
            f"{local * 1e3:.2f} ms/step (local) vs {full * 1e3:.2f} ms/step (all "
            f"descriptors): {full / local:.1f}x; identical candidates: {a == b}"
        )
        q = quality(seed_atoms, X, args.candidates, 2000)
        row["quality"] = q
        print(
            f"  {q['candidates']} of {q['requested']} candidates, max dH "
            f"{q['max_dH_min']:.2f}..{q['max_dH_max']:.2f} nats (mean "
            f"{q['max_dH_mean']:.2f}), {q['steps_per_candidate']:.1f} steps each; H gain per "
            f"structure {', '.join(f'{g:.4f}' for g in q['entropy_gain_per_structure'])} "
            f"nats; novelty vs other candidates "
            f"{q['novelty_against_other_candidates_mean']:.3f} (most novel environment new to "
            f"the others: {q['most_novel_environment_new_to_other_candidates']:.0%}); "
            f"candidates H {q['candidates_H']:.3f} D {q['candidates_D']:.3f} of log n "
            f"{q['candidates_log_n']:.3f}; invalid {q['invalid_fraction']:.0%}"
        )
        if args.quests:
            qs = quests_mcmc(args.quests, frames, args.steps, 3, max(1, args.repeats - 1))
            row["quests"] = qs
            if "error" in qs:
                print(f"  QUESTS mcmc: {qs['error']}")
            else:
                print(
                    f"  QUESTS mcmc: {qs['seconds_per_step'] * 1e3:.2f} ms/step (its own "
                    f"timing / steps), {qs['marginal_seconds_per_step'] * 1e3:.2f} ms/step "
                    f"marginal; process {qs['process_seconds']:.1f} s for {args.steps} steps; "
                    f"files written: {qs['files_written'] or 'none'}"
                )
        out[f"atoms_{len(seed_atoms)}"] = row
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
