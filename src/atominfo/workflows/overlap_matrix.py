"""Overlap of every labelled subset of a dataset against every other (docs/method.md, section 4.2).

Entry ``[i, j]`` is the fraction of the environments of subset i inside the
domain of subset j (``dH(x | subset j) <= 0``). The matrix is not symmetric:
a small subset can lie inside a large one while most of the large one lies
outside the small one. The diagonal is 1 (each environment counts itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    check_widths,
    delta_entropy,
)
from atominfo.results import Result, jsonable


@dataclass
class OverlapMatrix(Result):
    """``values[i, j]``: fraction of subset `labels[i]` with dH <= 0 against subset `labels[j]`."""

    labels: list[str]
    values: np.ndarray  # (n, n), fractions in [0, 1]
    sizes: list[int]  # environments per subset
    bandwidth: float

    def to_dict(self) -> dict:
        """JSON-ready: labels, environments per subset, the matrix as nested lists."""
        return jsonable(
            {
                "bandwidth": self.bandwidth,
                "labels": self.labels,
                "environments": self.sizes,
                "overlap": self.values,
                "meaning": "overlap[i][j] = fraction of subset i with dH(x | subset j) <= 0",
            }
        )


def overlap_matrix(
    subsets: Mapping[str, np.ndarray],
    h: float = DEFAULT_BANDWIDTH,
    *,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> OverlapMatrix:
    """Overlap of every subset against every other.

    Parameters
    ----------
    subsets : {label: array (n_label, d) of descriptors, 1/Å}, at least two.
    h : bandwidth, 1/Å (one value).
    progress : called with 1 after each (i, j) pair.
    engine : options for the kernel engine.
    """
    if np.ndim(h) != 0:
        raise InputError("an overlap matrix takes one bandwidth")
    if len(subsets) < 2:
        raise InputError(f"an overlap matrix needs at least two subsets, got {len(subsets)}")
    labels = [str(k) for k in subsets]
    blocks = [as_descriptor_matrix(subsets[k], f"subset {k!r}") for k in subsets]
    for block in blocks:
        check_widths(block, blocks[0])
    n = len(blocks)
    values = np.empty((n, n))
    for j in range(n):
        for i in range(n):
            values[i, j] = float((delta_entropy(blocks[i], blocks[j], h, **engine) <= 0).mean())
            if progress is not None:
                progress(1)
    return OverlapMatrix(labels, values, [len(b) for b in blocks], float(h))
