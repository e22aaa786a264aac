"""Valid command lines of every command, and the files they read, built in a directory.

`BASE[command]` is a minimal valid argv with placeholders: ``{hot}`` (the
32-atom Cu extxyz, the first test file), ``{fcc}`` (the 108-atom FCC
extxyz, a reference or second file), ``{err}``/``{dhv}`` (per-environment
errors and dH, .npy), ``{lmp}`` (a LAMMPS input script), ``{refv}`` (one value per {fcc} environment, .npy),
``{cref}`` (a compact reference of {fcc}, .npz)
and ``{dir}`` (the case directory, for outputs).
`INPUT_SLOTS[command]` lists which placeholders a bad input replaces, with
the argparse dest they fill.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"

BASE = {
    "entropy": ["{hot}", "-q"],
    "dh": ["{hot}", "--ref", "{fcc}", "-q"],
    "overlap": ["{hot}", "--ref", "{fcc}", "-q"],
    "descriptors": ["{hot}", "-o", "{dir}/X.npy", "-q"],
    "bandwidth": [],
    "curve": ["{hot}", "{fcc}", "--sizes", "2", "--seeds", "1", "-q"],
    "overlap-matrix": ["{hot}", "{fcc}", "-q"],
    "compress": ["{hot}", "{fcc}", "-s", "1", "-o", "{dir}/sel.extxyz", "-q"],
    "extract": ["{hot}", "--ref", "{fcc}", "-o", "{dir}/cand.extxyz", "-q"],
    "report": ["{hot}", "{fcc}", "-o", "{dir}/report.html", "--sizes", "2", "--seeds", "1", "-q"],
    "generations": ["{hot}", "{fcc}", "-q"],
    "calibrate": ["--errors", "{err}", "--dh", "{dhv}"],
    "clusters": ["{hot}", "--ref", "{fcc}", "-q"],
    "cnt": [],
    "watch": ["{hot}", "--ref", "{fcc}", "--idle-timeout", "0.2", "--poll", "0.05", "-q"],
    "demo": ["--frames", "1", "--repeat", "1"],
    # the seed is already far from the FCC reference: a wide target range accepts it
    "generate": [
        "{hot}",
        "--ref",
        "{fcc}",
        "-n",
        "1",
        "--steps",
        "20",
        "--target-high",
        "1000",
        "-o",
        "{dir}/gen.extxyz",
        "-q",
    ],
    # a target every check reaches: one snapshot per check
    "explore": [
        "{hot}",
        "--ref",
        "{fcc}",
        "--steps",
        "2",
        "--interval",
        "2",
        "--target-dH",
        "-1000",
        "-o",
        "{dir}/explored.extxyz",
        "-q",
    ],
    "dedupe": ["{hot}", "-q"],
    "smooth": ["{hot}", "--ref", "{fcc}", "--errors", "{refv}", "-q"],
    "metrics": ["{hot}", "-q"],
    "snapshot": ["{hot}", "--ref", "{fcc}", "-o", "{dir}/snap.npy", "-q"],
    "lammps": ["{lmp}", "--ref", "{fcc}", "--every", "10", "--halt-dh", "-1000", "--no-halt", "-q"],
    "reference": ["{hot}", "-o", "{dir}/cref.npz", "--size", "4", "-q"],
    "inside": ["{hot}", "--ref", "{cref}", "-q"],
}

# Outputs the base command writes by itself, by the dest that names them (the
# rest only when asked for). compress writes its summary beside its output.
BASE_OUTPUT_DESTS = {
    "descriptors": {"output": "X.npy"},
    "generate": {"output": "gen.extxyz"},
    "explore": {"output": "explored.extxyz"},
    "compress": {"output": "sel.extxyz", "summary": "sel.json"},
    "extract": {"output": "cand.extxyz"},
    "report": {"output": "report.html"},
    "snapshot": {"output": "snap.npy"},
    "reference": {"output": "cref.npz"},
}
BASE_OUTPUTS = {c: tuple(d.values()) for c, d in BASE_OUTPUT_DESTS.items()}

# (placeholder, dest) of the structure files each command reads.
INPUT_SLOTS = {
    "entropy": [("hot", "files")],
    "dh": [("hot", "files"), ("fcc", "ref")],
    "overlap": [("hot", "files"), ("fcc", "ref")],
    "descriptors": [("hot", "files")],
    "curve": [("hot", "files")],
    "overlap-matrix": [("hot", "files")],
    "compress": [("hot", "files")],
    "extract": [("hot", "files"), ("fcc", "ref")],
    "report": [("hot", "files")],
    "generations": [("hot", "files")],
    "calibrate": [("err", "errors")],
    "clusters": [("hot", "files"), ("fcc", "ref")],
    "watch": [("hot", "file"), ("fcc", "ref")],
    "generate": [("hot", "files"), ("fcc", "ref")],
    "explore": [("hot", "files"), ("fcc", "ref")],
    "dedupe": [("hot", "files")],
    "smooth": [("hot", "files"), ("fcc", "ref"), ("refv", "errors")],
    "metrics": [("hot", "files")],
    "snapshot": [("hot", "file"), ("fcc", "ref")],
    "lammps": [("fcc", "ref")],
    "reference": [("hot", "files")],
    "inside": [("hot", "files")],  # --ref: a compact reference, not structures
}

# Valid suffixes of every output option (the first is the one used).
OUTPUT_SUFFIXES = {
    ("dh", "output"): (".npy", ".json", ".extxyz", ".xyz"),
    ("dh", "table"): (".csv", ".json"),
    ("dh", "plot"): (".png", ".pdf", ".svg"),
    ("descriptors", "output"): (".npy", ".npz"),
    ("curve", "plot"): (".png", ".pdf", ".svg"),
    ("overlap-matrix", "plot"): (".png", ".pdf", ".svg"),
    ("generations", "plot"): (".png", ".pdf", ".svg"),
    ("compress", "output"): (".extxyz", ".xyz"),
    ("compress", "summary"): (".json",),
    ("extract", "output"): (".extxyz", ".xyz"),
    ("report", "output"): (".html", ".htm"),
    ("report", "chemiscope"): (".json.gz", ".json"),
    ("dh", "chemiscope"): (".json.gz", ".json"),
    ("compress", "chemiscope"): (".json.gz", ".json"),
    ("extract", "summary"): (".json",),
    ("calibrate", "output"): (".json",),
    ("calibrate", "plot"): (".png", ".pdf", ".svg"),
    ("clusters", "table"): (".csv", ".json"),
    ("clusters", "output"): (".extxyz", ".xyz"),
    ("clusters", "plot"): (".png", ".pdf", ".svg"),
    ("generate", "output"): (".extxyz", ".xyz"),
    ("generate", "summary"): (".json",),
    ("explore", "output"): (".extxyz", ".xyz"),
    ("dedupe", "output"): (".extxyz", ".xyz", ".npy"),
    ("smooth", "output"): (".npy", ".json"),
    ("metrics", "output"): (".json", ".csv"),
    ("snapshot", "output"): (".npy",),
    ("snapshot", "dump"): (".dump", ".lammpstrj"),
    ("lammps", "output"): (".extxyz", ".xyz"),
    ("lammps", "table"): (".csv", ".json"),
    ("reference", "output"): (".npz",),
}

# A LAMMPS input script for `atominfo lammps`: 108 Cu atoms, EAM, 20 steps.
LAMMPS_SCRIPT = """units metal
lattice fcc 3.615
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style eam/alloy
pair_coeff * * Cu_mishin1.eam.alloy Cu
velocity all create 300 1
fix nve all nve
run 20
"""


def make_inputs(directory: Path) -> dict[str, Path]:
    """The valid input files of the base commands, copied into `directory` (once:
    cases sharing a directory share them, and each checks they stay unchanged)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "hot": directory / "hot.extxyz",
        "fcc": directory / "fcc.extxyz",
        "err": directory / "err.npy",
        "dhv": directory / "dhv.npy",
        "refv": directory / "refv.npy",
        "lmp": directory / "in.lammps",
        "cref": directory / "cref_fcc.npz",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    shutil.copyfile(DATA / "cu_hot_32.extxyz", paths["hot"])
    shutil.copyfile(DATA / "cu_fcc_108.extxyz", paths["fcc"])
    paths["lmp"].write_text(LAMMPS_SCRIPT)
    rng = np.random.default_rng(0)
    dh = rng.normal(size=200)
    np.save(paths["dhv"], dh)
    np.save(paths["err"], np.abs(0.1 + 0.05 * dh + 0.02 * rng.normal(size=200)))
    np.save(paths["refv"], np.linspace(0.05, 0.2, 108))  # one value per {fcc} environment
    # a compact reference of {fcc} (`atominfo reference`), for `atominfo inside`
    from atominfo.workflows.compact_reference import CompactReference

    CompactReference.build(str(paths["fcc"]), 8, held_out=0.0).save(paths["cref"])
    return paths


def fill(argv: list[str], values: dict[str, str]) -> list[str]:
    """`argv` with every ``{name}`` replaced (each token at most one placeholder)."""
    out = []
    for token in argv:
        for name, value in values.items():
            token = token.replace("{" + name + "}", str(value))
        out.append(token)
    return out


def base_argv(
    command: str, directory: Path, inputs: dict[str, Path], **replace: str | Path
) -> list[str]:
    """The base command line of `command` in `directory`, with placeholders replaced
    (`replace` overrides an input, e.g. ``hot=bad_file``)."""
    values = {**{k: str(v) for k, v in inputs.items()}, "dir": str(directory)}
    values.update({k: str(v) for k, v in replace.items()})
    return [command, *fill(BASE[command], values)]
