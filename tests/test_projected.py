"""The projected index: kernel sums within the stated tolerance, against float64 brute force."""

from __future__ import annotations

import numpy as np
import pytest

from atominfo.engine.fold import log_sum_exp
from atominfo.engine.index.projected import GATHER_FRACTION, ProjectedIndex


def brute(Y, X, h):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    return log_sum_exp(-d2 / (2 * h * h), axis=1)


def cloud(seed=0, n=3000, d=15):
    """A reference varying mostly along a few axes, and queries near and far from it."""
    rng = np.random.default_rng(seed)
    scales = np.r_[np.full(3, 0.05), np.full(d - 3, 0.004)]
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    X = 1.0 + rng.normal(size=(n, d)) * scales @ basis.T
    near = X[rng.integers(0, n, 40)] + rng.normal(scale=0.01, size=(40, d))
    far = X[rng.integers(0, n, 40)] + rng.normal(scale=0.2, size=(40, d))
    very_far = X[:5] + 30.0  # dH in the millions of nats
    Y = np.concatenate([near, far, very_far, X[:3]])  # X[:3]: exact members
    return X, Y


@pytest.mark.parametrize("tol", [1e-9, 1e-3, 0.3])
@pytest.mark.parametrize("h", [0.01, 0.03, 0.3])
def test_within_the_stated_bound(tol, h):
    X, Y = cloud()
    got, kept = ProjectedIndex(X, dims=3).log_kernel_sums(Y, h, tol)
    exact = brute(Y, X, h)
    below = exact - got  # terms left out only lower the sum
    rounding = 1e-9 + 1e-14 * np.abs(exact)  # far queries: |log-sum| up to 7e7 nats
    assert (below <= np.log1p(tol) + rounding).all()
    assert (below >= -rounding).all()
    assert ((kept >= 1) & (kept <= len(X))).all()


def test_prunes_far_queries_and_keeps_everything_at_large_bandwidth():
    X, Y = cloud(seed=1)
    index = ProjectedIndex(X, dims=3)
    _, kept = index.log_kernel_sums(Y[40:85], 0.01, 0.01)  # far queries
    assert np.median(kept) < GATHER_FRACTION * len(X)
    _, kept = index.log_kernel_sums(Y, 100.0, 0.01)  # every term matters
    assert (kept == len(X)).all()


@pytest.mark.parametrize("dims", [1, 3, 15])
def test_any_number_of_axes_is_valid(dims):
    X, Y = cloud(seed=2)
    got, _ = ProjectedIndex(X, dims=dims).log_kernel_sums(Y, 0.02, 1e-6)
    exact = brute(Y, X, 0.02)
    assert (np.abs(exact - got) <= 1e-6 + 1e-9 + 1e-14 * np.abs(exact)).all()


def test_threads_do_not_change_results():
    X, Y = cloud(seed=3, n=2000)
    Y = np.concatenate([Y] * 8)  # several query blocks
    index = ProjectedIndex(X)
    one, k1 = index.log_kernel_sums(Y, 0.02, 0.01, threads=1)
    two, k2 = index.log_kernel_sums(Y, 0.02, 0.01, threads=2)
    assert np.array_equal(one, two) and np.array_equal(k1, k2)


def test_members_and_tiny_bandwidths():
    X, _ = cloud(seed=4, n=500)
    index = ProjectedIndex(X)
    got, _ = index.log_kernel_sums(X[:10], 1e-200, 0.01)  # only the exact member counts
    assert np.array_equal(got, np.zeros(10))
    empty, kept = index.log_kernel_sums(np.empty((0, X.shape[1])), 0.02, 0.01)
    assert empty.shape == (0,) and kept.shape == (0,)
