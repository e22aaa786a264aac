"""One-table summary of a dataset: size, entropy, diversity, and how efficiently it is used.

Per group (an extxyz info key such as ``config_type``, or each file) and for
the whole dataset: structures, environments n, entropy H, diversity D, log n
(the largest H and D possible for n environments) and the efficiency
``H / log n`` (1: every environment unique on the scale h; near 0: mostly
repeats). Definitions in docs/method.md, sections 3.1 and 3.2. For n = 1,
log n = 0 and the efficiency is undefined (NaN, printed as '-').
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo.information import DEFAULT_BANDWIDTH, entropy_and_diversity
from atominfo.outputs.tables import write_json
from atominfo.results import Result
from atominfo.runs.atomic import atomic_output
from atominfo.runs.guard import OutputGuard

COLUMNS = ("label", "structures", "n", "H", "D", "log_n", "efficiency")
TABLE_SUFFIXES = (".json", ".csv")


@dataclass
class Metrics(Result):
    """Rows of the summary: one per group, then the total (label 'total').

    Attributes
    ----------
    rows : list of dict with label, structures, n, H, D, log_n, efficiency
        (entropies in nats; efficiency dimensionless).
    bandwidth : h, 1/Å.
    group_by : the info key of the groups, or None (groups are files).
    """

    rows: list
    bandwidth: float
    group_by: str | None

    def columns(self) -> dict[str, list]:
        """The table as columns (label, structures, n, H, D, log_n, efficiency): one row
        per group, then the total."""
        return {name: [row[name] for row in self.rows] for name in COLUMNS}

    def to_pandas(self):
        """The table (`columns`) as a `pandas.DataFrame`, one row per group and the total."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "Metrics")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        groups = f"groups by {self.group_by}" if self.group_by else "groups: files"
        caption = f"Metrics (nats; h = {self.bandwidth:g} 1/Å; {groups})"
        return html_table(self.columns(), caption)


def _row(label: str, structures: int, X: np.ndarray, h: float, engine) -> dict:
    H, D = entropy_and_diversity(X, h, engine=engine)
    n = len(X)
    log_n = float(np.log(n))
    return {
        "label": label,
        "structures": int(structures),
        "n": n,
        "H": float(H),
        "D": float(D),
        "log_n": log_n,
        "efficiency": float(H / log_n) if n > 1 else float("nan"),
    }


def dataset_metrics(
    data, h: float = DEFAULT_BANDWIDTH, group_by: str | None = None, *, engine=None, progress=None
) -> Metrics:
    """Metrics of a FrameSet, per group and in total.

    Parameters
    ----------
    data : `atominfo.structures.frameset.FrameSet` (structures kept when
        `group_by` is given).
    h : float, bandwidth, 1/Å.
    group_by : info key whose values define the groups, or None: one group per
        file (no group rows for a single file).
    engine : EngineOptions or None.
    progress : callable or None, called with 1 after each group.

    Returns
    -------
    Metrics.
    """
    from atominfo import params

    h = params.check("bandwidth", h, label="bandwidth h")
    groups = data.groups(group_by)
    rows = []
    if group_by is not None or len(groups) > 1:
        for label, frames in groups.items():
            rows.append(_row(label, len(frames), data.environments(frames), h, engine))
            if progress is not None:
                progress(1)
    rows.append(_row("total", len(data), data.X, h, engine))
    return Metrics(rows, float(h), group_by)


def run_metrics(
    data,
    h: float = DEFAULT_BANDWIDTH,
    group_by: str | None = None,
    *,
    output=None,
    record: Mapping | None = None,
    engine=None,
    progress=None,
) -> Metrics:
    """`atominfo metrics` as one function: `dataset_metrics`, and the table written to
    `output` (.csv: one row per group; .json: ``Metrics.to_dict()`` followed by `record`,
    e.g. the files and descriptor settings), inside the output guard."""
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(output, TABLE_SUFFIXES)]):
        metrics = dataset_metrics(data, h, group_by, engine=engine, progress=progress)
        if output is not None and Path(output).suffix == ".csv":
            _write_csv(metrics, output)
        elif output is not None:
            write_json(output, {**metrics.to_dict(), **(record or {})})
    return metrics


def _write_csv(metrics: Metrics, path) -> None:
    """One row per group, then the total; an undefined efficiency is an empty cell."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row in metrics.rows:
                writer.writerow(
                    {k: ("" if isinstance(v, float) and v != v else v) for k, v in row.items()}
                )
