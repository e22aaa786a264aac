"""Solid-like atoms against a solid and a liquid reference; the single-reference warning;
`watch --alarm-novelty-below`.

A solid reference that holds liquid-like environments (here: crystals plus three
snapshots of the melt, as a crystal sampled near its melting point may) makes a
melt look solid-like; a liquid reference removes those atoms.
"""

import json
import warnings

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.geometry import get_distances
from ase.neighborlist import neighbor_list

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.structures.datasets import CU_LATTICE, fcc_cu, md_frames, rattled_fcc_cu
from atominfo.workflows.nucleation import iter_trajectory_clusters, solid_like

H = 0.03  # 1/Å
K = 32


def liquid(seed, n_frames):
    """Snapshots of liquid Cu (108 atoms, EMT MD at 3000 K, liquid density)."""
    start = fcc_cu(3, CU_LATTICE * 1.05 ** (1 / 3))
    start.rattle(0.3, seed=seed)
    return md_frames(
        start, 3000.0, n_frames, interval=10, equilibration=50, seed=seed, timestep_fs=4.0
    )


@pytest.fixture(scope="module")
def data():
    """melt (864 atoms), the seeded melt, crystal frames and two sets of liquid frames."""
    melt = liquid(0, 1)[0].repeat(2)
    more = liquid(11, 6)
    crystal = [rattled_fcc_cu(4, 0.03, seed=s) for s in range(10)]
    return {
        "melt": melt,
        "seeded": seed_in(melt),
        "crystal": crystal,
        "contamination": more[0::2],
        "liquid": more[1::2],
    }


def seed_in(melt, radius=7.0):
    """A spherical FCC seed in the middle of `melt`: (atoms, n_seed (first), core atoms)."""
    centre = melt.cell.sum(axis=0) / 2
    crystal = rattled_fcc_cu(6, sigma=0.02, seed=7)
    mid = np.argmin(np.linalg.norm(crystal.positions - crystal.cell.sum(axis=0) / 2, axis=1))
    sites = crystal.positions - crystal.positions[mid]
    seed = sites[np.linalg.norm(sites, axis=1) <= radius] + centre
    _, dist = get_distances(melt.positions, seed, cell=melt.cell, pbc=True)
    keep = (dist.min(axis=1) > 2.2) & (np.linalg.norm(melt.positions - centre, axis=1) > radius)
    atoms = Atoms(f"Cu{len(seed)}", positions=seed, cell=melt.cell, pbc=True) + melt[keep]
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    core = [a for a in range(len(seed)) if np.all(j[i == a][np.argsort(d[i == a])[:K]] < len(seed))]
    return atoms, len(seed), np.array(core)


@pytest.fixture(scope="module")
def refs(data):
    """(solid reference holding liquid-like environments, liquid reference), h = 0.03."""
    solid = atominfo.Reference.from_structures(data["crystal"] + data["contamination"], h=H)
    return solid, atominfo.Reference.from_structures(data["liquid"], h=H)


def test_solid_like_rule():
    dH, dH_liquid = np.array([-1.0, -1.0, 0.5]), np.array([-0.5, -2.0, -3.0])
    assert solid_like(dH).tolist() == [True, True, False]
    assert solid_like(dH, dH_liquid, 100, 100).tolist() == [True, False, False]
    # per environment: a solid reference 10x larger needs exp(-dH) 10x larger
    assert solid_like(dH, dH_liquid, 1000, 100).tolist() == [False, False, False]
    assert solid_like(dH, dH_liquid, 100, 1000).tolist() == [True, True, False]
    with pytest.raises(InputError, match="n_solid"):
        solid_like(dH, dH_liquid)
    with pytest.raises(InputError, match="shape"):
        solid_like(dH, dH_liquid[:2], 1, 1)


@pytest.mark.slow
def test_single_reference_makes_the_melt_solid_and_warns(data, refs):
    solid, liquid_ref = refs
    with pytest.warns(UserWarning, match=r"first frame .*frame 0.*--liquid-ref") as record:
        frames = list(iter_trajectory_clusters([data["melt"], data["melt"]], solid))
    assert len([w for w in record if "solid-like" in str(w.message)]) == 1  # once
    one = frames[0]
    assert one.solid.mean() > 0.5 and one.summary()["largest"] > 100  # the pathology
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (two,) = iter_trajectory_clusters(data["melt"], solid, liquid_reference=liquid_ref)
        (quiet,) = iter_trajectory_clusters(
            data["melt"], solid, solid_fraction_warning=1.0, chance_cluster_warning=10**9
        )
    assert quiet.summary()["largest"] == one.summary()["largest"]
    assert two.summary()["largest"] <= 4 and two.solid.mean() < 0.05
    assert np.array_equal(two.dH, one.dH)
    assert np.array_equal(
        two.dH_liquid, liquid_ref.delta_entropy(atominfo.descriptors(data["melt"]))
    )
    assert np.array_equal(two.solid, solid_like(two.dH, two.dH_liquid, len(solid), len(liquid_ref)))


