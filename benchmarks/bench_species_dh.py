"""Cost of `atominfo dh --species` against plain `dh`, end to end (reference built, every
frame read, described and scored), in one run: the ratio is the figure.

Input: L1_2 Cu3Au (3x3x3 cubic cells, 108 atoms) sampled by EMT Langevin MD: a
reference at 300 K and a test at 900 K, 20 frames each (2,160 environments
each); k=32, rc=5 Å, h=0.015 1/Å. Best of `--repeat` runs each.

Usage: python benchmarks/bench_species_dh.py [--frames 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ase.io
from ase.build import bulk

from atominfo import Reference
from atominfo.structures.datasets import md_frames
from atominfo.workflows.dh_run import run_dh
from atominfo.workflows.species_dh import SpeciesReference

H = 0.015


def best(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alloy = bulk("Cu", "fcc", a=3.75, cubic=True)
    alloy.set_chemical_symbols(["Au", "Cu", "Cu", "Cu"])
    alloy = alloy.repeat(3)
    with tempfile.TemporaryDirectory() as tmp:
        ref, test = Path(tmp, "ref.extxyz"), Path(tmp, "test.extxyz")
        ase.io.write(ref, md_frames(alloy, 300, args.frames, interval=5, equilibration=20))
        ase.io.write(test, md_frames(alloy, 900, args.frames, interval=5, seed=1))
        files = [str(test)]

        def plain():
            return run_dh(files, Reference.from_files([str(ref)], H))

        def species(descriptor: str):
            by_species = SpeciesReference.from_files([str(ref)], files, H, descriptor=descriptor)
            return run_dh(files, by_species)

        base = best(plain, args.repeat)
        rows = [("dh (element-blind)", base)]
        for descriptor in ("multicomponent", "plain"):
            seconds = best(lambda d=descriptor: species(d), args.repeat)
            rows.append((f"dh --species ({descriptor})", seconds))
        novelty = {
            name: run.novelty
            for name, run in (("plain", plain()), ("species", species("multicomponent")))
        }
    print("| run | time (s) | ratio |\n| --- | --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} |")
    print(
        f"novel fraction: element-blind {novelty['plain']:.4f}, --species {novelty['species']:.4f}"
    )


if __name__ == "__main__":
    main()
