"""Figures of the simulation workflows (matplotlib, Agg; format from the file extension).

Each function takes results already computed by the API and writes one
figure atomically (a failed plot never leaves a partial file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path):
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    plt = _pyplot()
    if fmt not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise InputError(f"unknown plot format {fmt!r} (use .png, .pdf, .svg, ...)",
                         source=str(path))
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)


def plot_frames(table: dict, path, label: str = "") -> None:
    """Fraction of atoms with dH > 0 and the maximum dH against frame.

    `table` holds the per-frame columns 'frame', 'novelty<label>', 'max_dH<label>'.
    """
    plt = _pyplot()
    frames = np.asarray(table["frame"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    top.plot(frames, 100 * np.asarray(table[f"novelty{label}"]), "o-", ms=3)
    top.set_ylabel("atoms with dH > 0 (%)")
    top.set_ylim(bottom=0)
    bottom.plot(frames, np.asarray(table[f"max_dH{label}"]), "o-", ms=3, color="C3")
    bottom.axhline(0.0, color="grey", lw=0.8, ls="--")
    bottom.set_ylabel("max dH (nats)")
    bottom.set_xlabel("frame")
    fig.suptitle("trajectory against the reference")
    _save(fig, path)


def plot_calibration(dH, errors, curve: dict, path, error_unit: str = "eV/Å") -> None:
    """Density of (dH, error) with the running average (as in the paper's Fig. 3c)."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(5.5, 4))
    hb = ax.hexbin(dH, errors, gridsize=50, mincnt=1, norm=LogNorm(), cmap="Blues")
    fig.colorbar(hb, ax=ax, label="points per bin")
    ok = curve["count"] > 0
    ax.plot(curve["centre"][ok], curve["mean_error"][ok], "o-", color="C3",
            label="running average")
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("dH (nats)")
    ax.set_ylabel(f"error ({error_unit})")
    ax.legend(loc="upper left")
    _save(fig, path)


def plot_clusters(table: dict, path, n_star: float | None = None) -> None:
    """Largest cluster and number of clusters against frame."""
    plt = _pyplot()
    frames = np.asarray(table["frame"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    top.plot(frames, table["largest"], "o-", ms=3)
    if n_star is not None:
        top.axhline(n_star, color="C3", ls="--", label=f"CNT n* = {n_star:.0f} atoms")
        top.legend()
    top.set_ylabel("largest cluster (atoms)")
    bottom.plot(frames, table["clusters"], "o-", ms=3, color="C2")
    from matplotlib.ticker import MaxNLocator

    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("number of clusters")
    bottom.set_xlabel("frame")
    _save(fig, path)


def plot_roc(curves: dict, path) -> None:
    """ROC curves: {name: (false positive rate, true positive rate, auc)}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    _save(fig, path)
