"""Picks spread across frames (issue 21): one phase of a trajectory cannot take every pick,
and --max-per-frame caps each frame."""

import json
from collections import Counter

import ase.io
import numpy as np
import pytest

from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.labelling import ExtractOptions, extract
from atominfo.workflows.labelling_picks import deduplicate

K, RC, H = 12, 3.5, 0.015


@pytest.fixture(scope="module")
def phases(tmp_path_factory):
    """A training set of mildly rattled crystals; a trajectory of 3 crystal frames with two
    displaced atoms each (a few novel atoms), then 3 strongly disordered frames (every atom
    novel, with larger dH than any atom of the crystal frames)."""
    d = tmp_path_factory.mktemp("spread")
    ase.io.write(d / "train.extxyz", [rattled_fcc_cu(2, 0.02, seed=s) for s in range(3)])
    frames = []
    for s in range(3):
        atoms = rattled_fcc_cu(2, 0.02, seed=20 + s)
        atoms.positions[[3, 17]] += [[0.35, 0.0, 0.0], [0.0, -0.3, 0.1]]
        frames.append(atoms)
    frames += [rattled_fcc_cu(2, 0.35, seed=30 + s) for s in range(3)]
    ase.io.write(d / "traj.extxyz", frames)
    ref = Reference.from_files([d / "train.extxyz"], H, k=K, cutoff=RC)
    return d, ref


def _frames(result):
    return Counter(int(result.candidates.frame[c]) for c in result.chosen)


def test_the_phases_are_as_built(phases):
    d, ref = phases
    result = extract(d / "traj.extxyz", ref, k=K, cutoff=RC, spread=False, max_picks=6)
    c = result.candidates
    crystal = c.frame < 3
    assert crystal.any() and (~crystal).sum() == 3 * 32
    assert (c.dH[~crystal] > c.dH[crystal].max()).sum() > 6
    # the old rule, the largest dH first: the disordered phase takes every pick
    assert set(_frames(result)) <= {3, 4, 5}


@pytest.mark.parametrize("dedupe", [False, True])
def test_picks_are_spread_across_frames_by_default(phases, dedupe):
    d, ref = phases
    result = extract(d / "traj.extxyz", ref, k=K, cutoff=RC, max_picks=6, dedupe=dedupe)
    frames = _frames(result)
    # every frame holding a novel atom gives one pick before any gives a second
    assert set(frames) == set(range(6)) and max(frames.values()) == 1
    # the largest dH is still picked first
    assert result.chosen[0] == int(np.argmax(result.candidates.dH))
    more = extract(d / "traj.extxyz", ref, k=K, cutoff=RC, max_picks=9, dedupe=dedupe)
    assert more.chosen[:6] == result.chosen and max(_frames(more).values()) == 2


@pytest.mark.parametrize("dedupe", [False, True])
@pytest.mark.parametrize("spread", [False, True])
def test_max_per_frame_caps_each_frame(phases, dedupe, spread):
    d, ref = phases
    n = 2
    result = extract(
        d / "traj.extxyz", ref, k=K, cutoff=RC, max_per_frame=n, dedupe=dedupe, spread=spread
    )
    frames = _frames(result)
    assert max(frames.values()) <= n
    # frames 0-2 hold two novel atoms (of different environments): both are picked
    assert {f for f, count in frames.items() if count == n} >= {3, 4, 5}
    assert set(frames) == set(range(6))
    if not dedupe:
        assert len(result.chosen) == 6 * n
    else:
        assert result.deduplication.stopped_by in ("coverage", "max_per_frame")
        assert result.to_dict()["deduplication"]["max_per_frame"] == n
    assert result.to_dict()["max_per_frame"] == n and result.to_dict()["frames_picked"] == 6


def test_deduplicate_spreads_over_frames():
    rng = np.random.default_rng(3)
    Y = rng.normal(scale=0.5, size=(40, 5))
    dH = np.concatenate([np.full(30, 50.0), np.full(10, 5.0)]) + rng.random(40)
    groups = np.repeat([0, 1], [30, 10])
    plain = deduplicate(Y, dH, H, max_picks=4, duplicate_distance=0.0)
    assert all(p < 30 for p in plain.picks)
    spread = deduplicate(Y, dH, H, max_picks=4, duplicate_distance=0.0, frames=groups, spread=True)
    assert [int(groups[p]) for p in spread.picks] == [0, 1, 0, 1]
    capped = deduplicate(Y, dH, H, duplicate_distance=0.0, frames=groups, max_per_frame=3)
    assert Counter(int(groups[p]) for p in capped.picks) == {0: 3, 1: 3}
    assert capped.stopped_by == "max_per_frame" and capped.remaining_max_dH > 0
    with pytest.raises(InputError, match="5 frame numbers for 40 candidates"):
        deduplicate(Y, dH, H, frames=groups[:5])
    with pytest.raises(InputError, match="max_per_frame must be"):
        deduplicate(Y, dH, H, frames=groups, max_per_frame=0)


def test_cli_max_per_frame(phases, tmp_path, capsys):
    d, _ = phases
    out = tmp_path / "cand.extxyz"
    argv = ["extract", str(d / "traj.extxyz"), "--ref", str(d / "train.extxyz"), "-o", str(out)]
    argv += ["-k", str(K), "-c", str(RC), "--max-per-frame", "1", "--json", "-q"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    back = ase.io.read(out, ":")
    assert sorted(a.info["frame"] for a in back) == list(range(6))
    assert printed["frames_picked"] == 6 and printed["spread"] is True
    assert main([*argv, "--no-spread", "--max", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["spread"] is False and printed["structures"] == 2
    assert main([*argv[:-2], "--max", "2"]) == 0
    assert "from 2 frame(s)" in capsys.readouterr().out
    assert main([*argv[:10], "--max-per-frame", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atominfo: error:") and "--max-per-frame" in err
    with pytest.raises(InputError, match="max_per_frame must be"):
        ExtractOptions(max_per_frame=0)
