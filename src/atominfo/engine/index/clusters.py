"""A cluster index of the reference: pruned kernel sums and exact classification.

The reference X is split into clusters (faiss k-means), each stored with its
centre c_B, radius r_B = max |x - c_B| and size n_B. For a query y every
member of B is at least ``l_B = max(0, |y - c_B| - r_B)`` away, so a set of
clusters not visited adds at most

    U = sum_B n_B exp(-l_B^2 / (2 h^2))

to the kernel sum S; over the visited clusters S is summed exactly, so
``S_visited <= S <= S_visited + U``. Rounding is accounted for: centre
distances are lowered by the expanded form's rounding bound and radii raised
by a few ulps.

* `ClusterIndex.log_kernel_sums(Y, h, tol)` groups queries by nearest centre
  and sums each group with BLAS over the clusters it needs, skipping a
  cluster only while, for every query of the group, the skipped bounds add
  up to at most `tol` times the sum already computed. Each value is at most
  ``log(1 + tol) <= tol`` nats below the exact log-sum (a rigorous bound;
  default tol 1e-9), plus the exact engine's own error (`atominfo.engine.fold`).
* `ClusterIndex.classify(Y, h)` decides ``S >= 1`` (dH <= 0, inside the
  domain) per query: a query whose bounds alone add up to ``U < 1`` is outside
  without a kernel term; otherwise clusters are visited nearest-bound first,
  each in runs of rows, stopping as
  soon as ``S_visited >= 1`` (inside) or ``S_visited + U < 1`` (outside); with
  no decision after every cluster, S is the exact sum. Past the first cluster
  each cluster is bounded shell by shell (members sorted by distance to the
  centre; shell k contributes n_k exp(-c max(0, |y - c_B| - r_k)^2) with r_k
  its largest radius), tighter than one radius for all. The label equals
  that of exact dH for every point with |dH| > 1e-9 nats (the sums carry the
  exact engine's error, far below that; see `atominfo.engine.fold`).

Queries are independent, so any chunk of queries can be classified against
a prebuilt index (e.g. mapped over chunks by Dask).
"""

from __future__ import annotations

import numba
import numpy as np

from atominfo.engine.fold import (
    FAST,
    SKIP_NATS,
    SNAP,
    centre,
    exp_neg,
    fold_block,
    fold_terms,
    inverse_two_h2,
    log_kernel,
)
from atominfo.engine.threads import run_blocks

QUERY_CHUNK = 1024
# Rows of a cluster summed between two checks of S >= 1 in `_classify`: a point
# deep inside the domain reaches it after a few dozen of a cluster's hundreds.
MEMBER_RUN = 32
# A query whose radius bounds put U below exp(this) before any sum (a query well
# inside has at least its nearest cluster's log-size, about 6) gets its shell
# bounds at once (they often prove it outside without a kernel term).
SHELL_FIRST_NATS = 5.0


def classify_clusters(n: int) -> int:
    """Clusters of an index built for `ClusterIndex.classify`: about sqrt(n) / 2.5.

    With shell-wise bounds fewer, larger clusters classify faster (per-query cost
    over all centres falls; the bounds stay tight): on 100,000 x 100,000 Cu
    environments 80-160 clusters took 1.0 s, 318 clusters 1.3-1.5 s, 600 clusters 2.0-2.3 s.
    """
    return max(1, round(np.sqrt(max(n, 1)) / 2.5))


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


