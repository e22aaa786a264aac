"""Novelty of a trajectory against its own past: `iter_self_dh` and `atominfo dh --ref self`."""

import json

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.runs.stream import partial_path, state_path
from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames, rattled_fcc_cu
from atominfo.workflows.trajectory import iter_self_dh


@pytest.fixture(scope="module")
def traj(tmp_path_factory):
    """Six frames of 32 atoms, increasingly disordered, with a timestep each."""
    frames = [
        rattled_fcc_cu(2, sigma=s, seed=i) for i, s in enumerate([0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    ]
    for i, f in enumerate(frames):
        f.info["timestep"] = 100 * i
    path = tmp_path_factory.mktemp("self") / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return path, ase.io.read(path, ":")  # as stored (positions rounded by the file)


@pytest.fixture(scope="module")
def heating():
    """EMT Cu (32 atoms): three frames of the crystal at 300 K, then three of the melt."""
    crystal = md_frames(fcc_cu(2), 300.0, 3, interval=10, equilibration=40, seed=1)
    melt = cu_melt(repeat=2, n_frames=3, melt_steps=150, interval=10)
    return crystal + melt


def brute_force(frames, h):
    """dH of frame t against concat(Y_0 .. Y_{t-1}) by direct calls, t >= 1."""
    Y = [atominfo.descriptors(f) for f in frames]
    return [atominfo.delta_entropy(Y[t], np.concatenate(Y[:t]), h) for t in range(1, len(Y))]


@pytest.mark.parametrize("h", [0.015, [0.01, 0.03]])
def test_equals_brute_force(traj, h):
    path, frames = traj
    got = list(iter_self_dh(str(path), h))
    assert [f.number for f in got] == [1, 2, 3, 4, 5]  # frame 0 has no past
    assert [f.timestep for f in got] == [100, 200, 300, 400, 500]
    for f, expected in zip(got, brute_force(frames, h)):
        assert f.dH.shape == expected.shape
        np.testing.assert_allclose(f.dH, expected, rtol=0, atol=1e-9)


def test_skip_keeps_the_past_and_progress_counts_every_frame(traj):
    path, _ = traj
    done = []
    full = list(iter_self_dh(str(path), 0.015))
    part = list(iter_self_dh(str(path), 0.015, skip=4, progress=done.append))
    assert [f.number for f in part] == [4, 5] and done == [32] * 6
    for a, b in zip(part, full[3:]):
        np.testing.assert_array_equal(a.dH, b.dH)


def test_single_frame_and_bad_options(traj, tmp_path):
    one = tmp_path / "one.extxyz"
    ase.io.write(one, traj[1][0])
    assert list(iter_self_dh(str(one), 0.015)) == []
    with pytest.raises(InputError):
        list(iter_self_dh(str(one), -1.0))
    with pytest.raises(InputError):
        list(iter_self_dh(str(one), 0.015, skip=-1))


@pytest.mark.slow
def test_novelty_rises_when_the_crystal_melts(heating):
    """The crystal frames repeat their past; every melt frame leaves it."""
    novelty = {f.number: f.summary()["novelty"] for f in iter_self_dh(heating, 0.015)}
    crystal = [novelty[t] for t in (1, 2)]
    melt = [novelty[t] for t in (3, 4, 5)]
    assert min(melt) > max(crystal)
    assert novelty[3] > 0.9  # the first liquid frame: almost every atom is new


def run_json(argv, capsys):
    assert main([*argv, "--json", "-q"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_cli_table_matches_api(traj, tmp_path, capsys):
    path, frames = traj
    table = tmp_path / "t.json"
    out = tmp_path / "dh.npy"
    summary = run_json(
        ["dh", str(path), "--ref", "self", "-o", str(out), "--table", str(table)], capsys
    )
    assert summary["reference"] == "self"
    assert summary["frames"] == 5 and summary["environments"] == 160
    assert summary["reference_environments"] == 160  # the past of the last frame
    expected = brute_force(frames, 0.015)
    np.testing.assert_allclose(np.load(out), np.concatenate(expected), atol=1e-9)
    columns = json.loads(table.read_text())
    assert columns["frame"] == [1, 2, 3, 4, 5]
    assert columns["novelty"] == pytest.approx([float(np.mean(e > 0)) for e in expected])
    assert summary["novelty"] == pytest.approx(float(np.mean(np.concatenate(expected) > 0)))
    # without files: the same statistics
    assert run_json(["dh", str(path), "--ref", "self"], capsys)["novelty"] == summary["novelty"]


@pytest.mark.parametrize("suffix", [".extxyz", ".npy"])
def test_interrupt_after_frame_2_then_resume_is_byte_identical(
    traj, tmp_path, capsys, monkeypatch, suffix
):
    import atominfo.workflows.trajectory as module

    path = str(traj[0])
    full, out = tmp_path / f"full{suffix}", tmp_path / f"dh{suffix}"
    full_t, table = tmp_path / "full.csv", tmp_path / "t.csv"
    run_json(["dh", path, "--ref", "self", "-o", str(full), "--table", str(full_t)], capsys)
    original = module.iter_self_dh

    def stops_after_frame_2(*args, **kwargs):
        for frame in original(*args, **kwargs):
            if frame.number == 3:
                with open(partial_path(out), "ab") as fh:  # a frame cut in the middle
                    fh.write(b"32\nLattice=")
                raise KeyboardInterrupt  # Ctrl-C
            yield frame

    monkeypatch.setattr(module, "iter_self_dh", stops_after_frame_2)
    argv = ["dh", path, "--ref", "self", "-o", str(out), "--table", str(table)]
    assert main([*argv, "-q"]) == 130
    assert not out.exists() and not table.exists()
    assert json.loads(state_path(out).read_text())["state"]["frames_done"] == 2  # frames 1 and 2
    monkeypatch.setattr(module, "iter_self_dh", original)
    summary = run_json([*argv, "--resume"], capsys)
    assert summary["frames"] == 5 and summary["reference_environments"] == 160
    assert out.read_bytes() == full.read_bytes()
    assert table.read_bytes() == full_t.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [full.name, out.name, full_t.name, table.name]
    )


def test_resume_refuses_a_run_against_files(traj, tmp_path, capsys, monkeypatch):
    """The checkpoint records --ref self: resuming with a reference file is refused."""
    import atominfo.workflows.trajectory as module

    path = str(traj[0])
    out = tmp_path / "dh.npy"
    original = module.iter_self_dh

    def stops(*args, **kwargs):
        for frame in original(*args, **kwargs):
            if frame.number == 2:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(module, "iter_self_dh", stops)
    assert main(["dh", path, "--ref", "self", "-o", str(out), "-q"]) == 130
    capsys.readouterr()
    assert main(["dh", path, "--ref", path, "-o", str(out), "--resume", "-q"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("atominfo: error:")
        and "--resume: the interrupted run had other options (ref: self in the interrupted run"
        in err
    )
    assert len(err.strip().splitlines()) == 1


def test_cli_errors(traj, tmp_path, capsys):
    path = str(traj[0])
    one = tmp_path / "one.extxyz"
    ase.io.write(one, traj[1][0])
    out = tmp_path / "dh.npy"
    cases = [
        (["dh", path, "--ref", "self", "--ref", path], "give no other --ref"),
        (["dh", path, "--ref", path, "--ref", "self"], "give no other --ref"),
        (["dh", str(one), "--ref", "self", "-o", str(out)], "no past"),
        (["dh", path, "--ref", "self", "--bandwidth", "-1"], "bandwidth"),
    ]
    for argv, message in cases:
        assert main([*argv, "-q"]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("atominfo: error:") and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.extxyz"]  # nothing left


def test_cli_text_and_plot(traj, tmp_path, capsys):
    plot = tmp_path / "self.png"
    assert main(["dh", str(traj[0]), "--ref", "self", "--plot", str(plot), "-q"]) == 0
    text = capsys.readouterr().out
    assert "160 test environments in 5 frames, each frame against all earlier ones" in text
    assert plot.stat().st_size > 0