@pytest.mark.slow
def test_two_references_still_find_the_seed(data, refs):
    solid, liquid_ref = refs
    atoms, n_seed, core = data["seeded"]
    assert len(core) >= 10
    (frame,) = iter_trajectory_clusters(atoms, solid, liquid_reference=liquid_ref)
    largest = frame.clusters[0]
    assert np.all(largest < n_seed) and set(core) <= set(largest.tolist())
    assert frame.solid[n_seed:].mean() < 0.05  # the melt around it stays liquid-like


@pytest.mark.slow
def test_parameters_are_validated(data, refs):
    solid, liquid_ref = refs
    melt = data["melt"]
    for value in (0.0, 1.5, float("nan"), "x"):
        with pytest.raises(InputError, match="solid_fraction_warning"):
            next(iter_trajectory_clusters(melt, solid, solid_fraction_warning=value))
    other_h = atominfo.Reference(liquid_ref.X, h=0.05)
    with pytest.raises(InputError, match="bandwidth"):
        next(iter_trajectory_clusters(melt, solid, liquid_reference=other_h))
    with pytest.raises(InputError, match="liquid_reference must be a Reference"):
        next(iter_trajectory_clusters(melt, solid, liquid_reference=liquid_ref.X))
    other_k = atominfo.Reference.from_structures(data["liquid"][:1], h=H, k=16)
    with pytest.raises(InputError, match="k = 16"):
        next(iter_trajectory_clusters(melt, solid, liquid_reference=other_k))
    with pytest.raises(InputError, match="method"):
        next(iter_trajectory_clusters(melt, solid, method="louvain"))


@pytest.mark.slow
def test_cli_liquid_ref(data, tmp_path, capsys):
    traj, sref, lref = (tmp_path / n for n in ("melt.extxyz", "solid.extxyz", "liquid.extxyz"))
    ase.io.write(traj, data["melt"], format="extxyz")
    ase.io.write(sref, data["crystal"] + data["contamination"], format="extxyz")
    ase.io.write(lref, data["liquid"], format="extxyz")
    base = ["clusters", str(traj), "--ref", str(sref), "--bandwidth", str(H), "--json", "-q"]
    assert main(base) == 0
    single = json.loads(capsys.readouterr().out)
    assert single["liquid_reference"] is False and single["largest"] > 100
    out = tmp_path / "labelled.extxyz"
    assert main([*base, "--liquid-ref", str(lref), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "--liquid-ref" not in captured.err
    two = json.loads(captured.out)
    assert two["liquid_reference"] is True and two["largest"] <= 4
    labelled = ase.io.read(out)
    assert labelled.arrays["dH_liquid"].shape == (len(data["melt"]),)
    assert main([*base, "--warn-solid-fraction", "0"]) == 2
    assert "--warn-solid-fraction" in capsys.readouterr().err
    assert main([*base, "--liquid-ref", str(tmp_path / "missing.extxyz")]) == 2
    assert "missing.extxyz" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_single_reference_warning_line(data, tmp_path, capsys):
    traj, sref = tmp_path / "melt.extxyz", tmp_path / "solid.extxyz"
    ase.io.write(traj, data["melt"], format="extxyz")
    ase.io.write(sref, data["crystal"] + data["contamination"], format="extxyz")
    assert main(["clusters", str(traj), "--ref", str(sref), "--bandwidth", str(H), "-q"]) == 0
    err = capsys.readouterr().err
    assert "atominfo: warning:" in err and "--liquid-ref" in err and "frame 0" in err


def test_watch_alarm_novelty_below(tmp_path, capsys):
    """Against a reference of the crystal, a frame that orders has a low novel fraction."""
    ref, dump = tmp_path / "ref.extxyz", tmp_path / "run.extxyz"
    ase.io.write(ref, [rattled_fcc_cu(3, 0.1, seed=s) for s in range(3)], format="extxyz")
    ase.io.write(
        dump, [rattled_fcc_cu(3, 0.4, seed=9), rattled_fcc_cu(3, 0.1, seed=9)], format="extxyz"
    )
    base = ["watch", str(dump), "--ref", str(ref), "--idle-timeout", "0.2", "--poll", "0.05"]
    assert main([*base, "--json", "--alarm-novelty-below", "0.5", "--stop-on-alarm"]) == 3
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["alarm"] for r in rows] == [False, True]
    assert rows[0]["novelty"] >= 0.5 > rows[1]["novelty"]
    assert main([*base, "--alarm-novelty-below", "0.5", "-q"]) == 0
    assert "ALARM: novel fraction below" in capsys.readouterr().out
    assert main([*base, "--alarm-novelty", "0.2", "--alarm-novelty-below", "0.5"]) == 2
    assert "every frame" in capsys.readouterr().err
    assert main([*base, "--alarm-novelty-below", "1.5"]) == 2
    assert "--alarm-novelty-below" in capsys.readouterr().err
