"""Kernel-engine benchmarks: exact sums, BLAS ceiling, pruning, classification,
approximate dH, sampled entropy; every figure with its baseline from the same run.

Sections (``--only`` picks some; all by default):

exact     entropy of 32,000 thermal FCC Cu environments (20x20x20 cubic cells
          rattled 0.1 Å, k=32, rc=5, h=0.015): atominfo pairs/s against the BLAS
          product alone on the same blocks (the ceiling), numpy's own route (BLAS
          GEMM + exp + log-sum-exp, issue 22's ceiling), the brute-force numpy
          reference (scipy logsumexp of direct differences, on a slice), and the
          published QUESTS package when a separate environment has it.
mixed     exact labels including the index build vs exact dH: 15,100 queries
          (7,600 FCC Cu rattled 0.1 Å + 7,500 of a 2,500 K EMT melt) against 21,952
          environments of FCC Cu rattled 0.05 Å.
prune     exact vs pruned (cluster bounds, tol 1e-9) entropy of a diverse set:
          crystals at several densities and structures plus a melt.
classify  exact labels dH <= 0 vs exact dH, 100,000 queries against 100,000
          reference environments, in-distribution (hot vs cold crystal) and
          mixed (crystal plus melt); approximate dH (faiss kNN) on the same sets.
quests-dh the published package's exact and approximate dH (20,000 x 32,000).
sample    sampled entropy of 1,000,000 environments, and interval coverage on 32,000.

Usage: python benchmarks/bench_kernels.py [--only exact,prune] [--quests PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

import atominfo
from atominfo.descriptor import structure_descriptors
from atominfo.engine import cpu
from atominfo.engine.index.clusters import ClusterIndex, classify_clusters
from atominfo.engine.index.neighbours import NeighbourIndex
from atominfo.structures.datasets import cu_melt, rattled_fcc_cu

H = 0.015
HERE = Path(__file__).parent


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t


def quests_python(arg):
    path = arg or os.environ.get("QUESTS_PYTHON") or "/tmp/quests-venv/bin/python"
    return path if Path(path).exists() else None


def run_quests(python, task, args, timeout=1800):
    """One JSON result from benchmarks/quests_baseline.py in the other environment, or None."""
    if python is None:
        return None
    try:
        proc = subprocess.run(
            [python, str(HERE / "quests_baseline.py"), task, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as exc:  # the baseline is optional: report and go on
        print(f"  (published package: {task} failed: {exc})")
        return None


def blas_ceiling(Y, X, threads):
    """Time of the BLAS products alone, with the engine's blocks and threads (seconds)."""
    mu = X.mean(axis=0)
    Xc = np.ascontiguousarray(X - mu)
    bx, by = cpu.BLOCK_COLS, cpu.BLOCK_ROWS

    def work(y0):
        Yb = np.ascontiguousarray(Y[y0 : y0 + by] - mu)
        G = np.empty((len(Yb), bx))
        for x0 in range(0, len(X), bx):
            Xb = Xc[x0 : x0 + bx]
            np.matmul(Yb, Xb.T, out=G[:, : len(Xb)] if len(Xb) == bx else None)

    t = time.perf_counter()
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(0, len(Y), by)))
    return time.perf_counter() - t


def numpy_ceiling(Y, X, h, rows=1024):
    """Seconds of the plain numpy route to the same log-sums: one BLAS GEMM per block of
    rows for the squared distances, then exp and a log-sum-exp (in place, float64)."""
    t = time.perf_counter()
    mu = X.mean(axis=0)
    Xc = X - mu
    x_sq = np.einsum("ij,ij->i", Xc, Xc)
    c = 1.0 / (2 * h * h)
    out = np.empty(len(Y))
    for y0 in range(0, len(Y), rows):
        Yb = Y[y0 : y0 + rows] - mu
        G = Yb @ Xc.T  # y.x
        G *= 2.0 * c
        G -= (c * np.einsum("ij,ij->i", Yb, Yb))[:, None]
        G -= (c * x_sq)[None, :]  # -c |y - x|^2
        top = G.max(axis=1, keepdims=True)
        G -= top
        np.exp(G, out=G)
        out[y0 : y0 + rows] = np.log(G.sum(axis=1)) + top[:, 0]
    return time.perf_counter() - t


