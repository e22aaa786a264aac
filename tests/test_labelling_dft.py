"""Cut-outs a DFT code can run (issue 21): periodic cells hold no clash across their faces,
positions are written so the descriptor read back is the one picked, and nothing novel
writes no file."""

import json
import os

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from atominfo.cli import main
from atominfo.descriptor import structure_descriptors
from atominfo.reference import Reference
from atominfo.structures.datasets import md_frames
from atominfo.structures.geometry import cell_heights
from atominfo.workflows.labelling import extract, write_structures
from atominfo.workflows.labelling_cut import CLASH_RATIO, cut_cell, cut_out, source_min_distance

K, H = 12, 0.015
# (cutoff, buffer): 2 (cutoff + buffer) below the 10.8 Å cells, so the cells are carved
CUTS = [(3.0, 0.62), (3.0, 1.0), (4.0, 1.0), (3.5, 0.0)]


def _smallest(atoms, within: float) -> float:
    """Smallest interatomic distance (periodic images as in `atoms`), by ASE's neighbour list."""
    d = neighbor_list("d", atoms, within)
    return float(d.min()) if len(d) else float("inf")


@pytest.fixture(scope="module")
def sources():
    """An EMT Cu melt (3000 K, 108 atoms) and a rattled crystal with a vacancy."""
    melt = md_frames(bulk("Cu", cubic=True) * (3, 3, 3), 3000, 2, interval=10, equilibration=60)
    return {"melt 0": melt[0], "melt 1": melt[1], "vacancy": _vacancy()}


def _vacancy():
    vacancy = bulk("Cu", cubic=True) * (3, 3, 3)
    del vacancy[13]
    vacancy.rattle(0.02, seed=2)
    return vacancy


def _unpadded(cut):
    """The cell carved without the margin added at its faces (the construction before issue
    21), the atoms at the same places relative to the centre atom."""
    cell = cut.cell[:]
    heights = cell_heights(cell)
    margin = np.asarray(cut.info["cell_margin"], dtype=float)
    tight = cell * ((heights - margin) / heights)[:, None]
    out = cut.copy()
    out.set_cell(tight)
    out.positions = cut.positions - 0.5 * cell.sum(0) + 0.5 * tight.sum(0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["melt 0", "melt 1", "vacancy"])
def test_periodic_cut_outs_hold_no_clash(sources, name):
    atoms = sources[name]
    source = _smallest(atoms, 3.0)
    assert source_min_distance(atoms) == pytest.approx(source, rel=1e-12)
    before = []
    for cutoff, buffer in CUTS:
        X = structure_descriptors(atoms, K, cutoff)
        for centre in range(0, len(atoms), 7):
            cut = cut_cell(atoms, centre, cutoff, buffer)
            smallest = _smallest(cut, 2 * source)
            assert smallest >= CLASH_RATIO * source, (cutoff, buffer, centre)
            assert cut.info["min_distance"] == pytest.approx(smallest, rel=1e-12)
            assert cut.info["source_min_distance"] == pytest.approx(source, rel=1e-12)
            # no margin beyond the one that resolves the clashes, and none where no face is cut
            margin = np.asarray(cut.info["cell_margin"])
            assert np.all(margin >= 0) and np.all(margin <= CLASH_RATIO * source * (1 + 1e-5))
            # the centre atom and the atoms within the buffer keep their descriptors exactly
            Y = structure_descriptors(cut, K, cutoff)
            done = cut.arrays["complete_environment"]
            np.testing.assert_allclose(Y[done], X[cut.arrays["source_atom"][done]], atol=1e-12)
            before.append(_smallest(_unpadded(cut), source))
    # the failing case of the issue: the same cells without the margin clash (there:
    # 0.29-1.64 Å against 2.07-2.19 Å in the source)
    assert min(before) < 0.5 * source


def test_cut_out_is_the_public_cut_of_several_atoms():
    atoms = _vacancy()
    pieces = cut_out(atoms, [4, 17], 3.0, 0.62, vacuum=5.0, mode="both")
    assert [p.info["mode"] for p in pieces] == ["cluster", "cell"] * 2
    assert [int(p.arrays["source_atom"][0]) for p in pieces] == [4, 4, 17, 17]
    single = cut_cell(atoms, 17, 3.0, 0.62)
    np.testing.assert_array_equal(pieces[3].positions, single.positions)
    np.testing.assert_array_equal(pieces[3].cell[:], single.cell[:])
    assert not pieces[0].pbc.any() and pieces[0].info["min_distance"] >= source_min_distance(atoms)


def test_a_cell_no_taller_than_the_cut_keeps_its_period_and_no_margin():
    atoms = bulk("Cu", cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=1)
    cut = cut_cell(atoms, 3, 4.0, 1.0)  # 7.2 Å cell, 2R = 10 Å: the source cell itself
    np.testing.assert_array_equal(cut.cell[:], atoms.cell[:])
    assert not np.any(cut.info["cell_margin"])
    assert cut.info["min_distance"] == pytest.approx(_smallest(atoms, 3.0), rel=1e-12)


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("dft")
    train = bulk("Cu", cubic=True) * (3, 3, 3)
    train.rattle(0.03, seed=5)
    ase.io.write(d / "train.extxyz", train)
    return d


