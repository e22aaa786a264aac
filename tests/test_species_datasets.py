"""--species in the dataset commands: the learning curve of each species (the same
subsets, species_entropy's numbers, the rise test's classes), a species-resolved
compression that keeps every species, the report's per-species block, refusals."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from atominfo import InputError
from atominfo.descriptor import load_frames
from atominfo.structures.datasets import md_frames
from atominfo.workflows.compression import select
from atominfo.workflows.compression_methods import own_entropies
from atominfo.workflows.curves import CurveOptions, subset_rows
from atominfo.workflows.curves_rise import rise_test
from atominfo.workflows.species import species_entropy
from atominfo.workflows.species_dataset import (
    row_species,
    species_learning_curve,
    species_retention,
)

H = 0.015


def alloy(symbols, a: float):
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.set_chemical_symbols(symbols)
    return atoms.repeat(2)


@pytest.fixture(scope="module")
def frames():
    """EMT MD of L1_2 Cu3Au (8 frames) and L1_0-like CuAu (8 frames), 32 atoms each."""
    cu3au = alloy(["Au", "Cu", "Cu", "Cu"], 3.75)
    cuau = alloy(["Au", "Au", "Cu", "Cu"], 3.8)
    return md_frames(cu3au, 600, 8, interval=5, equilibration=20) + md_frames(
        cuau, 600, 8, interval=5, equilibration=20, seed=1
    )


@pytest.fixture(scope="module")
def data(frames):
    return load_frames(frames, multicomponent=["Au", "Cu"])


@pytest.fixture(scope="module")
def files(frames, tmp_path_factory):
    """The alloy file, and a file of hot copper frames then two Cu3Au frames whose
    geometry repeats the first copper frame (element-blind: a duplicate)."""
    root = tmp_path_factory.mktemp("species_data")
    ase.io.write(root / "alloy.extxyz", frames)
    copper = md_frames(
        bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 1200, 8, interval=5, equilibration=20
    )
    twins = []
    for f in copper[:2]:
        twin = f.copy()
        twin.set_chemical_symbols(["Au" if i % 4 == 0 else "Cu" for i in range(len(twin))])
        twins.append(twin)
    ase.io.write(root / "cu_then_au.extxyz", copper + twins)
    return {"alloy": str(root / "alloy.extxyz"), "mixed": str(root / "cu_then_au.extxyz")}


@pytest.mark.parametrize("by", ["structures", "environments"])
def test_species_curve_is_species_entropy_on_the_same_subsets(data, by):
    z = row_species(data)
    options = CurveOptions(by=by, n_sizes=6, n_seeds=2, seed=4)
    curve = species_learning_curve(data, z, H, options)
    assert curve.species == ["Au", "Cu"]
    total = len(data) if by == "structures" else len(data.X)
    checked = 0
    for i, N in enumerate(curve.sizes):
        for j, seed in enumerate(curve.curves["joint"].seeds):
            rows = np.arange(len(data.X)) if N == total else subset_rows(data, by, int(N), seed)
            r = species_entropy(data.X[rows], z[rows], H)
            assert abs(curve.curves["joint"].entropies[i, j] - r.total) < 1e-10
            assert abs(curve.chemical[i, j] - r.chemical) < 1e-10
            for s, value in zip(r.species, r.entropy):
                c = curve.curves[s]
                hit = np.flatnonzero(c.sizes == N)
                if hit.size:  # a size where every seed's subset holds the species
                    assert abs(c.entropies[hit[0], j] - value) < 1e-10
                    checked += 1
    assert checked > 0
    for c in curve.curves.values():  # each class is the rise test's on that curve
        assert c.status == rise_test(c.sizes, c.entropies).status
        assert c.sizes[-1] == total
    # the joint H splits into the chemical term and the species' terms at the full size
    full = species_entropy(data.X, z, H)
    assert abs(curve.curves["joint"].mean[-1] - (full.chemical + full.conditional)) < 1e-10


def test_species_of_one_structure_is_not_determined(frames):
    """Au in one structure only: every subset holding Au holds the same Au atoms (a flat
    curve that says nothing of what more data would add), so its class is not determined."""
    copper = [f.copy() for f in frames[8:]]
    for f in copper:
        f.set_chemical_symbols(["Cu"] * len(f))
    data = load_frames([*copper, frames[0]], multicomponent=["Au", "Cu"])
    curve = species_learning_curve(data, row_species(data), H, n_sizes=5, n_seeds=3)
    assert curve.curves["Au"].status == "not determined"
    assert "one structure" in curve.curves["Au"].reason
    assert curve.curves["Au"].fit is None
    assert curve.curves["Cu"].status == rise_test(curve.sizes, curve.curves["Cu"].entropies).status


def test_species_resolved_own_entropy_is_the_joint_entropy(data):
    z = row_species(data)
    codes = np.unique(z, return_inverse=True)[1]
    own = own_entropies(data, H, codes)
    for f in (0, len(data) - 1):
        rows = data.rows([f])
        assert abs(own[f] - species_entropy(data.X[rows], z[rows], H).total) < 1e-10


def test_species_selection_keeps_every_species(files):
    data = load_frames(files["mixed"], multicomponent=["Au", "Cu"])
    plain = load_frames(files["mixed"])
    au_frames = {f for f, a in enumerate(plain.atoms) if "Au" in a.get_chemical_symbols()}
    # element-blind msc sees the Au frames as copies of copper ones
    blind = select(plain, 2, "msc", H, summary=False)
    assert not au_frames & set(blind.indices)
    sel = select(data, 2, "msc", H, species=True)
    assert au_frames & set(sel.indices)
    assert sel.species.missing == []
    assert sum(sel.species.n_kept) == sel.n_environments
    assert all(0 <= r <= 1 for r in sel.species.retained)
    again = species_retention(data.X, row_species(data), data.rows(sel.indices), H)
    assert again.to_dict() == sel.species.to_dict()


def test_species_selection_refusals(data):
    with pytest.raises(InputError, match="msc or random"):
        select(data, 2, "fps", H, species=True)
    with pytest.raises(InputError, match="no reference"):
        select(data, 2, "msc", H, species=True, reference=data.X[:5])


def test_cli_compress_species(files, tmp_path, capsys):
    from atominfo.cli import main

    out = tmp_path / "kept.extxyz"
    args = ["compress", files["mixed"], "--species", "-s", "2", "-o", str(out), "-q", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["species"]["species"] == ["Au", "Cu"]
    assert summary["species"]["missing"] == []
    kept = {s for a in ase.io.read(out, ":") for s in a.get_chemical_symbols()}
    assert kept == {"Au", "Cu"}
    assert json.loads((tmp_path / "kept.json").read_text())["species"] == summary["species"]


@pytest.mark.slow
def test_cli_curve_species(files, tmp_path, capsys):
    from atominfo.cli import main

    plot = tmp_path / "curve.png"
    args = ["curve", files["alloy"], "--species", "--sizes", "5", "--seeds", "2", "-q"]
    assert main([*args, "--json", "--plot", str(plot)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["status"]) == {"Au", "Cu", "joint"}
    assert all(
        v in ("saturated", "still rising", "not determined") for v in result["status"].values()
    )
    assert plot.stat().st_size > 0
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "H(Au)" in text and "H(species)" in text and "per species" in text


@pytest.mark.slow
def test_cli_report_species(files, tmp_path, capsys):
    from atominfo.cli import main

    page = tmp_path / "report.html"
    args = ["report", files["alloy"], "--species", "-o", str(page), "--sizes", "4", "--seeds", "2"]
    assert main([*args, "-q", "--json"]) == 0
    block = json.loads(capsys.readouterr().out)["species"]
    assert block["species"] == ["Au", "Cu"]
    assert abs(block["total"] - (block["chemical"] + block["conditional"])) < 1e-10
    assert set(block["curve"]["status"]) == {"Au", "Cu", "joint"}
    text = page.read_text()
    assert "Which element's environments? Per species" in text
    assert "<td class='l'>Au</td>" in text and "H(X|z) (nats)" in text
    assert "atominfo curve" in text and "--species" in text


@pytest.mark.parametrize(
    "command, extra, message",
    [
        ("curve", ["--per-file"], "--species does not take --per-file"),
        ("curve", ["--at", "3"], "--species does not take --at"),
        ("curve", ["--multicomponent"], "--species does not take --multicomponent"),
        ("compress", ["-s", "2", "-m", "fps"], "msc or random"),
        ("compress", ["-s", "2", "--ref", "ALLOY"], "--species does not take --ref"),
        ("compress", ["-s", "2", "--chemiscope", "v.json.gz"], "does not take --chemiscope"),
        ("report", ["--multicomponent"], "--species does not take --multicomponent"),
    ],
)
def test_cli_species_refusals(files, tmp_path, capsys, command, extra, message):
    from atominfo.cli import main

    extra = [files["alloy"] if e == "ALLOY" else e for e in extra]
    out = ["-o", str(tmp_path / ("o.html" if command == "report" else "o.extxyz"))]
    args = [command, files["alloy"], "--species", *extra, *(out if command != "curve" else [])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("atominfo: error:") and message in err[-1]
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_species_descriptor_alone_is_refused(files, capsys):
    from atominfo.cli import main

    assert main(["curve", files["alloy"], "--species-descriptor", "plain"]) == 2
    assert "needs --species" in capsys.readouterr().err