@numba.njit(nogil=True, cache=True, fastmath=FAST)
def _classify(
    Y,
    cd2_lo,
    offsets,
    radius,
    log_size,
    c,
    first,
    out_log,
    out_pairs,
    shell_r,
    shell_log_n,
    Yd,
    Xd,
    margin,
):
    """Per query: visit clusters nearest-bound first until the sign of log S is decided.

    Y (m, d) centred queries; cd2_lo (m, n_c) lower bounds of squared centre
    distances; Xd (n, d) centred reference sorted by cluster, cluster B being
    rows offsets[B]:offsets[B+1]. A query is first tested on its bounds alone,
    then cluster first[i] (nearest radius bound) is summed, then the others
    in order of their shell bounds. Writes log S over the visited rows
    (>= 0: inside for sure, the last cluster's rows summed only until then;
    < 0: outside, S + U < 1, or all visited) and the
    number of kernel terms evaluated per query.

    Undecided queries bound each cluster shell by shell: members sorted by
    their distance to the centre fall in shells of log-count shell_log_n[B, k]
    and largest member radius shell_r[B, k], each member being at least
    ``|y - c_B| - shell_r[B, k]`` away, a tighter bound than the cluster radius.

    The kernel terms take their distances from Yd and Xd (Y and Xs, or their
    float32 copies: half the bytes read, the kernel being memory-bound), whose
    log-sum is within margin[i] nats of the exact one (0 for float64): inside
    is decided at log S >= margin[i], outside at S e^margin[i] + U < e^-tail.
    """
    n_c = offsets.shape[0] - 1
    bound = np.empty(n_c)  # log n_B - c l_B^2: log of the cluster's upper bound
    weight = np.empty(n_c)  # exp(bound - bound_max), rounded up
    order = np.empty(n_c, dtype=np.int64)
    buf = np.empty(MEMBER_RUN)
    shell_v = np.empty(shell_r.shape[1])
    for i in range(Y.shape[0]):
        mg = margin[i]
        tail = 1e-9 if mg > 0.0 else 0.0
        for b in range(n_c):
            gap = max(np.sqrt(max(cd2_lo[i, b], 0.0)) - radius[b], 0.0)
            bound[b] = log_size[b] + log_kernel(gap * gap, c)
        shelled = False
        # nothing summed yet: a far query (a melt's environment against a
        # crystal) is often outside on the bounds alone, U < 1: first the
        # radius bounds, then, when those nearly decide, the shell bounds
        # (kept for the visits; for a query well inside they cost more than
        # they save)
        log_u = _log_total(bound)
        if 0.0 <= log_u < SHELL_FIRST_NATS:
            _shell_bounds(i, cd2_lo, c, bound, shell_r, shell_log_n, shell_v)
            shelled = True
            log_u = _log_total(bound)
        if log_u < 0.0:
            out_log[i] = log_u
            out_pairs[i] = 0
            continue
        best = first[i]
        m = -np.inf
        s = 0.0
        pairs = 0
        bound_max = 0.0
        u_total = 0.0
        u_visited = 0.0
        for step in range(n_c + 1):
            if step == n_c:
                break  # every cluster visited: S is exact
            if step > 0:  # step 0: the nearest cluster, summed below
                log_s = m + np.log(s)
                if log_s >= mg:
                    break  # S >= 1 already: inside
                log_s += mg
                if step == 1:
                    if not shelled:
                        _shell_bounds(i, cd2_lo, c, bound, shell_r, shell_log_n, shell_v)
                    bound_max = bound.max()
                    for b in range(n_c):
                        weight[b] = exp_neg(max(bound[b] - bound_max, -SKIP_NATS))
                        u_total += weight[b]
                    u_visited = weight[best]
                # unvisited bound, rounded up: the subtraction may cancel
                u = (u_total - u_visited) * (1.0 + 1e-12) + u_total * 1e-14
                log_u = bound_max + np.log(u)
                hi = max(log_s, log_u)
                if hi + np.log(np.exp(log_s - hi) + np.exp(log_u - hi)) < -tail:
                    break  # S + U < 1: outside
                if step == 1:
                    # still undecided: order the clusters once, nearest bound first
                    order[:] = np.argsort(-bound)
                    for k in range(n_c):  # ties: make sure the visited one comes first
                        if order[k] == best:
                            order[k] = order[0]
                            order[0] = best
                            break
                best = order[step]
                u_visited += weight[best]
            # the cluster in runs of MEMBER_RUN rows: every term is positive, so
            # once S >= 1 the rest cannot change the label (inside)
            for j0 in range(offsets[best], offsets[best + 1], MEMBER_RUN):
                j1 = min(j0 + MEMBER_RUN, offsets[best + 1])
                dmin = _squared_distances(Yd, i, Xd, j0, j1, buf)
                pairs += j1 - j0
                m, s = fold_terms(buf, j1 - j0, dmin, c, m, s)
                if m + np.log(s) >= mg:
                    break
        out_log[i] = m + np.log(s)
        out_pairs[i] = pairs


