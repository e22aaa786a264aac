"""Outlier detection on a set where the answer is known by construction.

Reference: FCC Cu sampled by EMT Langevin MD at a low temperature (300 K).
Test set, all sampled by MD at a higher temperature (600 K) unless stated:
  * inliers:  the crystal (bulk atoms); also bulk atoms of the defect cells far
              (> 5.5 Å) from the defect;
  * outliers: atoms within 4.5 Å of a vacancy (its first three shells), atoms
              within 4 Å of a free (001) surface of a slab, and every atom of a
              melt (2500 K).
Atoms in between (4.5-5.5 Å from a vacancy, 4-6 Å below a surface) are left
out: their environment is only partly changed.

Scores (higher = more outlying), with one ROC AUC each, in one run:
  * dH(y | reference), h = 0.015 1/Å (atominfo);
  * distance to the nearest reference environment (descriptor space);
  * scikit-learn LocalOutlierFactor (novelty mode, 20 neighbours) fitted on the reference.
Also the fraction of each group flagged by the uncalibrated rule dH > 0.

Usage: python benchmarks/bench_outliers.py [--frames 6] [--seed 0] [--plot docs/img/outlier_roc.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

INNER, OUTER = 4.5, 5.5  # Å: vacancy shells labelled outliers / bulk beyond


def build(frames: int, seed: int, hot: float):
    import atominfo
    from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames

    sets = {}
    ref_frames = md_frames(fcc_cu(3), 300.0, 2 * frames, seed=seed)
    X = atominfo.descriptors(ref_frames)

    crystal = md_frames(fcc_cu(3), hot, frames, seed=seed + 1)
    sets["crystal"] = (atominfo.descriptors(crystal), np.zeros(108 * frames, bool))

    # Vacancy: remove atom 0 of a 4x4x4 cell (255 atoms); label by distance to its site.
    perfect = fcc_cu(4)
    site = perfect.positions[0].copy()
    vac = perfect.copy()
    del vac[0]
    Y, labels = [], []
    for snap in md_frames(vac, hot, frames, seed=seed + 2):
        from ase.geometry import get_distances

        _, d = get_distances(snap.positions, site[None, :], cell=snap.cell, pbc=True)
        d = d[:, 0]
        keep = (d <= INNER) | (d > OUTER)
        Y.append(atominfo.descriptors(snap)[keep])
        labels.append(d[keep] <= INNER)
    sets["vacancy"] = (np.concatenate(Y), np.concatenate(labels))

    # Slab: 3x3x5 cubic cells with 10 Å of vacuum along z, periodic in x and y.
    slab = fcc_cu((3, 3, 5))
    slab.center(vacuum=10.0, axis=2)
    slab.pbc = (True, True, False)
    Y, labels = [], []
    for snap in md_frames(slab, hot, frames, seed=seed + 3):
        z = snap.positions[:, 2]
        depth = np.minimum(z - z.min(), z.max() - z)
        keep = (depth <= 4.0) | (depth > 6.0)
        Y.append(atominfo.descriptors(snap)[keep])
        labels.append(depth[keep] <= 4.0)
    sets["surface"] = (np.concatenate(Y), np.concatenate(labels))

    melt = cu_melt(3, n_frames=frames, seed=seed + 4)
    sets["melt"] = (atominfo.descriptors(melt), np.ones(108 * frames, bool))
    return X, sets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hot", type=float, default=600.0, help="test temperature, K")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

    import atominfo

    t0 = time.perf_counter()
    X, sets = build(args.frames, args.seed, args.hot)
    print(
        f"built in {time.perf_counter() - t0:.0f} s (EMT MD, seed {args.seed}); reference: "
        f"{len(X)} environments at 300 K; test at {args.hot:.0f} K"
    )
    Y = np.concatenate([s[0] for s in sets.values()])
    y_true = np.concatenate([s[1] for s in sets.values()])
    group = np.concatenate([[name] * len(s[0]) for name, s in sets.items()])

    scores, seconds = {}, {}
    t = time.perf_counter()
    scores["dH (atominfo)"] = atominfo.delta_entropy(Y, X, 0.015)
    seconds["dH (atominfo)"] = time.perf_counter() - t
    t = time.perf_counter()
    scores["nearest-neighbour distance"] = (
        NearestNeighbors(n_neighbors=1).fit(X).kneighbors(Y)[0][:, 0]
    )
    seconds["nearest-neighbour distance"] = time.perf_counter() - t
    t = time.perf_counter()
    lof = LocalOutlierFactor(n_neighbors=20, novelty=True).fit(X)
    scores["LocalOutlierFactor"] = -lof.score_samples(Y)
    seconds["LocalOutlierFactor"] = time.perf_counter() - t

    print(f"\n{int(y_true.sum())} outliers, {int((~y_true).sum())} inliers")
    print(f"{'score':30s} {'ROC AUC':>8s} {'seconds':>8s}")
    curves, result = (
        {},
        {
            "seed": args.seed,
            "frames": args.frames,
            "hot_K": args.hot,
            "reference": len(X),
            "auc": {},
            "dH_positive": {},
        },
    )
    for name, s in scores.items():
        auc = roc_auc_score(y_true, s)
        fpr, tpr, _ = roc_curve(y_true, s)
        curves[name] = (fpr, tpr, auc)
        result["auc"][name] = auc
        print(f"{name:30s} {auc:8.4f} {seconds[name]:8.2f}")
    print("\nROC AUC per kind of outlier (against all inliers):")
    result["auc_by_kind"] = {}
    for kind in ("vacancy", "surface", "melt"):
        sel = ~y_true | ((group == kind) & y_true)
        row = {name: roc_auc_score(y_true[sel], s[sel]) for name, s in scores.items()}
        result["auc_by_kind"][kind] = row
        print(f"  {kind:8s} " + "  ".join(f"{name} {auc:.4f}" for name, auc in row.items()))
    ratio = result["auc"]["dH (atominfo)"] / result["auc"]["LocalOutlierFactor"]
    print(
        f"AUC ratio dH / LOF: {ratio:.3f}; dH / NN distance: "
        f"{result['auc']['dH (atominfo)'] / result['auc']['nearest-neighbour distance']:.3f}"
    )

    dH = scores["dH (atominfo)"]
    print("\nfraction flagged by dH > 0 (no calibration):")
    for name in sets:
        for label, text in ((False, "inliers"), (True, "outliers")):
            sel = (group == name) & (y_true == label)
            if sel.any():
                frac = float(np.mean(dH[sel] > 0))
                result["dH_positive"][f"{name} {text}"] = frac
                print(f"  {name:8s} {text:8s} n={int(sel.sum()):5d}  {frac:6.1%}")
    print(f"  all      outliers n={int(y_true.sum()):5d}  {np.mean(dH[y_true] > 0):6.1%}")
    print(f"  all      inliers  n={int((~y_true).sum()):5d}  {np.mean(dH[~y_true] > 0):6.1%}")
    if args.plot:
        from atominfo.outputs.plots import plot_roc, save_figure

        save_figure(plot_roc(curves).figure, args.plot)
        print(f"ROC curves written to {args.plot}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
