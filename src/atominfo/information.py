"""Information quantities of SPEC.md section 3: entropy, diversity, dH, overlap, novelty.

All are computed from exact kernel sums in log space (`kernels.log_kernel_sums`),
in nats. Each accepts one bandwidth (returns a scalar or one array) or a
sequence of bandwidths (returns one value or array per bandwidth).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from atominfo.errors import InputError, check_positive
from atominfo.engine import log_kernel_sums

from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH


def as_descriptor_matrix(X, name: str = "X") -> np.ndarray:
    """Validate a descriptor matrix: 2-D, finite, at least one row."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise InputError(f"{name} must be a 2-D descriptor array, got shape {X.shape}")
    if len(X) == 0:
        raise InputError(f"{name} has no environments")
    if not np.isfinite(X).all():
        row = int(np.argmax(~np.isfinite(X).all(axis=1)))
        raise InputError(f"{name} row {row} is NaN or infinite")
    return X


def check_widths(Y: np.ndarray, X: np.ndarray) -> None:
    if Y.shape[1] != X.shape[1]:
        raise InputError(
            f"descriptor widths differ: {Y.shape[1]} vs {X.shape[1]} "
            "(were they computed with the same k and multicomponent setting?)")


def bandwidths(h) -> tuple[np.ndarray, bool]:
    """Bandwidths as a 1-D array, and whether the caller passed a single value."""
    check_positive("bandwidth h", h)
    arr = np.atleast_1d(np.asarray(h, dtype=np.float64))
    if arr.ndim != 1:
        raise InputError(f"bandwidth h must be a number or a 1-D sequence, got {h!r}")
    return arr, np.ndim(h) == 0


def _per_bandwidth(values: np.ndarray, scalar: bool):
    return values[0] if scalar else values


def _self_log_sums(X, h, engine):
    X = as_descriptor_matrix(X)
    hs, scalar = bandwidths(h)
    return X, log_kernel_sums(X, X, hs, **engine), scalar


def entropy(X, h=DEFAULT_BANDWIDTH, **engine) -> float | np.ndarray:
    """Information entropy H of a set of environments, in nats.

    ``H = -(1/n) sum_i log[(1/n) sum_j K_h(X_i, X_j)]``; ``0 <= H <= log n``.

    Parameters
    ----------
    X : array (n, d) of descriptors, 1/Å.
    h : float or sequence of floats, bandwidth in 1/Å.
    engine : options passed to the kernel engine (e.g. ``memory_bytes``).
    """
    return entropy_and_diversity(X, h, **engine)[0]


def diversity(X, h=DEFAULT_BANDWIDTH, **engine) -> float | np.ndarray:
    """Diversity D = log sum_i 1 / sum_j K_h(X_i, X_j), in nats (log of the support size)."""
    return entropy_and_diversity(X, h, **engine)[1]


def entropy_and_diversity(X, h=DEFAULT_BANDWIDTH, **engine):
    """(H, D) from one pass over the kernel sums."""
    X, log_sums, scalar = _self_log_sums(X, h, engine)
    H = np.log(len(X)) - log_sums.mean(axis=1)
    D = logsumexp(-log_sums, axis=1)
    return _per_bandwidth(H, scalar), _per_bandwidth(D, scalar)