@numba.njit(nogil=True, cache=True)
def _needed_clusters(cd2_lo, radius, log_size, c, log_floor, visited, needed):
    """Mark the clusters a block of queries must visit.

    For query i the clusters sorted by their bound are dropped from the far
    end while the dropped bounds sum to at most exp(log_floor[i]) (tol times a
    lower bound of that query's sum); every other cluster is marked needed.
    """
    n_c = cd2_lo.shape[1]
    bound = np.empty(n_c)
    for i in range(cd2_lo.shape[0]):
        for b in range(n_c):
            gap = max(np.sqrt(max(cd2_lo[i, b], 0.0)) - radius[b], 0.0)
            bound[b] = -np.inf if visited[b] else log_size[b] + log_kernel(gap * gap, c)
        order = np.argsort(bound)  # smallest (farthest) first
        acc_max = -np.inf
        acc = 0.0
        for k in range(n_c):
            b = order[k]
            if visited[b]:
                continue  # exact already, nothing to bound
            # running log-sum of the dropped bounds, including b
            v = bound[b]
            if v > acc_max:
                acc = acc * np.exp(acc_max - v) + 1.0
                acc_max = v
            else:
                acc += np.exp(v - acc_max)
            if acc_max + np.log(acc) > log_floor[i]:
                for kk in range(k, n_c):
                    if not visited[order[kk]]:
                        needed[order[kk]] = True
                break


