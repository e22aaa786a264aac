"""`atominfo curve` as one function: the learning curves of a dataset and their figure.

`run_curves` owns the run: the output guard, one `learning_curve` per group
(or one for the whole dataset) and the figure. The command line parses its
options into these arguments and prints the `CurveRun` it returns, so a
Python user gets the same numbers and figure as ``atominfo curve --plot``::

    from atominfo import load_frames
    from atominfo.workflows.curves_run import run_curves

    run = run_curves(load_frames(["train.extxyz"]), 0.015, group_by="config_type",
                     plot="curves.png")
    run.to_pandas()  # one row per curve and size
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo.information import DEFAULT_BANDWIDTH
from atominfo.outputs.plots import PLOT_SUFFIXES, plot_learning_curves, save_figure
from atominfo.results import Result, jsonable
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.curves import CurveOptions, LearningCurve, learning_curve, subset_frames

WHOLE = "all"  # the name of the one curve of the whole dataset


@dataclass(repr=False)
class CurveRun(Result):
    """What `run_curves` computed and wrote.

    Attributes
    ----------
    curves : dict name -> LearningCurve: one per group, or ``"all"`` for the
        whole dataset.
    bandwidth : h, 1/Å.
    plot : the figure written, or None.
    """

    curves: dict[str, LearningCurve]
    bandwidth: float
    plot: Path | None = None

    def __repr__(self) -> str:
        names = ", ".join(self.curves)
        return f"CurveRun({len(self.curves)} curves ({names}), h={self.bandwidth:g})"

    def to_dict(self) -> dict:
        """JSON-ready: the bandwidth, the figure and each curve's `to_dict`."""
        return jsonable(
            {
                "bandwidth": self.bandwidth,
                "plot": self.plot,
                "curves": {name: curve.to_dict() for name, curve in self.curves.items()},
            }
        )

    def rows(self) -> list[dict]:
        """One row per curve and size (see `LearningCurve.rows`), with the curve's name."""
        return [{"curve": name, **row} for name, c in self.curves.items() for row in c.rows()]

    def to_pandas(self):
        """`rows` as a `pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "curve",
                "unit",
                "full size",
                "H (nats)",
                "class",
                "rise per doubling (nats)",
                "asymptote",
                "gap",
            )
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    name,
                    c.unit,
                    c.total,
                    f"{c.entropy_at(c.total):.4f}",
                    c.status,
                    "–" if c.test.rise is None else f"{c.test.rise:.4f}",
                    "–" if c.asymptote is None else f"{c.asymptote:.4f}",
                    "–" if c.gap() is None else f"{c.gap():.4f}",
                )
            )
            + "</tr>"
            for name, c in self.curves.items()
        )
        caption = f"CurveRun (h = {self.bandwidth:g} 1/Å)"
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>"


def run_curves(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    options: CurveOptions | None = None,
    *,
    group_by: str | None = None,
    per_file: bool = False,
    plot=None,
    progress: Callable[[str, int], None] | None = None,
    **keywords,
) -> CurveRun:
    """Learning curves of `data` (one, or one per group) and, with `plot`, their figure.

    Parameters
    ----------
    data : FrameSet (`atominfo.load_frames`).
    h : bandwidth, 1/Å (one value).
    options : CurveOptions; its fields may also be given as keywords, as for
        `learning_curve`. A group smaller than ``options.n_sizes`` gets as many
        sizes as it has members.
    group_by : info key: one curve per value (e.g. ``"config_type"``).
    per_file : one curve per input file (ignored with `group_by`).
    plot : figure file (.png, .pdf, .svg), written only when the run succeeds.
    progress : called with (curve name, subsets done) after each subset.
    keywords : fields of `options` and the options of the kernel engine.
    """
    options, engine = CurveOptions.merged(options, keywords)
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(plot, PLOT_SUFFIXES)]):
        if group_by is not None or per_file:
            groups = data.groups(group_by)
        else:
            groups = {WHOLE: np.arange(len(data))}
        curves = {}
        for name, frames in groups.items():
            part = subset_frames(data, frames)
            total = len(part) if options.by == "structures" else len(part.X)
            step = None if progress is None else _named(progress, name)
            curves[name] = learning_curve(
                part,
                h,
                dataclasses.replace(options, n_sizes=min(options.n_sizes, total)),
                progress=step,
                **engine,
            )
        if plot is not None:
            labels = None if list(curves) == [WHOLE] else [Path(n).name for n in curves]
            ax = plot_learning_curves(list(curves.values()), labels=labels)
            save_figure(ax.figure, plot)
    return CurveRun(curves, float(h), None if plot is None else Path(plot))


def _named(progress: Callable[[str, int], None], name: str) -> Callable[[int], None]:
    def advance(n: int) -> None:
        progress(name, n)

    return advance
