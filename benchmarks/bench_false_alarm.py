"""Novelty at a stated false-alarm rate: realised rate on held-out frames, and detection.

Reference: FCC Cu (3x3x3 cubic cells, 108 atoms) sampled by EMT Langevin MD at
300 K. Held-out: another MD run of the same crystal at the same temperature
(another seed): every atom is in distribution, so every flag is a false alarm.
Environments to detect, at 300 K: the crystal strained by -4 % along x
(uniaxial), and the surface and subsurface layers of a (001) slab
(3x3x5 cubic cells, 10 Å of vacuum).

Rules compared, each in one run on the same data:
  * dH > 0 (atominfo's fixed threshold, no rate chosen);
  * conformal p <= alpha on dH (``Reference.p_values``: split conformal on the reference);
  * conformal p <= alpha on the distance to the nearest reference environment
    (the same split: the distance to the proper part A, calibrated on part B);
  * conformal p <= alpha on scikit-learn's LocalOutlierFactor score (fitted on A),
    when scikit-learn is installed.
Conformal figures are means over `--seeds` calibrations (seeds 0..n-1: which
blocks are held out); the realised false-alarm rate also gives its range.

Usage: python benchmarks/bench_false_alarm.py [--frames 100] [--seeds 5] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RATES = (0.001, 0.01, 0.05)
H = 0.015
STRAIN = 0.96  # -4 % along x
LAYER = 1.805  # Å, (001) layer spacing of Cu


def md(atoms, n, seed):
    from atominfo.structures.datasets import md_frames

    return md_frames(atoms, 300.0, n, interval=10, equilibration=100, seed=seed, timestep_fs=4.0)


def build(frames: int, cache: Path | None) -> dict[str, np.ndarray]:
    """Descriptor sets: reference, held-out, strained, surface, subsurface."""
    if cache is not None and (cache / f"false_alarm_{frames}.npz").exists():
        return dict(np.load(cache / f"false_alarm_{frames}.npz"))
    import atominfo
    from atominfo.structures.datasets import fcc_cu

    sets = {
        "reference": atominfo.descriptors(md(fcc_cu(3), frames, 0)),
        "held-out": atominfo.descriptors(md(fcc_cu(3), frames, 1)),
    }
    strained = fcc_cu(3)
    strained.set_cell(strained.cell * [STRAIN, 1.0, 1.0], scale_atoms=True)
    sets["strained -4%"] = atominfo.descriptors(md(strained, max(3, frames // 20), 2))
    slab = fcc_cu((3, 3, 5))
    slab.center(vacuum=10.0, axis=2)
    slab.pbc = (True, True, False)
    surface, subsurface = [], []
    for snap in md(slab, max(5, frames // 10), 3):
        z = snap.positions[:, 2]
        depth = np.minimum(z - z.min(), z.max() - z)
        D = atominfo.descriptors(snap)
        surface.append(D[depth < LAYER / 2])
        subsurface.append(D[(depth >= LAYER / 2) & (depth < 1.5 * LAYER)])
    sets["surface"], sets["subsurface"] = np.concatenate(surface), np.concatenate(subsurface)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"false_alarm_{frames}.npz", **sets)
    return sets


def nearest_distance(Y: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of Y to its nearest row of A (chunked brute force)."""
    out = np.empty(len(Y))
    a2 = (A * A).sum(axis=1)
    for start in range(0, len(Y), 2048):
        y = Y[start : start + 2048]
        d2 = (y * y).sum(axis=1)[:, None] + a2[None, :] - 2.0 * y @ A.T
        out[start : start + 2048] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def conformal_scorers(X: np.ndarray, seed: int):
    """{rule: function(Y) -> p-values}, each calibrated on the same split of X."""
    from atominfo import Reference
    from atominfo.reference.conformal import p_values, split_rows

    ref = Reference(X, H, seed=seed)
    proper, held = ref.calibration().proper_rows, ref.calibration().calibration_rows
    assert np.array_equal(held, split_rows(len(X), seed)[1])
    A = X[proper]
    knn_cal = np.sort(nearest_distance(X[held], A))
    rules = {
        "conformal dH": ref.p_values,
        "conformal nearest-neighbour distance": lambda Y: p_values(knn_cal, nearest_distance(Y, A)),
    }
    try:
        from sklearn.neighbors import LocalOutlierFactor
    except ImportError:
        return rules
    lof = LocalOutlierFactor(n_neighbors=20, novelty=True).fit(A)
    lof_cal = np.sort(-lof.score_samples(X[held]))
    rules["conformal LOF (20 neighbours)"] = lambda Y: p_values(lof_cal, -lof.score_samples(Y))
    return rules


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="reference and held-out frames")
    parser.add_argument("--seeds", type=int, default=5, help="calibrations averaged")
    parser.add_argument("--cache", type=Path, default=None, help="keep the descriptors here")
    args = parser.parse_args()

    import atominfo

    t0 = time.perf_counter()
    sets = build(args.frames, args.cache)
    print(f"data in {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print("  " + ", ".join(f"{name}: {len(D)}" for name, D in sets.items()))
    X = sets.pop("reference")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("scikit-learn is not installed: LocalOutlierFactor left out")

    result: dict = {"frames": args.frames, "sizes": {k: len(v) for k, v in sets.items()}}
    dH = {name: atominfo.delta_entropy(Y, X, H) for name, Y in sets.items()}
    result["dH > 0"] = {name: float(np.mean(v > 0)) for name, v in dH.items()}
    flagged: dict = {}
    t = time.perf_counter()
    for seed in range(args.seeds):
        for rule, p_of in conformal_scorers(X, seed).items():
            for name, Y in sets.items():
                p = p_of(Y)
                for alpha in RATES:
                    flagged.setdefault((rule, alpha, name), []).append(float(np.mean(p <= alpha)))
    print(f"{args.seeds} calibrations scored in {time.perf_counter() - t:.0f} s")
    n_cal = atominfo.Reference(X, H).calibration().n_calibration
    print(f"\nreference {len(X)} environments, {n_cal} held out per calibration, h = {H} 1/Å")
    names = list(sets)
    print(f"{'rule':40s} {'alpha':>6s} " + " ".join(f"{n:>14s}" for n in names))
    print(f"{'dH > 0':40s} {'-':>6s} " + " ".join(f"{result['dH > 0'][n]:14.4f}" for n in names))
    result["conformal"] = {}
    for rule in dict.fromkeys(k[0] for k in flagged):
        for alpha in RATES:
            cells, row = [], {}
            for n in names:
                v = flagged[(rule, alpha, n)]
                row[n] = {"mean": float(np.mean(v)), "min": min(v), "max": max(v)}
                cells.append(f"{np.mean(v):14.4f}")
            result["conformal"][f"{rule} @ {alpha}"] = row
            ratio = row["held-out"]["mean"] / alpha
            print(f"{rule:40s} {alpha:6g} " + " ".join(cells) + f"   realised/nominal {ratio:.2f}")
    result["seconds"] = cost(X, sets["held-out"])
    print(json.dumps(result))


def cost(X: np.ndarray, Y: np.ndarray, repeats: int = 3) -> dict:
    """Best-of-`repeats` seconds: dH of Y (the baseline), the calibration, p-values of Y."""
    from atominfo import Reference

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    ref = Reference(X, H)
    seconds = {
        "dH": best(lambda: ref.delta_entropy(Y)),
        "calibration": best(lambda: Reference(X, H).calibration()),
    }
    ref.calibration()
    seconds["p-values"] = best(lambda: ref.p_values(Y))
    print(f"\ncost, best of {repeats}, {len(Y)} atoms against {len(X)} reference environments:")
    for name, sec in seconds.items():
        print(f"  {name:12s} {sec:7.2f} s   {sec / seconds['dH']:.2f} x dH")
    return seconds


if __name__ == "__main__":
    main()
