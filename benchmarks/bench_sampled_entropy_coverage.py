"""Coverage of the 95% interval of `atominfo.sampled_entropy`, measured against the exact H.

For each data set the exact H (all n x n kernel sums) is the target; for each
sample size M, `--seeds` draws (seeds 0, 1, ...) each give an interval, and the
table gives the share of intervals that hold the exact H (coverage), their mean
width, and the same for a Student-t interval with the finite-population
correction on the same samples (the interval atominfo printed before issue 19),
with the count of t intervals whose lower end is below 0 (impossible for H).

Data sets (k = 32, rc = 5 Å, h = 0.015 1/Å):
  * crystals: tests/data cu_hot_32 + cu_fcc_108 (140 environments);
  * EMT Cu: 10 frames of a 300 K crystal and 3 frames of a 2500 K melt, Langevin
    MD with ASE's EMT (108 atoms each; 1,404 environments): a crowd of similar
    environments and a minority of spread-out ones.

Usage: python benchmarks/bench_sampled_entropy_coverage.py [--seeds 200] [--sizes 2 5 10 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

H_BANDWIDTH = 0.015


def datasets() -> dict[str, np.ndarray]:
    import atominfo
    from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames

    data = ROOT / "tests" / "data"
    crystals = atominfo.descriptors([data / "cu_hot_32.extxyz", data / "cu_fcc_108.extxyz"])
    frames = md_frames(fcc_cu(3), 300.0, 10, seed=0) + cu_melt(3, 3, seed=1)
    return {"crystals": crystals, "EMT Cu": atominfo.descriptors(frames)}


def t_interval(terms: np.ndarray, n: int) -> tuple[float, float]:
    """Student-t interval, finite-population corrected, on the sampled terms of H."""
    from scipy.stats import t as student_t

    m = len(terms)
    half = student_t.ppf(0.975, m - 1) * terms.std(ddof=1) / np.sqrt(m) * np.sqrt(1.0 - m / n)
    return terms.mean() - half, terms.mean() + half


def measure(X: np.ndarray, sizes: list[int], seeds: int) -> list[dict]:
    import atominfo
    from atominfo.engine import log_kernel_sums
    from atominfo.information import surprisals

    n = len(X)
    all_terms = surprisals(log_kernel_sums(X, X, np.array([H_BANDWIDTH])), n)[0]
    exact = float(all_terms.mean())
    rows = []
    for M in [M for M in sizes if M < n]:  # M >= n is exact: nothing to cover
        hits = t_hits = t_negative = 0
        widths, t_widths = [], []
        for seed in range(seeds):
            est = atominfo.sampled_entropy(X, H_BANDWIDTH, n_samples=M, seed=seed)
            hits += est.low <= exact <= est.high
            widths.append(est.high - est.low)
            # the same draw as sampled_entropy's (same generator, same call)
            drawn = np.random.default_rng(seed).choice(n, size=M, replace=False)
            assert np.isclose(all_terms[drawn].mean(), est.entropy, atol=1e-9)
            low, high = t_interval(all_terms[drawn], n)
            t_hits += low <= exact <= high
            t_negative += low < 0
            t_widths.append(high - low)
        rows.append(
            {
                "M": M,
                "coverage": hits / seeds,
                "width": float(np.mean(widths)),
                "t_coverage": t_hits / seeds,
                "t_width": float(np.mean(t_widths)),
                "t_negative": t_negative,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 5, 10, 30, 100, 1000])
    args = parser.parse_args()
    t0 = time.perf_counter()
    sets = datasets()
    print(f"data sets built in {time.perf_counter() - t0:.1f} s; {args.seeds} seeds per M")
    for name, X in sets.items():
        import atominfo

        exact = float(atominfo.entropy(X, H_BANDWIDTH))
        print(
            f"\n{name}: n = {len(X)}, log n = {np.log(len(X)):.4f}, exact H = {exact:.4f} nats "
            f"(h = {H_BANDWIDTH} 1/Å)"
        )
        print("     M  coverage  mean width  |  t coverage  t mean width  t low < 0")
        for r in measure(X, args.sizes, args.seeds):
            print(
                f"{r['M']:>6}  {r['coverage']:>8.1%}  {r['width']:>10.4f}  "
                f"|  {r['t_coverage']:>10.1%}  "
                f"{r['t_width']:>12.4f}  {r['t_negative']:>9}"
            )
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
