"""How often the generations verdict is right, on EMT Cu campaigns (issue 21, item 1).

1. Re-sampled campaigns: one 300 K crystal MD run (32-atom cells) cut at
   random into 3 to 6 generations of 1 to 12 structures, many times. Every
   one should be "converged". Also with --max-gain 0.05 (the gain in H judged
   against re-sampling too) and, as the baseline in the same run, the former
   fixed rule (novelty < 0.01 and gain in H < 0.05 nats for each of the last
   2 generations), which sampling noise alone turns to "not converged".
2. The same campaigns with a new phase as the last generation (a 3000 K melt,
   or the crystal rattled by 0.1 Å): every one should be "not converged".
3. Production runs against the whole crystal training set: more 300 K frames
   (converged at --max-novelty 0.05 with 70 structures), the melt (not
   converged), and a few frames (undetermined).
4. Time: the re-sampling (199 splits) against the report without it.

Run: python benchmarks/bench_generations_verdict.py [--campaigns 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from atominfo.descriptor import load_frames
from atominfo.structures.datasets import fcc_cu, md_frames, rattled_fcc_cu
from atominfo.workflows.generations import (
    campaign_verdict,
    generation_report,
    production_novelty,
)
from atominfo.workflows.generations_resampling import resampling_null

H = 0.015


def cut(rng, n_frames: int) -> list[int]:
    """Random generation sizes (1 to 12 structures, 3 to 6 generations) within n_frames."""
    while True:
        sizes = list(rng.integers(1, 13, size=rng.integers(3, 7)))
        if sum(sizes) <= n_frames:
            return sizes


def campaign(data, sizes, last=None, resamples=199):
    gens, per, start = {}, {}, 0
    for g, n in enumerate(sizes):
        frames = list(range(start, start + n))
        gens[str(g + 1)], per[str(g + 1)] = data.environments(frames), list(data.sizes[frames])
        start += n
    if last is not None:
        gens["new"], per["new"] = last.X, list(last.sizes)
    return generation_report(gens, H, sizes=per, resamples=resamples)


def fixed_rule(rows) -> bool:
    return all(r.novelty < 0.01 and r.entropy_gain < 0.05 for r in rows[-2:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    crystal = load_frames(md_frames(fcc_cu(2), 300.0, 60, interval=10, equilibration=50, seed=0))
    production = load_frames(md_frames(fcc_cu(2), 300.0, 70, interval=2, equilibration=10, seed=1))
    melt = load_frames(md_frames(fcc_cu(2), 3000.0, 4, interval=10, equilibration=120, seed=2))
    rattled = load_frames([rattled_fcc_cu(2, sigma=0.1, seed=s) for s in range(3)])
    print(f"data: {time.perf_counter() - t0:.1f} s (EMT MD, 32-atom cells, h = {H})")

    rng = np.random.default_rng(0)
    counts = {"converged": 0, "gain": 0, "fixed": 0, "melt": 0, "rattled": 0}
    for _ in range(args.campaigns):
        sizes = cut(rng, len(crystal))
        rows = campaign(crystal, sizes)
        counts["converged"] += campaign_verdict(rows).verdict == "converged"
        counts["gain"] += campaign_verdict(rows, max_gain=0.05).verdict == "converged"
        counts["fixed"] += fixed_rule(rows)
        for name, phase in (("melt", melt), ("rattled", rattled)):
            verdict = campaign_verdict(campaign(crystal, sizes[:-1], phase)).verdict
            counts[name] += verdict == "not converged"
    n = args.campaigns
    print(f"\n1. re-sampled 300 K campaigns ({n}): converged {counts['converged']}/{n}")
    print(f"   with --max-gain 0.05: converged {counts['gain']}/{n}")
    print(f"   baseline, the fixed rule: converged {counts['fixed']}/{n}")
    print(f"2. last generation a melt: not converged {counts['melt']}/{n}")
    print(f"   last generation rattled by 0.1 Å: not converged {counts['rattled']}/{n}")

    rows = campaign(crystal, [12, 12, 12])
    training = crystal.environments(range(36))
    print("\n3. production against 36 training structures")
    cases = (
        ("70 frames of 300 K MD", production.X, production.sizes, 0.05),
        ("70 frames of 300 K MD", production.X, production.sizes, 0.01),
        ("5 frames of 300 K MD", production.environments(range(5)), production.sizes[:5], 0.05),
        ("the 3000 K melt", melt.X, melt.sizes, 0.01),
    )
    for name, X, sizes, tol in cases:
        p = production_novelty(X, sizes, training, H)
        v = campaign_verdict(rows, max_novelty=tol, production=p)
        print(
            f"   {name}, max novelty {tol}: novelty {p.novelty:.2%} "
            f"[{p.low:.2%}, {p.high:.2%}] -> {v.verdict}"
        )

    blocks = [crystal.environments(range(20 * g, 20 * g + 20)) for g in range(3)]
    counts3 = [list(crystal.sizes[20 * g : 20 * g + 20]) for g in range(3)]
    best = {"report (with 199 splits)": np.inf, "re-sampling alone": np.inf}
    for _ in range(3):
        t = time.perf_counter()
        campaign(crystal, [20, 20, 20])
        best["report (with 199 splits)"] = min(
            best["report (with 199 splits)"], time.perf_counter() - t
        )
        t = time.perf_counter()
        resampling_null(blocks, counts3, H, 199, 0)
        best["re-sampling alone"] = min(best["re-sampling alone"], time.perf_counter() - t)
    print("\n4. 3 generations of 20 structures (1,920 environments), best of 3")
    base = best["report (with 199 splits)"]
    for label, t in best.items():
        print(f"   {label}: {t:.3f} s (ratio to the report {t / base:.2f})")


if __name__ == "__main__":
    main()
