"""Figures of the workflows: functions that draw on a matplotlib Axes and return it.

Every ``plot_*`` function takes results already computed by the API and an
optional ``ax`` (two Axes for two-panel figures) and returns the Axes it drew
on (freud's convention). When no ``ax`` is given it makes a new figure
(`new_figure`): inside a Jupyter kernel with an inline backend the figure is
made with pyplot, so the notebook shows it under the cell; elsewhere it is a
plain `matplotlib.figure.Figure` (no pyplot state, no display needed, nothing
accumulates in a script). Nothing here writes a file except `save_figure`,
which writes atomically (the file appears only when complete) in the format
of the extension; `check_plot_path` validates a path before any work starts::

    ax = plot_learning_curves([curve])
    save_figure(ax.figure, "curve.png")

Colours come from `palette`, so the n-th group has the same colour in every
figure; legends sit outside the axes, never over the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from atominfo.errors import InputError

# The figure helpers, importable from here as before (`save_figure(ax.figure, path)`).
from atominfo.outputs.figures import PLOT_SUFFIXES as PLOT_SUFFIXES
from atominfo.outputs.figures import ROLE_COLOURS as ROLE_COLOURS
from atominfo.outputs.figures import check_plot_path as check_plot_path
from atominfo.outputs.figures import legend_outside, new_figure, two_axes
from atominfo.outputs.figures import palette as palette
from atominfo.outputs.figures import save_figure as save_figure
from atominfo.outputs.figures import write_figure as write_figure


def _as_columns(table) -> Mapping:
    """A per-frame table as a mapping of columns: a result with a `columns` method (e.g.
    `TrajectoryDH`) gives its columns."""
    columns = getattr(table, "columns", None)
    return columns() if callable(columns) else table


def _columns(table: Mapping, names: Sequence[str]) -> list:
    """The columns `names` of `table`, or an InputError naming the missing one and the
    columns there are."""
    missing = [name for name in names if name not in table]
    if missing:
        raise InputError(
            f"the table has no column {missing[0]!r} (its columns: {', '.join(map(str, table))})"
        )
    return [table[name] for name in names]


def _nats(x: float) -> str:
    """Entropies as read on a slide: two decimals, more digits for small values."""
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3g}"


def _frame_axis(table: Mapping, x: str | None = None):
    """x values and label for per-frame series: the LAMMPS timestep when every frame has
    one, else the time, else the frame number (integer ticks)."""
    (frames,) = _columns(table, ["frame"])
    frames = np.asarray(frames)
    candidates = [x] if x is not None else ["timestep", "time"]
    for name in candidates:
        values = table.get(name)
        if values is None:
            if x is not None:
                _columns(table, [x])  # names the columns there are
            continue
        column = np.array([np.nan if v is None or v == "" else float(v) for v in values])
        if len(column) == len(frames) and np.all(np.isfinite(column)):
            return (
                column,
                {"timestep": "MD timestep", "time": "time"}.get(name, name),
                name == "timestep",
            )
    return frames, "frame", True


def _integer_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# --- dataset workflows -------------------------------------------------------------------


def _curve_class(curve) -> str:
    """A learning curve's class with its rise per doubling and interval, for a legend."""
    test = curve.test
    if test.interval is None:
        return test.status
    lo, hi = test.interval
    return (
        f"{test.status} (rise per doubling {test.rise:.3f} nats, {test.level:.0%}: "
        f"{lo:.3f} to {hi:.3f})"
    )


