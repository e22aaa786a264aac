"""--species in the dataset commands: cost against the element-blind run, and what
compression keeps of each species.

Data: EMT MD of fcc Cu (hot, 1200 K), and of L1_2 Cu3Au and CuAu (600 K), 32 atoms
per frame (`atominfo.structures.datasets.md_frames`), multicomponent descriptor
(k=32, rc=5 Å), h = 0.015 1/Å. Copper dominates: the alloy frames are a minority.

1. Cost: the learning curve (12 sizes, 3 seeds) as the run without --species
   computes it (`learning_curve`, element-blind descriptor) and per species
   (`species_learning_curve` on the multicomponent descriptor: every species, the
   joint H and the chemical term), and msc keeping 10% of the structures the same
   two ways; best of `--repeats` runs each (descriptors not included), ratio
   species / element-blind.
2. What is kept: per species, the share of its environments inside the kept ones
   (dH <= 0 against the kept atoms of the same species, multicomponent descriptor)
   for msc on the element-blind descriptor (the run without --species), msc on the
   multicomponent descriptor (--multicomponent), msc --species and random (3 seeds),
   at 2%, 5% and 10% of the structures.

Usage: python benchmarks/bench_species_datasets.py [--copper 120] [--alloy 15]
       [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from ase.build import bulk

from atominfo.descriptor import load_frames
from atominfo.structures.datasets import md_frames
from atominfo.workflows.compression import select
from atominfo.workflows.curves import CurveOptions, learning_curve
from atominfo.workflows.species_dataset import (
    row_species,
    species_learning_curve,
    species_retention,
)

H = 0.015


def dataset(copper: int, alloy: int):
    def cell(symbols, a):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.set_chemical_symbols(symbols)
        return atoms.repeat(2)

    frames = md_frames(cell(["Cu"] * 4, 3.61), 1200, copper, interval=5, equilibration=50)
    frames += md_frames(cell(["Au", "Cu", "Cu", "Cu"], 3.75), 600, alloy, interval=5, seed=1)
    frames += md_frames(cell(["Au", "Au", "Cu", "Cu"], 3.8), 600, alloy, interval=5, seed=2)
    return load_frames(frames, multicomponent=["Au", "Cu"]), load_frames(frames)


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copper", type=int, default=120)
    parser.add_argument("--alloy", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    data, plain = dataset(args.copper, args.alloy)
    z = row_species(data)
    print(
        f"{len(data)} structures, {len(data.X)} environments "
        f"({', '.join(f'{s}: {int(np.sum(z == s))}' for s in sorted(set(z)))}); "
        f"made in {time.perf_counter() - t0:.1f} s; load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    options = CurveOptions(n_sizes=12, n_seeds=3)
    m = max(1, len(data) // 10)
    pairs = {
        "learning curve": (
            lambda: learning_curve(plain, H, options),
            lambda: species_learning_curve(data, z, H, options),
        ),
        f"msc, keep {m}": (
            lambda: select(plain, m, "msc", H, summary=False),
            lambda: select(data, m, "msc", H, summary=False, species=True),
        ),
    }
    print("\n| run | element-blind (s) | --species (s) | ratio |\n| --- | --- | --- | --- |")
    for name, (blind, species) in pairs.items():
        a, b = best(blind, args.repeats), best(species, args.repeats)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    curve = species_learning_curve(data, z, H, options)
    print(f"\nper-species curve: {curve.verdict()}")
    print("\n| kept | method | " + " | ".join(f"{s} retained" for s in curve.species) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in curve.species) + " |")
    for fraction in (0.02, 0.05, 0.10):
        k = max(1, round(fraction * len(data)))
        runs = {
            "msc, element-blind descriptor": [select(plain, k, "msc", H, summary=False)],
            "msc, multicomponent descriptor": [select(data, k, "msc", H, summary=False)],
            "msc --species": [select(data, k, "msc", H, summary=False, species=True)],
            "random (3 seeds)": [
                select(data, k, "random", H, seed=s, summary=False) for s in range(3)
            ],
        }
        for method, selections in runs.items():
            kept = [
                species_retention(data.X, z, data.rows(s.indices), H).retained for s in selections
            ]
            cells = " | ".join(f"{v:.3f}" for v in np.mean(kept, axis=0))
            print(f"| {k} ({fraction:.0%}) | {method} | {cells} |")


if __name__ == "__main__":
    main()
