"""Every exact kernel sum goes through one fold: the CPU engine, the cluster index,
the compression's incremental sums (and torch, when installed) all agree with a
float64 brute force (direct differences, scipy's logsumexp) within the one
error bound of `atominfo.engine.fold`, on random data with far outliers and
extreme bandwidths."""

import numpy as np
import pytest
from scipy.special import logsumexp

import atominfo
from atominfo import EngineOptions, InputError
from atominfo.engine import cpu, fold, log_kernel_sums
from atominfo.engine.index.clusters import ClusterIndex
from atominfo.workflows import compression_methods as compression

RNG = np.random.default_rng(11)
X = RNG.normal(scale=0.05, size=(400, 8))
Y = np.concatenate(
    [
        X[:40],  # members: own term 1
        X[40:80] + RNG.normal(scale=0.02, size=(40, 8)),
        RNG.normal(scale=0.3, size=(20, 8)),
        X[:3] + 5.0,
        X[:2] + 1e3,
    ]
)  # far outliers
HS = np.array([0.005, 0.015, 0.1])


def brute(Y, X, h):
    """float64 reference: d2 by direct differences, so d2 = 0 exactly for equal rows."""
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_k = np.where(d2 > 0, -d2 * fold.inverse_two_h2(h)[0], 0.0)
        return logsumexp(log_k, axis=1)


def bound(Y, X, h):
    """The error bound stated in engine/fold.py, per query (nats), plus the brute
    force's own rounding (d + 2 ulps of d2 / (2 h^2))."""
    u = 2.0**-53
    c = fold.inverse_two_h2(h)[0]
    mu = fold.centre(X)
    y2, x2 = ((Y - mu) ** 2).sum(1), ((X - mu) ** 2).sum(1)
    eps_d = max(fold.SNAP, (X.shape[1] + 2) * u)
    n, b = len(X), cpu.BLOCK_COLS
    ours = c * eps_d * (y2 + x2.max()) + 4e-14 + n * np.exp(-fold.SKIP_NATS) + (b + n / b) * u
    d2min = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1).min(axis=1)
    return ours + (X.shape[1] + 2) * u * c * d2min


def test_one_fold_everywhere():
    assert cpu.fold_block is fold.fold_block and cpu.SKIP_NATS == fold.SKIP_NATS
    assert compression.fold_into_log_sums is fold.fold_into_log_sums
    assert not hasattr(compression, "SKIP_NATS")  # no second set of constants


@pytest.mark.parametrize("h", HS)
def test_engines_match_brute_force(h):
    want = brute(Y, X, h)
    tol = bound(Y, X, h)
    assert np.isfinite(want).all() and want.min() < -1e6  # the outliers are far
    got = {
        "cpu": log_kernel_sums(Y, X, np.array([h]))[0],
        "cpu 1 thread, small blocks": cpu.log_kernel_sums(
            Y, X, np.array([h]), threads=1, memory_bytes=8 * 16 * 400
        )[0],
        "cluster index": ClusterIndex(X, n_clusters=8).log_kernel_sums(Y, [h], tol=1e-12)[0],
    }
    sums = np.full(len(Y), -np.inf)
    y_sq = np.einsum("ij,ij->i", Y, Y)
    compression.update_log_sums(sums, Y, y_sq, X[:150], h)  # two increments
    compression.update_log_sums(sums, Y, y_sq, X[150:], h)
    got["compression"] = sums
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        got["torch"] = log_kernel_sums(
            Y, X, np.array([h]), EngineOptions(backend="torch", device="cpu")
        )[0]
    for name, value in got.items():
        error = np.abs(value - want)
        # the compression works on raw, uncentred descriptors: its bound uses raw norms
        allowed = (
            tol
            if name != "compression"
            else tol + fold.inverse_two_h2(h)[0] * fold.SNAP * ((Y**2).sum(1) + (X**2).sum(1).max())
        )
        assert (error <= allowed + 1e-12 * np.abs(want)).all(), (name, error.max())
    # the sign of dH from the exact classification equals the brute force's
    labels = ClusterIndex(X, n_clusters=8).classify(Y, [h])[0]
    decided = np.abs(want) > 1e-9
    np.testing.assert_array_equal(labels[decided], (want >= 0)[decided])


@pytest.mark.parametrize("h", [1e-300, 1e-160, 1e-150, 1e-20])
def test_tiny_bandwidths_count_exact_duplicates(h):
    Z = np.concatenate([X[:30], X[:5]])  # rows 0-4 appear twice
    count = np.ones(len(Z))
    count[[*range(5), *range(30, 35)]] = 2
    want = np.log(count)
    np.testing.assert_allclose(brute(Z, Z, h), want, atol=0)
    got = [
        log_kernel_sums(Z, Z, np.array([h]))[0],
        ClusterIndex(Z, n_clusters=1).log_kernel_sums(Z, [h])[0],
    ]
    sums = np.full(len(Z), -np.inf)
    compression.update_log_sums(sums, Z, np.einsum("ij,ij->i", Z, Z), Z, h)
    got.append(sums)
    for value in got:
        np.testing.assert_allclose(value, want, rtol=1e-15, atol=1e-15)
    assert ClusterIndex(Z, n_clusters=1).classify(Z, [h]).all()
    H = atominfo.entropy(Z, h)
    assert np.isfinite(H) and 0 <= H <= np.log(len(Z))
    assert H == pytest.approx(np.log(len(Z)) - want.mean(), abs=1e-12)
    # a query that duplicates nothing: its dH where float64 holds it (h = 1e-150),
    # else an InputError, never inf
    far = Z[:2] + 1.0
    expected = -brute(far, Z, h)
    if np.isfinite(expected).all():
        np.testing.assert_allclose(atominfo.delta_entropy(far, Z, h), expected, rtol=1e-12)
    else:
        with pytest.raises(InputError, match="float64 range"):
            atominfo.delta_entropy(far, Z, h)
    assert not atominfo.inside_domain(Z[:2] + 1.0, Z, h, method="exact").any()


def test_outlier_at_1e150_is_finite_and_beyond_float64_is_an_error():
    far = np.full((1, 8), 1e150)
    dH = atominfo.delta_entropy(far, X, 0.015)
    assert np.isfinite(dH).all()
    np.testing.assert_allclose(dH, -brute(far, X, 0.015), rtol=1e-12)
    # in the reference set: the bulk's distances are not lost to its rounding
    with_far = np.concatenate([X, far])
    H = atominfo.entropy(with_far, 0.015)
    n = len(with_far)
    want = np.log(n) - np.concatenate([brute(X, X, 0.015), [0.0]]).mean()
    assert H == pytest.approx(want, abs=1e-9)
    for beyond in (np.full((1, 8), 1e160), np.full((1, 8), 1e150)):
        with pytest.raises(InputError, match="float64"):
            atominfo.delta_entropy(beyond, X, 1e-10 if beyond[0, 0] == 1e150 else 0.015)
