"""The per-query loop of `ClusterIndex.classify`: is ``S = sum_j K_h(y, x_j) >= 1``?

The reference is sorted by cluster (rows ``offsets[B]:offsets[B+1]``, centre
``c_B``). Every member of B is at least ``max(0, |y - c_B| - r)`` from y, r
its largest distance to the centre, so the clusters not visited add at most

    U = sum_B n_B exp(-c max(0, |y - c_B| - r_B)^2)        (c = 1 / (2 h^2))

to S, over the whole cluster (radius r_B) or shell by shell (members sorted
by distance to the centre; shell k of n_k members and largest radius r_k,
tighter than one radius for all). Per query (`classify_queries`):

1. bounds alone: a query with ``U < 1`` before any sum is outside (a melt's
   environment against a crystal, typically);
2. its nearest cluster, in runs of MEMBER_RUN rows, stopping as soon as
   ``S >= 1`` (inside: every term is positive);
3. the other clusters, nearest shell bound first, until ``S >= 1`` or
   ``S + U < 1`` (outside); with no decision after every cluster, S is exact.

The kernel terms may read float32 copies of queries and reference (half the
bytes: the loop is memory-bound) whose log-sum is within ``margin[i]`` nats
of the exact one (0 for float64; `ClusterIndex._float32_margin`): inside is
then decided at ``log S >= margin``, outside at ``S e^margin + U < e^-tail``.
"""

from __future__ import annotations

import numba
import numpy as np

from atominfo.engine.fold import FAST, SKIP_NATS, SNAP, exp_neg, fold_terms, log_kernel

# Rows of a cluster summed between two checks of S >= 1 in `classify_queries`: a point
# deep inside the domain reaches it after a few dozen of a cluster's hundreds.
MEMBER_RUN = 32
# A query whose radius bounds put U below exp(this) before any sum (a query well
# inside has at least its nearest cluster's log-size, about 6) gets its shell
# bounds at once (they often prove it outside without a kernel term).
SHELL_FIRST_NATS = 5.0
# Nats within which `_fold_terms32` (float32 terms) leaves the log-sum of its
# float64 counterpart: exp_neg32's 2e-4 relative, the arguments' 60 * 3 * 2^-24
# and the float32 sum of MEMBER_RUN terms' 32 * 2^-24 (added to the float32 margin).
FOLD32_NATS = 2.5e-4


@numba.njit(nogil=True, cache=True)
def centre_bounds(G, y_sq, centre_sq, radius):
    """Lower bounds of the squared centre distances, and each query's nearest cluster.

    G = Y C^T (queries and centres both centred); ``|y|^2 + |c|^2 - 2 y.c``
    is lowered by its rounding bound SNAP (|y|^2 + |c|^2), in place of G.
    Returns (G, first) with first[i] the cluster of smallest radius bound
    ``|y - c_B| - r_B``. One pass (numpy took five over the (m, n_c) matrix).
    """
    first = np.empty(G.shape[0], dtype=np.int64)
    for i in range(G.shape[0]):
        best = 0
        low = np.inf
        for b in range(G.shape[1]):
            s = y_sq[i] + centre_sq[b]
            v = s - 2.0 * G[i, b] - SNAP * s
            G[i, b] = v
            gap = np.sqrt(max(v, 0.0)) - radius[b]
            if gap < low:
                low = gap
                best = b
        first[i] = best
    return G, first


@numba.njit(inline="always", fastmath=FAST)
def _squared_distances(Y, i, Xs, lo, hi, buf):
    """``buf[j - lo] = |Y[i] - Xs[j]|^2`` for lo <= j < hi (direct differences); their minimum.

    Four reference rows per pass over the coordinates: each Y[i, k] is loaded
    once for four rows, about 2.5x faster than one row at a time (as fast as the
    BLAS product for a cluster of a few hundred rows).
    """
    d = Y.shape[1]
    dmin = np.inf
    j = lo
    zero = Xs.dtype.type(0.0)  # accumulate in the data's precision (float32: 8 lanes)
    while j + 4 <= hi:
        a0 = zero
        a1 = zero
        a2 = zero
        a3 = zero
        for k in range(d):
            yk = Y[i, k]
            t0 = yk - Xs[j, k]
            t1 = yk - Xs[j + 1, k]
            t2 = yk - Xs[j + 2, k]
            t3 = yk - Xs[j + 3, k]
            a0 += t0 * t0
            a1 += t1 * t1
            a2 += t2 * t2
            a3 += t3 * t3
        buf[j - lo] = a0
        buf[j - lo + 1] = a1
        buf[j - lo + 2] = a2
        buf[j - lo + 3] = a3
        dmin = min(dmin, min(min(a0, a1), min(a2, a3)))
        j += 4
    for jj in range(j, hi):
        acc = zero
        for k in range(d):
            t = Y[i, k] - Xs[jj, k]
            acc += t * t
        buf[jj - lo] = acc
        dmin = min(dmin, acc)
    return dmin


