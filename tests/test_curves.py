import json

import numpy as np
import pytest

import atominfo
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.workflows.curves import learning_curve, subset_sizes
from atominfo.workflows.curves_asymptote import asymptote_model, fit_asymptote


@pytest.fixture(scope="module")
def stiff_and_flexible():
    """Near-perfect crystals (rattle 0.005 Å) and strongly disordered ones (0.3 Å)."""
    stiff = load_frames(
        varied_fcc_cu(12, seed=4, sigma=(0.005, 0.005), strain=0.0, vacancy_probability=0.0)
    )
    flexible = load_frames(
        varied_fcc_cu(12, seed=5, sigma=(0.3, 0.3), strain=0.0, vacancy_probability=0.0)
    )
    return stiff, flexible


def test_subset_sizes_log_spaced():
    sizes = subset_sizes(1000, 12)
    assert sizes[0] == 1 and sizes[-1] == 1000 and len(sizes) == 12
    assert np.all(np.diff(sizes) > 0)
    ratios = sizes[1:] / sizes[:-1]
    assert ratios.max() / ratios.min() < 1.5  # roughly geometric
    assert list(subset_sizes(5, 12)) == [1, 2, 3, 4, 5]
    assert len(subset_sizes(40, 12)) == 12  # rounding merges small sizes: filled in


def test_fit_recovers_model_parameters():
    sizes = subset_sizes(5000, 14, 10)
    H = asymptote_model(sizes, 6.0, 4.0, 0.05)
    fit = fit_asymptote(sizes, H)
    assert fit.a == pytest.approx(6.0, rel=1e-4)
    assert fit.b == pytest.approx(4.0, rel=1e-3)
    assert fit.c == pytest.approx(0.05, rel=1e-3)
    assert list(fit.sizes) == list(sizes[3:-3])
    assert fit.rms < 1e-6


def test_fit_parameters_non_negative_and_too_few_sizes():
    sizes = np.arange(1, 13)
    noisy_decreasing = 5.0 - 0.01 * np.arange(12)  # would want b < 0
    fit = fit_asymptote(sizes, noisy_decreasing)
    if fit.determined:
        assert min(fit.a, fit.b, fit.c) >= 0
    else:  # a rejected fit keeps no parameters
        assert np.isnan([fit.a, fit.b, fit.c]).all() and fit.a_interval is None
    flat = fit_asymptote(sizes, np.full(12, 1.7))
    assert (flat.a, flat.b) == (pytest.approx(1.7), 0.0) and flat.status == "flat"
    assert flat.saturation_size() == 4  # saturated at or before the smallest fitted size
    with pytest.raises(InputError, match="at least 9 sizes"):
        fit_asymptote(np.arange(1, 9), np.ones(8))


def test_learning_curve_records_seeds_and_is_reproducible(stiff_and_flexible):
    stiff, _ = stiff_and_flexible
    a = learning_curve(stiff, 0.015, by="structures", n_seeds=2, seed=7, at=[5])
    b = learning_curve(stiff, 0.015, by="structures", n_seeds=2, seed=7, at=[5])
    assert a.seeds == [7, 8]
    np.testing.assert_array_equal(a.entropies, b.entropies)
    assert a.sizes[-1] == len(stiff) == a.total
    full = atominfo.entropy(stiff.X, 0.015)
    assert a.entropies[-1] == pytest.approx([full, full], abs=1e-12)
    assert set(a.environments[0].tolist()) <= set(stiff.sizes.tolist())  # one structure
    d = a.to_dict()
    assert d["seeds"] == [7, 8] and "5" in d["gap_at"]
    if a.fit is not None:
        assert a.gap() == pytest.approx(a.fit.a - full)
        assert a.gap(5) == pytest.approx(a.fit.a - a.entropy_at(5))


