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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# An interval this share of [0, log n] wide says little (`EntropyTable.wide`).
UNINFORMATIVE = 0.9


@dataclass(repr=False)
class EntropyTable(Result):
    """H and D, or with `sample` H and its 95% interval, of each set of environments (nats).

    Attributes
    ----------
    rows : one dict per set: ``set``, ``n``, ``log_n``, ``entropy``, ``diversity``
        (None when sampled) and, when sampled, ``ci95_low``, ``ci95_high``,
        ``half_width``, ``n_samples``, ``seed``; one value per bandwidth for several.
    bandwidth : h, or a list of h, 1/Å.
    sample : environments sampled per set (`atominfo.sampled_entropy`), or None: exact.
    seed : seed of the sample.
    wide : the sets whose sampled interval spans at least `UNINFORMATIVE` of [0, log n].
    """

    _fields_shown = ("bandwidth", "sample", "wide")
    rows: list
    bandwidth: Any
    sample: int | None = None
    seed: int = 0
    wide: list = field(default_factory=list)

    def columns(self) -> dict[str, list]:
        """One row per set and bandwidth (column ``h``), never a list in a cell."""
        hs = list(np.atleast_1d(self.bandwidth))
        names = [k for k in self.rows[0] if k not in ("n_samples", "seed")] if self.rows else []
        out: dict[str, list] = {"set": [], "h": []}
        out.update({name: [] for name in names if name != "set"})
        for row in self.rows:
            for t, h in enumerate(hs):
                out["set"].append(row["set"])
                out["h"].append(float(h))
                for name in names[1:]:
                    value = row[name]
                    out[name].append(value[t] if np.ndim(value) > 0 else value)
        return out

    def to_pandas(self):
        """The table (`columns`) as a `pandas.DataFrame`, one row per set and bandwidth."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "EntropyTable")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        how = "exact" if self.sample is None else f"{self.sample} sampled environments per set"
        return html_table(self.columns(), f"EntropyTable (nats; {how})")


def entropy_table(
    sets: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
    h=DEFAULT_BANDWIDTH,
    *,
    sample: int | None = None,
    seed: int = 0,
    engine=None,
    progress: Callable[[str, int], None] | None = None,
) -> EntropyTable:
    """`atominfo entropy` as one function: H and D (or, with `sample`, H and its 95%
    interval from `sample` random environments) of each set of environments.

    Parameters
    ----------
    sets : {name: array (n, d) of descriptors}, or (name, array) pairs (names may
        repeat), e.g. one per file and ``"all"``.
    h : bandwidth, or a list of bandwidths, 1/Å.
    sample, seed : see `atominfo.sampled_entropy` (D is then not computed).
    engine : EngineOptions or None.
    progress : called with (set name, environments done): with 0 as each set starts.
    """
    from atominfo import information

    rows, wide = [], []
    for name, X in sets.items() if isinstance(sets, Mapping) else sets:
        step = None
        if progress is not None:
            progress(name, 0)
            step = _named(progress, name)
        log_n = float(np.log(len(X)))
        if sample is None:
            H, D = information.entropy_and_diversity(X, h, engine=engine, progress=step)
            rows.append({"set": name, "n": len(X), "log_n": log_n, "entropy": H, "diversity": D})
            continue
        est = information.sampled_entropy(X, h, sample, seed, engine=engine, progress=step)
        if np.any(np.subtract(est.high, est.low) >= UNINFORMATIVE * np.log(len(X))):
            wide.append(name)
        rows.append(
            {
                "set": name,
                "n": len(X),
                "log_n": log_n,
                "entropy": est.entropy,
                "ci95_low": est.low,
                "ci95_high": est.high,
                "half_width": est.half_width,
                "n_samples": est.n_samples,
                "seed": est.seed,
                "diversity": None,
            }
        )
    return EntropyTable(rows, h, sample, seed, wide)


def _named(progress: Callable[[str, int], None], name: str) -> Callable[[int], None]:
    def advance(n: int) -> None:
        progress(name, n)

    return advance
