"""Results display in Jupyter: figures inline, readable tables, clear errors.

A plot helper given no Axes makes its figure with pyplot only inside an
IPython kernel whose backend draws inline (the notebook then shows it under
the cell); in a script it makes a plain Figure that pyplot never holds. The
kernel is faked here: an ``IPython`` module whose ``get_ipython()`` returns a
shell with a ``kernel``, and matplotlib's backend name.
"""

from __future__ import annotations

import inspect
import sys
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from atominfo.errors import InputError
from atominfo.outputs import figures, plots, report_figures
from atominfo.workflows.overlap_matrix import OverlapMatrix

INLINE = "module://matplotlib_inline.backend_inline"


def fake_ipython(monkeypatch, *, kernel: bool, backend: str) -> None:
    plt.close(plt.figure())  # pyplot settles its own backend before the fake appears
    shell = SimpleNamespace(kernel=object()) if kernel else SimpleNamespace()
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: backend)


def matrix() -> OverlapMatrix:
    return OverlapMatrix(["a", "b"], np.array([[1.0, 0.25], [0.5, 1.0]]), [10, 30], 0.015)


def test_a_script_gets_a_figure_pyplot_does_not_hold():
    before = plt.get_fignums()
    ax = plots.plot_overlap_matrix(matrix())
    assert plt.get_fignums() == before and not figures.displays_inline()
    assert ax.figure.canvas is not None  # drawable and savable headless


@pytest.mark.parametrize(
    "kernel, backend, inline",
    [(True, INLINE, True), (True, "ipympl", True), (True, "agg", False), (False, INLINE, False)],
)
def test_figures_made_in_a_notebook_kernel_show_inline(monkeypatch, kernel, backend, inline):
    fake_ipython(monkeypatch, kernel=kernel, backend=backend)
    assert figures.displays_inline() is inline
    before = set(plt.get_fignums())
    top, bottom = plots.plot_clusters(
        {"frame": [0, 1, 2], "largest": [1, 5, 9], "clusters": [1, 2, 1]}
    )
    made = set(plt.get_fignums()) - before
    try:
        assert bool(made) is inline  # pyplot shows, at the end of the cell, the figures it holds
        assert top.figure is bottom.figure
    finally:
        for number in made:
            plt.close(number)


def test_every_plot_helper_takes_ax_and_returns_what_it_drew_on():
    helpers = [
        (name, f)
        for module in (plots, report_figures)
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("plot_") and f.__module__ == module.__name__
    ]
    assert len(helpers) >= 10
    for name, f in helpers:
        ax = inspect.signature(f).parameters.get("ax")
        assert ax is not None and ax.default is None, name
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert plots.plot_overlap_matrix(matrix(), ax=left) is left
        table = {"frame": [0, 1], "novelty": [0.1, 0.2], "max_dH": [0.5, -1.0]}
        assert plots.plot_trajectory(table, ax=(left, right)) == (left, right)
        assert plots.plot_trajectory(table, axes=[left, right]) == (left, right)  # former name
    finally:
        plt.close(fig)


def test_plot_trajectory_names_the_labels_the_table_has():
    table = {
        "frame": [0, 1],
        "novelty_h0.01": [0.1, 0.2],
        "max_dH_h0.01": [0.5, 1.0],
        "novelty_h0.02": [0.0, 0.1],
        "max_dH_h0.02": [0.1, 0.2],
    }
    with pytest.raises(InputError) as caught:
        plots.plot_trajectory(table, "heat vs train")
    message = str(caught.value)
    assert message.startswith("label 'heat vs train' names no columns of the table")
    assert "one of '_h0.01', '_h0.02' (a title goes in title=)" in message
    top, _ = plots.plot_trajectory(table, "_h0.02")
    assert np.allclose(top.lines[0].get_ydata(), [0.0, 10.0])
    with pytest.raises(InputError, match=r"no column 'largest' \(its columns: frame"):
        plots.plot_clusters({"frame": [0]})
    with pytest.raises(InputError, match="no column 'step'"):
        plots.plot_trajectory(table, "_h0.01", x="step")


# -- tables: one row per item, never a Python list in a cell ------------------------------------


def _cells(html_text: str) -> list[str]:
    import re

    return re.findall(r"<td[^>]*>(.*?)</td>", html_text)


def test_metrics_and_overlap_tables_have_one_row_per_group():
    from atominfo.workflows.metrics import Metrics

    rows = [
        {"label": g, "structures": 2, "n": 10, "H": 1.5, "D": 2.0, "log_n": 2.3, "efficiency": 0.6}
        for g in ("melt", "crystal")
    ]
    rows.append({**rows[0], "label": "total", "efficiency": float("nan")})
    metrics = Metrics(rows, 0.015, "config_type")
    for result, n_rows, n_columns in ((metrics, 3, 7), (matrix(), 2, 4)):
        text = result._repr_html_()
        cells = _cells(text)
        assert text.count("<tr>") == n_rows + 1 and len(cells) == n_rows * n_columns
        assert not any(c.startswith(("[", "(")) for c in cells)  # no list in a cell
    assert metrics.columns()["label"] == ["melt", "crystal", "total"]
    assert matrix().columns() == {
        "subset": ["a", "b"],
        "environments": [10, 30],
        "inside a": [1.0, 0.5],
        "inside b": [0.25, 1.0],
    }


def test_tables_to_pandas():
    pd = pytest.importorskip("pandas")
    table = matrix().to_pandas()
    assert isinstance(table, pd.DataFrame) and table.loc["a", "b"] == 0.25
    assert list(table.columns) == ["a", "b"]


def test_the_calibration_functions_return_result_objects():
    """`calibrate`, `running_average` and `correlations` returned dicts (a wall of
    arrays in a notebook); now objects with a readable repr, an HTML table of one row
    per bin and JSON-safe `to_dict`."""
    import json

    from atominfo.results import Result
    from atominfo.workflows.uncertainty import calibrate, correlations, running_average

    rng = np.random.default_rng(0)
    dH = rng.normal(size=400)
    errors = 0.1 + 0.05 * np.abs(dH) * rng.random(400)
    curve = running_average(dH, errors, n_bins=8)
    found = calibrate(dH, errors, seed=1)
    for result in (curve, correlations(dH, errors), found):
        assert isinstance(result, Result) and "array(" not in repr(result)
        json.dumps(result.to_dict(), allow_nan=False)
    assert "estimator" not in found.to_dict()
    assert found.correlations.n == 400 and found.running_average.count.sum() > 0
    text = curve._repr_html_()
    assert text.count("<tr>") == 8 + 1 and len(_cells(text)) == 8 * 3
    pd = pytest.importorskip("pandas")
    table = curve.to_pandas()
    assert isinstance(table, pd.DataFrame) and table.shape == (8, 3)