def test_stiff_saturates_flexible_still_rises(stiff_and_flexible):
    stiff, flexible = stiff_and_flexible
    curves = [
        learning_curve(s, 0.015, by="environments", n_sizes=12, n_seeds=2)
        for s in (stiff, flexible)
    ]
    for c in curves:
        assert np.all(c.mean <= np.log(c.sizes) + 1e-9)  # H <= log N
    stiff_c, flex_c = curves
    assert stiff_c.status == "saturated" and stiff_c.test.interval[1] < stiff_c.test.tolerance
    assert stiff_c.fit is None and stiff_c.gap() is None and stiff_c.saturation_size is None
    # At h = 0.015 every strongly disordered environment is distinct: H(N) = ln N keeps
    # rising (ln 2 per doubling), and no asymptote, gap or saturation size can be claimed.
    assert flex_c.mean == pytest.approx(np.log(flex_c.sizes), abs=0.01)
    assert flex_c.status == "still rising"
    assert flex_c.test.rise == pytest.approx(np.log(2), abs=0.01)
    assert flex_c.fit is None and flex_c.gap() is None and flex_c.saturation_size is None
    assert "ln(environments)" in flex_c.fit_reason


def test_learning_curve_bad_input(stiff_and_flexible):
    stiff, _ = stiff_and_flexible
    with pytest.raises(InputError, match="structures"):
        learning_curve(stiff, by="atoms")
    with pytest.raises(InputError, match="outside"):
        learning_curve(stiff, at=[10_000])
    with pytest.raises(InputError, match="FrameSet"):
        learning_curve(stiff.X, by="structures")
    with pytest.raises(InputError, match="one bandwidth"):
        learning_curve(stiff, [0.01, 0.02])


# --- uncertainty and "not determined" -------------------------------------------------------

SYNTH_SIZES = subset_sizes(5000, 14, 10)


def _noisy(clean, sd=0.01, seeds=3, seed=0):
    """Per-seed entropies: the clean curve plus independent noise per (size, seed), nats."""
    rng = np.random.default_rng(seed)
    return clean[:, None] + rng.normal(scale=sd, size=(len(clean), seeds))


def test_saturated_curve_is_determined_and_interval_covers_truth():
    clean = asymptote_model(SYNTH_SIZES, 6.0, 4.0, 0.05)
    true_saturation = np.exp(np.sqrt(np.log(4.0 / 0.05) / 0.05))  # gap 0.05 nats: N = 1.2e4
    covered, widths = 0, []
    for draw in range(20):  # 20 independent noise draws: the interval should cover 6 nats
        fit = fit_asymptote(
            SYNTH_SIZES, _noisy(clean, seed=draw), max_entropy=np.log(5000), n_boot=100
        )
        assert fit.status == "determined" and fit.determined
        assert fit.asymptote == fit.a == pytest.approx(6.0, abs=0.1)
        assert fit.saturation_size() == pytest.approx(true_saturation, rel=0.5)
        lo, hi = fit.a_interval
        covered += lo <= 6.0 <= hi
        widths.append(hi - lo)
    assert covered >= 16  # nominal 95%; measured 90-95% on such curves
    assert np.median(widths) < 0.2  # informative: the curve rises by 1.7 nats


def test_still_rising_curve_is_not_determined():
    # H grows linearly in ln N over three decades: no bend, so no asymptote.
    E = _noisy(0.5 + 0.9 * np.log(SYNTH_SIZES), sd=0.02)
    fit = fit_asymptote(SYNTH_SIZES, E, max_entropy=np.log(5000))
    assert fit.status == "not determined" and not fit.determined
    assert fit.asymptote is None and fit.saturation_size() is None
    assert fit.reason and len(fit.reason.splitlines()) == 1
    # Also without the ln(environments) ceiling: the fitted slope does not fall.
    fit = fit_asymptote(SYNTH_SIZES, E)
    assert fit.status == "not determined" and "not bending" in fit.reason
    assert "more than 50%" in fit.reason and np.isnan(fit.slope_ratio)
    d = fit.to_dict()
    assert d["asymptote"] is None and d["status"] == "not determined" and d["reason"]
    assert d["a"] is None and d["b"] is None and d["a_interval"] is None  # nothing rejected shown
    assert "nan" not in repr(fit)


