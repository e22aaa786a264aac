"""The class of a learning curve (saturated / still rising / not determined) and what it
allows: the failing cases of issue 21 and a property test over random curves."""

import json
import math

import numpy as np
import pytest

from atominfo.descriptor import load_frames
from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames
from atominfo.workflows.curves import LearningCurve, learning_curve, subset_sizes
from atominfo.workflows.curves_asymptote import EXTRAPOLATION, asymptote_model
from atominfo.workflows.curves_rise import TOLERANCE, extrapolation, rise_test

H = 0.015


def _numbers(value):
    """Every number in a JSON-ready value (nested dicts and lists)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def assert_consistent(curve: LearningCurve, environments: int) -> None:
    """No output of `curve` contradicts another, and no number is absurd."""
    d = curve.to_dict()
    text = "\n".join(curve.summary_lines())
    json.dumps(d, allow_nan=False)
    test, tol, total = curve.test, curve.test.tolerance, curve.total
    ceiling = math.log(environments)
    # Every entropy-like number is at most ln(environments) (and every size at most
    # EXTRAPOLATION x the full size): no runaway parameter anywhere.
    for key in ("asymptote", "gap_full"):
        assert d[key] is None or -ceiling <= d[key] <= ceiling
    for x in _numbers(d):  # sizes, entropies, parameters, intervals, the test
        assert abs(x) <= max(ceiling, EXTRAPOLATION * total), (x, d)
    assert d["status"] == test.status and d["rule"] in text
    headline = curve.headline()
    assert headline.startswith(f"learning curve {test.status}")
    assert ("information gap" in headline) == (curve.fit is not None)
    assert (d["fit"] is None) == (curve.fit is None) == (d["asymptote"] is None)
    assert (d["fit"] is None) == bool(d["fit_reason"])
    lo, hi = test.interval if test.interval is not None else (None, None)
    if test.status == "saturated":
        assert hi < tol
    elif test.status == "still rising":
        assert lo > tol
    elif lo is not None:
        assert lo <= tol <= hi
    if curve.fit is None:
        assert d["gap_full"] is d["saturation_size"] is d["asymptote_interval"] is None
        assert all(v is None for v in d["gap_at"].values())
        assert "asymptote a =" not in text and "information gap at" not in text
        assert "fitted gap below" not in text
        return
    # Extrapolated: only a curve still rising, with a gap above the tolerance at the full
    # size and a saturation size beyond it.
    assert test.status == "still rising"
    assert tol <= d["gap_full"] and d["asymptote"] <= ceiling
    assert d["asymptote"] == pytest.approx(d["fit"]["a"])
    assert d["gap_full"] == pytest.approx(d["asymptote"] - curve.mean[-1])
    assert d["saturation_size"] is None or d["saturation_size"] > total
    a_lo, a_hi = d["asymptote_interval"]
    assert a_lo <= d["asymptote"] <= a_hi
    assert f"information gap at the full size ({total} " in text


def _synthetic(sizes, clean, noise, seed=0) -> LearningCurve:
    """A LearningCurve from a clean curve (n_sizes,) plus per-seed noise (n_sizes, n_seeds),
    one environment per unit, judged as `learning_curve` judges a sampled one. The full
    size is one subset, the whole dataset: its H is exact, the same in every column."""
    E = np.asarray(clean, dtype=float)[:, None] + noise
    E[-1] = clean[-1]
    test = rise_test(sizes, E)
    fit, why = extrapolation(
        test, sizes, E, max_entropy=float(np.log(sizes[-1])), n_boot=50, seed=seed
    )
    seeds = list(range(E.shape[1]))
    counts = np.tile(np.asarray(sizes)[:, None], (1, E.shape[1]))
    return LearningCurve(
        np.asarray(sizes), E, counts, seeds, "environments", H, test, fit, int(sizes[-1]), {}, why
    )


# --- the failing cases of the issue, on EMT data ------------------------------------------


@pytest.fixture(scope="module")
def crystal():
    """A 300 K Cu crystal (32 atoms, Langevin EMT), 100 frames: 3200 environments."""
    return load_frames(md_frames(fcc_cu(2), 300.0, 100, interval=3, equilibration=50, seed=0))


@pytest.fixture(scope="module")
def melt():
    """Liquid Cu at 2500 K (32 atoms, EMT), 20 frames: 640 environments."""
    return load_frames(cu_melt(2, n_frames=20, seed=1, melt_steps=200, interval=10))


@pytest.mark.slow
def test_saturated_crystal_is_saturated_without_extrapolation(crystal):
    curve = learning_curve(crystal, H, by="environments", n_seeds=3, at=[500])
    # H nearly flat from a few hundred to several thousand environments
    flat_part = curve.mean[curve.sizes >= 300]
    assert np.ptp(flat_part) < 0.1
    assert curve.status == "saturated", curve.summary_lines()
    assert curve.test.interval[1] < TOLERANCE
    assert curve.fit is None and curve.asymptote is None and curve.gap(500) is None
    assert "saturated" in curve.headline() and "asymptote" not in curve.headline()
    assert_consistent(curve, len(crystal.X))
    by_structures = learning_curve(crystal, H, n_seeds=3)
    assert by_structures.status == "saturated", by_structures.summary_lines()


@pytest.mark.slow
def test_melt_still_rises_and_its_runaway_fit_is_not_shown(melt):
    curve = learning_curve(melt, H, by="environments", n_seeds=3)
    assert curve.status == "still rising" and curve.test.interval[0] > TOLERANCE
    assert curve.fit is None and "no asymptote" in curve.headline()
    d = curve.to_dict()
    assert d["fit"] is None and d["fit_reason"]
    assert_consistent(curve, len(melt.X))


@pytest.mark.slow
def test_crystal_then_melt_in_one_file_still_rises(crystal, melt):
    """Frames of increasing disorder together: each doubling of N adds melt environments."""
    from atominfo.workflows.curves import subset_frames

    both = subset_frames(crystal, np.arange(20))
    X = np.concatenate([both.X, melt.X])
    curve = learning_curve(X, H, by="environments", n_seeds=3)
    assert curve.status == "still rising"
    assert_consistent(curve, len(X))


def test_short_or_noisy_curves_are_not_determined():
    sizes = subset_sizes(5000, 12, 10)
    rng = np.random.default_rng(3)
    # A curve that rises by 0.05 nats per doubling at the end, with noise 0.05 nats:
    # the interval holds the tolerance.
    clean = 2.0 + 0.05 * np.log2(sizes)
    curve = _synthetic(sizes, clean, rng.normal(scale=0.05, size=(len(sizes), 3)))
    assert curve.status == "not determined" and "holds the tolerance" in curve.reason
    assert_consistent(curve, 5000)
    # one size: no interval can be formed
    one = rise_test([7], [[1.0]])
    assert one.status == "not determined" and one.interval is None
    # one seed and two sizes in the last three doublings
    two = rise_test([1, 8, 64], [1.0, 1.1, 1.2])
    assert two.status == "not determined" and "--seeds" in two.reason


def test_a_real_short_curve_is_not_determined():
    X = np.random.default_rng(0).normal(size=(60, 3))
    curve = learning_curve(X, 1.0, by="environments", n_sizes=4, n_seeds=1, n_boot=0)
    assert curve.status == "not determined" and curve.fit is None
    assert_consistent(curve, 60)


def test_still_rising_model_curve_is_extrapolated_consistently():
    sizes = subset_sizes(5000, 14, 10)
    clean = asymptote_model(sizes, 6.0, 4.0, 0.04)  # gap 0.22 nats at N = 5000
    noise = np.random.default_rng(0).normal(scale=0.01, size=(len(sizes), 3))
    curve = _synthetic(sizes, clean, noise)
    assert curve.status == "still rising" and curve.fit is not None, curve.fit_reason
    assert curve.asymptote == pytest.approx(6.0, abs=0.2)
    assert curve.gap() == pytest.approx(6.0 - clean[-1], abs=0.2)
    assert_consistent(curve, 5000)


def _random_curve(rng, kind: int):
    """(sizes, clean curve, noise) of one random kind: saturating model, straight in
    log N, flat, ln N capped, or a model curve still rising at the full size."""
    total = int(rng.choice([40, 300, 2000, 8000]))
    sizes = subset_sizes(total, int(rng.integers(4, 15)) if kind < 4 else 14, 10)
    if kind in (0, 4):
        a = rng.uniform(2.0, min(7.0, np.log(total)))
        c = 10 ** rng.uniform(-2.5, -0.5) if kind == 0 else rng.uniform(0.03, 0.06)
        clean = asymptote_model(sizes, a, rng.uniform(0.5, 4), c)
    elif kind == 1:
        clean = rng.uniform(0.1, 0.7) * np.log2(sizes) + rng.uniform(0, 1)
    elif kind == 2:
        clean = np.full(len(sizes), rng.uniform(0.5, 4))
    else:
        clean = np.minimum(np.log(sizes), rng.uniform(1, 5))
    clean = np.minimum(clean, np.log(sizes))  # H <= ln N
    seeds = int(rng.integers(1, 6))
    noise = rng.uniform(0, 0.1 if kind < 4 else 0.02) * rng.normal(size=(len(sizes), seeds))
    return sizes, clean, noise


def test_no_output_contradicts_another_on_random_curves():
    """Property test: random saturating, rising, flat and noisy curves, 1 to 5 seeds."""
    rng = np.random.default_rng(21)
    seen = set()
    for trial in range(60):
        sizes, clean, noise = _random_curve(rng, trial % 5)
        curve = _synthetic(sizes, clean, noise, seed=trial)
        seen.add((curve.status, curve.fit is not None))
        assert_consistent(curve, int(sizes[-1]))
    assert {s for s, _ in seen} == {"saturated", "still rising", "not determined"}
    assert ("still rising", True) in seen  # some curves are extrapolated