@numba.njit(inline="always", fastmath=FAST)
def exp_neg32(x):
    """exp(x) for -64 <= x <= 0 in float32 arithmetic, relative error < 2e-4.

    Taylor series of exp(x/128) to degree 7 (truncation < 2e-7), one rounding
    per multiply-add (< 8 u relative, u = 2^-24), then 7 squarings, which
    multiply the relative error by 128 and add 127 u: < 1.3e-4 in all
    (measured: 3.3e-5 at 2 million points). Eight lanes per SIMD instruction.
    """
    r = x * np.float32(1.0 / 128.0)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


@numba.njit(inline="always", fastmath=FAST)
def _fold_terms32(d2, n, dmin, c, m, s):
    """`atominfo.engine.fold.fold_terms` for float32 distances, with float32 terms.

    The block's terms ``exp(c (dmin - d2[j]))`` are taken and summed in float32
    (half the cost of the float64 polynomial); the block is then merged into the
    float64 running (m, s) as there. Within FOLD32_NATS of the float64 fold.
    """
    block_max = log_kernel(dmin, c)
    if block_max == -np.inf or block_max < m - SKIP_NATS:
        return m, s
    c32 = np.float32(c)
    low = np.float32(dmin)
    acc = np.float32(0.0)
    for j in range(n):
        a = min((low - d2[j]) * c32, np.float32(0.0))
        acc += exp_neg32(max(a, np.float32(-SKIP_NATS))) if a > -SKIP_NATS else np.float32(0.0)
    if block_max > m:
        return block_max, s * np.exp(m - block_max) + acc
    return m, s + acc * np.exp(block_max - m)


@numba.njit(inline="always", fastmath=FAST)
def _log_total(bound):
    """``log sum_b exp(bound[b])``, rounded up (terms clamped up at -SKIP_NATS below the top)."""
    top = bound.max()
    acc = 0.0
    for b in range(bound.shape[0]):
        acc += exp_neg(max(bound[b] - top, -SKIP_NATS))  # >= exp(.) up to 3e-14
    return top + np.log(acc * (1.0 + 1e-12)) + 1e-12


@numba.njit(inline="always", fastmath=FAST)
def _shell_bounds(i, cd2_lo, c, bound, shell_r, shell_log_n, shell_v):
    """Replace each cluster's radius bound (log) for query i by its shell-wise bound.

    Terms are clamped up at -SKIP_NATS (still an upper bound); a cluster already
    negligible on its radius bound is left as it is.
    """
    n_sh = shell_r.shape[1]
    coarse_max = bound.max()
    for b in range(bound.shape[0]):
        if bound[b] < coarse_max - SKIP_NATS:
            continue  # negligible already (and clamped below)
        dist = np.sqrt(max(cd2_lo[i, b], 0.0))
        top = -np.inf
        for k in range(n_sh):
            g = max(dist - shell_r[b, k], 0.0)
            v = shell_log_n[b, k] + log_kernel(g * g, c)
            shell_v[k] = v
            top = max(top, v)
        acc = 0.0
        for k in range(n_sh):
            acc += exp_neg(max(shell_v[k] - top, -SKIP_NATS))  # >= exp(.) up to 3e-14
        # rounded up: the log-sum of a few terms, a few ulps
        bound[b] = top + np.log(acc * (1.0 + 1e-12)) + 1e-12


@numba.njit(inline="always", fastmath=FAST)
def _sum_cluster(Yd, i, Xd, lo, hi, c, m, s, mg, buf):
    """Fold the terms of rows lo:hi into the running (m, s), in runs of
    MEMBER_RUN rows, until log S >= mg (every term is positive: once S >= 1
    the rest cannot change the label). Returns (m, s, terms evaluated)."""
    single = Xd.itemsize == 4  # float32 rows: float32 terms (margin has FOLD32_NATS)
    pairs = 0
    for j0 in range(lo, hi, MEMBER_RUN):
        j1 = min(j0 + MEMBER_RUN, hi)
        dmin = _squared_distances(Yd, i, Xd, j0, j1, buf)
        pairs += j1 - j0
        if single:
            m, s = _fold_terms32(buf, j1 - j0, dmin, c, m, s)
        else:
            m, s = fold_terms(buf, j1 - j0, dmin, c, m, s)
        if m + np.log(s) >= mg:
            break
    return m, s, pairs