def test_asymptote_above_log_of_dataset_size_is_not_determined():
    # A saturating curve whose plateau (12 nats) exceeds ln(5000) = 8.5 nats: impossible
    # for 5000 environments, so the data cannot have measured it.
    E = _noisy(asymptote_model(SYNTH_SIZES, 12.0, 8.0, 0.05))
    fit = fit_asymptote(SYNTH_SIZES, E, max_entropy=np.log(5000))
    assert fit.status == "not determined" and "ln" in fit.reason


def test_flat_curve_is_saturated_before_the_fitted_sizes():
    E = _noisy(np.full(len(SYNTH_SIZES), 3.2), sd=0.01)
    fit = fit_asymptote(SYNTH_SIZES, E)
    assert fit.status == "flat" and fit.determined
    assert fit.a == pytest.approx(3.2, abs=0.01) and fit.b == 0.0
    lo, hi = fit.a_interval
    assert lo <= 3.2 <= hi and hi - lo < 0.05
    assert fit.saturation_size() == fit.sizes[0]  # at or before the smallest fitted size
    # Noise much larger than the tolerance: a rise cannot be excluded, nor an asymptote
    # claimed from the model fit.
    noisy = fit_asymptote(SYNTH_SIZES, _noisy(np.full(len(SYNTH_SIZES), 3.2), sd=0.2))
    assert noisy.status in ("flat", "not determined")
    if noisy.status == "flat":
        assert noisy.a_interval[0] <= 3.2 <= noisy.a_interval[1]


def test_learning_curve_reports_status_in_dict_and_text(stiff_and_flexible):
    _, flexible = stiff_and_flexible
    curve = learning_curve(flexible, 0.015, by="environments", n_sizes=12, n_seeds=2, at=[50])
    d = curve.to_dict()
    for key in (
        "status",
        "reason",
        "rule",
        "test",
        "fit",
        "fit_reason",
        "asymptote",
        "asymptote_interval",
        "gap_full",
        "gap_interval",
        "saturation_size",
        "saturation_interval",
    ):
        assert key in d
    lines = curve.summary_lines()
    assert all(isinstance(line, str) and "\n" not in line for line in lines)
    assert lines[0] == f"rule: {curve.test.rule}" and lines[1].startswith(curve.status)
    assert d["fit"] is None and d["fit_reason"]  # a rejected fit: null, with the reason
    assert d["gap_full"] is None and d["saturation_size"] is None and d["gap_at"] == {"50": None}
    assert any(line.startswith("no asymptote") for line in lines)
    json.dumps(d, allow_nan=False)  # strict JSON: no NaN or Infinity


def test_runaway_fit_on_a_rising_curve_reports_none():
    # Random descriptors at a tiny bandwidth: every environment is distinct, H = ln N.
    X = np.random.default_rng(0).normal(size=(400, 4))
    curve = learning_curve(X, 0.015, by="environments", n_seeds=2, at=[50])
    assert curve.mean == pytest.approx(np.log(curve.sizes))
    assert curve.status == "still rising" and curve.fit is None
    assert curve.asymptote is None and curve.gap() is None and curve.saturation_size is None
    assert curve.to_dict()["gap_at"] == {"50": None}
    assert "no asymptote" in curve.headline()


def test_bootstrap_is_reproducible():
    E = _noisy(asymptote_model(SYNTH_SIZES, 6.0, 4.0, 0.05))
    a, b = fit_asymptote(SYNTH_SIZES, E), fit_asymptote(SYNTH_SIZES, E)
    assert a.a_interval == b.a_interval and a.saturation_interval == b.saturation_interval


def test_asymptote_below_the_entropy_of_the_largest_subset_is_not_determined():
    # The fitted sizes saturate at 6 nats, but the three largest subsets (dropped from the
    # fit) already show 6.5 nats: an asymptote of 6 cannot be the limit of this curve.
    clean = asymptote_model(SYNTH_SIZES, 6.0, 4.0, 0.05)
    clean[-3:] = 6.5
    fit = fit_asymptote(SYNTH_SIZES, _noisy(clean, seed=0), max_entropy=np.log(5000), n_boot=100)
    assert fit.status == "not determined" and fit.asymptote is None
    assert "lies below the entropy measured" in fit.reason
