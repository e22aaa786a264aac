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
from atominfo.outputs.plots import PLOT_SUFFIXES, plot_overlap_matrix, save_figure
from atominfo.results import Result, jsonable
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet


@dataclass
class OverlapMatrix(Result):
    """``values[i, j]``: fraction of subset `labels[i]` with dH <= 0 against subset `labels[j]`."""

    labels: list[str]
    values: np.ndarray  # (n, n), fractions in [0, 1]
    sizes: list[int]  # environments per subset
    bandwidth: float

    def columns(self) -> dict[str, list]:
        """One row per tested subset: its label, its environments, then the fraction of it
        inside each reference subset (column ``"inside <label>"``)."""
        out: dict[str, list] = {"subset": list(self.labels), "environments": list(self.sizes)}
        for j, label in enumerate(self.labels):
            out[f"inside {label}"] = [float(v) for v in self.values[:, j]]
        return out

    def to_pandas(self):
        """The matrix as a `pandas.DataFrame`: index and columns the subset labels, entry
        [i, j] the fraction of subset i inside subset j."""
        from atominfo.outputs.tables import data_frame

        table = data_frame(
            {label: self.values[:, j] for j, label in enumerate(self.labels)}, "OverlapMatrix"
        )
        table.index = list(self.labels)
        return table

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = (
            f"OverlapMatrix: fraction of each subset (row) inside each other (column), "
            f"dH <= 0, h = {self.bandwidth:g} 1/Å"
        )
        return html_table(self.columns(), caption)

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


def run_overlap_matrix(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    groups: Mapping[str, np.ndarray] | None = None,
    *,
    plot=None,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> OverlapMatrix:
    """`atominfo overlap-matrix` as one function: the overlap matrix of the `groups` of
    `data` ({label: frame numbers}; default one per file) and, with `plot`, its heatmap,
    inside the output guard."""
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(plot, PLOT_SUFFIXES)]):
        groups = data.groups(None) if groups is None else groups
        subsets = {name: data.environments(frames) for name, frames in groups.items()}
        matrix = overlap_matrix(subsets, h, progress=progress, **engine)
        if plot is not None:
            save_figure(plot_overlap_matrix(matrix).figure, plot)
    return matrix
