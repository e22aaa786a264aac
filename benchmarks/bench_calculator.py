"""Overhead of `NoveltyCalculator` on ASE MD: 108 Cu atoms, EMT, 10,044-environment reference.

System: FCC Cu 3x3x3 cubic cells (108 atoms), EMT, velocity Verlet (2 fs)
from 300 K. Reference: 12 frames of a 6x6x6-cell FCC Cu crystal with every
atom displaced at random by 0.07 Å (about the thermal displacement of Cu at
300-500 K; frames of EMT MD took 8 minutes to make on the loaded 2-core
machine), 10,368 environments, h = 0.015. The same run (same initial velocities) is timed with
the bare EMT calculator and with EMT wrapped in `NoveltyCalculator`, in the
default ``dh="novel"`` (classification, dH of the novel atoms only) and in
``dh="all"``. Each figure is the best of --repeats runs, the variants
interleaved so that load changes hit them alike; the overhead is
(wrapped - bare) / steps, ms per step. The calculator's own clock (time inside
its checks, per check) is reported too, and the overhead in CPU time (this
process's, all threads): both less sensitive to a shared machine's load.

Usage: python benchmarks/bench_calculator.py [--steps 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def reference():
    import atominfo
    from atominfo.structures.datasets import rattled_fcc_cu

    frames = [rattled_fcc_cu(6, 0.07, seed=s) for s in range(12)]
    return atominfo.Reference.from_structures(frames, h=0.015)


def run(steps: int, ref=None, dh: str = "novel"):
    """(wall s, CPU s, calculator or None) of `steps` velocity Verlet steps."""
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.verlet import VelocityVerlet

    import atominfo
    from atominfo.structures.datasets import rattled_fcc_cu

    atoms = rattled_fcc_cu(3, 0.02, seed=0)
    calc = None if ref is None else atominfo.NoveltyCalculator(EMT(), ref, dh=dh)
    atoms.calc = EMT() if calc is None else calc
    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution for this name
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE: the same draw under its former name
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    start, cpu = time.perf_counter(), time.process_time()
    dyn.run(steps)
    return time.perf_counter() - start, time.process_time() - cpu, calc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    start = time.perf_counter()
    ref = reference()
    print(f"reference: {len(ref)} environments, built in {time.perf_counter() - start:.1f} s")
    run(5, ref, "novel"), run(5, ref, "all"), run(5)  # compile and build indexes once

    variants = {"bare EMT": (None, "novel"), 'dh="novel"': (ref, "novel"), 'dh="all"': (ref, "all")}
    best = {name: np.inf for name in variants}
    best_cpu = {name: np.inf for name in variants}
    inside = {name: np.inf for name in variants}
    novelty = {}
    for _ in range(args.repeats):
        for name, (r, dh) in variants.items():
            seconds, cpu, calc = run(args.steps, r, dh)
            best[name] = min(best[name], seconds)
            best_cpu[name] = min(best_cpu[name], cpu)
            if calc is not None:
                inside[name] = min(inside[name], calc.seconds / calc.checks)
                novelty[name] = calc.last.novelty
    bare, bare_cpu = best["bare EMT"] / args.steps, best_cpu["bare EMT"] / args.steps
    print(f"\n{args.steps} steps, best of {args.repeats} runs, numba threads {numba_threads()}")
    print(
        "| calculator | ms per step | overhead, ms per step | ratio | "
        "CPU overhead, ms per step | ms per check (own clock) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, seconds in best.items():
        per_step, cpu = seconds / args.steps, best_cpu[name] / args.steps
        check = f"{1e3 * inside[name]:.2f}" if np.isfinite(inside[name]) else "-"
        print(
            f"| {name} | {1e3 * per_step:.2f} | {1e3 * (per_step - bare):+.2f} | "
            f"{per_step / bare:.2f} | {1e3 * (cpu - bare_cpu):+.2f} | {check} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\nnovelty at the last step: {novelty}")
    breakdown(ref)


def breakdown(ref, repeats: int = 200) -> None:
    """CPU ms of the parts of one check of a 108-atom frame (best of `repeats`)."""
    from atominfo.descriptor.kernel import ghost_atoms
    from atominfo.structures.datasets import rattled_fcc_cu
    from atominfo.workflows.snapshot_box import box_descriptors

    atoms = rattled_fcc_cu(3, 0.07, seed=99)
    ghosts, owner = ghost_atoms(atoms, ref.cutoff)
    Y = box_descriptors(ghosts, len(atoms), ref.k, ref.cutoff, owner)
    parts = {
        "periodic images": lambda: ghost_atoms(atoms, ref.cutoff),
        "descriptors": lambda: box_descriptors(ghosts, len(atoms), ref.k, ref.cutoff, owner),
        "classification (Reference.index.classify)": lambda: ref.index.classify(
            Y, [ref.h], threads=1
        ),
        "exact dH of every atom, for comparison": lambda: ref.delta_entropy(Y),
    }
    print(f"\nparts of a check, CPU ms, best of {repeats} ({np.mean(ref.inside(Y)):.0%} inside):")
    for name, work in parts.items():
        work()
        best = np.inf
        for _ in range(repeats):
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
        print(f"  {name}: {1e3 * best:.2f}")


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()


if __name__ == "__main__":
    main()
