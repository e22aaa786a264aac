"""Exact sums of Gaussian kernels on the CPU, in log space and in bounded memory.

For queries Y and reference X the engine returns, per bandwidth h,
``log sum_j exp(-|y_i - x_j|^2 / (2 h^2))``. Squared distances come from a
BLAS matrix product block by block (the full n x n matrix is never built);
a numba kernel folds each block into a running log-sum-exp per query, so a
far outlier gets a finite log (e.g. -250 nats), never log(0).
"""

from __future__ import annotations

import numba
import numpy as np

# Terms more than this many nats below the running maximum are skipped: each
# is < exp(-60) ~ 1e-26 of the sum, so even 1e12 of them change log(sum) by
# < 1e-14 nats.
SKIP_NATS = 60.0
DEFAULT_MEMORY_BYTES = 256 * 2**20
# Relative rounding bound of the expanded squared distance (see _fold_block);
# snapping below it changes a log-sum by < SNAP (|y|^2+|x|^2) / (2 h^2) nats.
SNAP = 64 * np.finfo(np.float64).eps


# fastmath without "ninf"/"nnan": the running maximum starts at -inf.
@numba.njit(parallel=True, cache=True,
           fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def _fold_block(d2, y_sq, x_sq, inv_two_h2, run_max, run_sum):
    """Fold a block of squared distances into running (max, sum) per bandwidth and query.

    d2 = |y|^2 + |x|^2 - 2 y.x carries a rounding error of order
    eps (|y|^2 + |x|^2); values below SNAP times that are taken as exact zeros,
    so that a point's own term is exactly 1 and dH(x | X) <= 0 for x in X.
    """
    n_h = inv_two_h2.shape[0]
    for i in numba.prange(d2.shape[0]):
        dmin = np.inf
        for j in range(d2.shape[1]):
            v = d2[i, j]
            if v < SNAP * (y_sq[i] + x_sq[j]):
                v = 0.0
                d2[i, j] = 0.0
            if v < dmin:
                dmin = v
        for t in range(n_h):
            c = inv_two_h2[t]
            block_max = -dmin * c
            m = run_max[t, i]
            if block_max > m:
                run_sum[t, i] *= np.exp(m - block_max)
                m = block_max
                run_max[t, i] = m
            # d2 * c <= -m + SKIP  <=>  the term is within SKIP nats of the max
            limit = (SKIP_NATS - m) / c
            s = 0.0
            for j in range(d2.shape[1]):
                v = d2[i, j]
                if v < limit:
                    s += np.exp(-v * c - m)
            run_sum[t, i] += s


def block_rows(n_cols: int, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> int:
    """Rows of a float64 block with `n_cols` columns that fit the memory budget."""
    return int(max(16, min(1 << 20, memory_bytes // (8 * max(n_cols, 1)))))


def log_kernel_sums(Y: np.ndarray, X: np.ndarray, h: np.ndarray,
                    memory_bytes: int = DEFAULT_MEMORY_BYTES, progress=None) -> np.ndarray:
    """``log sum_j K_h(Y_i, X_j)`` for each bandwidth in `h`: array (len(h), len(Y)).

    Memory: two float64 blocks of at most `memory_bytes` each, whatever the sizes.
    `progress`, if given, is called with the number of queries finished.
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    inv_two_h2 = 1.0 / (2.0 * h * h)
    out = np.empty((len(h), len(Y)))
    x_sq = np.einsum("ij,ij->i", X, X)
    bx = min(len(X), 4096)
    by = min(len(Y), block_rows(bx, memory_bytes))
    for y0 in range(0, len(Y), by):
        Yb = Y[y0:y0 + by]
        y_sq = np.einsum("ij,ij->i", Yb, Yb)
        run_max = np.full((len(h), len(Yb)), -np.inf)
        run_sum = np.zeros((len(h), len(Yb)))
        for x0 in range(0, len(X), bx):
            Xb = X[x0:x0 + bx]
            d2 = Yb @ Xb.T
            d2 *= -2.0
            d2 += y_sq[:, None]
            d2 += x_sq[None, x0:x0 + bx]
            _fold_block(d2, y_sq, x_sq[x0:x0 + bx], inv_two_h2, run_max, run_sum)
        out[:, y0:y0 + by] = run_max + np.log(run_sum)
        if progress is not None:
            progress(len(Yb))
    return out
