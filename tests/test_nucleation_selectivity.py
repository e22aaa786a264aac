"""How selective the solid reference is, before clustering (issue 21, item 3).

A solid reference sampled near the melting point calls part of a crystal-free melt
solid-like, and those atoms form clusters that read as nuclei. The run measures
the fraction a melt gets (the first frame, or the liquid reference) and the
largest cluster random atoms in that proportion form, and warns when that is a
nucleus-sized cluster. EMT Cu: a melt made at 3000 K and held at 880 K, crystal
references from MD at 400 K (cold, as the paper's) and 1250 K (warm).
"""

import json
import warnings

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.settings import Reading
from atominfo.structures.datasets import CU_LATTICE, fcc_cu, md_frames
from atominfo.workflows.clusters_run import run_clusters
from atominfo.workflows.nucleation import (
    ClusterOptions,
    chance_largest,
    find_clusters,
    iter_trajectory_clusters,
)

H = 0.02  # 1/Å


@pytest.fixture(scope="module")
def data():
    """Melt frames at 880 K (108 atoms each, no crystal) and crystal frames at 400 / 1250 K."""
    start = fcc_cu(3, CU_LATTICE * 1.05 ** (1 / 3))
    start.rattle(0.3, seed=1)
    hot = md_frames(start, 3000.0, 1, interval=10, equilibration=50, seed=0, timestep_fs=4.0)[0]
    melt = md_frames(hot, 880.0, 4, 20, equilibration=100, seed=1, timestep_fs=4.0, friction=0.1)

    def crystal(temperature):
        cell = fcc_cu(3, CU_LATTICE * (1 + 1.6e-5 * temperature))  # thermal expansion
        return md_frames(cell, temperature, 6, 10, equilibration=100, seed=2, timestep_fs=4.0)

    cold, warm = crystal(400.0), crystal(1250.0)
    return {
        "melt": melt[0].repeat(2),  # 864 atoms
        "liquid": melt[1:],
        "cold_frames": cold,
        "cold": atominfo.Reference.from_structures(cold, h=H),
        "warm": atominfo.Reference.from_structures(warm, h=H),
    }


def clusters_of(melt, solid, **kwargs):
    """(first FrameClusters, warnings given)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        (frame,) = iter_trajectory_clusters(melt, solid, **kwargs)
    return frame, [str(w.message) for w in record if "solid-like" in str(w.message)]


@pytest.mark.slow
def test_warm_reference_invents_nuclei_and_warns(data):
    frame, said = clusters_of(data["melt"], data["warm"])
    sel = frame.selectivity
    largest = frame.summary()["largest"]
    # the pathology: a crystal-free melt shows a "nucleus", while under half of it is
    # solid-like (the former warning waited for 50%)
    assert largest >= 10 and frame.solid.mean() < 0.5
    assert sel.sample.startswith("the first frame") and sel.environments == len(data["melt"])
    assert sel.solid_fraction == pytest.approx(frame.solid.mean())
    assert sel.chance_largest >= ClusterOptions().chance_cluster_warning
    assert len(said) == 1 and said[0] == sel.warning
    assert "colder solid reference" in said[0] and "--liquid-ref" in said[0]
    assert f"{sel.chance_largest} atoms" in said[0] and "frame 0" in said[0]


@pytest.mark.slow
def test_cold_reference_invents_nothing_and_is_silent(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (frame,) = iter_trajectory_clusters(data["melt"], data["cold"])
    sel = frame.selectivity
    assert sel.warning is None and sel.chance_largest < ClusterOptions().chance_cluster_warning
    assert frame.summary()["largest"] < ClusterOptions().chance_cluster_warning
    assert sel.solid_fraction < 0.05


@pytest.mark.slow
def test_liquid_reference_is_the_sample_and_does_not_rescue_a_warm_reference(data):
    liquid = atominfo.Reference.from_structures(data["liquid"], h=H)
    # measured chance clusters: 12 atoms (warm), 3 (cold); 6 keeps both sides clear
    options = ClusterOptions(chance_cluster_warning=6)
    warm, said = clusters_of(data["melt"], data["warm"], liquid_reference=liquid, options=options)
    assert warm.selectivity.sample == "the liquid reference"
    assert warm.selectivity.environments == len(liquid)
    assert len(said) == 1 and "colder solid reference" in said[0]
    assert "--liquid-ref" not in said[0]  # it is already given
    cold, said = clusters_of(data["melt"], data["cold"], liquid_reference=liquid, options=options)
    assert said == [] and cold.selectivity.warning is None
    assert cold.selectivity.solid_fraction < warm.selectivity.solid_fraction


def test_chance_largest_bounds():
    atoms = fcc_cu(3)
    options = ClusterOptions()
    assert chance_largest(atoms, 0.0, options) == 0
    # every atom solid-like: the whole crystal is one cluster, as find_clusters says
    everything = find_clusters(atoms, np.ones(len(atoms), bool))
    assert chance_largest(atoms, 1.0, options) == len(everything[0]) == len(atoms)
    # random atoms in growing proportion never make smaller clusters (same draws)
    sizes = [chance_largest(atoms, p, options) for p in (0.05, 0.3, 0.8)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    for bad in (1.5, -0.1, float("nan"), "half", None, True):
        with pytest.raises(InputError, match="fraction"):
            chance_largest(atoms, bad, options)
    with pytest.raises(InputError, match="options"):
        chance_largest(atoms, 0.5, None)
    with pytest.raises(InputError, match="chance_cluster_warning"):
        ClusterOptions(chance_cluster_warning=0)


@pytest.mark.slow
def test_run_and_cli_report_selectivity_and_number_frames_as_in_the_file(data, tmp_path, capsys):
    traj, ref = tmp_path / "melt.extxyz", tmp_path / "cold.extxyz"
    ase.io.write(traj, [data["melt"]] * 3, format="extxyz")
    ase.io.write(ref, data["cold_frames"], format="extxyz")
    run = run_clusters([str(traj)], data["cold"], reading=Reading(index="1:"))
    assert [r["source_frame"] for r in run.per_frame] == [1, 2]
    assert [r["frame"] for r in run.per_frame] == [0, 1]
    assert run.selectivity.sample == f"the first frame ({traj}, frame 1)"
    assert "solid reference (" in run.title() and "h = 0.02" in run.title()
    table = tmp_path / "c.json"
    run = run_clusters(traj, data["cold"], table=table, options=ClusterOptions(references="X"))
    saved = json.loads(table.read_text())
    assert saved["references"] == "X" and run.title().endswith("against X")
    assert saved["selectivity"]["chance_largest"] == run.selectivity.chance_largest
    base = ["clusters", str(traj), "--ref", str(ref), "--bandwidth", str(H), "--index", "1:"]
    assert main([*base, "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"against solid reference {ref}" in out[1]
    assert [line.split()[0] for line in out[4:]] == ["1", "2"]  # frames as in the file
    assert main([*base, "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["selectivity"]["sample"].endswith("frame 1)")
    assert result["selectivity"]["warning"] is None
    assert main([*base, "--warn-chance-cluster", "0", "-q"]) == 2
    assert "--warn-chance-cluster" in capsys.readouterr().err
