"""Figure making and saving shared by every plot: new figures, colours, legends, files.

`new_figure` makes the figure a ``plot_*`` function draws on when it is given
no Axes: inside a Jupyter kernel with an inline backend (`displays_inline`) a
pyplot figure, which the notebook shows under the cell; elsewhere a plain
`matplotlib.figure.Figure` on a headless canvas (no pyplot state, no display,
nothing accumulates in a script). `save_figure` writes a figure atomically
and byte-reproducibly; `palette` and `ROLE_COLOURS` give every group and role
the same colour in every figure; `legend_outside` keeps legends off the data.
The plots themselves are in `atominfo.outputs.plots`.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.runs.atomic import atomic_output

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
# The suffixes of a figure file, in the order the commands' messages list them.
PLOT_SUFFIXES = (".png", ".pdf", ".svg")
# Backends (matplotlib's name, lower case) that show figures in a notebook's output.
INLINE_BACKENDS = ("inline", "ipympl", "widget", "nbagg")
DPI = 150
# One colour per role, the same in every figure.
ROLE_COLOURS = {
    "entropy": "#1f77b4",
    "diversity": "#ff7f0e",
    "novelty": "#d62728",
    "max_dH": "#d62728",
    "clusters": "#2ca02c",
    "reference": "0.45",
}


def palette(n: int) -> list:
    """`n` distinguishable colours; colour i is the same whatever figure uses it.

    tab10 for up to 10 groups, tab20 for up to 20, then evenly spaced samples
    of the perceptually uniform 'turbo' map.
    """
    from matplotlib import colormaps

    n = int(n)
    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


def check_plot_path(path) -> str:
    """The matplotlib format of `path` (from its extension: .png, .svg or .pdf).

    Raises InputError for another extension or a directory that does not
    exist, so that a command can fail before its computation starts.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"plot file must end in {', '.join(FORMATS)}", source=str(path))
    parent = Path(path).parent
    if str(parent) and not parent.is_dir():
        raise InputError("output directory does not exist", source=str(path))
    return FORMATS[suffix]


def save_figure(fig, path, *, dpi: int = DPI) -> None:
    """Write `fig` (a matplotlib Figure, e.g. ``ax.figure``) to `path` atomically.

    The format follows the extension (`check_plot_path`); a failure leaves no
    partial file; the same figure gives the same bytes on every run (`write_figure`).
    """
    fmt = check_plot_path(path)
    with atomic_output(path) as tmp:
        write_figure(fig, tmp, fmt, dpi=dpi)


def write_figure(fig, file, fmt: str, *, dpi: int = DPI) -> None:
    """`fig` written to `file` (a path or binary file object) in format `fmt`, the
    same bytes on every run: no date in the metadata (SVG, PDF), fixed SVG ids."""
    import matplotlib

    from atominfo._version import __version__

    creator = f"atominfo {__version__}"
    metadata = {
        "png": {"Software": creator},
        "svg": {"Creator": creator, "Date": None},
        "pdf": {"Creator": creator, "CreationDate": None},
    }[fmt]
    # SVG ids are hashes salted with a random uuid unless a salt is given
    with matplotlib.rc_context({"svg.hashsalt": "atominfo"}):
        fig.savefig(file, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)


def displays_inline() -> bool:
    """Whether a figure made now would show in a notebook: an IPython kernel (Jupyter) is
    running and matplotlib's backend draws inline (``%matplotlib inline``, the
    default, or a widget backend)."""
    ipython = sys.modules.get("IPython")  # never imported here: only if the user runs it
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    if getattr(shell, "kernel", None) is None:  # no IPython, or a terminal one
        return False
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    return any(name in backend for name in INLINE_BACKENDS)


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """A new figure with a constrained layout and its Axes (as `Figure.subplots`, squeezed).

    With `displays_inline` the figure is made by pyplot, which the notebook shows
    under the cell; otherwise it is a plain `Figure` on a headless Agg canvas,
    which needs no display and is freed with its last reference (a script that
    makes many figures keeps none). `kwargs` go to `Figure.subplots`.
    """
    if displays_inline():
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize, layout="constrained")
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)  # a headless canvas: works without a display or pyplot
    return fig, fig.subplots(nrows, ncols, squeeze=True, **kwargs)


def two_axes(ax, axes, figsize, **kwargs):
    """The two Axes given as `ax` (or by its former name `axes`), or those of a new figure
    of two panels sharing the x axis (`figsize`, inches)."""
    given = ax if ax is not None else axes
    if given is None:
        return new_figure(2, 1, figsize=figsize, sharex=True, **kwargs)[1]
    given = tuple(np.ravel(given)) if not isinstance(given, tuple) else given
    if len(given) != 2:
        raise InputError(f"this figure needs two Axes, got {len(given)}")
    return given


def legend_outside(
    ax, *, title: str | None = None, handles=None, labels=None, below=False, **kwargs
):
    """Legend outside the axes (never over the data): to the right, or `below` them for
    long labels; in columns when there are many entries."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if below:
        ncols = 1 if len(handles) <= 4 else 2 if len(handles) <= 24 else 3
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.14)}
    else:
        ncols = max(1, math.ceil(len(handles) / 18))
        place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
    return ax.legend(
        handles,
        labels,
        **place,
        borderaxespad=0.0,
        fontsize=8,
        ncols=ncols,
        title=title,
        title_fontsize=8,
        frameon=False,
        alignment="left",
        **kwargs,
    )
