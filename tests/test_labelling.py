"""What to label next: cut-outs keep the centre descriptor, dedupe, extract, CLI."""

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from atominfo.cli import main
from atominfo.descriptor import structure_descriptors
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.labelling import extract, write_structures
from atominfo.workflows.labelling_cut import cut_cell, cut_cluster, images_within
from atominfo.workflows.labelling_novel import find_novel
from atominfo.workflows.labelling_picks import deduplicate

K, RC, H = 16, 4.0, 0.015


def _structures():
    """Cells of every kind: cubic (smaller and larger than 2R), triclinic, slab, molecule,
    positions unwrapped by whole lattice vectors."""
    rng = np.random.default_rng(0)
    small = rattled_fcc_cu(2, 0.1, seed=1)
    large = rattled_fcc_cu(5, 0.1, seed=2)
    tric = bulk("Cu", "fcc", a=3.61).repeat((6, 6, 6))
    tric.rattle(0.1, seed=3)
    slab = rattled_fcc_cu(3, 0.1, seed=4)
    slab.pbc = (True, True, False)
    mol = rattled_fcc_cu(2, 0.1, seed=5)
    mol.pbc = False
    unwrapped = rattled_fcc_cu(3, 0.1, seed=6)
    unwrapped.positions += rng.integers(-3, 4, size=(len(unwrapped), 3)) @ unwrapped.cell[:]
    return {
        "small": small,
        "large": large,
        "triclinic": tric,
        "slab": slab,
        "molecule": mol,
        "unwrapped": unwrapped,
    }


STRUCTURES = _structures()


