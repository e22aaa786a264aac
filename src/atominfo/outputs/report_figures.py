"""The figures of the dataset report page: information per group and dH histograms.

`plot_information` and `plot_dh_histograms` follow `atominfo.outputs.plots`:
they take and return matplotlib Axes (a new figure when none is given, shown
inline in Jupyter), legends sit outside the data, and group i has colour i of
``palette(n_groups + 1)`` in every figure of the page (the whole dataset,
"all", the last; `group_colours`). `figure_uri` embeds a figure in the page.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from atominfo.errors import InputError
from atominfo.outputs.figures import ROLE_COLOURS, new_figure, palette

DPI = 110  # of the figures embedded in the page


def group_colours(report) -> dict:
    """{group name: colour}: group i has colour i of palette(n_groups + 1), "all" the last."""
    names = [g.name for g in report.information]
    return dict(zip(names, palette(len(names))))


def plot_information(report, *, ax=None, title: str | None = None):
    """Entropy H of each group against its maximum log n, as horizontal bars.

    The pale bar is log n (every environment distinct), the solid bar H; the
    label gives H / log n. Returns the Axes.
    """
    info = report.information
    if ax is None:
        ax = new_figure(figsize=(7.5, 1.2 + 0.45 * len(info)))[1]
    colours = group_colours(report)
    y = np.arange(len(info))[::-1]
    for yi, g in zip(y, info):
        c = colours[g.name]
        ax.barh(yi, g.log_n, color=c, alpha=0.25, height=0.7)
        ax.barh(yi, g.entropy, color=c, height=0.7)
        eff = "" if not math.isfinite(g.efficiency) else f"  {g.efficiency:.0%} of log n"
        ax.text(g.log_n, yi, f" H = {g.entropy:.2f}{eff}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{g.name} ({g.structures} str.)" for g in info])
    ax.set_xlim(0, max(g.log_n for g in info) * 1.45)
    ax.set_xlabel("nats (solid: entropy H; pale: its maximum log n)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(
        title
        or f"Information per group: entropy H against its maximum log n "
        f"(h = {report.bandwidth:g} 1/Å)",
        fontsize=10,
    )
    return ax


def plot_dh_histograms(report, *, ax=None, title: str | None = None, bins: int = 60):
    """Distribution of per-atom dH against the reference, one step histogram per group.

    Heights are fractions of each group's environments (groups of different
    sizes compare); the dashed line is dH = 0 (right of it: novel). The x axis
    is symmetric-logarithmic (linear for |dH| < 1 nat), so that the bulk near
    0 and a tail of far outliers are both visible. Returns the Axes.
    """
    if report.dH is None:
        raise InputError("no reference: the report holds no dH")
    if ax is None:
        ax = new_figure(figsize=(7.5, 3.8))[1]
    colours = group_colours(report)
    names = [g for g in report.groups] if len(report.groups) > 1 else ["all"]
    # bins even in sign(x) log(1 + |x|): the bulk near dH = 0 and a tail of hundreds of
    # nats both stay readable (the axis is symlog, linear within |dH| < 1 nat)
    lo, hi = float(report.dH.min()), float(report.dH.max())
    u = np.linspace(
        np.sign(lo) * np.log1p(abs(lo)), np.sign(hi) * np.log1p(abs(hi)) + 1e-9, bins + 1
    )
    edges = np.sign(u) * np.expm1(np.abs(u))
    for name in names:
        frames = report.groups[name] if name in report.groups else np.arange(len(report.data))
        values = report.dH[report.data.rows(frames)]
        weights = np.full(len(values), 1.0 / len(values))
        ax.hist(
            values,
            bins=edges,
            weights=weights,
            histtype="step",
            lw=1.6,
            color=colours[name],
            label=f"{name}: {100 * np.mean(values > 0):.1f}% novel",
        )
    ax.axvline(0.0, color=ROLE_COLOURS["reference"], ls="--", lw=0.9)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("dH against the reference (nats, symmetric log scale; > 0: novel)")
    ax.set_ylabel("fraction of the group's environments")
    ax.grid(alpha=0.3)
    ax.set_title(
        title
        or f"Per-atom dH of each group against the reference "
        f"({report.reference_environments} environments, "
        f"h = {report.bandwidth:g} 1/Å)",
        fontsize=10,
    )
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        fontsize=8,
        title="group",
        title_fontsize=8,
        alignment="left",
    )
    return ax


def figure_uri(axes) -> str:
    """The figure holding `axes` (one Axes or a sequence) as a data: URI (base64 PNG)."""
    first = axes[0] if isinstance(axes, (tuple, list)) else axes
    buffer = io.BytesIO()
    first.figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
