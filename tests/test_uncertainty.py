"""Error vs dH: running average, correlations, split-conformal intervals, `atominfo calibrate`."""

import json

import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.workflows.uncertainty import (
    ConformalErrorEstimator,
    calibrate,
    correlations,
    force_errors,
    running_average,
)


def synthetic(n, seed):
    """Errors that grow with dH, with heteroscedastic log-normal noise."""
    rng = np.random.default_rng(seed)
    dH = rng.uniform(-6, 8, n)
    scale = 0.02 + 0.05 * np.log1p(np.exp(dH))  # softplus: small inside, growing outside
    return dH, scale * rng.lognormal(0.0, 0.5, n)


def test_running_average_matches_definition():
    dH, err = synthetic(2000, 0)
    curve = running_average(dH, err)
    width = (dH.max() - dH.min()) / 20
    assert curve.bin_width == pytest.approx(width)
    for c, m, n in zip(curve.centre, curve.mean_error, curve.count):
        inside = np.abs(dH - c) <= 0.75 * width
        assert n == inside.sum()
        assert m == pytest.approx(err[inside].mean())
    assert curve.centre[0] == pytest.approx(dH.min() + width / 2)
    assert np.all(np.diff(curve.mean_error[2:]) > -0.02)  # grows with dH


def test_running_average_empty_bins_are_nan():
    curve = running_average([0.0, 0.1, 10.0], [1.0, 1.0, 2.0], n_bins=20)
    assert np.isnan(curve.mean_error[10]) and curve.count[10] == 0
    assert curve.mean_error[0] == pytest.approx(1.0)


def test_correlations():
    dH, err = synthetic(3000, 1)
    r = correlations(dH, err)
    assert 0.5 < r.pearson < 1 and 0.5 < r.spearman < 1 and r.n == 3000
    r = correlations(dH, -err)
    assert r.spearman < -0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conformal_coverage_is_nominal(seed):
    """90% nominal coverage gives 90 +- 3% on held-out data from the same distribution."""
    dH, err = synthetic(4000, seed)
    estimator = ConformalErrorEstimator(0.9, seed=seed).fit(dH, err)
    dH_new, err_new = synthetic(20000, 100 + seed)
    assert abs(estimator.empirical_coverage(dH_new, err_new) - 0.9) <= 0.03
    lower, upper = estimator.interval(dH_new)
    assert np.all(lower >= 0) and np.all(upper > lower)
    # Adaptive width: intervals are wider where dH (and the error) is larger.
    assert np.mean((upper - lower)[dH_new > 4]) > 2 * np.mean((upper - lower)[dH_new < -2])


def test_calibrate_reports_held_out_coverage():
    dH, err = synthetic(4000, 3)
    result = calibrate(dH, err, coverage=0.8, test_fraction=0.5, seed=3)
    assert result.n_test == 2000 and result.n_train == 2000
    assert abs(result.held_out_coverage - 0.8) <= 0.03
    assert result.mean_interval_width > 0


def test_bad_input():
    with pytest.raises(InputError, match="length"):
        running_average([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="NaN"):
        correlations([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(InputError, match="coverage"):
        ConformalErrorEstimator(1.5)
    with pytest.raises(InputError, match="not fitted"):
        ConformalErrorEstimator().predict([0.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d, e: ConformalErrorEstimator(float("nan")), "coverage"),
        (
            lambda d, e: ConformalErrorEstimator(0.9, calibration_fraction=1.0),
            "calibration_fraction",
        ),
        (lambda d, e: ConformalErrorEstimator(0.9, n_bins=0), "n_bins"),
        (lambda d, e: ConformalErrorEstimator(0.9, seed=-1), "seed"),
        (lambda d, e: running_average(d, e, window=float("nan")), "window"),
        (lambda d, e: running_average(d, e, n_bins=2.5), "n_bins"),
        (lambda d, e: calibrate(d, e, test_fraction=0.0), "test_fraction"),
        (lambda d, e: calibrate(d, e, coverage=1.0), "coverage"),
    ],
)
def test_parameters_are_validated(call, match):
    dH, err = synthetic(200, 5)
    with pytest.raises(InputError, match=match):
        call(dH, err)


def test_too_few_calibration_points_is_an_error_not_an_infinite_interval():
    dH, err = synthetic(12, 6)
    with pytest.raises(InputError, match="too few calibration points .* need at least 19"):
        ConformalErrorEstimator(0.95).fit(dH, err)


def test_calibration_json_has_no_nan():
    dH = np.concatenate([np.linspace(0, 1, 200), [10.0]])  # empty bins in between
    err = np.abs(np.sin(dH)) + 0.1
    result = calibrate(dH, err, seed=2).to_dict()
    text = json.dumps(result, allow_nan=False)
    assert "estimator" not in result and None in result["running_average"]["mean_error"]
    assert json.loads(text)["n_test"] == result["n_test"]


def frames_with_forces(n_frames=3, n_atoms=20, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        from ase import Atoms

        atoms = Atoms("Cu" + str(n_atoms), positions=rng.uniform(0, 10, (n_atoms, 3)))
        forces = rng.normal(size=(n_atoms, 3))
        atoms.arrays["predicted_forces"] = forces + rng.normal(0, 0.1, (n_atoms, 3))
        atoms.calc = SinglePointCalculator(atoms, forces=forces)
        frames.append(atoms)
    return frames


def test_force_errors_from_extxyz(tmp_path):
    frames = frames_with_forces()
    path = tmp_path / "f.extxyz"
    ase.io.write(path, frames, format="extxyz")
    err = force_errors(ase.io.read(path, ":"))
    expected = np.concatenate(
        [np.linalg.norm(f.get_forces() - f.arrays["predicted_forces"], axis=1) for f in frames]
    )
    np.testing.assert_allclose(err, expected, atol=1e-6)
    with pytest.raises(InputError, match="MACE_forces"):
        force_errors(frames, predicted="MACE_forces")


def test_cli_calibrate(tmp_path, capsys):
    dH, err = synthetic(3000, 4)
    np.save(tmp_path / "dh.npy", dH)
    np.save(tmp_path / "err.npy", err)
    out, plot = tmp_path / "cal.json", tmp_path / "cal.png"
    assert (
        main(
            [
                "calibrate",
                "--dh",
                str(tmp_path / "dh.npy"),
                "--errors",
                str(tmp_path / "err.npy"),
                "-o",
                str(out),
                "--plot",
                str(plot),
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["held_out_coverage"] == saved["held_out_coverage"]
    assert abs(saved["held_out_coverage"] - 0.9) < 0.04
    assert len(saved["running_average"]["centre"]) == 20
    assert saved["seed"] == 0 and plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_calibrate_from_extxyz(tmp_path, capsys):
    frames = frames_with_forces(n_frames=4, n_atoms=25)
    for f in frames:
        f.arrays["dH"] = np.random.default_rng(0).normal(size=len(f))
    path = tmp_path / "f.extxyz"
    ase.io.write(path, frames, format="extxyz")
    assert main(["calibrate", "--errors", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["correlations"]["n"] == 100
    assert main(["calibrate", "--dh", str(path), "--errors", str(tmp_path / "none.npy")]) == 2