@pytest.mark.parametrize("name", list(STRUCTURES))
@pytest.mark.parametrize("buffer", [0.0, 1.5])
def test_cut_outs_keep_the_centre_descriptor(name, buffer):
    atoms = STRUCTURES[name]
    X = structure_descriptors(atoms, K, RC)
    for centre in (0, len(atoms) // 2, len(atoms) - 1):
        for cut in (
            cut_cluster(atoms, centre, RC, buffer, vacuum=5.0),
            cut_cell(atoms, centre, RC, buffer),
        ):
            Y = structure_descriptors(cut, K, RC)
            np.testing.assert_allclose(Y[0], X[centre], rtol=0, atol=1e-10)
            # every atom marked complete keeps its descriptor too
            complete = cut.arrays["complete_environment"]
            source = cut.arrays["source_atom"]
            assert complete[0] and source[0] == centre
            np.testing.assert_allclose(Y[complete], X[source[complete]], rtol=0, atol=1e-10)


def test_cluster_geometry_and_cell_construction():
    atoms = STRUCTURES["small"]  # 7.2 Å cell: a 6 Å sphere holds several images of an atom
    owner, disp = images_within(atoms, 3, RC + 2.0)
    assert owner[0] == 3 and not disp[0].any()
    assert np.all(np.diff(np.linalg.norm(disp, axis=1)) >= 0)
    assert len(owner) > len(atoms)  # images of the same atom, as in the crystal
    cluster = cut_cluster(atoms, 3, RC, 2.0, vacuum=5.0)
    assert not cluster.pbc.any()
    length = cluster.cell.lengths()
    np.testing.assert_allclose(cluster.positions[0], length / 2)  # the centre in the middle
    gaps = np.concatenate([cluster.positions.min(0), length - cluster.positions.max(0)])
    assert gaps.min() == pytest.approx(5.0)  # at least the vacuum on every side
    # a cell no taller than 2R keeps its true period: the carved cell is the source cell
    cell = cut_cell(atoms, 3, RC, 2.0)
    assert cell.pbc.all() and len(cell) == len(atoms)
    np.testing.assert_allclose(cell.cell[:], atoms.cell[:])
    assert sorted(cell.arrays["source_atom"]) == list(range(len(atoms)))
    # a larger cell is cut to heights 2R along its own (here triclinic) vectors
    tric = STRUCTURES["triclinic"]
    carved = cut_cell(tric, 5, RC, 2.0)
    assert len(carved) < len(tric)
    heights = carved.cell.volume / np.linalg.norm(
        np.cross(carved.cell[[1, 2, 0]], carved.cell[[2, 0, 1]]), axis=1
    )
    np.testing.assert_allclose(heights, 2 * (RC + 2.0) + carved.info["cell_margin"])
    cos = np.einsum("ij,ij->i", carved.cell[:], tric.cell[:]) / (
        carved.cell.lengths() * tric.cell.lengths()
    )
    np.testing.assert_allclose(cos, 1.0)
    # no clash at the faces: the smallest distance is reported next to the source's
    assert carved.info["min_distance"] >= 0.9 * carved.info["source_min_distance"] > 0


def test_cut_outs_keep_info_and_arrays_but_not_labels():
    atoms = STRUCTURES["large"].copy()
    atoms.info.update({"config_type": "melt", "REF_energy": -3.0, "seed": 4})
    atoms.arrays["tag_id"] = np.arange(len(atoms)) * 10
    atoms.arrays["REF_forces"] = np.ones((len(atoms), 3))
    for cut in (cut_cluster(atoms, 9, RC), cut_cell(atoms, 9, RC)):
        assert cut.info["config_type"] == "melt" and cut.info["seed"] == 4
        assert "REF_energy" not in cut.info and "REF_forces" not in cut.arrays
        np.testing.assert_array_equal(cut.arrays["tag_id"], cut.arrays["source_atom"] * 10)


def test_cut_outs_refuse_bad_parameters():
    atoms = STRUCTURES["small"]
    for bad in (dict(buffer=-1.0), dict(buffer=float("nan")), dict(vacuum=0.0)):
        with pytest.raises(InputError):
            cut_cluster(atoms, 0, RC, **bad)
    with pytest.raises(InputError, match="atom 99 does not exist"):
        cut_cell(atoms, 99, RC)
    with pytest.raises(InputError, match="more than"):
        cut_cluster(atoms, 0, RC, buffer=100.0)


def test_deduplicate_many_copies_and_distinct_gaps():
    rng = np.random.default_rng(1)
    d = 2 * K - 1
    reference = rng.normal(scale=0.01, size=(300, d))
    base = reference[0] + 0.2  # far from the reference: novel
    copies = base + rng.normal(scale=1e-4, size=(500, d))  # near-copies (1e-4 << h)
    distinct = reference[:3] + np.array([[0.1], [-0.1], [0.3]])
    Y = np.concatenate([copies[:250], distinct[:1], copies[250:], distinct[1:]])
    dH = Reference(reference, H).delta_entropy(Y)
    assert (dH > 0).all()
    result = deduplicate(Y, dH, H)
    assert len(result.picks) == 4 and result.stopped_by == "coverage"
    groups = {0 if p < 250 or 250 < p < 501 else p for p in result.picks}
    assert groups == {0, 250, 501, 502}
    assert result.picks[0] == int(np.argmax(dH)) and np.isnan(result.remaining_max_dH)
    assert np.all(np.diff(result.dH_at_pick) <= 0)
    # each pick's dH is its dH against the reference plus the earlier picks
    for i, p in enumerate(result.picks):
        known = np.concatenate([reference, Y[result.picks[:i]]])
        np.testing.assert_allclose(
            result.dH_at_pick[i], Reference(known, H).delta_entropy(Y[p : p + 1])[0], atol=1e-9
        )
    assert result.duplicates == 499
    # the pure coverage criterion: a copy at distance d > 0 from the one pick keeps
    # dH = d^2/2h^2 > 0, so the tight group costs a second pick (then every copy is covered)
    strict = deduplicate(Y, dH, H, duplicate_distance=0.0)
    assert len(strict.picks) == 5 and strict.duplicates == 0 and strict.remaining_max_dH <= 0
    capped = deduplicate(Y, dH, H, max_picks=2)
    assert capped.picks == result.picks[:2] and capped.stopped_by == "max_picks"
    assert deduplicate(Y, dH, H, min_dh=1e9).picks == []


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory):
    """A training set of mildly rattled crystals and a trajectory where some frames melt."""
    d = tmp_path_factory.mktemp("labelling")
    train = [rattled_fcc_cu(2, 0.03, seed=s) for s in range(3)]
    frames = []
    for s, sigma in enumerate((0.03, 0.3, 0.03, 0.3)):
        atoms = rattled_fcc_cu(2, sigma, seed=10 + s)
        atoms.info["timestep"] = 100 * s
        atoms.info["config_type"] = "md"
        atoms.arrays["mark"] = np.arange(len(atoms))
        frames.append(atoms)
    ase.io.write(d / "train.extxyz", train)
    ase.io.write(d / "traj.extxyz", frames)
    return d


