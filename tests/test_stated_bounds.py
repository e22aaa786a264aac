"""Stated error bounds hold everywhere they are stated, against float64 brute force
(issue 21, item 6): the float32 bound at every bandwidth (a rounding floor at large
h), the projected index's "never below exact" at huge dH (a relative rounding term).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atominfo.engine.fold import log_sum_exp
from atominfo.engine.index.projected import ProjectedIndex, rounding_bound

torch = pytest.importorskip("torch")
from atominfo.engine import torch as torch_engine  # noqa: E402

FIXTURES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def brute(Y, X, h):
    """float64 brute force: direct squared differences, then a log-sum-exp."""
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    return log_sum_exp(-d2 / (2 * h * h), axis=1)


@FIXTURES
@given(log_h=st.floats(-3.0, 1.0), rows=st.integers(0, 10**6))
def test_float32_bound_holds_at_every_bandwidth(crystals, molecules, log_h, rows):
    h = np.array([10.0**log_h])
    rng = np.random.default_rng(rows)
    Y = np.concatenate([crystals, molecules])[rng.choice(216, 40, replace=False)]
    fast = torch_engine.log_kernel_sums(Y, crystals, h, device="cpu", precision="float32")
    error = np.abs(fast - brute(Y, crystals, h[0])).max(axis=1)
    bound = torch_engine.float32_error_bound(Y, crystals, h)
    assert (error <= bound).all(), (h, error, bound)


def test_float32_bound_keeps_its_floor_small(crystals):
    # the floor is a few float32 rounding units of log-sums of up to MAX_REFERENCE_BLOCK terms
    far = torch_engine.float32_error_bound(crystals, crystals, np.array([1e3]))
    assert 0 < far[0] < 1e-5


def cloud(seed, n=600, d=15):
    rng = np.random.default_rng(seed)
    scales = np.r_[np.full(3, 0.05), np.full(d - 3, 0.004)]
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return 1.0 + rng.normal(size=(n, d)) * scales @ basis.T


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    log_shift=st.floats(-2.0, 3.0),
    log_h=st.floats(-3.0, 1.0),
    log_tol=st.floats(-9.0, -0.5),
)
def test_projected_never_below_exact_beyond_rounding(seed, log_shift, log_h, log_tol):
    """dH up to about 1e8 nats and beyond: exact - computed lies in
    [-rounding, log(1 + tol) + rounding]."""
    X = cloud(seed % 7)
    rng = np.random.default_rng(seed)
    Y = X[rng.integers(0, len(X), 12)] + rng.normal(size=(12, X.shape[1])) * 10.0**log_shift
    h, tol = 10.0**log_h, 10.0**log_tol
    got, _ = ProjectedIndex(X, dims=3).log_kernel_sums(Y, h, tol)
    exact = brute(Y, X, h)
    rounding = rounding_bound(got, X.shape[1])
    below = exact - got
    assert (below >= -rounding).all(), (np.abs(exact).max(), below.min())
    assert (below <= np.log1p(tol) + rounding).all()


def test_rounding_bound_is_relative_at_huge_log_sums():
    r = rounding_bound(np.array([0.0, -1e8]), 63)
    assert r[0] <= 1e-9 and 1e-7 < r[1] < 1e-5
