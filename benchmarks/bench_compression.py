"""Compression: msc speed at scale, and the methods compared at equal size.

1. Speed: msc selects 500 of 5,000 distorted FCC Cu structures of 31-96 atoms
   (`datasets.varied_fcc_cu`, seed 0). Baseline in the same run: the eager
   greedy (every score recomputed after every pick from incrementally updated
   sums, one BLAS block of all environments per pick), timed on its first
   picks and extrapolated linearly (its cost per pick is constant); both pick
   the same structures, which the script checks on those first picks.
2. Quality: on 1,000 structures (seed 1), msc, fps, kmeans and random (3 seeds)
   keep 50, 100 and 200 structures; H and D of the selection and the overlap
   of the full set with it (fraction of all environments with dH <= 0).

Usage: python benchmarks/bench_compression.py [--structures 5000] [--select 500]
       [--compare 1000] [--plot docs/img/compression.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numba
import numpy as np

from atominfo import entropy_and_diversity
from atominfo.descriptor import load_frames
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.workflows.compression import select
from atominfo.workflows.compression_methods import own_entropies, update_log_sums

H = 0.015


def eager_msc(data, m, h=H):
    """Reference greedy: after each pick, every score from all updated sums."""
    own = own_entropies(data, h)
    X = np.ascontiguousarray(data.X)
    x_sq = np.einsum("ij,ij->i", X, X)
    log_sums = np.full(len(X), -np.inf)
    chosen = np.zeros(len(data), dtype=bool)
    picks = []
    for step in range(m):
        if step == 0:
            pick = int(np.argmax(own))
        else:
            score = -np.minimum.reduceat(log_sums, data.offsets[:-1]) + own
            score[chosen] = -np.inf
            pick = int(np.argmax(score))
        chosen[pick] = True
        picks.append(pick)
        update_log_sums(log_sums, X, x_sq, data.environments([pick]), h)
    return picks


def speed(n_structures, m, eager_picks):
    t = time.perf_counter()
    data = load_frames(varied_fcc_cu(n_structures, seed=0))
    t_desc = time.perf_counter() - t
    print(
        f"\n[speed] {len(data)} structures, {len(data.X)} environments "
        f"({data.sizes.min()}-{data.sizes.max()} atoms), descriptors {t_desc:.1f} s"
    )
    t = time.perf_counter()
    selection = select(data, m, "msc", H, summary=False)
    t_msc = time.perf_counter() - t
    t = time.perf_counter()
    eager = eager_msc(data, eager_picks)
    t_eager = time.perf_counter() - t
    same = eager == selection.indices[:eager_picks]
    eager_total = t_eager / eager_picks * m
    print(f"msc (lazy greedy, incremental sums): {m} of {len(data)} in {t_msc:.1f} s")
    print(
        f"eager greedy baseline: {eager_picks} picks in {t_eager:.1f} s -> {eager_total:.0f} s "
        f"for {m} (extrapolated); same picks: {same}"
    )
    print(f"speed-up of msc over the eager baseline: {eager_total / t_msc:.1f}x")
    return {
        "structures": len(data),
        "environments": len(data.X),
        "select": m,
        "msc_seconds": t_msc,
        "eager_seconds_extrapolated": eager_total,
        "eager_picks_timed": eager_picks,
        "same_picks": same,
        "descriptor_seconds": t_desc,
    }


def quality(n_structures, sizes, seeds=(0, 1, 2)):
    data = load_frames(varied_fcc_cu(n_structures, seed=1))
    H_full, D_full = (float(v) for v in entropy_and_diversity(data.X, H))
    print(
        f"\n[quality] {len(data)} structures, {len(data.X)} environments; full set "
        f"H = {H_full:.3f} nats, D = {D_full:.3f} nats (h = {H} 1/Å)"
    )
    print(
        f"{'method':<8}{'kept':>6}{'envs':>8}{'H (nats)':>16}{'D (nats)':>16}"
        f"{'overlap':>16}{'time (s)':>10}"
    )
    rows = []
    for m in sizes:
        for method in ("msc", "fps", "kmeans", "random"):
            runs = [
                select(data, m, method, H, seed=s)
                for s in (seeds if method in ("random", "kmeans") else [0])
            ]
            stats = {
                key: [getattr(r, key) for r in runs]
                for key in ("entropy", "diversity", "overlap", "n_environments", "seconds")
            }
            row = {"method": method, "structures": m, "seeds": [r.seed for r in runs]}
            for key, values in stats.items():
                row[key] = float(np.mean(values))
                row[key + "_sd"] = float(np.std(values))
            rows.append(row)

            def cell(key, scale=1.0, f=".3f", row=row, runs=runs):
                text = f"{row[key] * scale:{f}}"
                return text + (f" ± {row[key + '_sd'] * scale:{f}}" if len(runs) > 1 else "")

            print(
                f"{method:<8}{m:>6}{row['n_environments']:>8.0f}{cell('entropy'):>16}"
                f"{cell('diversity'):>16}{cell('overlap', 100, '.1f') + '%':>16}"
                f"{row['seconds']:>10.2f}"
            )
        by = {r["method"]: r for r in rows if r["structures"] == m}
        print(
            f"  msc vs random at {m}: H {by['msc']['entropy'] - by['random']['entropy']:+.3f} "
            f"nats, overlap {100 * (by['msc']['overlap'] - by['random']['overlap']):+.1f} points"
        )
    return {
        "structures": len(data),
        "environments": len(data.X),
        "full_entropy": H_full,
        "full_diversity": D_full,
        "rows": rows,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--structures", type=int, default=5000)
    parser.add_argument("--select", type=int, default=500)
    parser.add_argument("--eager-picks", type=int, default=20)
    parser.add_argument("--compare", type=int, default=1000)
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}; k=32, rc=5 Å, h={H} 1/Å"
    )
    result = {}
    if not args.skip_speed:
        result["speed"] = speed(args.structures, args.select, args.eager_picks)
    result["quality"] = quality(args.compare, [int(s) for s in args.sizes.split(",")])
    if args.plot:
        from atominfo.outputs.plots import plot_compression, save_figure

        left, _ = plot_compression(
            result["quality"]["rows"],
            full_entropy=result["quality"]["full_entropy"],
            title=f"Compression of {result['quality']['structures']} "
            "distorted FCC Cu cells (h = 0.015 1/Å)",
        )
        save_figure(left.figure, args.plot)
        print(f"figure: {args.plot}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