def brute_log_sums(Y, X, h, chunk=64):
    """float64 brute force: direct differences and scipy's logsumexp."""
    out = np.empty(len(Y))
    for i in range(0, len(Y), chunk):
        d2 = ((Y[i : i + chunk, None, :] - X[None, :, :]) ** 2).sum(-1)
        out[i : i + chunk] = logsumexp(-d2 / (2 * h * h), axis=1)
    return out


def section_exact(args, qpy):
    print("\n== exact sums: entropy of 32,000 thermal FCC Cu environments (h = 0.015) ==")
    X = structure_descriptors(rattled_fcc_cu((20, 20, 20), 0.1, 0))
    n = len(X)
    pairs = n * n
    cpu.log_kernel_sums(X[:256], X[:4096], np.array([H]))  # compile / load cache
    runs = [timed(atominfo.entropy, X, H) for _ in range(args.repeats)]
    Hval, t_ai = runs[0][0], min(r[1] for r in runs)
    t_blas = min(blas_ceiling(X, X, numba.get_num_threads()) for _ in range(args.repeats))
    t_gemm2 = min(
        timed(lambda: [X[i : i + 4096] @ X.T for i in range(0, n, 4096)])[1]
        for _ in range(args.repeats)
    )
    t_numpy = min(numpy_ceiling(X, X, H) for _ in range(args.repeats))
    m = 1000
    ref, t_ref = timed(brute_log_sums, X[:m], X, H)
    ours = cpu.log_kernel_sums(X[:m], X, np.array([H]))[0]
    print(
        f"atominfo entropy H = {Hval:.9f} nats in {t_ai:.2f} s (best of {args.repeats}): "
        f"{pairs / t_ai / 1e6:,.0f} M pairs/s"
    )
    print(
        f"BLAS ceiling (float64 products alone, same blocks and threads): {t_blas:.2f} s = "
        f"{pairs / t_blas / 1e6:,.0f} M pairs/s -> atominfo at {t_blas / t_ai:.0%} of it"
    )
    print(
        f"numpy ceiling (BLAS GEMM of the same matrices + exp + log-sum-exp in numpy, "
        f"1024-row blocks, numpy's BLAS threads): {t_numpy:.2f} s = "
        f"{pairs / t_numpy / 1e6:,.0f} M pairs/s -> atominfo {t_numpy / t_ai:.2f}x its speed"
    )
    print(
        f"numpy X @ X.T (threaded OpenBLAS, 4096-row slabs): {t_gemm2:.2f} s = "
        f"{pairs / t_gemm2 / 1e6:,.0f} M pairs/s"
    )
    print(
        f"brute-force numpy reference (1,000 queries): {m * n / t_ref / 1e6:,.1f} M pairs/s "
        f"-> atominfo {t_ref / (m * n) * pairs / t_ai:,.0f}x faster; "
        f"max |log-sum difference| {np.abs(ours - ref).max():.2e} nats"
    )
    q = run_quests(qpy, "entropy", {"repeat": [20, 20, 20], "sigma": 0.1, "h": H})
    if q:
        print(
            f"published QUESTS package: H = {q['entropy']:.6f} nats in {q['seconds']:.2f} s = "
            f"{q['n'] ** 2 / q['seconds'] / 1e6:,.0f} M pairs/s -> atominfo "
            f"{q['seconds'] / t_ai:.1f}x faster"
        )
    else:
        print("published QUESTS package: not installed in a separate environment (skipped)")


