"""QM9 as a whole: per-element entropies, learning curve and compression on 2 cores.

QM9 (130,831 molecules, about 2.36M environments) comes from the ``qm9pack``
package (its CSV files, read as in `bench_species.py`; nothing is downloaded).
The exact entropy of the whole set is a sum over about 5.6e12 pairs of
environments (hours on 2 cores), so the whole-set figures use atominfo's
sampled estimator (`atominfo.sampled_entropy`: M random queries, each an exact
kernel sum over every environment; unbiased, with a confidence interval of
coverage at least 95% for any data and any M; exact when M >= n), and the
script checks it against the exact engine on a subset.

Stages (each with wall time and its own peak resident memory, VmHWM reset
through /proc/self/clear_refs):

1. read: the CSV files into ASE molecules;
2. describe: plain (element-blind) descriptors, k = 32, rc = 5 Å, with the
   frame boundaries (`atominfo.load_frames`);
3. per-element entropies of the whole set: H(X|z) of H, C, N, O, F (each
   species against itself: the species-resolved mode with the plain
   descriptor), the chemical term, the joint H = H(species) + sum_z p(z) H(X|z),
   and the element-blind H, each sampled with M queries; the exact cost is
   extrapolated from the pair rate measured in stage 4 (same run);
4. cross-check: on a random subset of molecules, the exact engine
   (`species_entropy`, `entropy`) against the same sampled estimators;
5. learning curve by molecules: log-spaced sizes up to the whole set
   (`atominfo.workflows.curves.subset_sizes`), several seeds, H of each
   subset sampled as in 3 (exact where the subset has at most M
   environments), classified by `atominfo.workflows.curves_rise.rise_test`
   (the test `atominfo curve` prints), element-blind and species-resolved;
6. compression of the whole set (`atominfo.workflows.compression_run.compress`,
   the ``atominfo compress`` API): msc and, as the baseline of the same run,
   random, to the same size; retained information = H of the kept
   environments and the share of the whole set inside them (overlap, exact
   classification).

Heavy (tens of minutes): not run in CI.

Usage: python benchmarks/bench_qm9.py [--molecules N] [--samples 10000]
       [--curve-samples 4000] [--check 5000] [--seeds 3] [--compress 0.01]
       [--sizes 12] [--seed 0] [--save descriptors.npz]
       [--stages check,elements,curve,compress]   (read and describe always run)

Figures and the commands that gave them: benchmarks/README.md, "Public data (issue 23)".
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from atominfo import entropy, load_frames, sampled_entropy
from atominfo.workflows.compression_run import CompressOutputs, compress
from atominfo.workflows.curves import subset_sizes
from atominfo.workflows.curves_rise import rise_test, rule_text
from atominfo.workflows.species import species_entropy

H = 0.015


def qm9_all(limit: int | None, seed: int) -> list:
    """QM9 molecules from the CSV files inside qm9pack (all, or `limit` random ones).

    The same molecules as `bench_species.qm9`, parsed as JSON (the lists are
    Python literals with single quotes) instead of by `ast.literal_eval`, which
    took 13 minutes for the whole set on the loaded machine.
    """
    import ast
    import importlib.util
    import json

    import pandas as pd
    from ase import Atoms

    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("qm9pack is not installed: pip install qm9pack")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    df = pd.concat(
        [
            pd.read_csv(folder / f"qm9_part{i}.csv", usecols=["Elements", "XYZ_Ang"])
            for i in (1, 2, 3)
        ],
        ignore_index=True,
    )
    rows = np.arange(len(df))
    if limit is not None and limit < len(df):
        rows = np.random.default_rng(seed).choice(len(df), size=limit, replace=False)
    elements, xyz = df["Elements"].to_numpy(), df["XYZ_Ang"].to_numpy()

    def parse(text: str):
        try:
            return json.loads(text.replace("'", '"'))
        except ValueError:  # a few rows are no JSON (e.g. exponents such as 1.2e-05 in
            return ast.literal_eval(text)  # a form JSON refuses): Python's parser

    out = [Atoms(parse(elements[r]), positions=parse(xyz[r])) for r in rows]
    print(f"QM9: {len(df)} molecules in qm9pack, {len(out)} used")
    return out


def peak_reset() -> None:
    """Start a new peak-memory window (Linux: VmHWM back to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


class Stage:
    """Times a stage and its peak memory; prints one line at the end."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        peak_reset()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t
        print(
            f"[{self.name}] {self.seconds:.1f} s, peak RSS {peak_gb():.2f} GB, "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


class Exact:
    """An exact H in the shape of a sampled estimate (zero-width interval)."""

    def __init__(self, value: float):
        self.entropy = self.low = self.high = value


def sampled(X, M: int, seed: int):
    """`sampled_entropy` with M queries; the exact H when the set has at most M rows."""
    if len(X) <= M:
        return Exact(float(entropy(X, H)))
    return sampled_entropy(X, H, M, seed)


def species_sampled(X, z, M: int, seed: int):
    """Sampled H(X|z) of each species, the chemical term and the joint H with bounds.

    The joint's bounds are the p-weighted sums of the species' 95% bounds
    (simultaneous coverage at least 1 - 0.05 x species, union bound).
    """
    names = sorted(set(z.tolist()))
    rows = {s: np.flatnonzero(z == s) for s in names}
    p = np.array([len(rows[s]) for s in names]) / len(z)
    est = [sampled(X[rows[s]], M, seed) for s in names]
    chem = float(-np.sum(p * np.log(p)))
    joint = chem + float(np.sum(p * [e.entropy for e in est]))
    low = chem + float(np.sum(p * [e.low for e in est]))
    high = chem + float(np.sum(p * [e.high for e in est]))
    return names, p, est, chem, (joint, low, high)


def elements(X, z, M: int, seed: int, pair_rate: float | None) -> None:
    print(f"\nwhole set: {len(X)} environments, M = {M} queries per estimate (seed {seed})")
    with Stage("species-resolved sampled") as st:
        names, p, est, chem, (joint, low, high) = species_sampled(X, z, M, seed)
    print("  element        n       p   H(X|z)    95% interval       log n_z   exact pairs")
    for s, ps, e in zip(names, p, est):
        n = int(round(ps * len(X)))
        print(
            f"  {s:7s} {n:8d}  {ps:.4f}  {e.entropy:7.4f}  [{e.low:.4f}, {e.high:.4f}]  "
            f"{np.log(n):8.4f}  {float(n) ** 2:.2e}"
        )
    print(
        f"  H(species) {chem:.4f} (exact); joint H = {joint:.4f} [{low:.4f}, {high:.4f}] nats "
        f"({st.seconds:.1f} s)"
    )
    with Stage("element-blind sampled") as sb:
        blind = sampled(X, M, seed)
    print(
        f"  element-blind H = {blind.entropy:.4f} [{blind.low:.4f}, {blind.high:.4f}] nats "
        f"({sb.seconds:.1f} s); log n = {np.log(len(X)):.4f}"
    )
    if pair_rate:
        exact_sp = sum((float(ps * len(X))) ** 2 for ps in p) / pair_rate
        exact_bl = float(len(X)) ** 2 / pair_rate
        print(
            f"  exact would take about {exact_sp / 3600:.2f} h (species) and "
            f"{exact_bl / 3600:.2f} h (element-blind) at this run's exact pair rate "
            f"({pair_rate / 1e6:.0f} M pairs/s): {exact_sp / st.seconds:.0f}x and "
            f"{exact_bl / sb.seconds:.0f}x the sampled times (extrapolated, not run)"
        )


def check(data, z, n_mol: int, Ms: list[int], seed: int) -> float:
    """Exact against sampled on `n_mol` random molecules; returns the exact pair rate."""
    rng = np.random.default_rng(seed)
    frames = np.sort(rng.choice(len(data), size=min(n_mol, len(data)), replace=False))
    rows = data.rows(frames)
    X, zz = data.X[rows], z[rows]
    print(f"\ncross-check on {len(frames)} molecules ({len(X)} environments), seed {seed}")
    with Stage("exact species-resolved") as se:
        exact = species_entropy(X, zz, H)
    with Stage("exact element-blind") as sb:
        blind = float(entropy(X, H))
    pairs = float(np.sum(exact.n.astype(float) ** 2)) + float(len(X)) ** 2
    rate = pairs / (se.seconds + sb.seconds)
    print(f"  exact pair rate {rate / 1e6:.0f} M pairs/s")
    for M in Ms:
        t = time.perf_counter()
        names, p, est, chem, (joint, low, high) = species_sampled(X, zz, M, seed + 1)
        b = sampled(X, M, seed + 1)
        ts = time.perf_counter() - t
        print(f"  M = {M} ({ts:.1f} s against {se.seconds + sb.seconds:.1f} s exact):")
        for s, e, h_exact in zip(names, est, exact.entropy):
            inside = e.low <= h_exact <= e.high
            print(
                f"    {s:3s} exact {h_exact:.4f}  sampled {e.entropy:.4f} "
                f"[{e.low:.4f}, {e.high:.4f}]  error {e.entropy - h_exact:+.4f}  "
                f"{'inside' if inside else 'OUTSIDE'}"
            )
        print(
            f"    joint exact {exact.total:.4f}  sampled {joint:.4f} [{low:.4f}, {high:.4f}]"
            f"  error {joint - exact.total:+.4f}"
        )
        print(
            f"    element-blind exact {blind:.4f}  sampled {b.entropy:.4f} "
            f"[{b.low:.4f}, {b.high:.4f}]  error {b.entropy - blind:+.4f}"
        )
    return rate


def curve(data, z, M: int, n_seeds: int, n_sizes: int) -> None:
    # log-spaced up to N/8, then every doubling: the rise test fits N/8..N
    n = len(data)
    sizes = np.unique(np.concatenate([subset_sizes(n // 8, n_sizes - 3, 1), [n // 4, n // 2, n]]))
    print(
        f"\nlearning curve by molecules: {len(sizes)} sizes, {n_seeds} seeds, H sampled with "
        f"M = {M} (exact for subsets of at most M environments; at the full size each "
        "seed is a new sample of queries)"
    )
    blind = np.empty((len(sizes), n_seeds))
    joint = np.empty((len(sizes), n_seeds))
    print("  molecules  environments  element-blind H (mean, spread)  species-resolved H")
    with Stage("curve"):
        for i, N in enumerate(sizes):
            envs = []
            for s in range(n_seeds):
                rng = np.random.default_rng([s, int(N)])
                frames = np.sort(rng.choice(len(data), size=int(N), replace=False))
                rows = data.rows(frames)
                X, zz = data.X[rows], z[rows]
                blind[i, s] = sampled(X, M, s).entropy
                joint[i, s] = species_sampled(X, zz, M, s)[4][0]
                envs.append(len(X))
            print(
                f"  {N:9d}  {int(np.mean(envs)):12d}  {blind[i].mean():8.4f} "
                f"({np.ptp(blind[i]):.4f})              {joint[i].mean():8.4f} "
                f"({np.ptp(joint[i]):.4f})",
                flush=True,
            )
    print(f"  rule: {rule_text()}")
    for name, E in (("element-blind", blind), ("species-resolved", joint)):
        test = rise_test(sizes, E)
        low, high = test.interval if test.interval is not None else (np.nan, np.nan)
        rise = np.nan if test.rise is None else test.rise
        print(
            f"  {name}: {test.status}: rise {rise:.4f} nats per doubling, "
            f"95% interval [{low:.4f}, {high:.4f}]: {test.reason}"
        )


def compression(data, fraction: str, seed: int) -> None:
    print(f"\ncompression of the whole set to {fraction} of its molecules (h = {H})")
    with tempfile.TemporaryDirectory(prefix="h4_qm9_") as tmp:
        for method in ("msc", "random"):
            done = [0]
            t0 = time.perf_counter()

            def tick(n: int, done=done, t0=t0) -> None:  # a line every 100 picks (log)
                done[0] += n
                if done[0] % 100 == 0:
                    print(f"    {done[0]} picks, {time.perf_counter() - t0:.0f} s", flush=True)

            with Stage(f"compress {method}") as st:
                run = compress(
                    data,
                    fraction,
                    method,
                    H,
                    seed=seed,
                    progress=tick,
                    outputs=CompressOutputs(Path(tmp) / f"{method}.extxyz"),
                )
            sel = run.selection
            size = (Path(tmp) / f"{method}.extxyz").stat().st_size
            print(
                f"  {method:6s}: {sel.n_structures} molecules, {sel.n_environments} environments "
                f"({size / 1e6:.1f} MB extxyz); picks {sel.seconds:.1f} s of {st.seconds:.1f} s; "
                f"H(kept) {sel.entropy:.4f}, D(kept) {sel.diversity:.4f} nats; "
                f"whole set inside the kept: {sel.overlap:.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=None, help="default: all")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--curve-samples", type=int, default=4000)
    parser.add_argument("--check", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", type=int, default=12)
    parser.add_argument("--compress", default="0.01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default="read,describe,elements,check,curve,compress")
    parser.add_argument("--save", default=None, help="save descriptors, offsets, symbols (.npz)")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    warnings.simplefilter("ignore")  # padding notes: molecules have fewer than k neighbours
    print(
        f"{os.cpu_count()} CPUs, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}, "
        f"load {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"h = {H} 1/Å, k = 32, rc = 5 Å",
        flush=True,
    )
    with Stage("read"):
        molecules = qm9_all(args.molecules, args.seed)
    with Stage("describe"):
        data = load_frames(molecules, keep_atoms=True)
        z = np.concatenate([np.asarray(a.get_chemical_symbols()) for a in data.atoms])
    if args.save:  # descriptors for a rerun of later stages (--load)
        np.savez(args.save, X=data.X, offsets=data.offsets, z=z)
    print(f"  {len(data)} molecules, {data.X.shape} descriptors ({data.X.nbytes / 1e9:.2f} GB)")
    rate = None
    if "check" in stages:
        rate = check(data, z, args.check, sorted({args.curve_samples, args.samples}), args.seed)
    if "elements" in stages:
        elements(data.X, z, args.samples, args.seed, rate)
    if "curve" in stages:
        curve(data, z, args.curve_samples, args.seeds, args.sizes)
    if "compress" in stages:
        compression(data, args.compress, args.seed)


if __name__ == "__main__":
    main()