class ClusterIndex:
    """Reference environments grouped in clusters, built once, for bounded and pruned sums.

    Parameters
    ----------
    X : array (n, d), reference descriptors, 1/Å.
    n_clusters : int or None, clusters (default ``round(sqrt(n))``).
    seed : int, seed of the k-means initialisation.

    Attributes
    ----------
    mean : (d,) shift applied to all points (centring keeps rounding small).
    sorted_X : (n, d) centred reference, grouped by cluster.
    offsets : (n_clusters + 1,) cluster B holds rows offsets[B]:offsets[B+1].
    centres, radius : (n_clusters, d) and (n_clusters,), 1/Å.
    x_sq : (n,) squared norms of the rows of sorted_X.
    """

    def __init__(self, X, n_clusters: int | None = None, seed: int = 0):
        import faiss

        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        self.seed = seed
        self.mean = centre(X)
        Xc = X - self.mean
        k = int(n_clusters or max(1, round(np.sqrt(n))))
        k = max(1, min(k, n // 39))  # faiss wants >= 39 training points per centroid
        if k > 1:
            # Any clustering gives valid bounds; tighter ones only save time: 5
            # k-means iterations gave the kernel terms of 10. One OpenMP thread:
            # faiss's spinning threads were 4x slower on a busy 2-core machine.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                km = faiss.Kmeans(
                    d, k, niter=5, seed=seed, verbose=False, max_points_per_centroid=64
                )
                data = np.ascontiguousarray(Xc, dtype=np.float32)
                km.train(data)
            finally:
                faiss.omp_set_num_threads(threads)
            # nearest centroid by one float32 product (faster than faiss's search;
            # a near tie going either way still gives valid bounds)
            cen = np.asarray(km.centroids, dtype=np.float32)
            label = (np.einsum("ij,ij->i", cen, cen)[None, :] - 2.0 * (data @ cen.T)).argmin(1)
        else:
            label = np.zeros(n, dtype=np.int64)
        order = np.argsort(label, kind="stable")
        counts = np.bincount(label, minlength=k)
        keep = counts > 0
        self.order = order
        self.sorted_X = np.ascontiguousarray(Xc[order])
        counts = counts[keep]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sizes = counts.astype(np.int64)
        sums = np.add.reduceat(self.sorted_X, self.offsets[:-1], axis=0)
        self.centres = sums / counts[:, None]
        member_centre = np.repeat(self.centres, counts, axis=0)
        dist = np.sqrt(((self.sorted_X - member_centre) ** 2).sum(axis=1))
        # radius inflated by a few ulps: the bound must hold despite rounding
        self.radius = np.maximum.reduceat(dist, self.offsets[:-1]) * (1 + 1e-12) + 1e-15
        self.centre_sq = np.einsum("ij,ij->i", self.centres, self.centres)
        # squared norms of the members, once (per call they cost as much as
        # classifying a few hundred queries)
        self.x_sq = np.einsum("ij,ij->i", self.sorted_X, self.sorted_X)
        # float32 copy for `classify`'s kernel terms (see `_float32_margin`)
        self.sorted_X32 = self.sorted_X.astype(np.float32)
        self.x_norm_max = float(np.sqrt(self.x_sq.max(initial=0.0)))
        self._shells(dist)

    def _shells(self, dist, fractions=(0.2, 0.4, 0.6, 0.75, 0.87, 0.95, 0.99)):
        """Per cluster, members by distance to the centre in shells (for tighter bounds).

        shell_r[B, k]: largest distance in shell k (inflated by a few ulps, like
        the radius); shell_log_n[B, k]: log of its member count (-inf if empty).
        """
        edges = np.array((0.0, *fractions, 1.0))
        k = len(edges) - 1
        self.shell_r = np.zeros((self.n_clusters, k))
        self.shell_log_n = np.full((self.n_clusters, k), -np.inf)
        for b in range(self.n_clusters):
            r = np.sort(dist[self.offsets[b] : self.offsets[b + 1]])
            cuts = np.round(edges * len(r)).astype(np.int64)
            for t in range(k):
                if cuts[t + 1] > cuts[t]:
                    self.shell_r[b, t] = r[cuts[t + 1] - 1] * (1 + 1e-12) + 1e-15
                    self.shell_log_n[b, t] = np.log(cuts[t + 1] - cuts[t])

    def __len__(self) -> int:
        return len(self.sorted_X)

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)

    def _centre_bounds(self, Yc, y_sq):
        """Lower bounds of the squared distances of centred queries to the centres (m, n_c)."""
        cd2 = y_sq[:, None] + self.centre_sq[None, :] - 2.0 * (Yc @ self.centres.T)
        # lower bound of the squared centre distance despite rounding
        cd2 -= SNAP * (y_sq[:, None] + self.centre_sq[None, :])
        return cd2

    def _float32_margin(self, y_sq, c):
        """Nats within which the float32 kernel's log S is of the exact one, per query.

        With u = 2^-24, rounding each coordinate moves a distance D by at most
        e = u (|y| + max |x|); the float32 differences, squares and sum (any
        order) leave the computed d2 within g = (d + 3) u relative of the
        rounded coordinates' one. For any eta > 0, D^2 lies in d2 (1 -+ (g + eta)) -+
        e^2 (1 + 1/eta) (from 2 e D <= eta D^2 + e^2 / eta), so every term with
        c d2 <= T = 100 is within T (2g + eta) + c e^2 (1 + 1/eta) nats
        (eta = e sqrt(c / T) minimises it); terms beyond T sum to below
        n e^-98, far under the 1e-9 nats added (c 1e-40: float32 underflow of
        tiny squares, under d 2^-149 absolute). Inf (no float32) when that is
        not small or a coordinate could leave float32's range.
        """
        t = 100.0
        u = 2.0**-24
        e = 1.01 * u * (np.sqrt(y_sq) + self.x_norm_max) + 1e-30
        eta = e * np.sqrt(c / t)
        with np.errstate(all="ignore"):
            g = (self.sorted_X.shape[1] + 3) * u
            mg = t * (2.0 * g + eta) + c * (e * e * (1.0 + 1.0 / eta) + 1e-40) + 1e-9
        far = (np.sqrt(y_sq) > 1e30) | (self.x_norm_max > 1e30) | ~(mg <= 0.5)
        return np.where(far, np.inf, mg)

    def _nearest_bound(self, cd2):
        """Per query, the cluster of smallest lower bound on its members' distance."""
        gap = np.maximum(np.sqrt(np.maximum(cd2, 0.0)) - self.radius[None, :], 0.0)
        return gap.argmin(axis=1)

    def classify(self, Y, h, progress=None, threads=None) -> np.ndarray:
        """Whether each query lies inside the reference's domain (dH <= 0), per bandwidth.

        Returns a bool array (len(h), len(Y)); equal to ``delta_entropy(Y, X, h) <= 0``
        for every query with |dH| > 1e-9 nats. ``self.last_pairs`` holds the
        kernel terms evaluated (the exact dH evaluates len(Y) * len(X) per bandwidth).

        Queries go in chunks of QUERY_CHUNK over `threads` (on this thread for
        one thread or one chunk): per chunk one product for the centre bounds,
        then one numba call per bandwidth. (Summing each query's nearest cluster
        by one BLAS product per group of queries sharing it was slower: its
        calls dominated for a hundred queries, and it summed whole clusters
        where runs of rows stop as soon as S >= 1.)
        """
        Y = np.asarray(Y, dtype=np.float64)
        inv = inverse_two_h2(h)
        out = np.empty((len(inv), len(Y)))
        pairs = np.zeros((len(inv), len(Y)), dtype=np.int64)
        log_size = np.log(self.sizes.astype(np.float64))
        n_threads = max(1, threads or numba.get_num_threads())

        def work(y0):
            rows = slice(y0, y0 + QUERY_CHUNK)
            Yc = np.ascontiguousarray(Y[rows] - self.mean)
            y_sq = np.einsum("ij,ij->i", Yc, Yc)
            cd2 = self._centre_bounds(Yc, y_sq)
            first = self._nearest_bound(cd2)
            Y32 = Yc.astype(np.float32)
            for t in range(len(inv)):
                # float32 distances first; a query they leave within the
                # margin of S = 1 (or any query, if the margin is not small)
                # is classified again on float64
                mg = self._float32_margin(y_sq, float(inv[t]))
                cheap = np.isfinite(mg)
                got = out[t, rows]
                terms = pairs[t, rows]
                if cheap.any():
                    _classify(
                        Yc,
                        cd2,
                        self.offsets,
                        self.radius,
                        log_size,
                        float(inv[t]),
                        first,
                        got,
                        terms,
                        self.shell_r,
                        self.shell_log_n,
                        Y32,
                        self.sorted_X32,
                        np.where(cheap, mg, 0.0),
                    )
                redo = np.flatnonzero(~cheap | ((got >= -mg) & (got < mg)))
                if len(redo):
                    g2 = np.empty(len(redo))
                    p2 = np.zeros(len(redo), dtype=np.int64)
                    _classify(
                        Yc[redo],
                        cd2[redo],
                        self.offsets,
                        self.radius,
                        log_size,
                        float(inv[t]),
                        first[redo],
                        g2,
                        p2,
                        self.shell_r,
                        self.shell_log_n,
                        Yc[redo],
                        self.sorted_X,
                        np.zeros(len(redo)),
                    )
                    got[redo] = g2
                    terms[redo] += p2
            if progress is not None:
                progress(len(Yc))

        if len(Y):
            run_blocks(work, range(0, len(Y), QUERY_CHUNK), n_threads)
        self.last_pairs = int(pairs.sum())
        return out >= 0.0

    def log_kernel_sums(self, Y, h, tol: float = 1e-9, progress=None, threads=None):
        """Pruned ``log sum_j K_h(Y_i, X_j)``: array (len(h), len(Y)), nats.

        Queries are grouped by nearest centre into blocks; each block is summed
        exactly (BLAS products and the exact engine's fold) over the clusters it
        needs, a cluster being skipped only when, for every query of the
        block, all skipped bounds add up to at most `tol` times a lower bound
        of its sum (its nearest cluster's exact terms). Each value is
        therefore within ``log(1 + tol) <= tol`` nats below the exact log-sum,
        plus the exact engine's own error (see `atominfo.engine.fold`).
        ``self.last_pairs`` holds the kernel terms evaluated.
        """
        from atominfo.engine.cpu import BLOCK_ROWS

        Y = np.asarray(Y, dtype=np.float64)
        hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
        inv = inverse_two_h2(hs)
        log_size = np.log(self.sizes.astype(np.float64))
        log_tol = float(np.log(tol))
        Yc_all = Y - self.mean
        y_sq_all = np.einsum("ij,ij->i", Yc_all, Yc_all)
        x_sq = self.x_sq
        # group queries by their nearest centre so that blocks are compact
        nearest = np.empty(len(Y), dtype=np.int64)
        for y0 in range(0, len(Y), QUERY_CHUNK):
            cd = self.centre_sq[None, :] - 2.0 * (Yc_all[y0 : y0 + QUERY_CHUNK] @ self.centres.T)
            nearest[y0 : y0 + QUERY_CHUNK] = cd.argmin(axis=1)
        order = np.argsort(nearest, kind="stable")
        out = np.empty((len(hs), len(Y)))
        pairs = np.zeros(len(Y), dtype=np.int64)
        n_threads = max(1, threads or numba.get_num_threads())
        block = min(BLOCK_ROWS, 128)

        def fold(rows, Yc, y_sq, batch, run_max, run_sum):
            # the batch's clusters gathered into one matrix: one BLAS call, one fold
            cols = np.concatenate([np.arange(self.offsets[b], self.offsets[b + 1]) for b in batch])
            G = Yc @ self.sorted_X[cols].T
            fold_block(G, y_sq, x_sq[cols], inv, run_max, run_sum)
            pairs[rows] += len(cols)

        def work(span):
            rows = order[span[0] : span[1]]
            Yc = np.ascontiguousarray(Yc_all[rows])
            y_sq = y_sq_all[rows]
            cd2 = y_sq[:, None] + self.centre_sq[None, :] - 2.0 * (Yc @ self.centres.T)
            cd2 -= SNAP * (y_sq[:, None] + self.centre_sq[None, :])
            run_max = np.full((len(hs), len(rows)), -np.inf)
            run_sum = np.zeros((len(hs), len(rows)))
            visited = np.zeros(self.n_clusters, dtype=np.bool_)
            near = -cd2.min(axis=0)  # clusters nearest to some query of the block first
            batch = [int(np.bincount(nearest[rows]).argmax())]
            while batch:
                fold(rows, Yc, y_sq, batch, run_max, run_sum)
                visited[batch] = True
                # Clusters still needed given tol times the sum so far (a lower
                # bound of each query's sum), per bandwidth; the loop ends only
                # when the skipped bounds are within tol of the final sums.
                needed = np.zeros(self.n_clusters, dtype=np.bool_)
                for t in range(len(hs)):
                    floor = run_max[t] + np.log(run_sum[t]) + log_tol
                    _needed_clusters(
                        cd2, self.radius, log_size, float(inv[t]), floor, visited, needed
                    )
                todo = np.flatnonzero(needed)
                batch = todo[np.argsort(-near[todo])][: max(8, len(todo) // 2)].tolist()
            out[:, rows] = run_max + np.log(run_sum)
            if progress is not None:
                progress(len(rows))

        # blocks never straddle two nearest-centre groups: they would need both
        bounds = np.flatnonzero(np.diff(nearest[order])) + 1
        edges = np.concatenate([[0], bounds, [len(Y)]])
        starts = [
            (s0, min(s0 + block, end))
            for begin, end in zip(edges[:-1], edges[1:])
            for s0 in range(begin, end, block)
        ]
        run_blocks(work, starts, n_threads)
        self.last_pairs = int(pairs.sum()) * len(hs)
        return out
