"""A reference set of environments, built once and queried many times."""

from __future__ import annotations

import numpy as np

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, descriptors
from atominfo.information import (DEFAULT_BANDWIDTH, as_descriptor_matrix, bandwidths,
                          check_neighbors, check_widths, delta_entropy)
from atominfo.engine import prepare_reference


class Reference:
    """Training (reference) environments against which new ones are judged.

    Parameters
    ----------
    X : array (n, d)
        Reference descriptors, 1/Å.
    h : float or sequence of floats
        Bandwidth(s), 1/Å.
    seed : int, seed of the k-means behind the cluster and neighbour indexes.
    engine : options for the kernel engine (e.g. ``memory_bytes``). With
        ``backend="dask"`` (and ``client=``) X is broadcast to the workers once,
        here; with ``backend="torch"`` it is copied to the device once.

    Examples
    --------
    >>> ref = Reference.from_structures("train.xyz")          # doctest: +SKIP
    >>> ref.delta_entropy(atominfo.descriptors("md.xyz"))       # doctest: +SKIP
    """

    def __init__(self, X, h=DEFAULT_BANDWIDTH, *, k: int | None = None,
                 cutoff: float | None = None, seed: int = 0, **engine):
        self.X = as_descriptor_matrix(X, "reference")
        bandwidths(h)  # validate early
        self.h = h
        self.k, self.cutoff = k, cutoff
        self.engine = engine
        if engine.get("backend", "cpu") != "cpu":  # ship X to workers / device once
            self.engine = prepare_reference(self.X, **engine)
        self.seed = seed  # k-means seeds of the indexes (speed only: answers are exact)
        self._clusters = None
        self._neighbours = None

    @classmethod
    def from_structures(cls, structures, h=DEFAULT_BANDWIDTH, k: int = DEFAULT_K,
                        cutoff: float = DEFAULT_CUTOFF, *, descriptor_options=None,
                        **engine) -> "Reference":
        """Build from structures (Atoms, list, file path(s)) with the given descriptor."""
        X = descriptors(structures, k, cutoff, **(descriptor_options or {}))
        return cls(X, h, k=k, cutoff=cutoff, **engine)

    def __len__(self) -> int:
        return len(self.X)

    def _query(self, Y):
        Y = as_descriptor_matrix(Y, "query")
        check_widths(Y, self.X)
        return Y

    def delta_entropy(self, Y, *, method: str = "exact", n_neighbors: int = 32) -> np.ndarray:
        """dH(Y_i | reference) per row of Y, nats (see `atominfo.delta_entropy`).

        method "approximate" sums over the `n_neighbors` nearest reference
        points only, from a faiss index built on first use and kept.
        """
        Y = self._query(Y)
        if method != "approximate":
            return delta_entropy(Y, self.X, self.h, method=method, **self.engine)
        check_neighbors(n_neighbors)
        if self._neighbours is None:
            from atominfo.engine.index.neighbours import NeighbourIndex

            self._neighbours = NeighbourIndex(self.X, seed=self.seed)
        hs, scalar = bandwidths(self.h)
        dH = -self._neighbours.log_kernel_sums(Y, hs, n_neighbors,
                                               progress=self.engine.get("progress"))
        return dH[0] if scalar else dH

    @property
    def index(self):
        """The cluster index of the reference (`kernels.clusters.ClusterIndex`), built once."""
        if self._clusters is None:
            from atominfo.engine.index.clusters import ClusterIndex, classify_clusters

            self._clusters = ClusterIndex(self.X, n_clusters=classify_clusters(len(self.X)),
                                          seed=self.seed)
        return self._clusters

    def inside(self, Y) -> np.ndarray:
        """Exact labels dH(Y_i | reference) <= 0: bool (len(Y),) or (len(h), len(Y)).

        Decided from the cluster index's bounds with exact fallback; equal to the
        label of exact dH wherever |dH| > 1e-9 nats, and much faster.
        """
        hs, scalar = bandwidths(self.h)
        labels = self.index.classify(self._query(Y), hs, progress=self.engine.get("progress"))
        return labels[0] if scalar else labels

    def overlap(self, Y):
        """Fraction of Y with dH <= 0 (inside the reference's domain), exact."""
        result = np.atleast_2d(self.inside(Y)).mean(axis=1)
        return result[0] if np.ndim(self.h) == 0 else result

    def novelty(self, Y):
        """Fraction of Y with dH > 0 (outside the reference's domain), exact."""
        return 1.0 - self.overlap(Y)