def delta_entropy(Y, X, h=DEFAULT_BANDWIDTH, *, method: str = "exact",
                  n_neighbors: int = 32, seed: int = 0, **engine) -> np.ndarray:
    """Differential entropy dH(Y_i | X) = -log sum_j K_h(Y_i, X_j), per row of Y, in nats.

    dH > 0 marks an environment outside the reference's domain. Finite for any
    input (computed in log space). Shape (len(Y),) or (len(h), len(Y)).

    Parameters
    ----------
    method : "exact" (default; within 1e-9 nats of float64 brute force, see
        `kernels.cpu`) or "approximate": the sum over the `n_neighbors`
        nearest reference points only (faiss IVF index built with `seed`);
        never below the exact dH, error measured in benchmarks/README.md.
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    hs, scalar = bandwidths(h)
    if method == "approximate":
        from atominfo.engine.index.neighbours import NeighbourIndex

        check_neighbors(n_neighbors)
        index = NeighbourIndex(X, seed=seed)
        dH = -index.log_kernel_sums(Y, hs, n_neighbors, progress=engine.get("progress"))
    elif method == "exact":
        dH = -log_kernel_sums(Y, X, hs, **engine)
    else:
        raise InputError(f"method must be 'exact' or 'approximate', got {method!r}")
    return _per_bandwidth(dH, scalar)


def check_neighbors(n_neighbors) -> None:
    if int(n_neighbors) != n_neighbors or n_neighbors < 1:
        raise InputError(f"n_neighbors must be a positive integer, got {n_neighbors!r}")


# Below this many query x reference pairs, exact dH beats building a cluster index.
CLASSIFY_MIN_PAIRS = 4_000_000


def inside_domain(Y, X, h=DEFAULT_BANDWIDTH, *, method: str = "auto", seed: int = 0,
                  **engine) -> np.ndarray:
    """Whether dH(Y_i | X) <= 0 (inside the reference's domain): bool (len(h), len(Y)).

    method "classify" decides the sign exactly from cluster bounds
    (`kernels.clusters.ClusterIndex.classify`; equal to the exact dH label for
    every point with |dH| > 1e-9 nats), "exact" computes dH, "auto" picks
    "classify" for large CPU problems.
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    hs, _ = bandwidths(h)
    if method == "auto":
        cpu = engine.get("backend", "cpu") == "cpu"
        method = "classify" if cpu and len(X) * len(Y) >= CLASSIFY_MIN_PAIRS else "exact"
    if method == "classify":
        from atominfo.engine.index.clusters import ClusterIndex, classify_clusters

        index = ClusterIndex(X, n_clusters=classify_clusters(len(X)), seed=seed)
        return index.classify(Y, hs, progress=engine.get("progress"))
    if method == "exact":
        return -log_kernel_sums(Y, X, hs, **engine) <= 0
    raise InputError(f"method must be 'auto', 'classify' or 'exact', got {method!r}")


def overlap(Y, X, h=DEFAULT_BANDWIDTH, *, method: str = "auto", **engine) -> float | np.ndarray:
    """Fraction of Y inside the domain of X: mean of dH(Y|X) <= 0 (exact, see `inside_domain`)."""
    inside = inside_domain(Y, X, np.atleast_1d(h), method=method, **engine)
    return _per_bandwidth(inside.mean(axis=1), np.ndim(h) == 0)


def novelty(Y, X, h=DEFAULT_BANDWIDTH, *, method: str = "auto", **engine) -> float | np.ndarray:
    """Fraction of Y outside the domain of X: mean of dH(Y|X) > 0 (exact, see `inside_domain`)."""
    inside = inside_domain(Y, X, np.atleast_1d(h), method=method, **engine)
    return _per_bandwidth(1.0 - inside.mean(axis=1), np.ndim(h) == 0)


class SampledEntropy(NamedTuple):
    """Entropy estimated from sampled queries (nats); arrays when several bandwidths."""

    entropy: float | np.ndarray      # estimate of H, nats
    low: float | np.ndarray          # 95% confidence interval, nats
    high: float | np.ndarray
    half_width: float | np.ndarray   # (high - low) / 2, nats
    n_samples: int                   # M queries drawn without replacement
    n: int                           # environments in the set
    seed: int


def sampled_entropy(X, h=DEFAULT_BANDWIDTH, n_samples: int = 10_000, seed: int = 0,
                    **engine) -> SampledEntropy:
    """Entropy H of a large set from `n_samples` random queries against all n points.

    ``H = log n - mean_i log sum_j K_h(X_i, X_j)``: the mean over a uniform
    sample of queries (without replacement, `seed`) is an unbiased estimate of
    the mean over all i; each sampled term is an exact kernel sum over all n
    points (through `kernels.log_kernel_sums`, `engine` options passed on).
    The 95% interval uses Student's t with the finite-population correction
    ``sqrt(1 - M/n)``; with M >= n the value is exact (zero width).
    Cost: M x n kernel terms instead of n x n.
    """
    from scipy.stats import t as student_t

    X = as_descriptor_matrix(X)
    hs, scalar = bandwidths(h)
    if int(n_samples) != n_samples or n_samples < 2:
        raise InputError(f"number of samples must be an integer >= 2, got {n_samples!r}")
    n = len(X)
    m = min(int(n_samples), n)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    log_sums = log_kernel_sums(X[rows], X, hs, **engine)
    estimate = np.log(n) - log_sums.mean(axis=1)
    std_error = log_sums.std(axis=1, ddof=1) / np.sqrt(m) * np.sqrt(1.0 - m / n)
    half = student_t.ppf(0.975, m - 1) * std_error
    pick = (lambda v: v[0]) if scalar else (lambda v: v)
    return SampledEntropy(pick(estimate), pick(estimate - half), pick(estimate + half),
                          pick(half), m, n, int(seed))
