"""Compact reference of QM9: build time, size on disk, query time and error against exact dH.

Data: QM9 molecules from the ``qm9pack`` package (read as in `bench_species.py`;
nothing is downloaded). A random set of `--molecules` molecules is the
dataset, `--queries` other molecules the query ("is my system inside?").
Multicomponent descriptor over the dataset's species, k = 32, rc = 5 Å,
h = 0.015 1/Å, each centre species against the same species.

For each size (centres per species):

* build: `CompactReference.from_descriptors` (k-means per species and the
  held-out error measurement), wall time;
* size: the saved .npz against the full descriptor file (`save_descriptors`,
  what ``atominfo descriptors -o X.npz`` writes less its per-row index);
* query: dH of every query atom from the compact reference against the exact
  species-resolved dH (`species_delta_entropy` on the full descriptors), best
  of `--repeat` runs each, same process;
* error on the query molecules (not part of the dataset): mean, 95 % and max
  of |dH_estimate - dH_exact| per species, the rate at which the novel flag
  disagrees, the fraction of exact values inside the rigorous interval, and
  the fraction the interval decides; next to the error stated in the file.

Usage: python benchmarks/bench_compact_reference.py [--molecules 5000]
       [--queries 300] [--sizes 300,1000] [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_species import qm9  # noqa: E402

from atominfo.structures.saved import DescriptorParameters, save_descriptors  # noqa: E402
from atominfo.workflows.compact_reference import CompactReference  # noqa: E402
from atominfo.workflows.species import species_delta_entropy  # noqa: E402
from atominfo.workflows.species_run import data_species, describe_with_species  # noqa: E402

H = 0.015


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--molecules", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--sizes", default="300,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    molecules = qm9(args.molecules + args.queries, args.seed)
    dataset, queries = molecules[: args.molecules], molecules[args.molecules :]
    species = data_species(dataset)
    t = time.perf_counter()
    X, zx = describe_with_species(dataset, species)
    print(
        f"dataset: {len(dataset)} molecules, {len(X)} environments of width {X.shape[1]}, "
        f"species {species}; described in {time.perf_counter() - t:.1f} s"
    )
    Y, zy = describe_with_species(queries, sorted(set(species) | set(data_species(queries))))
    if Y.shape[1] != X.shape[1]:
        raise SystemExit("query molecules hold elements the dataset lacks: draw again")
    print(f"queries: {len(queries)} other molecules, {len(Y)} environments")
    parameters = DescriptorParameters(
        k=32, cutoff=5.0, species=DescriptorParameters.blocks(species), elements=tuple(species)
    )
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.npz"
        with open(full, "wb") as fh:
            save_descriptors(fh, X, parameters)
        full_bytes = full.stat().st_size
        t_exact, exact = best_of(args.repeat, lambda: species_delta_entropy(Y, zy, X, zx, H).dH)
        print(
            f"full descriptor file: {full_bytes / 1e6:.1f} MB; exact query "
            f"(species-resolved dH, {len(Y)} x {len(X)}): {t_exact:.2f} s (best of {args.repeat})"
        )
        for size in (int(s) for s in args.sizes.split(",")):
            t = time.perf_counter()
            ref = CompactReference.from_descriptors(X, zx, parameters, per_species_size=size, h=H)
            t_build = time.perf_counter() - t
            path = Path(tmp) / f"compact_{size}.npz"
            written = ref.save(path)
            t_load, loaded = best_of(args.repeat, lambda p=path: CompactReference.load(p))
            t_query, result = best_of(args.repeat, lambda r=loaded: r.dh_descriptors(Y, zy))
            print(
                f"\n== {size} centres per species: build {t_build:.1f} s, file "
                f"{written.bytes / 1e6:.2f} MB = {written.bytes / full_bytes:.4f} of the full "
                f"file ({full_bytes / written.bytes:.0f}x smaller); load {t_load * 1e3:.0f} ms; "
                f"query {t_query:.3f} s = {t_exact / t_query:.0f}x faster than exact"
            )
            print(
                "species  n_ref  centres | query: n  |err| mean  q95  max  flag-dis  "
                "in-interval  decided | stated (held out): mean  q95  max  flag-dis"
            )
            for s in ref.species:
                m = zy == s
                if not m.any():
                    continue
                e = np.abs(result.dH[m] - exact[m])
                inside = np.mean(
                    (result.dH_lower[m] <= exact[m]) & (exact[m] <= result.dH_upper[m])
                )
                decided = np.mean((result.dH_lower[m] > 0) | (result.dH_upper[m] <= 0))
                dis = np.mean((result.dH[m] > 0) != (exact[m] > 0))
                st = ref.errors[s]
                print(
                    f"{s:<7} {ref.summaries[s].n:6d} {len(ref.summaries[s]):8d} | "
                    f"{int(m.sum()):6d} {e.mean():.3f} {np.quantile(e, 0.95):.3f} {e.max():.3f} "
                    f"{dis:.4f} {inside:.4f} {decided:.3f} | {st.mean:.3f} {st.q95:.3f} "
                    f"{st.max:.3f} {st.flag_disagreement:.4f}"
                )
            print(f"novel (estimate) {result.total_novelty:.4f}, exact {np.mean(exact > 0):.4f}")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
