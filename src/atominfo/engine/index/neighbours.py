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

from atominfo.engine.fold import inverse_two_h2, log_sum_exp

DEFAULT_NEIGHBORS = 32
DEFAULT_PROBES = 8


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
        self.index = faiss.IndexIVFFlat(quantiser, d, n_lists)
        self.index.cp.seed = seed
        self.index.train(data)
        self.index.add(data)
        self.index.nprobe = min(n_probe, n_lists)
        self.seed = seed
        self._quantiser = quantiser  # faiss does not own it: keep it alive

    def search(self, Y, n_neighbors: int) -> np.ndarray:
        """Indices (m, k) of (approximately) the k nearest reference rows; -1 where fewer exist."""
        q = np.ascontiguousarray(np.asarray(Y, dtype=np.float64) - self.mean, dtype=np.float32)
        _, idx = self.index.search(q, int(n_neighbors))
        return idx

    def log_kernel_sums(
        self, Y, h, n_neighbors: int = DEFAULT_NEIGHBORS, progress=None, chunk: int = 8192
    ):
        """``log sum`` over the k nearest neighbours only: array (len(h), len(Y)), nats.

        A lower bound of the exact log-sum (the approximate dH is an upper bound of dH).
        """
        Y = np.asarray(Y, dtype=np.float64)
        hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
        inv = inverse_two_h2(hs)
        out = np.empty((len(hs), len(Y)))
        for y0 in range(0, len(Y), chunk):
            Yb = Y[y0 : y0 + chunk]
            idx = self.search(Yb, n_neighbors)
            valid = idx >= 0
            neigh = self.X[np.where(valid, idx, 0)]
            d2 = ((neigh - Yb[:, None, :]) ** 2).sum(axis=2)
            for t, c in enumerate(inv):
                # -c d2, with 0 for d2 = 0 even when c overflowed to inf (tiny h)
                with np.errstate(invalid="ignore", over="ignore"):
                    log_k = np.where(d2 > 0, -d2 * c, 0.0)
                terms = np.where(valid, log_k, -np.inf)
                out[t, y0 : y0 + len(Yb)] = log_sum_exp(terms, axis=1)
            if progress is not None:
                progress(len(Yb))
        return out
