"""Options, progress and output helpers shared by the command-line subcommands."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TextColumn, TimeRemainingColumn)
from rich.text import Text

from atominfo.errors import InputError

stdout = Console()
stderr = Console(stderr=True)

# Shared option types (Annotated so every subcommand spells them the same way).
KOpt = Annotated[int, typer.Option("-k", "--k", help="Nearest neighbours per environment (>= 2).")]
CutoffOpt = Annotated[float, typer.Option("-c", "--cutoff", help="Cutoff radius rc, Å.")]
BandwidthOpt = Annotated[str, typer.Option(
    "-b", "--bandwidth", help="Kernel bandwidth h in 1/Å; a comma-separated list gives one "
    "result per bandwidth (e.g. 0.015,0.05).")]
IndexOpt = Annotated[str, typer.Option(
    "--index", help="ASE frame selection: ':' all, '-1' last, '::10' every tenth, '3:7'.")]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="ASE file format (extxyz, lammps-dump-text, vasp-xdatcar, ...); "
    "guessed from the file name when omitted.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads for numba kernels and BLAS (default: all cores).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")]
RescaleOpt = Annotated[Optional[float], typer.Option(
    "--rescale-volume", help="Rescale every structure isotropically to this volume per "
    "atom (Å^3) before descriptors, to compare different densities.")]
MultiOpt = Annotated[bool, typer.Option(
    "--multicomponent", help="Experimental: append per-species descriptor blocks.")]


def parse_bandwidths(text: str):
    """'0.015' -> 0.015; '0.015,0.05' -> [0.015, 0.05]."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"bandwidth must be a number or comma-separated numbers, got {text!r}")
    if not values:
        raise InputError("bandwidth is empty")
    return values[0] if len(values) == 1 else values


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(threads)


@contextmanager
def progress_bar(description: str, total: int | None, quiet: bool, unit: str = "atoms"):
    """A rich progress bar on a terminal (stderr), nothing when quiet or piped.

    Yields a function ``advance(n)``.
    """
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), _RateColumn(unit), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class _RateColumn(ProgressColumn):
    def __init__(self, unit):
        super().__init__()
        self.unit = unit

    def render(self, task):
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s")


def descriptor_options(k, cutoff, index, fmt, rescale, multicomponent) -> dict:
    return dict(k=k, cutoff=cutoff, index=index, format=fmt, rescale_volume=rescale,
                multicomponent=multicomponent)


def to_jsonable(value):
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(obj) -> None:
    print(json.dumps(to_jsonable(obj), indent=2))


def fmt(value) -> str:
    """A float or per-bandwidth list as text."""
    if np.ndim(value) == 0:
        return f"{float(value):.6g}"
    return ", ".join(f"{float(v):.6g}" for v in value)


# Kernel engine options (issue 6): which backend computes the kernel sums.
BackendOpt = Annotated[Optional[str], typer.Option(
    "--backend", help="Kernel-sum engine: cpu (default), dask (see --dask) or torch "
    "(see --device).")]
DaskOpt = Annotated[Optional[str], typer.Option(
    "--dask", help="Run the kernel sums on Dask: a scheduler ADDRESS (tcp://host:8786, "
    "file:scheduler.json) or local:N to start N worker processes bound to 127.0.0.1. "
    "Implies --backend dask.")]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="PyTorch device for --backend torch: cuda, cuda:1 or cpu (default: "
    "cuda when available). Implies --backend torch; with --dask, each worker runs "
    "PyTorch on this device.")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="torch arithmetic: float64 (exact, default) or float32 (faster "
    "on GPUs; error in benchmarks/README.md).")]


def engine_options(backend: str | None = None, dask: str | None = None,
                   device: str | None = None, precision: str = "float64", *, ctx=None) -> dict:
    """Keyword options for `log_kernel_sums` from the --backend/--dask/--device flags.

    The Dask client made here (a local cluster for ``--dask local:N``) is closed
    when the command's context `ctx` (a ``typer.Context`` parameter of the
    command) closes, or at exit when there is none.
    """
    from atominfo.engine import BACKENDS

    if backend is None:
        backend = "dask" if dask is not None else "torch" if device is not None else "cpu"
    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    if dask is not None and backend != "dask":
        raise InputError(f"--dask needs --backend dask, got --backend {backend}")
    if device is not None and backend not in ("torch", "dask"):
        raise InputError(f"--device needs --backend torch or dask, got --backend {backend}")
    if backend == "cpu":
        if precision != "float64":
            raise InputError("--precision float32 needs --backend torch")
        return {}
    if backend == "torch":
        from atominfo.engine.torch import resolve_device

        return {"backend": "torch", "device": resolve_device(device), "precision": precision}
    if precision != "float64" and device is None:
        raise InputError("--precision float32 needs --backend torch or --device")
    from atominfo.engine.dask_client import close_client, get_client

    client = get_client(dask if dask is not None else "local")
    if ctx is not None:
        ctx.call_on_close(lambda: close_client(client))
    else:
        import atexit

        atexit.register(close_client, client)
    if device is not None:  # each Dask worker runs the torch engine on `device`
        return {"backend": "dask", "client": client, "worker_backend": "torch",
                "device": device, "precision": precision}
    return {"backend": "dask", "client": client}
