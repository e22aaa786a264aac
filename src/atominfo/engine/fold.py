"""The one running log-sum-exp fold behind every exact kernel sum.

Every exact sum of Gaussian kernels in atominfo (the CPU engine `cpu.py`, the
cluster index `index/clusters.py`, the incremental sums of the compression
`workflows/compression.py`) goes through the numba primitives of this module:

* `snap_row` turns a row of inner products ``y.x_j`` into squared distances
  ``d2_j = |y|^2 + |x_j|^2 - 2 y.x_j``, taking values below their rounding
  bound ``SNAP (|y|^2 + |x_j|^2)`` as exact zeros (so a point's own term is
  exactly 1 and dH(x | X) <= 0 for x in X);
* `fold_terms` adds ``exp(-c d2_j)`` (``c = 1 / (2 h^2)``) to a running
  ``(max, scaled sum)`` pair, so that the log-sum is ``max + log(sum)``: a far
  outlier gets a finite log (e.g. -250 nats), never log(0);
* `exp_neg`, a SIMD-friendly polynomial exp for arguments in [-64, 0].

Error bound
-----------
For queries y and reference points x (both shifted by the same centre, see
`centre`), the computed ``log sum_j exp(-|y - x_j|^2 / (2 h^2))`` differs from
the exact value by at most

    c * eps_d * max_j (|y|^2 + |x_j|^2)  +  4e-14  +  n exp(-SKIP_NATS)  +  (B + n / B) u

nats, with ``c = 1 / (2 h^2)``, ``u = 2^-53``, ``eps_d = max(SNAP, (d + 2) u)``
(rounding of the expanded distance in dimension d, or the snap to zero below
SNAP), n reference points folded in blocks of B columns (B = 2048 in the CPU
engine). The four terms are: distance rounding; the relative error of
`exp_neg` (< 3e-14); the terms skipped more than SKIP_NATS below the running
maximum (< 1e-14 nats for n < 1e12); the summation (about 2e-13 for
n = 10^6). Centring on the reference makes ``|y|^2 + |x|^2`` small for real
descriptors: the total stays below 1e-9 nats for descriptor norms < 10 1/Å
and h >= 0.005 1/Å (tested against a float64 brute-force ``logsumexp``).

Far queries: the largest term of each block is folded as exactly 1 and the
block scaled once onto the running maximum, so the log-sum is finite (to
float64's relative precision) whenever ``c min_j d2_j`` is.

Extreme bandwidths: when ``c`` overflows (h below about 1e-154 1/Å) only
exact duplicates (``d2 = 0``) count, which is the float64 answer; when every
term lies below float64's range (``c min_j d2_j`` > 1.8e308) the result is
``-inf``, which callers that report a value turn into an InputError (the true
value is not representable).
"""

from __future__ import annotations

import numba
import numpy as np

# Terms more than this many nats below the running maximum are skipped: each
# is < exp(-60) ~ 1e-26 of the sum, so even 1e12 of them change log(sum) by
# < 1e-14 nats.
SKIP_NATS = 60.0
# Relative rounding bound of the expanded squared distance: below
# SNAP (|y|^2 + |x|^2) a distance is taken as an exact zero.
SNAP = 64 * np.finfo(np.float64).eps
# Rows of the centre sample (see `centre`).
CENTRE_SAMPLE = 1024

# fastmath without nnan/ninf: the fold relies on inf arithmetic (far outliers).
FAST = {"nsz", "arcp", "contract", "reassoc"}


@numba.njit(inline="always", fastmath=FAST)
def exp_neg(x):
    """exp(x) for -64 <= x <= 0 with relative error < 3e-14, in plain arithmetic.

    numba has no vectorised exp without Intel SVML; this form (Taylor series
    of exp(x/128) to degree 13, error < 1e-17, then 7 squarings) compiles to
    SIMD multiply-adds, several times faster than a libm call per term.
    """
    r = x * (1.0 / 128.0)
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


@numba.njit(inline="always", fastmath=FAST)
def snap_row(row, yi, x_sq):
    """Inner products ``row[j] = y.x_j`` -> squared distances, in place; returns their minimum.

    ``d2 = |y|^2 + |x_j|^2 - 2 y.x_j`` carries a rounding error of order
    eps (|y|^2 + |x_j|^2); values below SNAP times that are exact zeros.
    """
    dmin = np.inf
    for j in range(row.shape[0]):
        v = yi + x_sq[j] - 2.0 * row[j]
        v = 0.0 if v < SNAP * (yi + x_sq[j]) else v
        row[j] = v
        dmin = min(dmin, v)
    return dmin


