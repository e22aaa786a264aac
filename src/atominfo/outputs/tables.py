"""Per-frame and summary tables of the workflows: JSON and CSV files, pandas, HTML.

The files are written atomically (`atominfo.runs.atomic.atomic_output`): inside
an `OutputGuard` they are committed with the run's other outputs, all or none.
JSON has no NaN or Infinity (they become null), so any JSON reader takes it.
`html_table` is what a result's ``_repr_html_`` shows in Jupyter: one row per
item (per frame, per bin), never a Python list inside one cell.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from atominfo.errors import InputError
from atominfo.results import jsonable
from atominfo.runs.atomic import atomic_output

# Rows an HTML table shows before it elides the middle ones.
HTML_ROWS = 20


def write_json(path, document: Any) -> None:
    """`document` as indented JSON in `path` (arrays as lists, NaN and infinities as null)."""
    text = json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_csv(path, fields: Sequence[str], rows: Sequence[Mapping]) -> None:
    """`rows` (one mapping each) as CSV under the header `fields`; other keys are left
    out and None is an empty cell."""
    text = io.StringIO()
    writer = csv.DictWriter(text, list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(path) as tmp:
        tmp.write_text(text.getvalue())


def data_frame(columns: Mapping[str, Sequence], what: str):
    """A `pandas.DataFrame` of `columns`; an InputError naming `what` without pandas."""
    try:
        import pandas as pd
    except ImportError:
        raise InputError(f"{what}.to_pandas needs pandas: pip install pandas") from None
    return pd.DataFrame({name: list(values) for name, values in columns.items()})


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}" if np.isfinite(value) else "-"
    return str(value)


def html_table(columns: Mapping[str, Sequence], caption: str, max_rows: int = HTML_ROWS) -> str:
    """An HTML table, one row per item of the (equally long) `columns`.

    Beyond `max_rows` rows the first and last halves are shown with a row
    saying how many are left out between them. Numbers are shown to 6
    significant digits; None and non-finite values as '-'.
    """
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    shown = list(range(n))
    if n > max_rows:
        half = max_rows // 2
        shown = [*range(half), -1, *range(n - half, n)]
    style = "style='text-align:right'"
    head = "".join(f"<th {style}>{html.escape(name)}</th>" for name in names)
    body = []
    for i in shown:
        if i < 0:
            body.append(f"<tr><td colspan='{len(names)}'>... {n - 2 * half} more rows</td></tr>")
            continue
        cells = "".join(f"<td {style}>{html.escape(_cell(columns[c][i]))}</td>" for c in names)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{''.join(body)}</table>"