def diverse_set(seed=0):
    """Crystals of several structures and densities (rattled) plus a melt."""
    from ase.build import bulk

    parts = []
    for i, (name, a, cubic) in enumerate(
        [
            ("fcc", 3.25, True),
            ("fcc", 3.61, True),
            ("fcc", 4.00, True),
            ("bcc", 2.60, True),
            ("bcc", 3.10, True),
            ("hcp", 2.55, False),
        ]
    ):
        atoms = bulk("Cu", name, a=a, cubic=cubic) if name != "hcp" else bulk("Cu", "hcp", a=a)
        atoms = atoms.repeat((9, 9, 9) if name != "hcp" else (14, 14, 9))
        atoms.rattle(0.05, seed=seed + i)
        parts.append(structure_descriptors(atoms))
    melt = cu_melt(repeat=5, n_frames=10, seed=seed, interval=10, melt_steps=200)
    parts.append(atominfo.descriptors(melt))
    return np.concatenate(parts), [len(p) for p in parts]


def section_prune(args):
    print("\n== pruning: entropy of a diverse set (5 crystals + melt), h = 0.015 ==")
    X, sizes = diverse_set()
    print(f"{len(X)} environments: parts {sizes}")
    (H_exact, t_exact) = timed(atominfo.entropy, X, H)
    index, t_build = timed(ClusterIndex, X, seed=0)
    index.log_kernel_sums(X[:64], [H], 1e-9)  # compile / load the numba cache
    log_s, t_pruned = timed(index.log_kernel_sums, X, [H], 1e-9)
    H_pruned = np.log(len(X)) - log_s[0].mean()
    frac = index.last_pairs / len(X) ** 2
    print(
        f"exact (BLAS) {t_exact:.2f} s; pruned {t_pruned:.2f} s + index {t_build:.2f} s "
        f"({index.n_clusters} clusters): {t_exact / t_pruned:.2f}x "
        f"({t_exact / (t_pruned + t_build):.2f}x with the build); "
        f"kernel terms evaluated {frac:.1%}"
    )
    print(f"|H pruned - H exact| = {abs(H_pruned - H_exact):.2e} nats (bound 1e-9)")


def section_classify(args):
    print("\n== exact classification: 100,920 queries vs 100,920 reference environments ==")
    rep = (29, 29, 30)
    cold = structure_descriptors(rattled_fcc_cu(rep, 0.05, 0))
    hot = structure_descriptors(rattled_fcc_cu(rep, 0.1, 1))
    melt = atominfo.descriptors(cu_melt(repeat=6, n_frames=60, seed=1, interval=10, melt_steps=200))
    mixed = np.concatenate([hot[: len(hot) - len(melt)], melt])
    print(f"reference: FCC Cu rattled 0.05 Å ({len(cold)}); melt {len(melt)} environments")
    # numba's first use in the process (about 1 s) is not the index's cost
    ClusterIndex(cold[:2000], seed=0).classify(hot[:64], [H])
    index, t_build = timed(ClusterIndex, cold, n_clusters=classify_clusters(len(cold)), seed=0)
    neigh, t_nbuild = timed(NeighbourIndex, cold, seed=0)
    index.classify(hot[:64], [H])  # compile / load the numba cache before timing
    neigh.log_kernel_sums(hot[:64], [H], 3)
    print(
        f"cluster index {t_build:.2f} s ({index.n_clusters} clusters); "
        f"faiss IVF index {t_nbuild:.2f} s"
    )
    for name, Y in [
        ("in-distribution: hot crystal (0.1 Å)", hot),
        ("mixed: hot crystal + melt", mixed),
    ]:
        print(f"-- {name}, {len(Y)} queries")
        log_s, t_exact = timed(cpu.log_kernel_sums, Y, cold, np.array([H]))
        dH = -log_s[0]
        labels, t_cls = timed(index.classify, Y, [H])
        decided = np.abs(dH) > 1e-9
        same = np.array_equal(labels[0][decided], (dH <= 0)[decided])
        print(
            f"exact dH {t_exact:.1f} s ({len(Y) * len(cold) / t_exact / 1e6:,.0f} M pairs/s); "
            f"novel {np.mean(dH > 0):.2%}"
        )
        print(
            f"classification {t_cls:.2f} s -> {t_exact / t_cls:.1f}x faster "
            f"({t_exact / (t_cls + t_build):.1f}x with the index build); kernel terms "
            f"{index.last_pairs / (len(Y) * len(cold)):.2%} of exact; labels equal exact "
            f"for all |dH| > 1e-9: {same}"
        )
        for k in (3, 32):
            approx, t_ap = timed(neigh.log_kernel_sums, Y, [H], k)
            err = -approx[0] - dH
            agree = ((-approx[0] > 0) == (dH > 0)).mean()
            inside = dH <= 0
            print(
                f"approximate dH, {k} neighbours (faiss IVF): {t_ap:.2f} s; error vs exact "
                f"mean {err.mean():.3f}, median {np.median(err):.3f}, 99th pct "
                f"{np.quantile(err, 0.99):.3f}, max {err.max():.3f} nats; sign agrees on "
                f"{agree:.2%} (on {((-approx[0] <= 0)[inside]).mean() if inside.any() else 1:.2%}"
                f" of exact-inside points)"
            )


