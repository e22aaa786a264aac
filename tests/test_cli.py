import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")
HOT = str(DATA / "cu_hot_32.extxyz")


def run_json(args, capsys):
    assert main(args + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_entropy_json(capsys, expected_json):
    out = run_json(["entropy", FCC, str(DATA / "mg_hcp_triclinic_16.extxyz"), HOT], capsys)
    rows = {r["set"]: r for r in out["results"]}
    assert rows["all"]["n"] == 156
    assert rows["all"]["entropy"] == pytest.approx(
        expected_json["entropy_crystals_h0.015"], abs=1e-8
    )
    assert rows[FCC]["log_n"] == pytest.approx(np.log(108))


def test_entropy_several_bandwidths(capsys, expected_json):
    out = run_json(
        ["entropy", FCC, str(DATA / "mg_hcp_triclinic_16.extxyz"), HOT, "-b", "0.015,0.05"], capsys
    )
    np.testing.assert_allclose(
        out["results"][-1]["diversity"],
        [expected_json["diversity_crystals_h0.015"], expected_json["diversity_crystals_h0.05"]],
        atol=1e-8,
    )


def test_entropy_table(capsys):
    assert main(["entropy", FCC]) == 0
    assert "H (nats)" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".npy", ".json", ".extxyz"])
def test_dh_outputs(tmp_path, capsys, expected, suffix):
    out = tmp_path / f"dh{suffix}"
    summary = run_json(["dh", HOT, "--ref", FCC, "-o", str(out)], capsys)
    ref = expected["dH_cuhot_given_cufcc_h0.015"]
    assert summary["novelty"] == pytest.approx(np.mean(ref > 0))
    if suffix == ".npy":
        got = np.load(out)
    elif suffix == ".json":
        got = np.array(json.loads(out.read_text())["dH"])
    else:
        frames = ase.io.read(out, ":")
        got = np.concatenate([f.arrays["dH"] for f in frames])
        assert len(frames) == 1 and len(frames[0]) == 32
    np.testing.assert_allclose(got, ref, atol=1e-8)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left


def test_dh_several_bandwidths_extxyz(tmp_path, capsys):
    out = tmp_path / "dh.extxyz"
    run_json(["dh", HOT, "--ref", FCC, "-b", "0.015,0.05", "-o", str(out)], capsys)
    atoms = ase.io.read(out)
    assert "dH_h0.015" in atoms.arrays and "dH_h0.05" in atoms.arrays


def test_overlap(capsys):
    out = run_json(["overlap", FCC, "--ref", FCC], capsys)
    assert out["overlap"] == 1.0 and out["novelty"] == 0.0


def test_descriptors_npy_and_npz(tmp_path, capsys, expected):
    npy = tmp_path / "X.npy"
    assert main(["descriptors", FCC, "-o", str(npy), "-k", "16", "-c", "4.0"]) == 0
    np.testing.assert_allclose(np.load(npy), expected["cu_fcc_108__k16_rc4.0"], atol=1e-9)
    npz = tmp_path / "X.npz"
    assert main(["descriptors", FCC, HOT, "-o", str(npz)]) == 0
    data = np.load(npz)
    assert data["X"].shape == (140, 63) and data["frame"][-1] == 1 and data["atom"][-1] == 31


def test_bandwidth_command(capsys):
    out = run_json(["bandwidth", "--volume", "15.8"], capsys)
    assert out["default_h"] == 0.015
    assert out["volume_rule_h"] == pytest.approx(atominfo.volume_bandwidth(15.8))
    assert out["fcc_calibration"]["distance"] == pytest.approx(0.0309, abs=0.001)


def test_index_selection(tmp_path, capsys):
    traj = tmp_path / "traj.extxyz"
    frames = [ase.io.read(HOT), ase.io.read(FCC), ase.io.read(HOT)]
    ase.io.write(traj, frames)
    out = run_json(["entropy", str(traj), "--index", "1:2"], capsys)
    assert out["results"][0]["n"] == 108


def test_rescale_option(capsys):
    out = run_json(["entropy", FCC, "--rescale-volume", "15.8"], capsys)
    assert out["results"][0]["n"] == 108


@pytest.mark.slow
def test_console_script_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "atominfo", "entropy", FCC, "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["n"] == 108


def test_outputs_have_the_usual_permissions(tmp_path, capsys):
    import os

    out = tmp_path / "X.npy"
    assert main(["descriptors", FCC, "-o", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o666 & ~umask)


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["snapshot", "x.dump", "--ref", "r.extxyz", "-o", "out.npy"], "with --resume to continue"),
        (["dh", "x.extxyz", "--ref", "r.extxyz", "-o", "out.npy"], "with --resume to continue"),
        (["dh", "x.extxyz", "--ref", "r.extxyz"], "nothing was written"),
        (
            ["dh", "x.extxyz", "--ref", "r.extxyz", "-o", "o.npy", "--chemiscope", "c.json"],
            "cannot be resumed: run it again with --restart",
        ),
        (["entropy", "x.extxyz"], "nothing was written"),
    ],
)
def test_interrupt_says_how_to_continue(monkeypatch, capsys, argv, expected):
    """Ctrl-C: exit 130 and one line; commands with --resume that were writing say how."""
    import atominfo.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    real = cli.command_parser

    def parser_with_interrupt(name):
        parser, module = real(name)
        monkeypatch.setattr(module, "run", interrupted)
        return parser, module

    monkeypatch.setattr(cli, "command_parser", parser_with_interrupt)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
