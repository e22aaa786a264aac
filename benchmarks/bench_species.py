"""Species-resolved mode on public data: per-element entropies and cross-domain separation.

Data come from two packages of the registry whose data are inside the package
(nothing is downloaded): ``randatoms`` (878 structures in 5 subsets: OMat24
rattled crystals, OMol25 molecules, ODAC23 frameworks, peptides, X23b molecular
crystals) and ``qm9pack`` (QM9, 130,831 molecules; its CSV files are read
directly, since ``qm9pack.get_data`` imports ``pkg_resources``, which recent
setuptools no longer ship).

1. Per-element entropies: H(X|z) of each element, the chemical term H(species)
   and the joint H, on a random subset of QM9 molecules and on each randatoms
   subset (multicomponent descriptor over the data's species).
2. Cross-domain separation: reference = a random half of subset A's
   structures; test = the other half of A (in domain) and up to as many
   structures of subset B (out of domain). Each test atom is scored by dH
   (a) element-blind: plain descriptor against every reference atom;
   (b) species-resolved, plain descriptor, against reference atoms of its species;
   (c) species-resolved, multicomponent descriptor, the same.
   Atoms of a species the reference lacks are novel by construction (ranked
   above every finite dH). AUROC of B against A's held-out half, per atom and
   per structure (median dH of its atoms), and the fractions novel (dH > 0).
3. Time of the species-resolved entropy against the element-blind one on the
   same descriptors (baseline, same run, best of 3).

Usage: python benchmarks/bench_species.py [--qm9 1000] [--per-subset 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import platform
import time
import warnings

import numpy as np
from ase import Atoms

from atominfo import descriptors, entropy
from atominfo.engine import log_kernel_sums
from atominfo.workflows.species import (
    AbsentSpeciesWarning,
    species_delta_entropy,
    species_entropy,
)
from atominfo.workflows.species_run import data_species, describe_with_species

H = 0.015


def qm9(n: int, seed: int) -> list[Atoms]:
    """`n` random QM9 molecules from the CSV files inside the qm9pack package."""
    from pathlib import Path

    import pandas as pd

    # the package's own __init__ needs pkg_resources: locate its data without importing it
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("qm9pack is not installed: pip install qm9pack")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    cols = ["Elements", "XYZ_Ang"]
    df = pd.concat(
        [pd.read_csv(folder / f"qm9_part{i}.csv", usecols=cols) for i in (1, 2, 3)],
        ignore_index=True,
    )
    rows = np.random.default_rng(seed).choice(len(df), size=min(n, len(df)), replace=False)
    out = []
    for r in rows:
        symbols = ast.literal_eval(df["Elements"].iloc[r])
        positions = ast.literal_eval(df["XYZ_Ang"].iloc[r])
        out.append(Atoms(symbols, positions=positions))
    print(f"QM9: {len(df)} molecules in qm9pack, {len(out)} drawn (seed {seed})")
    return out


def randatoms_subsets(per_subset: int, seed: int, max_atoms: int = 250) -> dict[str, list]:
    """Up to `per_subset` random structures (of at most `max_atoms` atoms) per subset."""
    import contextlib
    import io

    from randatoms import DataLoader

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints as it loads
        loader = DataLoader()
    df = loader.df
    rng = np.random.default_rng(seed)
    out = {}
    for name, group in df.groupby("dataset"):
        idx = group.index[group["n_atoms"] <= max_atoms].to_numpy()
        pick = rng.choice(idx, size=min(per_subset, len(idx)), replace=False)
        with contextlib.redirect_stdout(io.StringIO()):
            out[name] = loader.load_structures(sorted(int(i) for i in pick), show_progress=False)
    return out


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (+inf allowed)."""
    scores = np.concatenate([negative, positive])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    r_pos = ranks[len(negative) :].sum()
    n_pos, n_neg = len(positive), len(negative)
    return float((r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def per_structure(score: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Median score of each structure's atoms (+inf when most are of absent species)."""
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return np.array([np.median(score[a:b]) for a, b in zip(edges[:-1], edges[1:])])


def scores(ref, test, mode: str, species: list[str]):
    """Per-atom score (dH; +inf for an absent species) and novel flags of `test`."""
    if mode == "element-blind":
        X, Y = descriptors(ref), descriptors(test)
        d = -log_kernel_sums(Y, X, np.array([H]))[0]
        return d, d > 0
    desc = "plain" if mode == "species, plain" else "multicomponent"
    X, zx = describe_with_species(ref, species, descriptor=desc)
    Y, zy = describe_with_species(test, species, descriptor=desc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AbsentSpeciesWarning)
        r = species_delta_entropy(Y, zy, X, zx, H)
    return np.where(r.absent, np.inf, r.dH), r.novel


def separation(subsets: dict, a: str, b: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    own = subsets[a]
    perm = rng.permutation(len(own))
    ref = [own[i] for i in perm[: len(own) // 2]]
    held = [own[i] for i in perm[len(own) // 2 :]]
    other = subsets[b][: len(held)]
    species = data_species(ref, held, other)
    n_ref = sum(len(s) for s in ref)
    print(
        f"\nreference {a} ({len(ref)} structures, {n_ref} atoms); in-domain {a} held out "
        f"({len(held)}); out-of-domain {b} ({len(other)}); {len(species)} species"
    )
    absent = sorted({s for st in other for s in st.get_chemical_symbols()} - set(data_species(ref)))
    print(f"  species of {b} absent from the reference: {len(absent)} {absent[:12]}")
    print("  mode                          AUROC atoms  AUROC structures  novel(in)  novel(out)")
    for mode in ("element-blind", "species, plain", "species, multicomponent"):
        t = time.perf_counter()
        s_in, n_in = scores(ref, held, mode, species)
        s_out, n_out = scores(ref, other, mode, species)
        f_in = per_structure(s_in, [len(s) for s in held])
        f_out = per_structure(s_out, [len(s) for s in other])
        print(
            f"  {mode:28s}  {auroc(s_in, s_out):11.3f}  {auroc(f_in, f_out):16.3f}  "
            f"{n_in.mean():9.3f}  {n_out.mean():10.3f}   ({time.perf_counter() - t:.1f} s)"
        )


def element_table(name: str, structures: list) -> None:
    species = data_species(structures)
    X, z = describe_with_species(structures, species)
    r = species_entropy(X, z, H)
    print(
        f"\n{name}: {len(structures)} structures, {len(X)} atoms; H = {r.total:.4f} = "
        f"H(species) {r.chemical:.4f} + sum p H(X|z) {r.conditional:.4f} nats "
        f"(identity residual {abs(r.total - r.chemical - r.conditional):.1e})"
    )
    order = np.argsort(-r.n)
    print("  element      n       p   H(X|z)   log n_z  H/log n_z")
    for i in order[:12]:
        eff = r.entropy[i] / r.log_n[i] if r.n[i] > 1 else float("nan")
        print(
            f"  {r.species[i]:7s} {r.n[i]:6d}  {r.p[i]:.3f}  {r.entropy[i]:7.4f}  "
            f"{r.log_n[i]:8.4f}  {eff:9.3f}"
        )
    if len(order) > 12:
        print(f"  ... {len(order) - 12} more elements")


def timing(structures: list) -> None:
    species = data_species(structures)
    X, z = describe_with_species(structures, species, descriptor="plain")
    best = {}
    for name, fn in (
        ("element-blind entropy", lambda: entropy(X, H)),
        ("species-resolved entropy", lambda: species_entropy(X, z, H)),
    ):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        best[name] = min(runs)
    base = best["element-blind entropy"]
    print(f"\ntiming on {len(X)} environments (plain descriptor, best of 3):")
    for name, t in best.items():
        print(f"  {name:26s} {t:.3f} s  ratio {t / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qm9", type=int, default=1000)
    parser.add_argument("--per-subset", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; h = {H} 1/Å, k = 32, rc = 5 Å"
    )
    warnings.simplefilter("ignore")  # padding notes: molecules have fewer than k neighbours
    molecules = qm9(args.qm9, args.seed)
    element_table("QM9 subset", molecules)
    timing(molecules)
    subsets = randatoms_subsets(args.per_subset, args.seed)
    for name, structures in subsets.items():
        element_table(f"randatoms {name}", structures)
    for a, b in (
        ("omol25", "rattled"),
        ("rattled", "omol25"),
        ("omol25", "peptide"),
        ("omol25", "x23b"),
        ("x23b", "odac"),
    ):
        separation(subsets, a, b, args.seed)


if __name__ == "__main__":
    main()
