"""The results of compact references (`atominfo.workflows.compact_reference`): the error
stated for each species, a query's novelty and a saved reference's size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atominfo.results import Result

ERROR_FIELDS = ("n", "mean", "q95", "max", "bias", "flag_disagreement", "bounds_held")


@dataclass(frozen=True, repr=False)
class StatedError(Result):
    """Error of the estimated dH of one species, measured on held-out environments (nats).

    n : held-out environments compared (0: not measured, the other fields NaN).
    mean, q95, max : of |dH_estimate - dH_exact|. bias : mean of dH_estimate - dH_exact.
    flag_disagreement : fraction where (dH_estimate > 0) != (dH_exact > 0).
    bounds_held : fraction of exact values inside the rigorous interval (1 expected).
    """

    n: int
    mean: float
    q95: float
    max: float
    bias: float
    flag_disagreement: float
    bounds_held: float

    def line(self) -> str:
        if self == EXACT:
            return "exact: every environment kept (as float32 centres)"
        if self.n == 0:
            return "error not measured (too few environments to hold out)"
        return (
            f"|dH error| mean {self.mean:.3g}, 95% {self.q95:.3g}, max {self.max:.3g} nats; "
            f"novel flag disagrees on {100 * self.flag_disagreement:.3g}% "
            f"({self.n} held-out environments)"
        )


NOT_MEASURED = StatedError(0, *([float("nan")] * 6))
# A species whose every environment is kept: dH is the exact value (float32 centres).
EXACT = StatedError(0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(repr=False)
class CompactNovelty(Result):
    """dH of each test environment against a compact reference (species by species).

    Attributes
    ----------
    species, n, n_reference : the test's centre species, their test and reference counts.
    novelty : fraction novel per species (estimate dH > 0; 1 for an absent species).
    decided : fraction per species whose interval lies on one side of 0 (flag certain).
    status : "scored", or `ABSENT`.
    error : per species, the `StatedError` line of the reference (how far to trust dH).
    stated : per species, the `StatedError` itself (None: absent species).
    dH, dH_lower, dH_upper : per test row, nats (NaN: absent species, not determined).
    novel, absent : per test row.
    total_novelty : fraction of all test environments novel.
    bandwidth : h, 1/Å. source : the reference file, or None.
    """

    _fields_shown = ("species", "novelty", "decided", "status", "total_novelty")
    species: list
    n: np.ndarray
    n_reference: np.ndarray
    novelty: np.ndarray
    decided: np.ndarray
    status: list
    error: list
    stated: list
    dH: np.ndarray
    dH_lower: np.ndarray
    dH_upper: np.ndarray
    novel: np.ndarray
    absent: np.ndarray
    total_novelty: float
    bandwidth: float
    source: str | None = None

    def columns(self) -> dict[str, list]:
        """One row per test species."""
        return {
            "species": list(self.species),
            "n": [int(v) for v in self.n],
            "n_reference": [int(v) for v in self.n_reference],
            "novelty": [float(v) for v in self.novelty],
            "decided": [float(v) for v in self.decided],
            "status": list(self.status),
            "error": list(self.error),
        }

    def to_dict(self) -> dict:
        """The summary and per-species table; the per-row arrays are left out."""
        out = super().to_dict()
        for name in ("dH", "dH_lower", "dH_upper", "novel", "absent"):
            out.pop(name)
        return out

    def to_pandas(self):
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "CompactNovelty")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = (
            f"CompactNovelty (nats; h = {self.bandwidth:g} 1/Å): "
            f"{self.total_novelty:.6g} of all test environments novel"
        )
        return html_table(self.columns(), caption)


@dataclass(repr=False)
class SavedCompact(Result):
    """A compact reference as saved: its size on disk against the full descriptors.

    output, bytes : the file and its size. full_bytes : the float64 descriptor
    matrix of every environment (what `atominfo descriptors` saves, less its
    per-row index). ratio : bytes / full_bytes. species, n, centres : per
    species, environments summarised and centres kept. error : per species,
    the `StatedError`. bandwidth : h, 1/Å.
    """

    _fields_shown = ("output", "bytes", "full_bytes", "ratio", "species")
    output: str
    bytes: int
    full_bytes: int
    ratio: float
    species: list
    n: list
    centres: list
    error: list
    bandwidth: float

    def columns(self) -> dict[str, list]:
        """One row per species: n, centres, and the error measured on held-out environments."""
        out: dict[str, list] = {"species": list(self.species), "n": self.n, "centres": self.centres}
        for f in ERROR_FIELDS:
            out[f"error_{f}"] = [getattr(e, f) for e in self.error]
        return out

    def to_pandas(self):
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "SavedCompact")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = f"{self.output}: {self.bytes} bytes ({self.ratio:.3g} of the full descriptors)"
        return html_table(self.columns(), caption)