@pytest.fixture(scope="module")
def melt_run(train_run, sources):
    ase.io.write(train_run / "melt.extxyz", [sources["melt 0"], sources["melt 1"]])
    return train_run


@pytest.mark.slow
def test_extract_cells_state_the_distance_check(melt_run, tmp_path, capsys):
    out, summary = tmp_path / "cells.extxyz", tmp_path / "cells.json"
    traj = str(melt_run / "melt.extxyz")
    argv = ["extract", traj, "--ref", str(melt_run / "train.extxyz"), "-k", str(K), "-c", "3"]
    argv += ["--buffer", "0.62", "--mode", "cell", "--max", "8", "-o", str(out)]
    assert main([*argv, "--summary", str(summary)]) == 0
    text = capsys.readouterr().out
    written = json.loads(summary.read_text())
    assert written["required_min_distance_ratio"] == CLASH_RATIO
    assert written["min_distance_ratio"] >= CLASH_RATIO
    assert f"required {CLASH_RATIO:g}" in text and "smallest interatomic distance" in text
    source = [_smallest(a, 3.0) for a in ase.io.read(traj, ":")]
    back = ase.io.read(out, ":")
    assert len(back) == 8
    ratios = []
    for cut in back:
        smallest = _smallest(cut, 2 * source[cut.info["source_frame"]])
        assert smallest >= CLASH_RATIO * source[cut.info["source_frame"]]
        ratios.append(smallest / source[cut.info["source_frame"]])
    assert written["min_distance_ratio"] == pytest.approx(min(ratios), rel=1e-9)
    assert written["padded_cells"] == sum(bool(np.any(c.info["cell_margin"])) for c in back)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cluster", "cell"])
def test_descriptors_read_back_match_to_1e_12(sources, melt_run, tmp_path, mode):
    ref = Reference.from_files([melt_run / "train.extxyz"], H, k=K, cutoff=3.0)
    melt = [sources["melt 0"], sources["melt 1"]]  # positions in full precision, as from MD
    result = extract(melt, ref, mode=mode, buffer=0.62, max_picks=6)
    out = tmp_path / "cand.extxyz"
    write_structures(result.structures, out)
    worst = 0.0
    for atoms in ase.io.read(out, ":"):
        row = result.candidates.X[result.chosen[atoms.info["pick"]]]
        worst = max(worst, np.abs(structure_descriptors(atoms, K, 3.0)[0] - row).max())
    assert worst <= 1e-12
    # the check can fail: ASE's own writer (8 decimals) misses by about 1e-9 1/Å
    plain = tmp_path / "plain.extxyz"
    ase.io.write(plain, result.structures)
    lossy = max(
        np.abs(
            structure_descriptors(a, K, 3.0)[0] - result.candidates.X[result.chosen[a.info["pick"]]]
        ).max()
        for a in ase.io.read(plain, ":")
    )
    assert lossy > 1e-11


def test_nothing_novel_writes_no_file(train_run, tmp_path, capsys):
    # every environment of the reference is in the reference: dH <= 0 everywhere
    train = str(train_run / "train.extxyz")
    out, summary = tmp_path / "cand.extxyz", tmp_path / "cand.json"
    argv = ["extract", train, "--ref", train, "-k", str(K), "-c", "3", "-o", str(out)]
    assert main([*argv, "--summary", str(summary)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and "nothing novel" in lines[0] and "no file written" in lines[0]
    assert captured.err == "" and os.listdir(tmp_path) == []
    assert main([*argv, "--json", "--summary", str(summary)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["candidates"] == 0 and printed["structures"] == 0
    assert printed["output"] is None and os.listdir(tmp_path) == []
    ref = Reference.from_files([train], H, k=K, cutoff=3.0)
    result = extract(train, ref, output=out, summary=summary)
    assert result.structures == [] and result.output is None and result.summary is None
    assert os.listdir(tmp_path) == []


def test_structures_without_a_smallest_distance():
    from ase import Atoms

    from atominfo.errors import InputError

    lone = Atoms("Cu", positions=[[0.0, 0.0, 0.0]])  # no pair: nothing to clash with
    assert source_min_distance(lone) == np.inf
    cluster, cell = cut_out(lone, [0], 3.0, 1.0, mode="both")
    assert len(cluster) == len(cell) == 1 and not np.any(cell.info["cell_margin"])
    assert cell.info["min_distance"] == pytest.approx(8.0)  # its own image, 2 (cutoff + buffer)
    flat = Atoms("Cu", positions=[[0.0, 0.0, 0.0]], pbc=True)  # periodic, zero cell
    with pytest.raises(InputError, match="zero volume"):
        cut_out(flat, [0], 3.0, 1.0, mode="cell")