@numba.njit(inline="always", fastmath=FAST)
def fold_terms(d2, n, dmin, c, m, s):
    """Running ``(max, sum)`` after adding ``exp(-c d2[j])`` for j < n; ``dmin = min d2[:n]``.

    The log-sum is ``m + log(s)``, start from ``(-inf, 0)``. A block whose
    largest term underflows (``c dmin`` beyond float64) adds nothing.

    Terms are taken relative to the block's largest, ``exp(c (dmin - d2[j]))``,
    so that term is exactly 1 however large ``c dmin`` is. (Relative to the
    running maximum, ``-c d2[j] - m`` would keep the rounding of the product,
    up to ulp(c d2) nats: beyond ~1e18 nats that exceeds SKIP_NATS and dropped
    every term of a far query, leaving log(0).) The block's sum is then scaled
    once onto the running maximum.
    """
    block_max = log_kernel(dmin, c)  # c may be inf: 0 * inf is nan
    if block_max == -np.inf or block_max < m - SKIP_NATS:
        return m, s  # every term of the block is negligible (or below float64)
    acc = 0.0
    if c == np.inf:  # h so small that 1/(2h^2) overflows: only exact duplicates count
        for j in range(n):
            acc += 1.0 if d2[j] == 0.0 else 0.0
    else:
        for j in range(n):
            # <= 0: dmin is the minimum of these very values
            a = min((dmin - d2[j]) * c, 0.0)
            # terms more than SKIP_NATS below the block's largest are dropped (bounded above)
            acc += exp_neg(max(a, -SKIP_NATS)) if a > -SKIP_NATS else 0.0
    if block_max > m:
        return block_max, s * np.exp(m - block_max) + acc
    return m, s + acc * np.exp(block_max - m)


@numba.njit(inline="always")
def log_kernel(d2, c):
    """``-c d2``, the log of one kernel term; 0 for d2 = 0 even when c overflowed to inf."""
    return -(d2 * c) if d2 > 0.0 else 0.0


@numba.njit(nogil=True, cache=True, fastmath=FAST)
def fold_block(G, y_sq, x_sq, inv_two_h2, run_max, run_sum):
    """Fold a block of inner products G = Y X^T into running (max, sum) per bandwidth and query.

    G (rows, cols) is overwritten with the snapped squared distances;
    run_max and run_sum have shape (len(inv_two_h2), rows).
    """
    n_cols = G.shape[1]
    for i in range(G.shape[0]):
        row = G[i]
        dmin = snap_row(row, y_sq[i], x_sq)
        for t in range(inv_two_h2.shape[0]):
            run_max[t, i], run_sum[t, i] = fold_terms(
                row, n_cols, dmin, inv_two_h2[t], run_max[t, i], run_sum[t, i]
            )


def _fold_into_log_sums_py(G, y_sq, x_sq, c, log_sums):
    """log_sums[i] <- log(exp(log_sums[i]) + sum_j exp(-c d2_ij)), with G = Y X^T overwritten."""
    n_cols = G.shape[1]
    for i in numba.prange(G.shape[0]):
        row = G[i]
        dmin = snap_row(row, y_sq[i], x_sq)
        old = log_sums[i]
        m, s = fold_terms(row, n_cols, dmin, c, old, 1.0 if old > -np.inf else 0.0)
        log_sums[i] = m + np.log(s)


# One body, two compilations: threads for large blocks, and a serial version
# (prange runs as range) for small blocks, where thread start-up would dominate.
fold_into_log_sums = numba.njit(parallel=True, cache=True, fastmath=FAST)(_fold_into_log_sums_py)
fold_into_log_sums_serial = numba.njit(nogil=True, cache=True, fastmath=FAST)(
    _fold_into_log_sums_py
)


def inverse_two_h2(h) -> np.ndarray:
    """``1 / (2 h^2)`` per bandwidth, 1/Å^-2; inf (no warning) where it overflows."""
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        return 0.5 / (h * h)


def centre(X: np.ndarray) -> np.ndarray:
    """Shift applied to queries and reference before the expanded distance: shape (d,).

    Any shift leaves distances unchanged; a small ``|x - centre|`` makes the
    rounding of ``|y|^2 + |x|^2 - 2 y.x`` small. The coordinate-wise median of
    at most CENTRE_SAMPLE evenly spaced rows: cheap, deterministic, and not
    dragged away from the bulk by a far outlier (a mean would be, and every
    bulk distance would then drown in its rounding).
    """
    step = max(1, len(X) // CENTRE_SAMPLE)
    return np.median(X[::step], axis=0)


def log_sum_exp(a, axis: int = -1) -> np.ndarray:
    """``log sum exp(a)`` along `axis`, without overflow (numpy only: scipy.special
    costs half a second of start-up). -inf where every term is -inf."""
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis)
