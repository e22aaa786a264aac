"""`run_dh` from Python gives the files and numbers of `atominfo dh`, resume included."""

from __future__ import annotations

from pathlib import Path

import pytest

from atominfo import Reference
from atominfo.cli import main
from atominfo.settings import DescriptorSpec, Reading
from atominfo.workflows.dh_run import DHRun, OwnPast, run_dh

DATA = Path(__file__).resolve().parent / "data"
HOT, FCC = str(DATA / "cu_hot_32.extxyz"), str(DATA / "cu_fcc_108.extxyz")


@pytest.fixture(scope="module")
def traj(tmp_path_factory):
    import ase.io
    import numpy as np

    base = ase.io.read(HOT)
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(5):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        frames.append(atoms)
    path = tmp_path_factory.mktemp("traj") / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return str(path)


def test_python_run_equals_the_command(traj, tmp_path):
    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir(), api.mkdir()
    argv = ["dh", traj, "--ref", FCC, "-o", str(cli / "o.extxyz"), "--table", str(cli / "t.csv")]
    assert main([*argv, "-k", "16", "-q"]) == 0
    ref = Reference.from_files([FCC], 0.015, k=16)
    run = run_dh(
        [traj], ref, output=api / "o.extxyz", table=api / "t.csv", spec=DescriptorSpec(k=16)
    )
    assert isinstance(run, DHRun) and run.frames == 5 and run.environments == 160
    for name in ("o.extxyz", "t.csv"):
        assert (api / name).read_bytes() == (cli / name).read_bytes()
    assert run.per_frame["frame"] == [0, 1, 2, 3, 4]
    assert len(run.per_frame["novelty"]) == 5
    assert "frames=5" in repr(run)


def test_own_past_and_reading(traj, tmp_path):
    run = run_dh(traj, OwnPast(0.015), table=tmp_path / "t.json", reading=Reading(index="::2"))
    assert run.reference == "self" and run.frames == 2  # frames 2 and 4 against their past
    assert run.per_frame["source_frame"] == [2, 4]


def test_spec_is_validated_once():
    from atominfo.errors import InputError

    with pytest.raises(InputError, match="cutoff"):
        DescriptorSpec(cutoff=-1.0)
