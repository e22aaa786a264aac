"""Approximate kernel sums from the nearest neighbours only (faiss IVF index).

``log sum_{j in kNN(y)} K_h(y, x_j)`` keeps only the `n_neighbors` nearest
reference points of each query (found by a faiss inverted-file index,
distances then recomputed in float64). Dropping terms can only lower the sum,
so the approximate dH = -log(...) is never below the exact dH; how far above
it lies depends on the data and is measured in ``benchmarks/bench_kernels.py``
(see the README). Use `clusters.ClusterIndex.classify` when only the sign of
dH matters: it is exact and faster.
"""

from __future__ import annotations

import numpy as np

from atominfo.engine.cpu import distance_scale
from atominfo.engine.fold import inverse_two_h2, log_sum_exp

DEFAULT_NEIGHBORS = 32
DEFAULT_PROBES = 8
# Bound on the working arrays of one chunk of queries (bytes): per query and
# neighbour, its descriptor (d float64) and six per-neighbour arrays of at most
# 8 bytes (faiss's distances and labels, the mask, d2, the log terms).
MEMORY_BYTES = 256 * 2**20
# Largest offset from the reference's mean searched as is: faiss's float32
# squared distances stay finite (d * 1e36 < 3.4e38 for d < 300).
SEARCH_REACH = 1e18


class NeighbourIndex:
    """faiss IVF-flat index of reference descriptors, built once.

    Parameters
    ----------
    X : array (n, d), reference descriptors, 1/Å.
    n_lists : int or None, inverted lists (default ``round(sqrt(n))``).
    n_probe : int, lists searched per query (more: slower, closer to exact kNN).
    seed : int, seed of the k-means that builds the lists.
    """

    def __init__(self, X, n_lists: int | None = None, n_probe: int = DEFAULT_PROBES, seed: int = 0):
        import faiss

        self.X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = self.X.shape
        self.mean = self.X.mean(axis=0)
        data = np.ascontiguousarray(self.X - self.mean, dtype=np.float32)
        n_lists = int(n_lists or max(1, round(np.sqrt(n))))
        n_lists = max(1, min(n_lists, n // 39 if n >= 39 else 1))
        quantiser = faiss.IndexFlatL2(d)
        # one list is a flat (exact) search; its k-means only warned
        self.index: faiss.Index = quantiser
        if n_lists > 1:
            inverted = faiss.IndexIVFFlat(quantiser, d, n_lists)
            inverted.cp.seed = seed
            inverted.train(data)
            inverted.nprobe = min(n_probe, n_lists)
            self.index = inverted
        self.index.add(data)
        self.seed = seed
        self._quantiser = quantiser  # faiss does not own it: keep it alive

    def search(self, Y, n_neighbors: int) -> np.ndarray:
        """Indices (m, k) of (approximately) the k nearest reference rows; -1 where fewer exist.

        A query further than SEARCH_REACH from the reference's mean is searched
        from the point at SEARCH_REACH in its direction (faiss's float32 squared
        distances would overflow): its nearest rows are those furthest along it.
        """
        Y = np.asarray(Y, dtype=np.float64)
        with np.errstate(over="ignore"):
            q = Y - self.mean
        far = ~(np.abs(q).max(axis=1) <= SEARCH_REACH)  # inf included
        if far.any():
            half = Y[far] * 0.5 - self.mean * 0.5  # cannot overflow
            direction = half / np.abs(half).max(axis=1, keepdims=True)
            q[far] = direction * (SEARCH_REACH / np.linalg.norm(direction, axis=1))[:, None]
        _, idx = self.index.search(np.ascontiguousarray(q, dtype=np.float32), int(n_neighbors))
        return idx

    def log_kernel_sums(
        self, Y, h, n_neighbors: int = DEFAULT_NEIGHBORS, progress=None, chunk: int = 8192
    ):
        """``log sum`` over the k nearest neighbours only: array (len(h), len(Y)), nats.

        A lower bound of the exact log-sum (the approximate dH is an upper bound of dH).
        k is capped at the reference size (more neighbours than points do not
        exist), and queries go in chunks of at most `chunk` rows whose working
        arrays fit MEMORY_BYTES, so memory stays bounded for any k.
        """
        Y = np.asarray(Y, dtype=np.float64)
        hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
        # far rows: differences in units of a power of two s, c = 1/(2h^2) times s^2
        # (as in the CPU engine), so that c d2 is finite wherever float64 holds it
        scale = distance_scale(Y, self.X, self.mean)
        with np.errstate(over="ignore"):
            inv = inverse_two_h2(hs) * scale * scale
        out = np.empty((len(hs), len(Y)))
        n_neighbors = min(int(n_neighbors), len(self.X))
        per_query = 8 * n_neighbors * (self.X.shape[1] + 6)
        chunk = max(1, min(chunk, MEMORY_BYTES // per_query))
        for y0 in range(0, len(Y), chunk):
            Yb = Y[y0 : y0 + chunk]
            if n_neighbors == len(self.X):  # every reference row: the exact sum, no search
                idx = np.broadcast_to(np.arange(n_neighbors), (len(Yb), n_neighbors))
            else:
                idx = self.search(Yb, n_neighbors)
            valid = idx >= 0
            diff = self.X[np.where(valid, idx, 0)]  # in place: one (chunk, k, d) array
            if scale != 1.0:
                diff *= 1.0 / scale
            diff -= (Yb * (1.0 / scale))[:, None, :]
            diff *= diff
            d2 = diff.sum(axis=2)
            del diff
            for t, c in enumerate(inv):
                # -c d2, with 0 for d2 = 0 even when c overflowed to inf (tiny h)
                with np.errstate(invalid="ignore", over="ignore"):
                    log_k = np.where(d2 > 0, -d2 * c, 0.0)
                terms = np.where(valid, log_k, -np.inf)
                out[t, y0 : y0 + len(Yb)] = log_sum_exp(terms, axis=1)
            if progress is not None:
                progress(len(Yb))
        return out
