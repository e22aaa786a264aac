import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import atominfo
from atominfo import Reference

from .conftest import DATA


def brute_log_sums(Y, X, h):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return logsumexp(-d2 / (2 * h * h), axis=1)


@pytest.mark.parametrize("h", [0.015, 0.05])
def test_entropy_diversity_fixtures(crystals, expected_json, h):
    assert len(crystals) == 156
    H = atominfo.entropy(crystals, h)
    D = atominfo.diversity(crystals, h)
    assert abs(H - expected_json[f"entropy_crystals_h{h}"]) < 1e-8
    assert abs(D - expected_json[f"diversity_crystals_h{h}"]) < 1e-8


def test_vector_of_bandwidths(crystals, expected_json):
    H, D = atominfo.entropy_and_diversity(crystals, [0.015, 0.05])
    np.testing.assert_allclose(
        H,
        [expected_json["entropy_crystals_h0.015"], expected_json["entropy_crystals_h0.05"]],
        atol=1e-8,
    )
    np.testing.assert_allclose(
        D,
        [expected_json["diversity_crystals_h0.015"], expected_json["diversity_crystals_h0.05"]],
        atol=1e-8,
    )


@pytest.mark.parametrize("h", [0.015, 0.05])
def test_delta_entropy_fixture(expected, h):
    Y = atominfo.descriptors(DATA / "cu_hot_32.extxyz")
    X = atominfo.descriptors(DATA / "cu_fcc_108.extxyz")
    dH = atominfo.delta_entropy(Y, X, h)
    np.testing.assert_allclose(dH, expected[f"dH_cuhot_given_cufcc_h{h}"], rtol=0, atol=1e-8)
    assert np.array_equal(Reference(X, h).delta_entropy(Y), dH)


def test_far_outlier_is_finite():
    X = np.zeros((10, 5))
    Y = np.full((1, 5), 0.1)  # d2 = 0.05 -> dH = 0.05 / (2 h^2) - log 10
    dH = atominfo.delta_entropy(Y, X, 0.01)
    assert np.isfinite(dH).all()
    assert dH[0] == pytest.approx(0.05 / (2 * 1e-4) - np.log(10), rel=1e-12)
    assert dH[0] == pytest.approx(250 - np.log(10))


def test_blocking_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=0.03, size=(700, 7))
    Y = rng.normal(scale=0.03, size=(333, 7))
    # 1 MiB over 2 threads: blocks of 93 query rows
    engine = atominfo.EngineOptions(memory_bytes=1 << 20, threads=2)
    got = -atominfo.delta_entropy(Y, X, [0.01, 0.03], engine=engine)
    for t, h in enumerate([0.01, 0.03]):
        np.testing.assert_allclose(got[t], brute_log_sums(Y, X, h), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.floats(0.005, 0.5), st.integers(0, 99))
def test_entropy_bounds(n, d, h, seed):
    X = np.random.default_rng(seed).normal(scale=0.05, size=(n, d))
    H = atominfo.entropy(X, h)
    assert -1e-12 <= H <= np.log(n) + 1e-12
    assert atominfo.diversity(X, h) <= np.log(n) + 1e-12


def test_entropy_extremes():
    n = 50
    far = np.eye(n) * 10.0
    assert atominfo.entropy(far, 0.015) == pytest.approx(np.log(n), abs=1e-12)
    assert atominfo.diversity(far, 0.015) == pytest.approx(np.log(n), abs=1e-12)
    same = np.ones((n, 4))
    assert abs(atominfo.entropy(same, 0.015)) < 1e-12
    assert abs(atominfo.diversity(same, 0.015)) < 1e-12  # one distinct environment


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 50), st.integers(0, 99))
def test_members_are_not_novel(n, seed):
    X = np.random.default_rng(seed).normal(scale=0.05, size=(n, 6))
    dH = atominfo.delta_entropy(X, X, 0.015)
    assert np.all(dH <= 1e-12)
    assert atominfo.overlap(X, X) == 1.0
    assert atominfo.novelty(X, X) == 0.0


def test_overlap_and_novelty_sum_to_one():
    rng = np.random.default_rng(1)
    X = rng.normal(scale=0.01, size=(200, 4))
    Y = np.concatenate([X[:50] + 1e-4, X[:50] + 1.0])
    assert atominfo.overlap(Y, X) == pytest.approx(0.5)
    assert atominfo.novelty(Y, X) == pytest.approx(0.5)
    np.testing.assert_allclose(atominfo.overlap(Y, X, [0.015, 0.05]), [0.5, 0.5])
    ref = Reference(X)
    assert ref.overlap(Y) == pytest.approx(0.5) and ref.novelty(Y) == pytest.approx(0.5)
