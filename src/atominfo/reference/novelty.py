"""`Novelty`: what `Reference.classify` finds for each environment.

One convention for every path that judges atoms against a reference (the
``snapshot`` boxes, the ASE `NoveltyCalculator`, the LAMMPS monitor): every
environment gets an exact label (novel: dH > 0), and dH itself is computed
only where it is asked for (by default the novel environments). An
environment inside the domain whose dH was not computed holds NaN: its dH is
known to be <= 0, not known to be any particular number, and a 0 would read
as a measured dH = 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from atominfo.errors import InputError

__all__ = ["Novelty", "bounded_dh", "judge"]


@dataclass(frozen=True)
class Novelty:
    """Exact labels and dH of m environments against one reference (`Reference.classify`).

    Attributes
    ----------
    novel : bool array (m,)
        dH > 0 (outside the reference's domain): the exact labels of
        `Reference.inside`, equal to the sign of exact dH wherever |dH| > 1e-9 nats.
    dH : float array (m,), nats
        Computed where asked for (``dh="novel"``: the novel rows; "all": every
        row; "none": no row); NaN elsewhere (inside the domain: dH <= 0, value
        not computed).
    seconds : {"labels": s, "dH": s}, wall time of the two stages.
    """

    novel: np.ndarray
    dH: np.ndarray
    seconds: dict = field(default_factory=dict, compare=False)

    @property
    def computed(self) -> np.ndarray:
        """bool (m,): the rows whose dH was computed."""
        return ~np.isnan(self.dH)

    @property
    def fraction(self) -> float:
        """Fraction of novel rows (NaN for none)."""
        return float(self.novel.mean()) if len(self.novel) else float("nan")

    @property
    def max_dH(self) -> float:
        """Largest computed dH, nats; NaN when none was computed (with ``dh="novel"``:
        no row is novel, so every dH is <= 0)."""
        return float(np.nanmax(self.dH)) if self.computed.any() else float("nan")

    @property
    def mean_dH(self) -> float:
        """Mean dH, nats, when every row's was computed (else NaN: not determined)."""
        done = self.computed
        return float(self.dH.mean()) if len(done) and done.all() else float("nan")

    def to_pandas(self):
        """A DataFrame with columns ``novel`` and ``dH`` (NaN: not computed, dH <= 0)."""
        import pandas as pd

        return pd.DataFrame({"novel": self.novel, "dH": self.dH})


def judge(Y: np.ndarray, inside, dh: str, score) -> Novelty:
    """The `Novelty` of the rows of Y: ``inside(Y)`` (exact labels, bool (m,)), then
    ``score(Y[rows])`` (their dH) of the rows `dh` asks for: "novel", "all" or "none".

    The one implementation behind `Reference.classify` and the snapshot's boxes
    (`atominfo.workflows.snapshot_box.BoxAnalyser`, which holds the reference's
    indexes rather than the reference, to be sent to Dask workers). An InputError
    of `score` naming a row of its input is returned naming the row of Y.
    """
    t0 = time.perf_counter()
    novel = ~np.asarray(inside(Y), dtype=bool).reshape(-1)
    t1 = time.perf_counter()
    scored = {"all": np.ones(len(Y), bool), "novel": novel, "none": np.zeros(len(Y), bool)}[dh]
    dH = np.full(len(Y), np.nan)
    if scored.any():
        rows = np.flatnonzero(scored)
        try:
            dH[rows] = score(Y[rows])
        except InputError as exc:
            if exc.atom is None:
                raise
            raise InputError(exc.reason, atom=int(rows[exc.atom])) from None
    return Novelty(novel, dH, {"labels": t1 - t0, "dH": time.perf_counter() - t1})


def bounded_dh(projected, Y: np.ndarray, h: float, tol: float, threads=None) -> np.ndarray:
    """dH of the rows of Y from the reference's projected index: at most
    ``log(1 + tol) <= tol`` nats above exact dH, never below; InputError (naming the
    row as ``atom``) where dH exceeds the float64 range."""
    log_sums, _ = projected.log_kernel_sums(Y, h, tol, threads=threads)
    if np.isneginf(log_sums).any():
        raise InputError(
            "so far from every reference environment that dH exceeds the float64 range",
            atom=int(np.argmax(np.isneginf(log_sums))),
        )
    return -log_sums
