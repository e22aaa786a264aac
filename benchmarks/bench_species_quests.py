"""Species-resolved atominfo against the published package's multi-element descriptor.

The published QUESTS package runs as a black box in its own environment
(``python3 -m venv /tmp/quests-venv && /tmp/quests-venv/bin/pip install quests``)
through `quests_baseline.py` (tasks ``species-*``): it reads the same
structures from extxyz files written here, and computes its descriptor
(element-blind) or its multi-element descriptor (one block per species,
(species + 1)(2k - 1) columns) with k = 32, rc = 5 Å, and its entropy or dH
at h = 0.015 1/Å. The package pools every atom in one kernel sum; for a
like-for-like per-element figure its entropy is also taken on the rows of
each centre species (that split is atominfo's species-resolved idea applied
to the package's descriptor).

1. Descriptors: the two packages' rows on the same structures (max difference).
2. Ordered vs random Cu3Au sampled by EMT MD at 800 K (5 seeds, the set-up of
   tests/test_species.py): entropy of each, separation in standard
   deviations (|mean difference| / sqrt(sd_1^2 + sd_2^2)).
3. A QM9 subset: pooled and per-element entropies, time (best of `--repeats`).
4. randatoms OMol25 molecules vs OMat24 rattled crystals: reference = half
   of one subset, test = the other half (in domain) and the other subset
   (out of domain); AUROC of dH per atom and per structure (median), time.

Usage: python benchmarks/bench_species_quests.py [--qm9 2000] [--per-subset 100]
       [--repeats 3] [--quests /tmp/quests-venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from atominfo import descriptors, entropy
from atominfo.structures.datasets import md_frames
from atominfo.workflows.species import species_entropy
from atominfo.workflows.species_run import data_species, describe_with_species

sys.path.insert(0, str(Path(__file__).parent))
from bench_kernels import quests_python, run_quests  # noqa: E402
from bench_species import auroc, per_structure, qm9, randatoms_subsets, scores  # noqa: E402

H = 0.015


def clean(frames) -> list[Atoms]:
    """Species, positions, cell and periodicity only (what both packages read); a molecule
    without a cell is put in a box (open boundaries: the descriptor is unchanged), as the
    published multi-element descriptor divides by zero on a cell-less structure."""
    out = []
    for a in frames:
        b = Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
        if not b.pbc.any() and b.cell.rank < 3:
            b.center(vacuum=6.0)
        out.append(b)
    return out


def cu3au_md(ordered: bool, seed: int) -> list[Atoms]:
    """EMT MD at 800 K of L1_2 Cu3Au (2x2x2 cubic cells) or its species shuffled (4 frames)."""
    from atominfo.structures.datasets import cu3au

    return clean(md_frames(cu3au(2, ordered, seed), 800, 4, seed=seed))


def separation(a, b) -> float:
    sd = np.hypot(np.std(a, ddof=1), np.std(b, ddof=1))
    gap = abs(np.mean(a) - np.mean(b))
    return np.inf if sd == 0 and gap > 0 else (0.0 if gap == 0 else gap / sd)


def atominfo_entropies(frames, species):
    """(element-blind H, species-resolved H with the multicomponent descriptor, per species,
    seconds of each)."""
    t = time.perf_counter()
    blind = float(entropy(descriptors(frames), H))
    t_blind = time.perf_counter() - t
    t = time.perf_counter()
    X, z = describe_with_species(frames, species)
    r = species_entropy(X, z, H)
    return blind, r, t_blind, time.perf_counter() - t


def descriptor_check(qpy, tmp: Path, frames, species) -> None:
    path = tmp / "check.extxyz"
    write(path, frames)
    print(f"\n1. descriptors of the same {len(frames)} structures:")
    for name, sp in (("plain", None), ("multi-element", species)):
        q = run_quests(
            qpy, "species-describe", {"path": str(path), "species": sp, "out": str(tmp / "q.npy")}
        )
        if q is None:
            continue
        Q = np.load(tmp / "q.npy")
        A = descriptors(frames, multicomponent=sp) if sp else descriptors(frames)
        diff = float(np.abs(Q - A).max()) if Q.shape == A.shape else float("nan")
        print(f"  {name:13s} published {tuple(Q.shape)}, atominfo {A.shape}: max |diff| {diff:.2e}")


def alloys(qpy, tmp: Path, seeds: int) -> None:
    print(f"\n2. ordered vs random Cu3Au, EMT MD at 800 K, {seeds} seeds (128 environments each)")
    paths, values = {True: [], False: []}, {True: [], False: []}
    for seed in range(seeds):
        for ordered in (True, False):
            frames = cu3au_md(ordered, seed)
            path = tmp / f"cu3au_{int(ordered)}_{seed}.extxyz"
            write(path, frames)
            paths[ordered].append(str(path))
            blind, r, _, _ = atominfo_entropies(frames, ["Au", "Cu"])
            values[ordered].append((blind, r.total, *r.entropy))
    rows = {
        "atominfo element-blind H": [v[0] for v in values[True]],
        "atominfo species-resolved H": [v[1] for v in values[True]],
        "atominfo H(X|Au)": [v[2] for v in values[True]],
        "atominfo H(X|Cu)": [v[3] for v in values[True]],
    }
    other = {
        "atominfo element-blind H": [v[0] for v in values[False]],
        "atominfo species-resolved H": [v[1] for v in values[False]],
        "atominfo H(X|Au)": [v[2] for v in values[False]],
        "atominfo H(X|Cu)": [v[3] for v in values[False]],
    }
    for name, sp in (("plain", None), ("multi-element", ["Au", "Cu"])):
        for ordered, target in ((True, rows), (False, other)):
            q = run_quests(qpy, "species-entropy", {"paths": paths[ordered], "species": sp, "h": H})
            if q is None:
                break
            target[f"published {name} H (pooled)"] = [s["entropy"] for s in q["sets"]]
            for el in ("Au", "Cu"):
                target[f"published {name} H(rows of {el})"] = [
                    s["per_species"][el] for s in q["sets"]
                ]
    print(
        "  quantity                                   ordered (mean sd)     random (mean sd)   SDs"
    )
    for key in rows:
        if key not in other:
            continue
        a, b = np.array(rows[key]), np.array(other[key])
        print(
            f"  {key:40s} {a.mean():8.4f} {a.std(ddof=1):.4f}   {b.mean():8.4f} "
            f"{b.std(ddof=1):.4f}   {separation(a, b):5.1f}"
        )


def qm9_subset(qpy, tmp: Path, n: int, repeats: int, seed: int) -> None:
    frames = clean(qm9(n, seed))
    species = data_species(frames)
    path = tmp / "qm9.extxyz"
    write(path, frames)
    best_blind = best_species = np.inf
    for _ in range(repeats):
        blind, r, t_blind, t_species = atominfo_entropies(frames, species)
        best_blind, best_species = min(best_blind, t_blind), min(best_species, t_species)
    n_env = int(r.n.sum())
    print(f"\n3. QM9 subset: {n} molecules, {n_env} environments, species {species}")
    print(
        f"  atominfo element-blind H {blind:.4f} ({best_blind:.2f} s, descriptors + entropy, "
        f"best of {repeats})"
    )
    print(
        f"  atominfo species-resolved (multicomponent) H {r.total:.4f} = H(species) "
        f"{r.chemical:.4f} + {r.conditional:.4f} ({best_species:.2f} s)"
    )
    print("    " + "  ".join(f"H(X|{s}) {h:.4f}" for s, h in zip(r.species, r.entropy)))
    for name, sp in (("plain", None), ("multi-element", species)):
        runs = [
            run_quests(qpy, "species-entropy", {"paths": [str(path)], "species": sp, "h": H})
            for _ in range(repeats)
        ]
        runs = [q["sets"][0] for q in runs if q is not None]
        if not runs:
            continue
        q = runs[0]
        t_desc = min(s["describe_seconds"] for s in runs)
        t_ent = min(s["entropy_seconds"] for s in runs)
        ours = best_blind if sp is None else best_species
        print(
            f"  published {name}: width {q['width']}, pooled H {q['entropy']:.4f} "
            f"(descriptors {t_desc:.2f} s + entropy {t_ent:.2f} s = {t_desc + t_ent:.2f} s, "
            f"best of {len(runs)}; {(t_desc + t_ent) / ours:.1f}x atominfo's time)"
        )
        print(
            "    rows of each species: "
            + "  ".join(f"H({s}) {h:.4f}" for s, h in q["per_species"].items())
        )


def cross_domain(qpy, tmp: Path, subsets: dict, a: str, b: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    own = [clean([s])[0] for s in subsets[a]]
    perm = rng.permutation(len(own))
    ref = [own[i] for i in perm[: len(own) // 2]]
    held = [own[i] for i in perm[len(own) // 2 :]]
    other = clean(subsets[b][: len(held)])
    species = data_species(ref, held, other)
    print(
        f"\n4. reference {a} ({len(ref)} structures, {sum(map(len, ref))} atoms); in-domain "
        f"{len(held)}, out-of-domain {b} {len(other)}; {len(species)} species"
    )
    print("  method                                AUROC atoms  AUROC structures   time")
    sizes_in, sizes_out = [len(s) for s in held], [len(s) for s in other]
    for mode in ("element-blind", "species, plain", "species, multicomponent"):
        t = time.perf_counter()
        s_in, _ = scores(ref, held, mode, species)
        s_out, _ = scores(ref, other, mode, species)
        f_in, f_out = per_structure(s_in, sizes_in), per_structure(s_out, sizes_out)
        print(
            f"  atominfo {mode:28s} {auroc(s_in, s_out):11.3f}  {auroc(f_in, f_out):16.3f}  "
            f"{time.perf_counter() - t:6.1f} s"
        )
    for name, sp in (("plain", None), ("multi-element", species)):
        got, seconds = [], 0.0
        for test, label in ((held, "in"), (other, "out")):
            write(tmp / "ref.extxyz", ref)
            write(tmp / f"{label}.extxyz", test)
            q = run_quests(
                qpy,
                "species-dh",
                {
                    "ref": str(tmp / "ref.extxyz"),
                    "test": str(tmp / f"{label}.extxyz"),
                    "species": sp,
                    "h": H,
                    "out": str(tmp / f"dh_{label}.npy"),
                },
            )
            if q is None:
                break
            got.append(np.load(tmp / f"dh_{label}.npy"))
            seconds += q["describe_seconds"] + q["dh_seconds"]
        if len(got) < 2:
            continue
        f_in, f_out = per_structure(got[0], sizes_in), per_structure(got[1], sizes_out)
        print(
            f"  published {name:27s} {auroc(got[0], got[1]):11.3f}  "
            f"{auroc(f_in, f_out):16.3f}  {seconds:6.1f} s (descriptors + dH)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qm9", type=int, default=2000)
    parser.add_argument("--per-subset", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quests", default=None, help="python of an environment with quests")
    parser.add_argument("--only", default="descriptors,alloys,qm9,randatoms")
    args = parser.parse_args()
    only = set(args.only.split(","))
    qpy = quests_python(args.quests)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; h = {H} 1/Å, k = 32, rc = 5 Å; "
        f"published package: {qpy or 'not installed (its rows are skipped)'}",
        flush=True,
    )
    warnings.simplefilter("ignore")  # padding notes: molecules have fewer than k neighbours
    with tempfile.TemporaryDirectory(prefix="h4_quests_") as tmp_name:
        tmp = Path(tmp_name)
        if "descriptors" in only:
            frames = clean(qm9(50, args.seed)) + cu3au_md(False, 0)
            descriptor_check(qpy, tmp, frames, data_species(frames))
        if "alloys" in only:
            alloys(qpy, tmp, args.seeds)
        if "qm9" in only:
            qm9_subset(qpy, tmp, args.qm9, args.repeats, args.seed)
        if "randatoms" in only:
            subsets = randatoms_subsets(args.per_subset, args.seed)
            for a, b in (("omol25", "rattled"), ("rattled", "omol25")):
                cross_domain(qpy, tmp, subsets, a, b, args.seed)


if __name__ == "__main__":
    main()