def plot_learning_curves(
    curves: Sequence,
    labels: Sequence[str | None] | None = None,
    *,
    ax=None,
    title: str | None = None,
):
    """Entropy of random subsets against subset size, with each curve's class and asymptote.

    Points: mean over seeds, bars: standard deviation over seeds. The legend
    gives each curve's class ("saturated", "still rising" or "not
    determined", `LearningCurve.status`). Only where the curve is
    extrapolated (still rising, with a fit that passes its checks) are the
    fitted curve over the sampled sizes, the asymptote (dashed) and its
    bootstrap interval (band) drawn and named. The y axis spans the data
    (and drawn asymptotes) plus a margin.

    Parameters
    ----------
    curves : sequence of LearningCurve (same unit).
    labels : one legend label per curve (default: none for one curve, "curve i").
    ax : matplotlib Axes to draw on (default: a new 7 x 4.2 in figure).
    title : default "Learning curve: entropy H of random subsets vs size N (h = ...)".

    Returns
    -------
    matplotlib Axes.
    """
    curves = list(curves)
    if not curves:
        raise InputError("no learning curves to plot")
    if labels is None:
        labels = [None] if len(curves) == 1 else [f"curve {i + 1}" for i in range(len(curves))]
    if len(labels) != len(curves):
        raise InputError(f"{len(labels)} labels for {len(curves)} curves")
    if ax is None:
        ax = new_figure(figsize=(6.5, 5.0 + 0.18 * len(curves)))[1]
    colours = palette(len(curves))
    low, high = np.inf, -np.inf
    handles, texts = [], []
    level = None
    for curve, label, colour in zip(curves, labels, colours):
        prefix = f"{label}: " if label else ""
        mean, sd = curve.mean, curve.sd
        points = ax.errorbar(curve.sizes, mean, yerr=sd, fmt="o", ms=4, color=colour, capsize=2)
        low, high = min(low, float(np.min(mean - sd))), max(high, float(np.max(mean + sd)))
        fit = curve.fit
        text = prefix + _curve_class(curve)
        if fit is not None:
            grid = np.geomspace(curve.sizes.min(), curve.sizes.max(), 200)
            (line,) = ax.plot(grid, fit(grid), "-", color=colour, lw=1.2)
            ax.axhline(fit.a, color=colour, ls="--", lw=0.9)
            text += f", asymptote a = {_nats(fit.a)} nats"
            if fit.a_interval is not None:
                lo, hi = fit.a_interval
                ax.axhspan(lo, hi, color=colour, alpha=0.15, lw=0)
                text += f" ({fit.level:.0%}: {_nats(lo)} to {_nats(hi)})"
                low, high = min(low, lo), max(high, hi)
                level = fit.level
            low, high = min(low, fit.a), max(high, fit.a)
            handles.append((points, line))
        else:
            # No fit line: nothing is extrapolated from this curve.
            text += ", no asymptote" if curve.status == "still rising" else ""
            handles.append(points)
        texts.append(text)
    span = max(high - low, 1e-3)
    ax.set_ylim(low - 0.08 * span, high + 0.08 * span)
    ax.set_xscale("log")
    unit = curves[0].unit
    ax.set_xlabel(f"subset size N ({unit})")
    ax.set_ylabel("entropy H (nats)")
    ax.set_title(
        title
        or f"Learning curve: entropy H of random subsets vs size N\n"
        f"(h = {curves[0].bandwidth:g} 1/Å)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    from matplotlib.legend_handler import HandlerTuple

    key = "points: mean ± sd over seeds" + (
        "; line: fit a - b exp(-c (ln N)²); dashed: asymptote a"
        if any(c.fit is not None for c in curves)
        else ""
    )
    key += f", band: its {level:.0%} interval" if level is not None else ""
    legend_outside(
        ax,
        handles=handles,
        labels=texts,
        title=key,
        below=True,
        handler_map={tuple: HandlerTuple(ndivide=None)},
    )
    return ax


def plot_overlap_matrix(matrix, *, ax=None, title: str | None = None):
    """Heatmap of an OverlapMatrix: row i (tested subset) inside column j (reference).

    Values in the cells for up to 15 subsets. Returns the Axes.
    """
    n = len(matrix.labels)
    if ax is None:
        size = max(3.5, 0.55 * n + 2.5)
        ax = new_figure(figsize=(size + 1.2, size))[1]
    image = ax.imshow(matrix.values, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), matrix.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), [f"{lab} ({s})" for lab, s in zip(matrix.labels, matrix.sizes)])
    ax.set_xlabel("reference subset j")
    ax.set_ylabel("tested subset i (environments)")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = matrix.values[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if v > 0.6 else "white",
                )
    ax.figure.colorbar(image, ax=ax, label="overlap: fraction of i with dH(x | j) ≤ 0")
    ax.set_title(
        title
        or f"Overlap of each subset (row) with each other (column), h = {matrix.bandwidth:g} 1/Å",
        fontsize=10,
    )
    return ax


