"""Kernel sums within a stated tolerance, pruned through a low-dimensional lower bound.

At small bandwidths the kernel sum of a query y far from the reference is made
of a few terms: every term more than ``T = log(n / tol)`` nats below the
largest adds at most ``tol / n`` of the sum, so all of them together at most
`tol`. The difficulty is finding the others without computing all n distances
in full dimension; balls around cluster centres (`clusters.py`) are far too
loose in 63 dimensions. This index uses the principal axes of the reference:
with P the projection on its first `dims` principal axes and Q on the rest
(orthonormal, about a centre m), the map ``z(v) = (P(v - m), |Q(v - m)|)`` into
``dims + 1`` dimensions never lengthens a distance,

    |y - x|^2 = |P(y - x)|^2 + |Q(y - x)|^2 >= |z(y) - z(x)|^2

(the reverse triangle inequality in the residual subspace). The reference's
environments vary mostly along a few axes (6 axes hold about 80% of the
variance of thermal BCC Ta descriptors), so the residual norms are small and
the bound is tight. Per query:

1. the exact squared distance U to the reference point nearest in z (a k-d
   tree of the z(x), `scipy.spatial.cKDTree`): U is at least the smallest
   squared distance;
2. every reference point with ``|z(y) - z(x)|^2 <= U + T / c`` (``c = 1/(2h^2)``),
   from the same tree, and its exact squared distance (sum of squared
   differences), folded by the one log-sum-exp fold (`atominfo.engine.fold`);
3. a query that keeps more than 1/32 of the reference (near the domain's
   edge, where many terms matter) takes the exact engine's BLAS product
   instead: gathering would be slower, and exact is within any tolerance.

Every point left out has ``exp(-c d^2) < exp(-T) exp(-c U) <= (tol / n) S``, so
the computed sum S' satisfies ``S / (1 + tol) <= S' <= S``: the log-sum is at
most ``log(1 + tol) <= tol`` nats below the exact one (dH at most `tol` nats
above exact dH, never below it), plus rounding (`rounding_bound`): the tree's
radius is widened by far more than the rounding of z, the kept distances carry
a relative error below (d + 2) u and the exact path's below ``SNAP``; the
fold's own bound is stated in `fold.py`. Far from the reference that rounding
is relative: a log-sum of -1e8 nats is only known to about 1e-8 nats.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from atominfo.engine.cpu import BLOCK_COLS, norms_squared
from atominfo.engine.fold import FAST, SNAP, centre, fold_block, fold_terms, inverse_two_h2
from atominfo.engine.threads import run_blocks

# Principal axes of the bound. Measured on 2,080 novel atoms of a BCC Ta
# snapshot against 160,000 BCC environments (k = 32, h = 0.015, tol = 0.01):
# the tree's work grows fast with the axes (6: 0.07 + 0.15 s; 8: 0.13 + 0.46 s;
# 12: 1.5 + 1.5 s) while the queries left to the exact engine hardly fall (24%, 23%, 22%).
DEFAULT_DIMS = 6
# Rows of the reference used to find its principal axes (any axes give a
# valid bound; a sample only makes them a little less tight).
PCA_SAMPLE = 20_000
# A query whose bound keeps more than this fraction of the reference takes the
# exact engine's BLAS rows (they reuse each reference row across queries).
GATHER_FRACTION = 1 / 32
# Reference rows sampled to guess that fraction before asking the tree (a wrong
# guess costs time, never accuracy: both paths are within the bound).
GUESS_SAMPLE = 1024
QUERY_ROWS = 256
# Relative widening of the tree's radius: far above the rounding of z (|z| u d).
RADIUS_SLACK = 1e-9

# Absolute rounding of a log-sum near the reference (the fold's bound, `fold.py`:
# below 1e-9 nats for descriptor norms < 10 1/Å and h >= 0.005 1/Å).
ROUNDING_NATS = 1e-9


def rounding_bound(log_sums, d: int) -> np.ndarray:
    """Stated rounding of log-sums (nats), either side of their tolerance interval.

    ``1e-9 + 2 max(SNAP, (d + 2) u) |log-sum|``: the squared distances carry a
    relative error below ``max(SNAP, (d + 2) u)`` (u = 2^-53; d the descriptor
    width), the float64 brute force as much again, and a far query's log-sum is
    ``-c d2``, so its rounding grows with it (measured: at most 2.6 u |log-sum|
    for log-sums up to 4e11 nats). `ProjectedIndex.log_kernel_sums` returns
    log-sums in ``[exact - log(1 + tol) - r, exact + r]`` with r this bound (dH:
    at most ``log(1 + tol) + r`` above exact, never more than r below).
    """
    eps_d = max(SNAP, (int(d) + 2) * 2.0**-53)
    return ROUNDING_NATS + 2.0 * eps_d * np.abs(np.asarray(log_sums, dtype=np.float64))


@numba.njit(nogil=True, cache=True, fastmath=FAST)
def _gather_fold(Yc, Xc, kept, offsets, c, out):
    """log-sum of the kernel terms of the listed reference points, per query.

    Query i keeps ``kept[offsets[i]:offsets[i + 1]]``; their exact squared
    distances (sums of squared differences) are folded by `fold.fold_terms`.
    """
    d = Yc.shape[1]
    buf = np.empty(max(1, np.max(np.diff(offsets)) if len(offsets) > 1 else 1))
    for i in range(len(offsets) - 1):
        count = 0
        dmin = np.inf
        for p in range(offsets[i], offsets[i + 1]):
            j = kept[p]
            v = 0.0
            for t in range(d):
                e = Yc[i, t] - Xc[j, t]
                v += e * e
            buf[count] = v
            count += 1
            dmin = min(dmin, v)
        m, s = fold_terms(buf, count, dmin, c, -np.inf, 0.0)
        out[i] = m + np.log(s) if s > 0.0 else -np.inf


class ProjectedIndex:
    """The reference with its principal axes and a k-d tree, for kernel sums within a tolerance.

    Parameters
    ----------
    X : array (n, d), reference descriptors, 1/Å.
    dims : int, principal axes of the bound (at most d; default 6).
    """

    def __init__(self, X, dims: int = DEFAULT_DIMS):
        from scipy.spatial import cKDTree

        X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = X.shape
        self.dims = int(max(1, min(dims, d)))
        self.mu = centre(X)
        self.Xc = np.ascontiguousarray(X - self.mu)
        self.x_sq = norms_squared(self.Xc, "reference")
        sample = self.Xc[:: max(1, n // PCA_SAMPLE)]
        _, vectors = np.linalg.eigh(sample.T @ sample)
        axes = vectors[:, ::-1]  # largest variance first
        self.P = np.ascontiguousarray(axes[:, : self.dims])
        self.Q = np.ascontiguousarray(axes[:, self.dims :])
        self.Z = self._z(self.Xc)
        self.tree = cKDTree(self.Z, leafsize=32, balanced_tree=False, compact_nodes=False)
        self.guess = self.Z[:: max(1, n // GUESS_SAMPLE)]

    def _z(self, Vc: np.ndarray) -> np.ndarray:
        """(len(Vc), dims + 1): projections on the axes, then the residual norm."""
        residual = Vc @ self.Q
        return np.c_[Vc @ self.P, np.sqrt(np.einsum("ij,ij->i", residual, residual))]

    def __len__(self) -> int:
        return len(self.Xc)

    def _exact(self, Yc: np.ndarray, y_sq: np.ndarray, c: float) -> np.ndarray:
        """Exact log-sums of centred queries (squared norms `y_sq`): the CPU engine's
        blocked product and fold."""
        inv = np.array([c])
        run_max = np.full((1, len(Yc)), -np.inf)
        run_sum = np.zeros((1, len(Yc)))
        for x0 in range(0, len(self.Xc), BLOCK_COLS):
            Gb = Yc @ self.Xc[x0 : x0 + BLOCK_COLS].T
            fold_block(Gb, y_sq, self.x_sq[x0 : x0 + BLOCK_COLS], inv, run_max, run_sum)
        with np.errstate(divide="ignore"):
            return (run_max + np.log(run_sum))[0]

    def log_kernel_sums(
        self, Y, h: float, tol: float, threads: int | None = None, progress=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``log sum_j exp(-|y_i - x_j|^2 / (2 h^2))``, at most ``log(1 + tol)`` below exact.

        Parameters
        ----------
        Y : array (m, d), queries, 1/Å.
        h : float, bandwidth, 1/Å.
        tol : float > 0, relative bound on the terms left out (their sum is at
            most `tol` times the computed sum).
        threads : worker threads (default: numba's thread count).
        progress : callable or None, called with the number of queries finished.

        Returns
        -------
        (log_sums (m,), kept (m,)): the log-sums (nats; each in
        ``[exact - log(1 + tol), exact]`` up to `rounding_bound`) and, per query, the
        reference points whose exact distance was computed (n where the
        exact engine was used).
        """
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        c = float(inverse_two_h2(h)[0])
        n = len(self.Xc)
        # terms below exp(-skip_nats) of the largest: n of them are at most tol of the sum
        skip_nats = math.log(n / tol) if tol < n else 0.0
        skip = skip_nats / c if c > 0 else math.inf
        out = np.empty(len(Y))
        kept = np.empty(len(Y), dtype=np.int64)
        n_threads = max(1, threads or numba.get_num_threads())
        starts = range(0, len(Y), QUERY_ROWS)

        def work(y0):
            Yc = np.ascontiguousarray(Y[y0 : y0 + QUERY_ROWS] - self.mu)
            y_sq = norms_squared(Yc, "query", y0)
            zq = self._z(Yc)
            _, nearest = self.tree.query(zq, k=1)
            gap = Yc - self.Xc[nearest]
            U = np.einsum("ij,ij->i", gap, gap)
            reach = U + skip
            radius = np.sqrt(reach) * (1 + RADIUS_SLACK) + RADIUS_SLACK * (
                np.sqrt(np.einsum("ij,ij->i", zq, zq)) + 1.0
            )
            # guess from a sample which queries keep many points (exact engine)
            d2 = ((zq[:, None, :] - self.guess[None]) ** 2).sum(axis=2)
            many = (d2 <= (radius**2)[:, None]).mean(axis=1) > GATHER_FRACTION
            block, counts = out[y0 : y0 + QUERY_ROWS], kept[y0 : y0 + QUERY_ROWS]
            few = np.flatnonzero(~many)
            if len(few):
                lists = self.tree.query_ball_point(zq[few], radius[few])
                sizes = np.array([len(v) for v in lists], dtype=np.int64)
                offsets = np.concatenate([[0], np.cumsum(sizes)])
                flat = np.fromiter(
                    (j for v in lists for j in v), dtype=np.int64, count=int(offsets[-1])
                )
                sums = np.empty(len(few))
                _gather_fold(Yc[few], self.Xc, flat, offsets, c, sums)
                block[few], counts[few] = sums, sizes
            if many.any():
                block[many], counts[many] = self._exact(Yc[many], y_sq[many], c), n
            if progress is not None:
                progress(len(Yc))

        if len(Y):
            run_blocks(work, starts, n_threads)
        return out, kept
