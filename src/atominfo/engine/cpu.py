"""Exact sums of Gaussian kernels on the CPU, in log space and in bounded memory.

For queries Y and reference X the engine returns, per bandwidth h,
``log sum_j exp(-|y_i - x_j|^2 / (2 h^2))``. Inner products come from a
float64 BLAS matrix product block by block (the full n x n matrix is never
built); one fused numba pass turns each block into squared distances and a
second folds them into a running log-sum-exp per query, so a far outlier
gets a finite log (e.g. -250 nats), never log(0).

The result differs from the exact log-sum by at most the one error bound of
the fold, stated in `atominfo.engine.fold` (below 1e-9 nats for descriptors
of norm < 10 1/Å and h >= 0.005 1/Å; tested against float64 brute force).

Far rows: rows whose squared norms would overflow float64 (beyond about
1e150 1/Å from the reference's centre) are scaled down by a power of two and
1/(2h^2) up by its square, which leaves every ``c d2`` exactly as it was; so
the log-sum is finite wherever float64 holds it. (Only if 1/(2h^2) times that
square overflows, h below about 1e-150 1/Å with such rows, does the fold fall
back to counting exact duplicates, as for an overflowing 1/(2h^2).)
"""

from __future__ import annotations

import math

import numba
import numpy as np

from atominfo.engine.fold import SKIP_NATS, SNAP, centre, fold_block, inverse_two_h2  # noqa: F401
from atominfo.engine.threads import run_blocks
from atominfo.errors import InputError

DEFAULT_MEMORY_BYTES = 256 * 2**20
# Query rows x reference columns of one block: small enough that the block of
# inner products (8 MiB) stays in cache between the BLAS call and the fold.
BLOCK_ROWS, BLOCK_COLS = 1024, 2048


def block_rows(n_cols: int, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> int:
    """Rows of a float64 block with `n_cols` columns that fit the memory budget."""
    return int(max(16, min(1 << 20, memory_bytes // (8 * max(n_cols, 1)))))


def log_kernel_sums(
    Y: np.ndarray,
    X: np.ndarray,
    h: np.ndarray,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    progress=None,
    threads: int | None = None,
) -> np.ndarray:
    """``log sum_j K_h(Y_i, X_j)`` for each bandwidth in `h`: array (len(h), len(Y)).

    Parameters
    ----------
    Y : array (m, d), queries, 1/Å.
    X : array (n, d), reference, 1/Å.
    h : array (n_h,), bandwidths, 1/Å.
    memory_bytes : bound on the working blocks of inner products, all threads together (bytes).
    progress : callable or None, called with the number of queries finished.
    threads : worker threads (default: numba's thread count, i.e. ``--threads``).

    Returns
    -------
    array (n_h, m) of log kernel sums (nats); see the module docstring for the
    exactness bound.
    """
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    out = np.empty((len(h), len(Y)))
    # Centre on X (`fold.centre`): distances are unchanged, the rounding error of
    # the expanded form shrinks with the norms (same shift for Y and X, so a
    # row of Y equal to a row of X stays bitwise equal).
    mu = centre(X)
    # Rows too far out for float64 squared norms are scaled down by a power of
    # two s, and c = 1/(2h^2) up by s^2: c d2 is unchanged (exactly).
    scale = distance_scale(Y, X, mu)
    with np.errstate(over="ignore"):  # c s^2 beyond float64: as an overflowing c
        inv_two_h2 = inverse_two_h2(h) * scale * scale
    Xc = np.ascontiguousarray(shifted(X, mu, scale))
    x_sq = norms_squared(Xc, "reference")
    n_threads = max(1, threads or numba.get_num_threads())
    bx = min(len(X), BLOCK_COLS)
    by = min(len(Y), max(16, min(BLOCK_ROWS, block_rows(bx, memory_bytes // n_threads))))
    starts = range(0, len(Y), by)

    def work(y0):
        # One query block per worker: single-threaded BLAS then the numba
        # fold (both release the GIL). Two thread pools (BLAS and numba)
        # spinning against each other on the same cores were 10x slower.
        Yb = np.ascontiguousarray(shifted(Y[y0 : y0 + by], mu, scale))
        y_sq = norms_squared(Yb, "query", y0)
        G = np.empty((len(Yb), bx))
        run_max = np.full((len(h), len(Yb)), -np.inf)
        run_sum = np.zeros((len(h), len(Yb)))
        for x0 in range(0, len(X), bx):
            Xb = Xc[x0 : x0 + bx]
            Gb = G if len(Xb) == bx else np.empty((len(Yb), len(Xb)))
            np.matmul(Yb, Xb.T, out=Gb)
            fold_block(Gb, y_sq, x_sq[x0 : x0 + bx], inv_two_h2, run_max, run_sum)
        with np.errstate(divide="ignore"):  # no term in float64's range: -inf, see fold.py
            out[:, y0 : y0 + by] = run_max + np.log(run_sum)
        if progress is not None:
            progress(len(Yb))

    run_blocks(work, starts, n_threads)
    return out


# Squared norms of centred rows stay below 2^MAX_SQUARED_EXPONENT (after
# `distance_scale`): their sums and the inner products stay inside float64.
MAX_SQUARED_EXPONENT = 1000


def distance_scale(Y: np.ndarray, X: np.ndarray, mu: np.ndarray) -> float:
    """Power of two s such that the rows of ``(Y - mu) / s`` and ``(X - mu) / s`` have
    squared norms below 2^MAX_SQUARED_EXPONENT; 1.0 for every data set where they
    already do (so the arithmetic is then untouched).
    """
    half = max(_half_reach(Y, mu), _half_reach(X, mu))
    if half == 0.0:
        return 1.0
    # |z - mu| <= 2 half < 2^top per coordinate, so |z - mu|^2 < d 4^top
    top = math.frexp(half)[1] + 1
    excess = 2 * top + math.ceil(math.log2(Y.shape[1])) - MAX_SQUARED_EXPONENT
    return 1.0 if excess <= 0 else math.ldexp(1.0, (excess + 1) // 2)


def _half_reach(Z: np.ndarray, mu: np.ndarray) -> float:
    """Half the largest |z - mu| over coordinates, computed without overflow."""
    if len(Z) == 0:
        return 0.0
    above = Z.max(axis=0) * 0.5 - mu * 0.5
    below = mu * 0.5 - Z.min(axis=0) * 0.5
    return float(np.max(np.maximum(above, below)))


def shifted(Z: np.ndarray, mu: np.ndarray, scale: float) -> np.ndarray:
    """``(Z - mu) / scale`` (scale a power of two), without overflow for any finite Z."""
    if scale == 1.0:
        return Z - mu
    inverse = 1.0 / scale
    return Z * inverse - mu * inverse


def norms_squared(Z: np.ndarray, name: str, first_row: int = 0) -> np.ndarray:
    """Squared row norms, (len(Z),); an InputError where one overflows float64.

    The expanded distance needs them: a row beyond about 1e154 1/Å from the
    reference's centre has no float64 distance to it.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", Z, Z)
    if not np.isfinite(sq).all():
        row = first_row + int(np.argmax(~np.isfinite(sq)))
        raise InputError(
            f"{name} row {row} is too far from the reference "
            "(its squared distance overflows float64)"
        )
    return sq