def plot_generations(rows: Sequence, *, verdict=None, ax=None, axes=None, title: str | None = None):
    """Active-learning generations, two panels sharing the x axis.

    Top: entropy H and diversity D of the cumulative set after each
    generation. Bottom: novelty of each generation against all earlier ones
    (% of its environments with dH > 0). With `verdict` (a
    `workflows.generations.Verdict`), the verdict heads the title, the
    novelty threshold is drawn as a dashed line and the reason is written
    under the panels; the generations it looked at are shaded. `ax`: two Axes
    to draw on (default: a new figure; `axes`, its former name, is still taken).

    Returns
    -------
    (top, bottom) : tuple of two matplotlib Axes.
    """
    if not rows:
        raise InputError("no generations to plot")
    top, bottom = two_axes(ax, axes, (7.0, 5.5))
    x = np.arange(len(rows))
    labels = [r.label for r in rows]
    top.plot(
        x,
        [r.cumulative_entropy for r in rows],
        "o-",
        color=ROLE_COLOURS["entropy"],
        label="entropy H",
    )
    top.plot(
        x,
        [r.cumulative_diversity for r in rows],
        "s-",
        color=ROLE_COLOURS["diversity"],
        label="diversity D",
    )
    top.set_ylabel("cumulative H, D (nats)")
    top.grid(alpha=0.3)
    legend_outside(top)
    novelty = np.array([np.nan if r.novelty is None else 100.0 * r.novelty for r in rows])
    bars = bottom.bar(x, np.nan_to_num(novelty), color=ROLE_COLOURS["novelty"])
    for bar, value in zip(bars, novelty):  # the first generation has nothing before it
        bottom.annotate(
            "first" if np.isnan(value) else f"{value:.1f}%",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    peak = np.nanmax(novelty) if np.isfinite(novelty).any() else 0.0
    bottom.set_ylim(0, max(peak, 1.0) * 1.18)
    bottom.set_ylabel("novel environments (%)\n(dH > 0 vs earlier generations)")
    bottom.set_xlabel("generation")
    bottom.set_xticks(x, labels)
    bottom.grid(alpha=0.3, axis="y")
    heading = "Active-learning generations: cumulative H, D and novelty of each generation"
    if verdict is not None:
        import textwrap

        heading = f"Campaign {verdict.verdict.upper()}: cumulative H, D and novelty per generation"
        threshold = 100.0 * verdict.max_novelty
        bottom.axhline(threshold, color="0.3", ls="--", lw=1, label=f"max novelty {threshold:g}%")
        bottom.set_ylim(0, max(peak, threshold, 1.0) * 1.18)
        legend_outside(bottom)
        shown = min(verdict.window, len(rows))
        for ax in (top, bottom):
            ax.axvspan(len(rows) - shown - 0.5, len(rows) - 0.5, color="0.9", zorder=0)
        # In the x label, so that the layout engine makes room for it.
        bottom.set_xlabel(
            "generation (shaded: the generations the verdict looked at)\n"
            + textwrap.fill(f"{verdict.verdict}: {verdict.reason}", 110),
            fontsize=8,
        )
    top.set_title(title or heading, fontsize=10)
    return top, bottom


def plot_compression(
    results: Sequence[Mapping],
    full_entropy: float | None = None,
    *,
    ax=None,
    axes=None,
    title: str | None = None,
):
    """Entropy and overlap kept against selection size, one line per method.

    Parameters
    ----------
    results : dicts with keys "method", "structures", "entropy" (nats),
        "overlap" (fraction of the full set inside the selection).
    full_entropy : H of the full set, nats (a dashed reference line).
    ax : two Axes side by side (default: a new 10 x 3.8 in figure); `axes`, its
        former name, is still taken.

    Returns
    -------
    (left, right) : tuple of two matplotlib Axes (entropy, overlap).
    """
    if ax is None and axes is None:
        left, right = new_figure(1, 2, figsize=(10.0, 3.8))[1]
    else:
        left, right = two_axes(ax, axes, None)
    methods = list(dict.fromkeys(r["method"] for r in results))
    for method, colour in zip(methods, palette(len(methods))):
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["structures"])
        sizes = [r["structures"] for r in rows]
        left.plot(sizes, [r["entropy"] for r in rows], "o-", color=colour, label=method)
        right.plot(sizes, [100 * r["overlap"] for r in rows], "o-", color=colour, label=method)
    if full_entropy is not None:
        left.axhline(
            full_entropy, color=ROLE_COLOURS["reference"], ls="--", lw=0.9, label="full set"
        )
    left.set_xlabel("structures kept")
    left.set_ylabel("entropy H of the selection (nats)")
    left.set_title("entropy kept", fontsize=9)
    right.set_xlabel("structures kept")
    right.set_ylabel("full set inside the selection (%)")
    right.set_title("coverage of the full set", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    legend_outside(right, handles=handles, labels=labels, title="method")
    left.figure.suptitle(title or "Compression: selections of equal size by method", fontsize=10)
    return left, right


# --- simulation workflows ----------------------------------------------------------------


def plot_trajectory(
    table: Mapping,
    label: str = "",
    *,
    ax=None,
    axes=None,
    x: str | None = None,
    title: str | None = None,
):
    """Per-frame dH of a trajectory against a reference, two panels sharing the x axis.

    Top: % of atoms with dH > 0; bottom: maximum dH (nats). The x axis is the
    MD timestep when every frame has one (LAMMPS dumps), else the time, else
    the frame number with integer ticks.

    Parameters
    ----------
    table : per-frame columns: 'frame', 'novelty<label>' (fraction), 'max_dH<label>'
        (nats), optionally 'timestep' and 'time'.
        A `TrajectoryDH` is read through its `columns`.
    label : column suffix (the bandwidth label of a multi-bandwidth run, e.g. "_h0.01").
    ax : two Axes to draw on (default: a new figure; `axes`, its former name, is
        still taken).
    x : force the x column ('timestep', 'time' or 'frame').

    Raises
    ------
    InputError for a `label` or `x` that names no column, listing those there are.

    Returns
    -------
    (top, bottom) : tuple of two matplotlib Axes.
    """
    table = _as_columns(table)
    labels = [name[len("novelty") :] for name in table if str(name).startswith("novelty")]
    if f"novelty{label}" not in table or f"max_dH{label}" not in table:
        raise InputError(
            f"label {label!r} names no columns of the table ('novelty{label}', "
            f"'max_dH{label}'): label is the suffix of its novelty and max_dH columns, one of "
            f"{', '.join(map(repr, labels)) or 'none (no novelty column)'} (a title goes in "
            "title=)"
        )
    top, bottom = two_axes(ax, axes, (7.0, 5.0))
    xs, xlabel, integer = _frame_axis(table, x)
    top.plot(
        xs,
        100 * np.asarray(table[f"novelty{label}"], dtype=float),
        "o-",
        ms=3,
        color=ROLE_COLOURS["novelty"],
    )
    top.set_ylabel("atoms with dH > 0 (%)")
    top.set_ylim(bottom=0)
    bottom.plot(
        xs,
        np.asarray(table[f"max_dH{label}"], dtype=float),
        "o-",
        ms=3,
        color=ROLE_COLOURS["max_dH"],
    )
    bottom.axhline(0.0, color=ROLE_COLOURS["reference"], lw=0.8, ls="--")
    bottom.set_ylabel("max dH over atoms (nats)")
    bottom.set_xlabel(xlabel)
    if integer:
        _integer_ticks(bottom)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.set_title(
        title or "Trajectory against the reference: novel atoms (dH > 0) per frame", fontsize=10
    )
    return top, bottom


def plot_calibration(
    dH, errors, curve, error_unit: str = "eV/Å", *, ax=None, title: str | None = None
):
    """Density of (dH, model error) with the running average of the error.

    Parameters
    ----------
    dH : array (n,), nats. errors : array (n,), in `error_unit`.
    curve : the running average (`atominfo.workflows.uncertainty.RunningAverage`:
        arrays 'centre', 'mean_error', 'count').

    Returns
    -------
    matplotlib Axes.
    """
    from matplotlib.colors import LogNorm

    if ax is None:
        ax = new_figure(figsize=(6.5, 4.2))[1]
    hb = ax.hexbin(dH, errors, gridsize=50, mincnt=1, norm=LogNorm(), cmap="Blues")
    ax.figure.colorbar(hb, ax=ax, label="atoms per bin")
    ok = np.asarray(curve.count) > 0
    ax.plot(
        np.asarray(curve.centre)[ok],
        np.asarray(curve.mean_error)[ok],
        "o-",
        color=ROLE_COLOURS["novelty"],
        label="running average of the error",
    )
    ax.axvline(0.0, color=ROLE_COLOURS["reference"], lw=0.8, ls="--", label="dH = 0")
    ax.set_xlabel("dH against the training set (nats)")
    ax.set_ylabel(f"model error ({error_unit})")
    ax.set_title(title or "Model error against dH", fontsize=10)
    legend_outside(ax, below=True)
    return ax


def plot_clusters(
    table: Mapping,
    n_star: float | None = None,
    *,
    ax=None,
    axes=None,
    x: str | None = None,
    title: str | None = None,
):
    """Largest solid-like cluster and number of clusters per frame, two panels.

    Parameters
    ----------
    table : per-frame columns 'frame', 'largest' (atoms), 'clusters', optionally
        'timestep' and 'time' (used for the x axis as in `plot_trajectory`).
    n_star : critical nucleus size (atoms), drawn as a dashed line.
    ax : two Axes to draw on (default: a new figure; `axes`, its former name, is
        still taken).

    Returns
    -------
    (top, bottom) : tuple of two matplotlib Axes.
    """
    from matplotlib.ticker import MaxNLocator

    table = _as_columns(table)
    largest, clusters = _columns(table, ["largest", "clusters"])
    top, bottom = two_axes(ax, axes, (7.0, 5.0))
    xs, xlabel, integer = _frame_axis(table, x)
    top.plot(
        xs,
        np.asarray(largest),
        "o-",
        ms=3,
        color=ROLE_COLOURS["clusters"],
        label="largest cluster",
    )
    if n_star is not None:
        top.axhline(
            n_star,
            color=ROLE_COLOURS["novelty"],
            ls="--",
            label=f"critical size n* = {n_star:.0f} atoms",
        )
    top.set_ylabel("largest cluster (atoms)")
    legend_outside(top)
    bottom.plot(xs, np.asarray(clusters), "o-", ms=3, color=ROLE_COLOURS["entropy"])
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("number of clusters")
    bottom.set_xlabel(xlabel)
    if integer:
        _integer_ticks(bottom)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.set_title(title or "Solid-like clusters (dH ≤ 0 against the solid) per frame", fontsize=10)
    return top, bottom


def plot_roc(curves: Mapping, *, ax=None, title: str | None = None):
    """ROC curves of outlier detectors: {name: (false positive rate, true positive rate, auc)}.

    Returns the Axes.
    """
    if ax is None:
        ax = new_figure(figsize=(6.0, 4.2))[1]
    for (name, (fpr, tpr, auc)), colour in zip(curves.items(), palette(len(curves))):
        ax.plot(fpr, tpr, color=colour, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color=ROLE_COLOURS["reference"], lw=0.8, ls="--", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "Outlier detection: ROC curves", fontsize=10)
    legend_outside(ax)
    return ax