def test_extract_end_to_end(trajectory, tmp_path):
    ref = Reference.from_files([trajectory / "train.extxyz"], H, k=K, cutoff=RC)
    traj = str(trajectory / "traj.extxyz")
    novel = find_novel(traj, ref)
    assert len(novel) > 0 and set(novel.frames) == {1, 3}  # only the hot frames are novel
    top = find_novel(traj, ref, top=5)
    np.testing.assert_allclose(np.sort(top.dH), np.sort(novel.dH)[-5:])
    result = extract(
        traj,
        ref,
        mode="both",
        dedupe=True,
        max_picks=3,
        buffer=1.0,
        reference_files=["train.extxyz"],
    )
    assert len(result.chosen) == 3 and len(result.structures) == 6
    assert result.max_descriptor_error <= 1e-10
    out = tmp_path / "candidates.extxyz"
    write_structures(result.structures, out)
    back = ase.io.read(out, ":")
    assert [a.info["mode"] for a in back] == ["cluster", "cell"] * 3
    for atoms in back:
        c = result.chosen[atoms.info["pick"]]
        assert atoms.info["source"] == traj and atoms.info["frame"] in (1, 3)
        assert atoms.info["source_frame"] == atoms.info["frame"]
        assert atoms.info["timestep"] == 100 * atoms.info["frame"]
        assert atoms.info["centre_atom"] == novel.atom[c] == atoms.arrays["source_atom"][0]
        assert atoms.info["dH"] == pytest.approx(novel.dH[c]) and atoms.info["dH"] > 0
        assert atoms.info["bandwidth"] == H and atoms.info["k"] == K
        assert atoms.info["cutoff"] == RC and atoms.info["cut_radius"] == RC + 1.0
        assert atoms.info["reference"] == "train.extxyz"
        assert atoms.info["reference_environments"] == len(ref)
        assert len(atoms.info["reference_sha256"]) == 16
        assert atoms.info["config_type"] == "md"
        np.testing.assert_array_equal(atoms.arrays["mark"], atoms.arrays["source_atom"])
        Y = structure_descriptors(atoms, K, RC)
        np.testing.assert_allclose(Y[0], novel.X[c], rtol=0, atol=1e-10)
    # without deduplication: the largest dH first (by dH alone without spread; with it,
    # round-robin over the frames holding a candidate: the largest dH of each)
    plain = extract(traj, ref, max_picks=2, spread=False)
    assert [a.info["dH"] for a in plain.structures] == sorted(novel.dH, reverse=True)[:2]
    spread = extract(traj, ref, max_picks=2)
    best = [max(novel.dH[novel.frame == f]) for f in (1, 3)]
    assert [a.info["dH"] for a in spread.structures] == sorted(best, reverse=True)


def test_extract_from_stored_dh(trajectory, tmp_path):
    frames = ase.io.read(trajectory / "traj.extxyz", ":")
    ref = Reference.from_files([trajectory / "train.extxyz"], H, k=K, cutoff=RC)
    from atominfo.descriptor import descriptors

    for atoms in frames:
        atoms.arrays["dH"] = ref.delta_entropy(descriptors(atoms, K, RC))
    direct = extract(frames, ref, dedupe=True)
    stored = extract(frames, None, dedupe=True, h=H, k=K, cutoff=RC)
    assert stored.chosen == direct.chosen
    assert "reference_sha256" not in stored.structures[0].info
    del frames[2].arrays["dH"]
    with pytest.raises(InputError, match="frame 2: no per-atom 'dH' array"):
        extract(frames, None, k=K, cutoff=RC)


def test_cli_extract(trajectory, tmp_path, capsys):
    out = tmp_path / "cand.extxyz"
    summary = tmp_path / "cand.json"
    args = [
        "extract",
        str(trajectory / "traj.extxyz"),
        "--ref",
        str(trajectory / "train.extxyz"),
        "-o",
        str(out),
        "-k",
        str(K),
        "-c",
        str(RC),
        "--mode",
        "cell",
        "--dedupe",
        "--max",
        "2",
        "--buffer",
        "1.0",
        "--summary",
        str(summary),
        "--json",
        "-q",
    ]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["chosen"] == 2 and printed["structures"] == 2
    assert json.loads(summary.read_text())["chosen"] == 2
    back = ase.io.read(out, ":")
    assert len(back) == 2 and all(a.pbc.all() and a.info["mode"] == "cell" for a in back)
    assert back[0].info["reference"] == str(trajectory / "train.extxyz")
    # bad inputs: one line, exit 2, nothing written
    bad = tmp_path / "bad.extxyz"
    for extra in (["--mode", "sphere"], ["--buffer", "-1"], ["--max", "0"]):
        assert main(args[:5] + ["-o", str(bad)] + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("atominfo: error:") and len(err.strip().splitlines()) == 1
    assert main(["extract", str(trajectory / "traj.extxyz"), "-o", str(bad), "-q"]) == 2
    assert "no per-atom 'dH' array" in capsys.readouterr().err
    assert not bad.exists()
    assert (
        main(
            [
                "extract",
                str(trajectory / "traj.extxyz"),
                "--ref",
                str(trajectory / "train.extxyz"),
                "-o",
                str(trajectory / "traj.extxyz"),
            ]
        )
        == 2
    )
