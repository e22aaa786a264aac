import numpy as np
import pytest

import atominfo
from atominfo.workflows.curves import asymptote_model, fit_asymptote, learning_curve, subset_sizes
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.errors import InputError
from atominfo.structures.frameset import load_frames


@pytest.fixture(scope="module")
def stiff_and_flexible():
    """Near-perfect crystals (rattle 0.005 Å) and strongly disordered ones (0.3 Å)."""
    stiff = load_frames(varied_fcc_cu(12, seed=4, sigma=(0.005, 0.005), strain=0.0,
                                      vacancy_probability=0.0))
    flexible = load_frames(varied_fcc_cu(12, seed=5, sigma=(0.3, 0.3), strain=0.0,
                                         vacancy_probability=0.0))
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
    assert min(fit.a, fit.b, fit.c) >= 0
    flat = fit_asymptote(sizes, np.full(12, 1.7))
    assert (flat.a, flat.b) == (pytest.approx(1.7), 0.0) and flat.saturation_size() == 1.0
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


def test_stiff_saturates_early_flexible_late(stiff_and_flexible):
    stiff, flexible = stiff_and_flexible
    curves = [learning_curve(s, 0.015, by="environments", n_sizes=12, n_seeds=2)
              for s in (stiff, flexible)]
    for c in curves:
        assert c.fit is not None and c.fit.c >= 0
        assert np.all(c.mean <= np.log(c.sizes) + 1e-9)  # H <= log N
    stiff_c, flex_c = curves
    assert stiff_c.fit.saturation_size() < 1000 < flex_c.fit.saturation_size()
    assert abs(stiff_c.gap()) < 0.2 < flex_c.gap()


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
