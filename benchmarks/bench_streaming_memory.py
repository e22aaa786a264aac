"""Peak memory of the streaming `atominfo dh` on a 1,000,000-atom trajectory
against a 100,000-environment reference (target: at most 2 GB).

The trajectory is 100 frames of 10,000 FCC Cu atoms rattled with a Gaussian
displacement growing from 0.05 to 0.3 Å (a crystal heated towards disorder);
the reference is 100,000 environments of FCC Cu rattled by 0.1 Å, saved as
descriptors (.npy). Both runs are separate processes; the peak resident set
size (ru_maxrss) of each is read from os.wait4.

Baseline in the same run: the same trajectory's descriptors held in memory at
once (what a non-streaming dH must hold before any kernel sum), i.e. a lower
bound of the non-streaming peak.

Usage: python benchmarks/bench_streaming_memory.py [--atoms-per-frame 10000]
       [--frames 100] [--reference 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def run_measured(args) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, stdout) of a child process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    out, err = proc.communicate()
    # The child is WRAPPER, which reports the peak of the command it ran (os.wait4).
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}\n{err}")
    peak = json.loads(err.strip().splitlines()[-1])["maxrss_kib"] / 1024
    return peak, wall, out


WRAPPER = r"""
import json, os, resource, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps({"maxrss_kib": usage.ru_maxrss}), file=sys.stderr)
sys.exit(code)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms-per-frame", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ase.io

    import atominfo
    from atominfo.structures.datasets import fcc_cu

    work = args.workdir or Path(tempfile.mkdtemp(prefix="atominfo-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    # Reference: rattled FCC, first `reference` environments.
    cells = int(np.ceil((args.reference / 4) ** (1 / 3)))
    ref_atoms = fcc_cu(cells)
    ref_atoms.positions += rng.normal(0, 0.1, ref_atoms.positions.shape)
    X = atominfo.descriptors(ref_atoms)[: args.reference]
    ref_path = work / "ref.npy"
    np.save(ref_path, X)

    # Trajectory: frames of `atoms_per_frame` atoms (4 * nx * ny * nz).
    n_cells = args.atoms_per_frame // 4
    nz = max(1, round(n_cells ** (1 / 3)))
    while n_cells % nz:
        nz -= 1
    rest = n_cells // nz
    ny = max(1, int(np.sqrt(rest)))
    while rest % ny:
        ny -= 1
    reps = (rest // ny, ny, nz)
    traj = work / "traj.extxyz"
    t0 = time.perf_counter()
    with open(traj, "w") as fh:
        for sigma in np.linspace(0.05, 0.3, args.frames):
            atoms = fcc_cu(reps)
            atoms.positions += rng.normal(0, sigma, atoms.positions.shape)
            ase.io.write(fh, atoms, format="extxyz")
    n_total = args.frames * len(fcc_cu(reps))
    print(
        f"trajectory: {args.frames} frames x {len(fcc_cu(reps))} atoms = {n_total:,} atoms "
        f"({traj.stat().st_size / 2**20:.0f} MiB extxyz, written in "
        f"{time.perf_counter() - t0:.0f} s); reference: {len(X):,} environments"
    )

    wrapper = [sys.executable, "-c", WRAPPER]
    baseline_code = (
        "import sys, numpy as np, atominfo; "
        f"X = np.load({str(ref_path)!r}); "
        f"Y = atominfo.descriptors({str(traj)!r}); "
        "print(Y.shape[0], Y.nbytes + X.nbytes)"
    )
    peak_base, wall_base, out_base = run_measured(wrapper + [sys.executable, "-c", baseline_code])
    print(
        f"baseline (all trajectory descriptors in memory, no kernel sums): "
        f"peak RSS {peak_base:,.0f} MiB, {wall_base:.0f} s"
    )

    cmd = [
        sys.executable,
        "-m",
        "atominfo",
        "dh",
        str(traj),
        "--ref",
        str(ref_path),
        "-o",
        str(work / "dh.extxyz"),
        "--table",
        str(work / "frames.csv"),
        "-q",
        "--json",
    ]
    peak, wall, out = run_measured(wrapper + cmd)
    summary = json.loads(out)
    print(
        f"streaming atominfo dh: peak RSS {peak:,.0f} MiB ({peak / 1024:.2f} GiB; target "
        f"<= 2 GiB), {wall:.0f} s, {summary['environments'] / wall:,.0f} atoms/s, "
        f"{summary['frames']} frames, novelty {summary['novelty']:.3f}, "
        f"max dH {summary['max_dH']:.1f} nats"
    )
    print(f"ratio streaming / baseline peak RSS: {peak / peak_base:.2f}")
    print(
        json.dumps(
            {
                "atoms": n_total,
                "reference": len(X),
                "peak_rss_mib": peak,
                "wall_s": wall,
                "baseline_peak_rss_mib": peak_base,
                "baseline_wall_s": wall_base,
                "ratio": peak / peak_base,
            }
        )
    )


if __name__ == "__main__":
    main()
