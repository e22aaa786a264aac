"""What the command line prints: error and warning lines, JSON, plain tables, progress.

Tables are plain text, never wrapped or truncated whatever the terminal
width (a piped 11 x 11 overlap matrix stays whole); JSON never holds
Infinity or NaN (they become null); progress bars appear only on a terminal.
"""

from __future__ import annotations

import errno
import json
import math
import sys
import warnings
from contextlib import contextmanager

PREFIX = "atominfo"


def error_line(exc: BaseException, usage_error: type) -> str:
    """The one line printed for a failed run."""
    from atominfo.errors import InputError

    if isinstance(exc, (InputError, usage_error)):
        message = str(exc)
    elif isinstance(exc, MemoryError):
        message = (
            "out of memory: the input is too large for this machine's memory "
            "(try fewer frames, --threads 1, or a smaller --sample)"
        )
    elif isinstance(exc, OSError):
        message = _os_error(exc)
    else:  # a bug: still one line, and enough to report it
        message = (
            f"internal error ({type(exc).__name__}: {_first_line(exc)}); "
            "set ATOMINFO_DEBUG=1 for the traceback and please report it"
        )
    return f"{PREFIX}: error: {_one_line(message)}"


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    reason = {
        errno.ENOSPC: "no space left on the device",
        errno.EACCES: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOENT: "no such file or directory",
    }.get(exc.errno or -1, exc.strerror or str(exc))
    return f"{where}: {reason}" if where else reason


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def interrupted_message(argv: list[str], can_resume: bool) -> str:
    """What an interrupted run prints: how to continue it, where that is possible.

    `can_resume`: the command has a --resume option; it keeps completed work only
    when it was writing an output.
    """
    resumable = can_resume and any(
        a in ("-o", "--output", "--table") or a.startswith(("--output=", "--table=")) for a in argv
    )
    if resumable and any(a == "--chemiscope" or a.startswith("--chemiscope=") for a in argv):
        # its viewer file needs every frame in one run: the kept work is of no use to it
        return (
            f"{PREFIX}: interrupted; --chemiscope needs every frame in one run, so this run "
            "cannot be resumed: run it again with --restart"
        )
    if resumable and "--resume" not in argv:
        return (
            f"{PREFIX}: interrupted; completed work is kept: run the same command "
            "with --resume to continue"
        )
    if resumable:
        return f"{PREFIX}: interrupted; run the same command again to continue"
    return f"{PREFIX}: interrupted; nothing was written"


# Warnings wait here until the command prints something or ends: a run that fails
# prints its one error line alone (the warnings that led to it are dropped).
PENDING: list[str] = []


def install_warning_format() -> None:
    """Warnings print as one line ``atominfo: warning: ...``, each message once."""

    def show(message, category, filename, lineno, file=None, line=None):
        PENDING.append(f"{PREFIX}: warning: {_one_line(str(message))}")

    PENDING.clear()
    warnings.showwarning = show
    warnings.simplefilter("once")
    # numpy's floating-point warnings carry no location a user can act on
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")
    # libraries' deprecations are for developers, not for someone running a command
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def flush_warnings() -> None:
    """Print the warnings held so far (to stderr)."""
    while PENDING:
        line = PENDING.pop(0)
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass


# -- JSON ------------------------------------------------------------------------------


def json_text(obj, indent: int | None = 2) -> str:
    from atominfo.results import jsonable

    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def print_json(obj) -> None:
    flush_warnings()
    print(json_text(obj))


# -- text ------------------------------------------------------------------------------


def fmt(value, digits: int = 6) -> str:
    """A number, or a per-bandwidth list of numbers, as text ('-' for missing)."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)) or (hasattr(value, "ndim") and value.ndim > 0):
        return ", ".join(fmt(v, digits) for v in value)
    v = float(value)
    return f"{v:.{digits}g}" if math.isfinite(v) else "-"


def table(headers: list[str], rows: list[list], title: str | None = None, left: int = 1) -> str:
    """A plain-text table: the first `left` columns left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(headers))]

    def line(row):
        return "  ".join(
            cell.ljust(w) if c < left else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def save_plot(axes, path) -> None:
    """Write the figure holding `axes` (one Axes or several) to `path`, atomically."""
    from atominfo.outputs.plots import save_figure

    first = (
        axes.flat[0]
        if hasattr(axes, "flat")
        else (axes[0] if isinstance(axes, (list, tuple)) else axes)
    )
    save_figure(first.figure, path)


def say(text: str = "") -> None:
    flush_warnings()
    print(text, flush=True)


# -- progress --------------------------------------------------------------------------


@contextmanager
def progress(description: str, total: int | None, quiet: bool = False, unit: str = "atoms"):
    """A progress bar on a terminal (stderr); nothing when quiet or piped.

    Yields ``advance(n)``.
    """
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