@numba.njit(inline="always", fastmath=FAST)
def _first_bounds(i, cd2_lo, c, index, bound, shell_v):
    """Each cluster's radius bound (log) for query i, into `bound`; when those
    nearly decide (0 <= log U < SHELL_FIRST_NATS), the shell bounds instead.
    Returns (log U, whether the shell bounds are in place)."""
    offsets, radius, log_size, shell_r, shell_log_n, Xd = index
    for b in range(radius.shape[0]):
        gap = max(np.sqrt(max(cd2_lo[i, b], 0.0)) - radius[b], 0.0)
        bound[b] = log_size[b] + log_kernel(gap * gap, c)
    log_u = _log_total(bound)
    if 0.0 <= log_u < SHELL_FIRST_NATS:
        _shell_bounds(i, cd2_lo, c, bound, shell_r, shell_log_n, shell_v)
        return _log_total(bound), True
    return log_u, False


@numba.njit(inline="always", fastmath=FAST)
def _weights(bound, weight):
    """Each cluster's weight exp(bound - max bound), rounded up, into `weight`;
    returns (max bound, sum of the weights)."""
    bound_max = bound.max()
    u_total = 0.0
    for b in range(bound.shape[0]):
        weight[b] = exp_neg(max(bound[b] - bound_max, -SKIP_NATS))
        u_total += weight[b]
    return bound_max, u_total


@numba.njit(inline="always")
def _visit_order(bound, best, order):
    """Clusters nearest bound first, the one already visited (`best`) first of all."""
    order[:] = np.argsort(-bound)
    for k in range(bound.shape[0]):  # ties: make sure the visited one comes first
        if order[k] == best:
            order[k] = order[0]
            order[0] = best
            break


@numba.njit(nogil=True, cache=True, fastmath=FAST)
def classify_queries(queries, cd2_lo, first, c, margin, out_log, out_pairs, index):
    """Per query: visit clusters nearest-bound first until the sign of log S is decided.

    queries = (Y, Yd): centred queries (m, d) in float64 and the copy the
    kernel terms read (their float32 copy, or Y). cd2_lo (m, n_c): lower
    bounds of the squared centre distances; first[i]: the cluster of nearest
    radius bound, summed first. index = (offsets, radius, log_size, shell_r,
    shell_log_n, Xd): the reference sorted by cluster (cluster B in rows
    offsets[B]:offsets[B+1]), its radii, log-sizes and shells (members sorted
    by distance to the centre fall in shells of log-count shell_log_n[B, k]
    and largest radius shell_r[B, k]), and the rows the terms read (float32
    or float64, like Yd). The other clusters are visited in order of their
    shell bounds.

    Writes log S over the visited rows (>= margin[i]: inside; < -margin[i]
    with S e^margin + U < e^-tail: outside; otherwise every row was summed)
    and the number of kernel terms evaluated per query. The sums of Yd and Xd
    are within margin[i] nats of the exact one (0 for float64).
    """
    Y, Yd = queries
    offsets, radius, log_size, shell_r, shell_log_n, Xd = index
    n_c = offsets.shape[0] - 1
    bound = np.empty(n_c)  # log n_B - c l_B^2: log of the cluster's upper bound
    weight = np.empty(n_c)  # exp(bound - bound_max), rounded up
    order = np.empty(n_c, dtype=np.int64)
    buf = np.empty(MEMBER_RUN, dtype=Xd.dtype)
    shell_v = np.empty(shell_r.shape[1])
    for i in range(Y.shape[0]):
        mg = margin[i]
        tail = 1e-9 if mg > 0.0 else 0.0
        # nothing summed yet: a far query (a melt's environment against a
        # crystal) is often outside on its bounds alone, U < 1
        log_u, shelled = _first_bounds(i, cd2_lo, c, index, bound, shell_v)
        if log_u < 0.0:
            out_log[i] = log_u
            out_pairs[i] = 0
            continue
        best = first[i]
        lo, end = offsets[best], offsets[best + 1]
        m, s, pairs = _sum_cluster(Yd, i, Xd, lo, end, c, -np.inf, 0.0, mg, buf)
        if m + np.log(s) < mg and n_c > 1:
            if not shelled:
                _shell_bounds(i, cd2_lo, c, bound, shell_r, shell_log_n, shell_v)
            bound_max, u_total = _weights(bound, weight)
            u_visited = weight[best]
            for step in range(1, n_c):
                # unvisited bound, rounded up: the subtraction may cancel
                u = (u_total - u_visited) * (1.0 + 1e-12) + u_total * 1e-14
                log_s = m + np.log(s) + mg
                log_u = bound_max + np.log(u)
                hi = max(log_s, log_u)
                if hi + np.log(np.exp(log_s - hi) + np.exp(log_u - hi)) < -tail:
                    break  # S + U < 1: outside
                if step == 1:  # still undecided: order the clusters once
                    _visit_order(bound, best, order)
                best = order[step]
                u_visited += weight[best]
                lo, end = offsets[best], offsets[best + 1]
                m, s, n = _sum_cluster(Yd, i, Xd, lo, end, c, m, s, mg, buf)
                pairs += n
                if m + np.log(s) >= mg:
                    break  # S >= 1: inside
        out_log[i] = m + np.log(s)
        out_pairs[i] = pairs
