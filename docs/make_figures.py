"""Build the Cu datasets of the Datasets guide (docs/datasets.md) and draw its figures.

Data: EMT Cu made on the fly (ASE): 32-atom FCC cells sampled by Langevin MD
at 300 K, 800 K and 1200 K, and a 2500 K melt, 40 frames each, written as one
extxyz file with `config_type` and `generation` info keys. Then the workflows
behind the guide's commands (`atominfo curve`, `overlap-matrix`,
`generations`) run on it through the Python API and draw docs/img/curve.png,
overlap_matrix.png and generations.png with `atominfo.outputs.plots`.

Usage: python docs/make_figures.py [--out-dir /tmp/atominfo_figures] [--only curve,...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase.io

from atominfo.descriptor import load_frames
from atominfo.outputs.plots import (
    plot_generations,
    plot_learning_curves,
    plot_overlap_matrix,
    save_figure,
)
from atominfo.structures import datasets
from atominfo.workflows.curves import learning_curve
from atominfo.workflows.generations import generation_report
from atominfo.workflows.overlap_matrix import overlap_matrix

IMG = Path(__file__).parent / "img"


def build(out: Path) -> None:
    cell = datasets.fcc_cu(2)
    sets = {
        "crystal_300K": datasets.md_frames(cell, 300.0, 40, interval=10, equilibration=50, seed=0),
        "crystal_800K": datasets.md_frames(cell, 800.0, 40, interval=10, equilibration=50, seed=1),
        "crystal_1200K": datasets.md_frames(
            cell, 1200.0, 40, interval=10, equilibration=50, seed=2
        ),
        "melt_2500K": datasets.cu_melt(2, 40, seed=3, melt_steps=200, interval=10),
    }
    # Active-learning story: each generation adds hotter configurations, the last
    # one re-samples the cold crystal (little new).
    generation = {"crystal_300K": 1, "crystal_800K": 2, "crystal_1200K": 3, "melt_2500K": 4}
    frames = []
    for name, group in sets.items():
        for atoms in group:
            atoms.info["config_type"] = name
            atoms.info["generation"] = generation[name]
            frames.append(atoms)
    extra = datasets.md_frames(cell, 300.0, 20, interval=10, equilibration=50, seed=4)
    for atoms in extra:
        atoms.info["config_type"] = "crystal_300K"
        atoms.info["generation"] = 5
    ase.io.write(out / "cu.extxyz", frames + extra)
    ase.io.write(out / "crystal.extxyz", sets["crystal_300K"])
    ase.io.write(out / "melt.extxyz", sets["melt_2500K"])


def curve(out: Path) -> None:
    curves = [
        learning_curve(load_frames(out / f"{name}.extxyz"), by="environments")
        for name in ("crystal", "melt")
    ]
    for name, c in zip(("crystal", "melt"), curves):
        print(f"curve of {name}:", *c.summary_lines(), sep="\n  ")
    ax = plot_learning_curves(curves, labels=["crystal 300 K", "melt 2500 K"])
    save_figure(ax.figure, IMG / "curve.png")


def matrix(out: Path) -> None:
    data = load_frames(out / "cu.extxyz")
    groups = data.groups("config_type")
    result = overlap_matrix({name: data.environments(f) for name, f in groups.items()})
    save_figure(plot_overlap_matrix(result).figure, IMG / "overlap_matrix.png")


def generations(out: Path) -> None:
    data = load_frames(out / "cu.extxyz")
    groups = data.groups("generation", sort=True)
    rows = generation_report(
        {name: data.environments(f) for name, f in groups.items()},
        structures={name: len(f) for name, f in groups.items()},
    )
    top, _ = plot_generations(rows)
    save_figure(top.figure, IMG / "generations.png")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out-dir", default="/tmp/atominfo_figures")
    parser.add_argument("--only", default="curve,matrix,generations")
    parser.add_argument("--reuse", action="store_true", help="keep the data of a previous run")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    if not (args.reuse and (out / "cu.extxyz").exists()):
        build(out)
    for name in args.only.split(","):
        globals()[name](out)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
