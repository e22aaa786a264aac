"""Overhead of `NoveltyMonitor` on an ASE MD run: 1,000 atoms, EMT, 10,000-environment reference.

System: FCC Cu 5x5x10 cubic cells (1,000 atoms), EMT, velocity Verlet at 300 K
(2 fs). Reference: 10,000 environments of FCC Cu rattled by 0.05 Å. The same
run (same initial velocities) is timed without the monitor and with it
attached every n steps; overhead = (with - without) / without. The time spent
inside the monitor (its own clock) is reported too, which is less sensitive
to the noise of a shared machine.

Usage: python benchmarks/bench_monitor.py [--steps 100] [--intervals 1,10,100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def run(steps: int, reference=None, interval: int | None = None, seed: int = 0):
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from atominfo.structures.datasets import rattled_fcc_cu
    from atominfo.workflows.monitor import NoveltyMonitor

    atoms = rattled_fcc_cu((5, 5, 10), 0.02, seed=seed)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    monitor = None
    if reference is not None:
        monitor = NoveltyMonitor(atoms, reference, dyn=dyn)
        dyn.attach(monitor, interval=interval)
    start = time.perf_counter()
    dyn.run(steps)
    return time.perf_counter() - start, monitor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--intervals", default="1,10,100")
    parser.add_argument("--reference", type=int, default=10_000)
    args = parser.parse_args()

    import atominfo
    from atominfo.structures.datasets import rattled_fcc_cu

    ref_atoms = rattled_fcc_cu(14, 0.05, seed=1)  # 10,976 atoms
    reference = atominfo.Reference(atominfo.descriptors(ref_atoms)[: args.reference], h=0.015)
    run(2, reference, 1)  # compile numba kernels before timing
    print(f"1,000-atom EMT MD, {args.steps} steps; reference {len(reference):,} environments")
    base, _ = run(args.steps)
    print(f"without monitor: {base:.2f} s ({1e3 * base / args.steps:.1f} ms/step)")
    results = {
        "steps": args.steps,
        "reference": len(reference),
        "baseline_s": base,
        "intervals": {},
    }
    for interval in [int(v) for v in args.intervals.split(",")]:
        total, monitor = run(args.steps, reference, interval)
        checks = len(monitor.history)
        per_check = monitor.seconds / checks
        overhead = (total - base) / base
        own = monitor.seconds / (total - monitor.seconds)
        print(
            f"every {interval:4d} steps: {total:.2f} s, {checks} checks, "
            f"{1e3 * per_check:.0f} ms per check; overhead {overhead:+.1%} "
            f"(from the monitor's own clock: {own:.1%})"
        )
        results["intervals"][interval] = {
            "seconds": total,
            "checks": checks,
            "per_check_s": per_check,
            "overhead": overhead,
            "own_clock_overhead": own,
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
