"""Information quantities of SPEC.md section 3: entropy, diversity, dH, overlap, novelty.

All are computed from exact kernel sums in log space (`kernels.log_kernel_sums`),
in nats. Each accepts one bandwidth (returns a scalar or one array) or a
sequence of bandwidths (returns one value or array per bandwidth).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from .errors import InputError, check_positive
from .kernels import log_kernel_sums

DEFAULT_BANDWIDTH = 0.015


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


def delta_entropy(Y, X, h=DEFAULT_BANDWIDTH, **engine) -> np.ndarray:
    """Differential entropy dH(Y_i | X) = -log sum_j K_h(Y_i, X_j), per row of Y, in nats.

    dH > 0 marks an environment outside the reference's domain. Finite for any
    input (computed in log space). Shape (len(Y),) or (len(h), len(Y)).
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    hs, scalar = bandwidths(h)
    dH = -log_kernel_sums(Y, X, hs, **engine)
    return _per_bandwidth(dH, scalar)


def overlap(Y, X, h=DEFAULT_BANDWIDTH, **engine) -> float | np.ndarray:
    """Fraction of Y inside the domain of X: mean of dH(Y|X) <= 0."""
    dH = np.atleast_2d(delta_entropy(Y, X, np.atleast_1d(h), **engine))
    return _per_bandwidth((dH <= 0).mean(axis=1), np.ndim(h) == 0)


def novelty(Y, X, h=DEFAULT_BANDWIDTH, **engine) -> float | np.ndarray:
    """Fraction of Y outside the domain of X: mean of dH(Y|X) > 0."""
    dH = np.atleast_2d(delta_entropy(Y, X, np.atleast_1d(h), **engine))
    return _per_bandwidth((dH > 0).mean(axis=1), np.ndim(h) == 0)