def mixed_case():
    """22k reference (FCC Cu rattled 0.05 Å) and 15k queries: FCC Cu rattled 0.1 Å plus a melt."""
    ref = structure_descriptors(rattled_fcc_cu((14, 14, 28), 0.05, 0))
    hot = structure_descriptors(rattled_fcc_cu((10, 10, 19), 0.1, 1))
    melt = atominfo.descriptors(cu_melt(repeat=5, n_frames=15, seed=1, interval=10, melt_steps=200))
    return ref, np.concatenate([hot, melt]), len(hot)


def section_mixed(args):
    print("\n== exact labels incl. the index build vs exact dH: 15k mixed queries vs 22k ==")
    X, Y, n_hot = mixed_case()
    print(f"reference {len(X)} environments; queries {n_hot} crystal + {len(Y) - n_hot} melt")
    threads = numba.get_num_threads()
    ClusterIndex(X[:2000], seed=0).classify(Y[:64], [H])  # compile / load the numba cache
    cpu.log_kernel_sums(Y[:64], X[:2048], np.array([H]))

    def labels():
        index = ClusterIndex(X, n_clusters=classify_clusters(len(X)), seed=0)
        return index.classify(Y, [H], threads=threads)[0], index

    runs = [timed(cpu.log_kernel_sums, Y, X, np.array([H]), threads=threads)]
    for _ in range(args.repeats):
        runs.append(timed(cpu.log_kernel_sums, Y, X, np.array([H]), threads=threads))
    dH, t_exact = -runs[0][0][0], min(r[1] for r in runs)
    (got, index), t_cls = min((timed(labels) for _ in range(args.repeats + 1)), key=lambda r: r[1])
    _, t_build = min(
        (timed(ClusterIndex, X, n_clusters=classify_clusters(len(X)), seed=0) for _ in range(3)),
        key=lambda r: r[1],
    )
    decided = np.abs(dH) > 1e-9
    same = np.array_equal(got[decided], (dH <= 0)[decided])
    print(
        f"exact dH {t_exact:.2f} s ({len(Y) * len(X) / t_exact / 1e6:,.0f} M pairs/s), "
        f"novel {np.mean(dH > 0):.1%}; index build + classification {t_cls:.3f} s "
        f"(build alone {t_build:.3f} s, {index.n_clusters} clusters) -> "
        f"{t_exact / t_cls:.1f}x faster than exact dH including the build "
        f"({t_exact / max(t_cls - t_build, 1e-9):.1f}x without); kernel terms "
        f"{index.last_pairs / (len(Y) * len(X)):.2%} of exact; labels equal exact for "
        f"all |dH| > 1e-9: {same}; best of {args.repeats + 1}, numba threads {threads}"
    )


