"""Figures of the dataset workflows (matplotlib, Agg: no display needed).

Each function writes one figure; the format follows the file extension
(.png, .svg or .pdf) and the file appears only when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def check_plot_path(path) -> str:
    """The matplotlib format for `path`; InputError for an unsupported extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"plot file must end in {', '.join(FORMATS)}", source=str(path))
    return FORMATS[suffix]


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    fmt = check_plot_path(path)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_learning_curves(curves: Sequence, path, labels: Sequence[str] | None = None,
                         title: str | None = None) -> None:
    """Entropy vs subset size (log axis) with seed spread, asymptote fit and asymptote.

    Parameters
    ----------
    curves : LearningCurve objects (one per dataset, same unit).
    path : output file (.png, .svg, .pdf).
    labels : legend label per curve.
    """
    check_plot_path(path)
    fig, ax = _figure(figsize=(6.0, 4.2))
    labels = labels or [None] * len(curves)
    colours = [f"C{i}" for i in range(len(curves))]
    for curve, label, colour in zip(curves, labels, colours):
        mean, std = curve.mean, curve.entropies.std(axis=1)
        ax.errorbar(curve.sizes, mean, yerr=std, fmt="o", ms=4, color=colour, capsize=2,
                    label=f"{label}: H(N)" if label else "H(N), mean ± sd over seeds")
        if curve.fit is not None:
            grid = np.geomspace(curve.sizes.min(), curve.sizes.max(), 200)
            ax.plot(grid, curve.fit(grid), "-", color=colour, lw=1.2,
                    label=(f"{label}: " if label else "") + r"fit $a - b\,e^{-c(\ln N)^2}$")
            ax.axhline(curve.fit.a, color=colour, ls="--", lw=0.9,
                       label=(f"{label}: " if label else "") + f"asymptote a = {curve.fit.a:.2f}")
    unit = curves[0].unit if curves else "structures"
    ax.set_xscale("log")
    ax.set_xlabel(f"subset size N ({unit})")
    ax.set_ylabel("entropy H (nats)")
    h = curves[0].bandwidth if curves else None
    ax.set_title(title or f"Learning curve of information (h = {h:g} 1/Å)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_overlap_matrix(matrix, path, title: str | None = None) -> None:
    """Heatmap of an OverlapMatrix: row = subset tested, column = subset used as reference."""
    check_plot_path(path)
    n = len(matrix.labels)
    size = max(3.5, 0.6 * n + 2.5)
    fig, ax = _figure(figsize=(size + 1.0, size))
    image = ax.imshow(matrix.values, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), matrix.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), matrix.labels)
    ax.set_xlabel("reference subset j")
    ax.set_ylabel("tested subset i")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = matrix.values[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > 0.6 else "white")
    fig.colorbar(image, ax=ax, label="overlap: fraction of i with dH(x | j) ≤ 0")
    ax.set_title(title or f"Overlap matrix (h = {matrix.bandwidth:g} 1/Å)")
    _save(fig, path)


def plot_generations(rows: Sequence, path, title: str | None = None) -> None:
    """Two panels: H and D of the cumulative set; novelty of each generation."""
    check_plot_path(path)
    fig, (top, bottom) = _figure(2, 1, figsize=(6.0, 5.5), sharex=True)
    x = np.arange(len(rows))
    labels = [r.label for r in rows]
    top.plot(x, [r.cumulative_entropy for r in rows], "o-", label="entropy H")
    top.plot(x, [r.cumulative_diversity for r in rows], "s-", label="diversity D")
    top.set_ylabel("cumulative H, D (nats)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    novelty = [np.nan if r.novelty is None else 100.0 * r.novelty for r in rows]
    bars = bottom.bar(x, np.nan_to_num(novelty), color="C3")
    for bar, value in zip(bars, novelty):  # the first generation has nothing before it
        bottom.annotate("first" if np.isnan(value) else f"{value:.1f}%",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    bottom.set_ylim(0, max(np.nanmax(novelty) if np.isfinite(novelty).any() else 0, 1) * 1.15)
    bottom.set_ylabel("novel environments (%)\n(dH > 0 vs earlier generations)")
    bottom.set_xlabel("generation")
    bottom.set_xticks(x, labels)
    bottom.grid(alpha=0.3, axis="y")
    top.set_title(title or "Active-learning generations")
    _save(fig, path)


def plot_compression(results: Sequence[dict], path, full_entropy: float | None = None,
                     title: str | None = None) -> None:
    """Entropy and overlap kept vs selection size, one line per method.

    `results`: dicts with keys "method", "structures", "entropy", "overlap".
    """
    check_plot_path(path)
    fig, (left, right) = _figure(1, 2, figsize=(9.0, 3.8))
    methods = list(dict.fromkeys(r["method"] for r in results))
    for i, method in enumerate(methods):
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["structures"])
        sizes = [r["structures"] for r in rows]
        left.plot(sizes, [r["entropy"] for r in rows], "o-", color=f"C{i}", label=method)
        right.plot(sizes, [100 * r["overlap"] for r in rows], "o-", color=f"C{i}", label=method)
    if full_entropy is not None:
        left.axhline(full_entropy, color="gray", ls="--", lw=0.9, label="full set")
    left.set_xlabel("structures kept")
    left.set_ylabel("entropy H of the selection (nats)")
    right.set_xlabel("structures kept")
    right.set_ylabel("full set inside the selection (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Compression at equal size")
    _save(fig, path)
