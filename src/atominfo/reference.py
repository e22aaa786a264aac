"""A reference set of environments, built once and queried many times."""

from __future__ import annotations

import numpy as np

from .descriptors import DEFAULT_CUTOFF, DEFAULT_K, descriptors
from .information import (DEFAULT_BANDWIDTH, as_descriptor_matrix, bandwidths,
                          check_widths, delta_entropy)
from .kernels import prepare_reference


class Reference:
    """Training (reference) environments against which new ones are judged.

    Parameters
    ----------
    X : array (n, d)
        Reference descriptors, 1/Å.
    h : float or sequence of floats
        Bandwidth(s), 1/Å.
    engine : options for the kernel engine (e.g. ``memory_bytes``). With
        ``backend="dask"`` (and ``client=``) X is broadcast to the workers once,
        here; with ``backend="torch"`` it is copied to the device once.

    Examples
    --------
    >>> ref = Reference.from_structures("train.xyz")          # doctest: +SKIP
    >>> ref.delta_entropy(atominfo.descriptors("md.xyz"))       # doctest: +SKIP
    """

    def __init__(self, X, h=DEFAULT_BANDWIDTH, *, k: int | None = None,
                 cutoff: float | None = None, **engine):
        self.X = as_descriptor_matrix(X, "reference")
        bandwidths(h)  # validate early
        self.h = h
        self.k, self.cutoff = k, cutoff
        self.engine = engine
        if engine.get("backend", "cpu") != "cpu":  # ship X to workers / device once
            self.engine = prepare_reference(self.X, **engine)

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

    def delta_entropy(self, Y) -> np.ndarray:
        """dH(Y_i | reference) per row of Y, nats (see `atominfo.delta_entropy`)."""
        return delta_entropy(self._query(Y), self.X, self.h, **self.engine)

    def overlap(self, Y):
        """Fraction of Y with dH <= 0 (inside the reference's domain)."""
        dH = np.atleast_2d(self.delta_entropy(Y))
        result = (dH <= 0).mean(axis=1)
        return result[0] if np.ndim(self.h) == 0 else result

    def novelty(self, Y):
        """Fraction of Y with dH > 0 (outside the reference's domain)."""
        return 1.0 - self.overlap(Y)
