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
  domain) per query, visiting clusters nearest-bound first until the bounds
  decide, with shell-wise cluster bounds (the loop:
  `atominfo.engine.index.classify_kernel`). The label equals that of exact
  dH for every point with |dH| > 1e-9 nats (the sums carry the exact
  engine's error, far below that; see `atominfo.engine.fold`).

Queries are independent, so any chunk of queries can be classified against
a prebuilt index (e.g. mapped over chunks by Dask).
"""

from __future__ import annotations

import numba
import numpy as np

from atominfo.engine.fold import centre, fold_block, inverse_two_h2, log_kernel
from atominfo.engine.index import cluster_build as build
from atominfo.engine.index.classify_kernel import FOLD32_NATS, centre_bounds, classify_queries
from atominfo.engine.threads import one_blas_thread, run_blocks

QUERY_CHUNK = 1024


def classify_clusters(n: int) -> int:
    """Clusters of an index built for `ClusterIndex.classify`: about sqrt(n) / 2.5.

    With shell-wise bounds fewer, larger clusters classify faster (per-query cost
    over all centres falls; the bounds stay tight): on 100,000 x 100,000 Cu
    environments 80-160 clusters took 1.0 s, 318 clusters 1.3-1.5 s, 600 clusters 2.0-2.3 s.
    """
    return max(1, round(np.sqrt(max(n, 1)) / 2.5))


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

        X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = X.shape
        self.seed = seed
        self.mean = centre(X)
        k = int(n_clusters or max(1, round(np.sqrt(n))))
        k = max(1, min(k, n // 39))  # faiss wants >= 39 training points per centroid
        label = np.zeros(n, dtype=np.int64)
        if k > 1:
            data = build.centred32(X, self.mean)
            # Any clustering gives valid bounds; tighter ones only save time: 5
            # k-means iterations gave the kernel terms of 10. One OpenMP thread:
            # faiss's spinning threads were 4x slower on a busy 2-core machine.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                km = faiss.Kmeans(
                    d, k, niter=5, seed=seed, verbose=False, max_points_per_centroid=64
                )
                km.train(data)
            finally:
                faiss.omp_set_num_threads(threads)
            # nearest centroid by one float32 product (faster than faiss's search;
            # a near tie going either way still gives valid bounds)
            # (one BLAS thread: OpenBLAS's second thread spins on after the call, and
            # slowed the classification that follows a build by a third on 2 cores)
            cen = np.asarray(km.centroids, dtype=np.float32)
            with one_blas_thread():
                G = data @ cen.T
            label = build.nearest_centroid(G, np.einsum("ij,ij->i", cen, cen))
        counts = np.bincount(label, minlength=k)
        keep = counts > 0
        label = (np.cumsum(keep) - 1)[label]  # empty clusters dropped
        self.sizes = counts[keep].astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        # float32 copy for `classify`'s kernel terms (see `_float32_margin`),
        # zero-padded to whole SIMD passes (16 columns)
        width32 = -(-d // 16) * 16
        grouped = build.group_rows(X, self.mean, label, self.offsets, width32)
        self.order, self.sorted_X, self.sorted_X32, self.x_sq, self.centres = grouped
        dist = build.member_distances(self.sorted_X, self.centres, self.offsets)
        edges = np.array((0.0, *build.SHELL_FRACTIONS, 1.0))
        self.shell_r, self.shell_log_n, self.radius = build.shells(dist, self.offsets, edges)
        self.centre_sq = np.einsum("ij,ij->i", self.centres, self.centres)
        self.x_norm_max = float(np.sqrt(self.x_sq.max(initial=0.0)))

    def __len__(self) -> int:
        return len(self.sorted_X)

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)

    def _centre_bounds(self, Yc, y_sq):
        """Lower bounds of the squared distances of centred queries to the centres
        (m, n_c), and each query's cluster of nearest radius bound (m,)."""
        return centre_bounds(Yc @ self.centres.T, y_sq, self.centre_sq, self.radius)

    def _float32_margin(self, y_sq, c):
        """Nats within which the float32 kernel's log S is of the exact one, per query.

        With u = 2^-24, rounding each coordinate moves a distance D by at most
        e = u (|y| + max |x|); the float32 differences, squares and sum (any
        order) leave the computed d2 within g = (d + 3) u relative of the
        rounded coordinates' one. For any eta > 0, D^2 lies in d2 (1 -+ (g + eta)) -+
        e^2 (1 + 1/eta) (from 2 e D <= eta D^2 + e^2 / eta), so every term with
        c d2 <= T = 100 is within T (2g + eta) + c e^2 (1 + 1/eta) nats
        (eta = e sqrt(c / T) minimises it); terms beyond T sum to below
        n e^-98 (c 1e-40: float32 underflow of tiny squares, under d 2^-149
        absolute). FOLD32_NATS is added for the float32 terms themselves
        (`classify_kernel._fold_terms32`). Inf (no float32) when that is not
        small, c or a coordinate could leave float32's range.
        """
        t = 100.0
        u = 2.0**-24
        e = 1.01 * u * (np.sqrt(y_sq) + self.x_norm_max) + 1e-30
        eta = e * np.sqrt(c / t)
        with np.errstate(all="ignore"):
            g = (self.sorted_X32.shape[1] + 3) * u
            mg = t * (2.0 * g + eta) + c * (e * e * (1.0 + 1.0 / eta) + 1e-40) + FOLD32_NATS
        far = (np.sqrt(y_sq) > 1e30) | (self.x_norm_max > 1e30) | (c > 1e30) | ~(mg <= 0.5)
        return np.where(far, np.inf, mg)

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
        clusters = (self.offsets, self.radius, log_size, self.shell_r, self.shell_log_n)
        index32 = (*clusters, self.sorted_X32)
        index64 = (*clusters, self.sorted_X)

        def work(y0):
            rows = slice(y0, y0 + QUERY_CHUNK)
            Yc = np.ascontiguousarray(Y[rows] - self.mean)
            y_sq = np.einsum("ij,ij->i", Yc, Yc)
            cd2, first = self._centre_bounds(Yc, y_sq)
            Y32 = np.zeros((len(Yc), self.sorted_X32.shape[1]), dtype=np.float32)
            Y32[:, : Yc.shape[1]] = Yc
            for t in range(len(inv)):
                # float32 distances first; a query they leave within the
                # margin of S = 1 (or any query, if the margin is not small)
                # is classified again on float64
                c = float(inv[t])
                mg = self._float32_margin(y_sq, c)
                cheap = np.isfinite(mg)
                got = out[t, rows]
                terms = pairs[t, rows]
                if cheap.any():
                    classify_queries(
                        (Yc, Y32), cd2, first, c, np.where(cheap, mg, 0.0), got, terms, index32
                    )
                redo = np.flatnonzero(~cheap | ((got >= -mg) & (got < mg)))
                if len(redo):
                    g2 = np.empty(len(redo))
                    p2 = np.zeros(len(redo), dtype=np.int64)
                    queries = (Yc[redo], Yc[redo])
                    classify_queries(
                        queries, cd2[redo], first[redo], c, np.zeros(len(redo)), g2, p2, index64
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
            cd2, _ = self._centre_bounds(Yc, y_sq)
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
