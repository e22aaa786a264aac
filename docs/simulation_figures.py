"""Makes the pictures of the simulation workflows (docs/simulations.md), through the Python API.

    PYTHONPATH=src python3 docs/simulation_figures.py [--workdir DIR]

The workflows behind `atominfo dh`, `calibrate` and `clusters` run here and
draw with `atominfo.outputs.plots`. Data are built with ASE's EMT potential (seeded):
  * dh_frames.png    `atominfo dh --plot`: 108-atom Cu crystal heated by Langevin MD
                     from 300 K to 2400 K, against a 300 K crystal reference;
  * calibration.png  `atominfo calibrate --plot`: a linear model of EMT per-atom
                     energies (least squares on the descriptor) fitted on the 300 K
                     crystal, tested on hotter crystals, a vacancy, a slab and a melt;
                     error = |predicted - EMT| per atom (eV);
  * clusters.png     `atominfo clusters --plot`: FCC seeds of growing radius embedded in
                     a melt made by MD, with the CNT critical size for Cu at 420 K;
  * outlier_roc.png  is made by benchmarks/bench_outliers.py --plot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import ase.io
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
IMG = ROOT / "docs" / "img"


def _columns(rows):
    return {key: [r[key] for r in rows] for key in rows[0]}


def heating(work: Path, seed: int):
    from atominfo.structures.datasets import fcc_cu, md_frames

    ref = md_frames(fcc_cu(3), 300.0, 10, seed=seed)
    ase.io.write(work / "crystal_300K.extxyz", ref, format="extxyz")
    frames, atoms = [], fcc_cu(3)
    for i, temperature in enumerate(np.linspace(300, 2400, 22)):
        snap = md_frames(
            atoms, float(temperature), 1, interval=10, equilibration=40, seed=seed + i
        )[0]
        frames.append(snap)
        atoms = snap
    ase.io.write(work / "heating.extxyz", frames, format="extxyz")
    from atominfo.outputs.plots import plot_trajectory, save_figure
    from atominfo.workflows.trajectory import iter_trajectory_dh, load_reference

    reference = load_reference([work / "crystal_300K.extxyz"], 0.015)
    rows = [f.summary() for f in iter_trajectory_dh(work / "heating.extxyz", reference)]
    top, _ = plot_trajectory(
        _columns(rows), title="Cu crystal heated from 300 K to 2400 K, against a 300 K crystal"
    )
    save_figure(top.figure, IMG / "dh_frames.png")


def calibration(work: Path, seed: int):
    from ase.calculators.emt import EMT

    import atominfo
    from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames

    def labelled(frames):
        X = atominfo.descriptors(frames)
        energies = []
        for f in frames:
            f = f.copy()
            f.calc = EMT()
            energies.append(f.get_potential_energies())
        return X, np.concatenate(energies)

    train = md_frames(fcc_cu(3), 300.0, 20, seed=seed)
    X, E = labelled(train)
    # Linear least squares with an intercept (the descriptor is the feature vector).
    coef = np.linalg.lstsq(np.c_[X, np.ones(len(X))], E, rcond=None)[0]
    vac = fcc_cu(3)
    del vac[0]
    slab = fcc_cu((3, 3, 4))
    slab.center(vacuum=8.0, axis=2)
    slab.pbc = (True, True, False)
    test = (
        md_frames(fcc_cu(3), 600.0, 8, seed=seed + 1)
        + md_frames(fcc_cu(3), 1200.0, 8, seed=seed + 2)
        + md_frames(vac, 600.0, 8, seed=seed + 3)
        + md_frames(slab, 600.0, 8, seed=seed + 4)
        + cu_melt(3, n_frames=8, seed=seed + 5)
    )
    Y, E_test = labelled(test)
    errors = np.abs(np.c_[Y, np.ones(len(Y))] @ coef - E_test)
    dH = atominfo.delta_entropy(Y, X, 0.015)
    from atominfo.outputs.plots import plot_calibration, save_figure
    from atominfo.workflows.uncertainty import calibrate

    result = calibrate(dH, errors)
    ax = plot_calibration(
        dH,
        errors,
        result.running_average,
        "eV",
        title="Error of a linear EMT energy model (trained at 300 K) vs dH",
    )
    save_figure(ax.figure, IMG / "calibration.png")


def clusters(work: Path, seed: int):
    from ase import Atoms
    from ase.geometry import get_distances

    from atominfo.structures.datasets import CU_LATTICE, fcc_cu, md_frames, rattled_fcc_cu

    start = fcc_cu(3, CU_LATTICE * 1.05 ** (1 / 3))
    start.rattle(0.3, seed=seed)
    melt = md_frames(start, 3000.0, 1, interval=10, equilibration=50, seed=seed, timestep_fs=4.0)[
        0
    ].repeat(3)
    centre = melt.cell.sum(axis=0) / 2
    crystal = rattled_fcc_cu(9, sigma=0.02, seed=seed)
    sites = (
        crystal.positions
        - crystal.positions[
            np.argmin(np.linalg.norm(crystal.positions - crystal.cell.sum(axis=0) / 2, axis=1))
        ]
    )
    frames = []
    for radius in np.linspace(4.0, 11.0, 12):
        seed_pos = sites[np.linalg.norm(sites, axis=1) <= radius] + centre
        _, dist = get_distances(melt.positions, seed_pos, cell=melt.cell, pbc=True)
        keep = (dist.min(axis=1) > 2.2) & (np.linalg.norm(melt.positions - centre, axis=1) > radius)
        frames.append(
            Atoms(f"Cu{len(seed_pos)}", positions=seed_pos, cell=melt.cell, pbc=True) + melt[keep]
        )
    ase.io.write(work / "seeds.extxyz", frames, format="extxyz")
    ase.io.write(
        work / "solid.extxyz", [rattled_fcc_cu(4, 0.03, seed=s) for s in range(10)], format="extxyz"
    )
    from atominfo.outputs.plots import plot_clusters, save_figure
    from atominfo.workflows.nucleation import iter_trajectory_clusters
    from atominfo.workflows.trajectory import load_reference

    reference = load_reference([work / "solid.extxyz"], 0.015)
    rows = [f.summary() for f in iter_trajectory_clusters(work / "seeds.extxyz", reference)]
    top, _ = plot_clusters(
        _columns(rows),
        n_star=122,
        title="Solid-like clusters in a Cu melt with FCC seeds of growing radius",
    )
    save_figure(top.figure, IMG / "clusters.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="heating,calibration,clusters")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="atominfo-figures-"))
    work.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        globals()[name](work, args.seed)


if __name__ == "__main__":
    main()
