"""Build the Cu datasets of the README's dataset sections and draw their figures.

Data: EMT Cu made on the fly (ASE): 32-atom FCC cells sampled by Langevin MD
at 300 K, 800 K and 1200 K, and a 2500 K melt, 40 frames each, written as one
extxyz file with `config_type` and `generation` info keys. Then the README's
commands run on it (the same code as `atominfo ...`) and write docs/img/*.png.

Usage: python docs/make_figures.py [--out-dir /tmp/atominfo_figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase.io

from atominfo.structures import datasets
from atominfo.cli import main as atominfo

IMG = Path(__file__).parent / "img"


def build(out: Path) -> None:
    cell = datasets.fcc_cu(2)
    sets = {
        "crystal_300K": datasets.md_frames(cell, 300.0, 40, interval=10, equilibration=50, seed=0),
        "crystal_800K": datasets.md_frames(cell, 800.0, 40, interval=10, equilibration=50, seed=1),
        "crystal_1200K": datasets.md_frames(cell, 1200.0, 40, interval=10, equilibration=50,
                                            seed=2),
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


def run(args):
    print("\n$ atominfo " + " ".join(args))
    code = atominfo(args)
    assert code == 0, code


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out-dir", default="/tmp/atominfo_figures")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    build(out)
    run(["curve", str(out / "crystal.extxyz"), str(out / "melt.extxyz"), "--per-file",
         "--by", "environments", "--plot", str(IMG / "curve.png"), "-q"])
    run(["overlap-matrix", str(out / "cu.extxyz"), "--group-by", "config_type",
         "--plot", str(IMG / "overlap_matrix.png"), "-q"])
    run(["generations", str(out / "cu.extxyz"), "--group-by", "generation",
         "--plot", str(IMG / "generations.png"), "-q"])
    run(["compress", str(out / "cu.extxyz"), "-s", "0.1", "-m", "msc",
         "-o", str(out / "cu_msc.extxyz"), "-q"])
    run(["compress", str(out / "cu.extxyz"), "-s", "0.1", "-m", "random", "--seed", "0",
         "-o", str(out / "cu_random.extxyz"), "-q"])
    run(["compress", str(out / "cu.extxyz"), "-s", "10", "--ref", str(out / "crystal.extxyz"),
         "-o", str(out / "cu_after_crystal.extxyz"), "-q"])


if __name__ == "__main__":
    main()