def section_quests_dh(args, qpy):
    print("\n== published package: exact vs approximate dH (20,000 x 32,000) ==")
    q = run_quests(
        qpy,
        "dh",
        {
            "ref_repeat": [20, 20, 20],
            "ref_sigma": 0.05,
            "repeat": [20, 20, 20],
            "sigma": 0.1,
            "n_query": 20000,
            "h": H,
        },
    )
    if not q:
        print("published QUESTS package: not available (skipped)")
        return
    print(
        f"QUESTS exact dH {q['exact_seconds']:.1f} s, approximate (3 NN) "
        f"{q['approx_seconds']:.1f} s; sign agreement {q['sign_agreement']:.2%} "
        f"(exact-inside points: {q['sign_agreement_inside']}); novel {q['novelty_exact']:.2%}"
    )
    ref = structure_descriptors(rattled_fcc_cu((20, 20, 20), 0.05, 0))
    Y = structure_descriptors(rattled_fcc_cu((20, 20, 20), 0.1, 1))[:20000]
    (_, t_exact) = timed(cpu.log_kernel_sums, Y, ref, np.array([H]))
    index, t_build = timed(ClusterIndex, ref, n_clusters=classify_clusters(len(ref)), seed=0)
    index.classify(Y[:64], [H])  # compile / load the numba cache before timing
    (_, t_cls) = timed(index.classify, Y, [H])
    print(
        f"atominfo on the same input: exact dH {t_exact:.1f} s "
        f"({q['exact_seconds'] / t_exact:.1f}x faster than QUESTS exact), exact labels "
        f"{t_cls + t_build:.2f} s with the index build "
        f"({q['approx_seconds'] / (t_cls + t_build):.1f}x faster than QUESTS approximate)"
    )


def section_sample(args):
    print("\n== sampled entropy ==")
    X32 = structure_descriptors(rattled_fcc_cu((20, 20, 20), 0.1, 0))
    exact = atominfo.entropy(X32, H)
    inside = 0
    for seed in range(args.coverage_seeds):
        est = atominfo.sampled_entropy(X32, H, 2000, seed=seed)
        inside += est.low <= exact <= est.high
    print(
        f"32,000 environments: exact H = {exact:.4f} nats; 95% interval (M = 2,000) "
        f"contains it for {inside} of {args.coverage_seeds} seeds"
    )
    atoms, t_atoms = timed(rattled_fcc_cu, (63, 63, 63), 0.1, 0)
    X, t_desc = timed(structure_descriptors, atoms)
    del atoms
    est, t_s = timed(atominfo.sampled_entropy, X, H, args.samples, 0)
    print(
        f"{len(X):,} environments (FCC Cu rattled 0.1 Å): descriptors {t_desc:.1f} s; "
        f"sampled H = {est.entropy:.4f} ± {est.half_width:.4f} nats (95%, M = "
        f"{est.n_samples:,}, seed 0) in {t_s:.1f} s "
        f"({est.n_samples * len(X) / t_s / 1e6:,.0f} M pairs/s); exact would take about "
        f"{t_s * len(X) / est.n_samples / 3600:.1f} h at that rate"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="exact,mixed,prune,classify,quests-dh,sample")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=int, default=18_000)
    parser.add_argument("--coverage-seeds", type=int, default=20)
    parser.add_argument("--quests", default=None, help="python of an environment with quests")
    args = parser.parse_args()
    qpy = quests_python(args.quests)
    print(
        f"machine: {platform.machine()} {platform.processor()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}, python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; published package: "
        f"{qpy or 'not found'}"
    )
    only = set(args.only.split(","))
    if "exact" in only:
        section_exact(args, qpy)
    if "prune" in only:
        section_prune(args)
    if "mixed" in only:
        section_mixed(args)
    if "classify" in only:
        section_classify(args)
    if "quests-dh" in only:
        section_quests_dh(args, qpy)
    if "sample" in only:
        section_sample(args)


if __name__ == "__main__":
    main()
