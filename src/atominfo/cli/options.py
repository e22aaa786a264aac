"""The command line's options, each declared once, with the API's ranges.

Commands add the groups they need (`add_inputs`, `add_descriptor`, ...);
values are checked by `atominfo.params` as they are parsed, so a bad value
is a usage error naming the option before any work starts. This module
imports no numerical library.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from atominfo import params
from atominfo.errors import InputError


def typed(name: str, label: str):
    """An argparse type checking the value against `params` constraint `name`."""

    def convert(text: str):
        try:
            return params.check(name, text, label=label)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def bandwidths(text: str) -> list[float]:
    """'0.015' or '0.015,0.05' -> validated, distinct bandwidths (1/Å)."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(
            f"--bandwidth must be a number or comma-separated numbers, got {text!r}"
        )
    values = [typed("bandwidth", "--bandwidth")(p) for p in parts]
    labels = [f"{v:g}" for v in values]
    if len(set(labels)) != len(labels):
        # columns are named after the printed value: two that print alike would collide
        raise argparse.ArgumentTypeError(
            f"--bandwidth values must differ in their first 6 significant digits (output "
            f"columns are named after them), got {text!r}"
        )
    return values


def type_map(text: str) -> dict[int, str]:
    """'1=Cu,2=O' -> {1: 'Cu', 2: 'O'} (LAMMPS atom types to elements)."""
    from atominfo.structures.lammps import parse_type_map

    try:
        mapping = parse_type_map(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not mapping:
        raise argparse.ArgumentTypeError("--type-map is empty (e.g. 1=Cu,2=O)")
    return mapping


# -- groups ----------------------------------------------------------------------------


def ase_format(text: str) -> str:
    """An ASE file format name (empty or unknown names are refused)."""
    from ase.io.formats import ioformats

    if text not in ioformats:
        raise argparse.ArgumentTypeError(
            f"--format must be an ASE format such as extxyz or lammps-dump-text, got {text!r}"
        )
    return text


def selection_size(text: str) -> str:
    """--size: a fraction in (0, 1] such as 0.5, or a count such as 200 (checked for range
    against the dataset later)."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    is_fraction = any(c in text for c in ".eE") and number <= 1.0
    ok = math.isfinite(number) and (
        0 < number <= 1
        if is_fraction
        else number >= 1 and number == int(number) and number <= 10**12
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            f"--size must be a fraction in (0, 1] such as 0.5 or "
            f"a count such as 200, got {text[:40]!r}"
        )
    return text


def frame_index(text: str) -> str:
    """--index: checked by the readers' one parser (`atominfo.structures.scan.parse_index`);
    kept as text, as the API and the JSON outputs take it."""
    from atominfo.structures.scan import parse_index

    try:
        parse_index(text, label="--index")
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.reason.removeprefix("--index: ")) from None
    return text


def add_inputs(
    parser,
    name: str = "files",
    help: str = "Structure files (any format ASE reads: extxyz, LAMMPS dumps, VASP, ...).",
    single: bool = False,
):
    parser.add_argument(name, nargs=None if single else "+", type=Path, metavar="FILE", help=help)
    add_reading(parser)


def add_reading(parser) -> None:
    group = parser.add_argument_group("reading")
    group.add_argument(
        "--index",
        type=frame_index,
        default=":",
        help="Frame selection N, START:STOP or START:STOP:STEP: ':' all, '-1' last, "
        "'::10' every tenth, '3:7', '::-1' reversed.",
    )
    group.add_argument(
        "--format",
        type=ase_format,
        default=None,
        help="ASE file format (extxyz, lammps-dump-text, ...); guessed from "
        "the file name when omitted.",
    )
    group.add_argument(
        "--type-map",
        type=type_map,
        default=None,
        metavar="1=Cu,2=O",
        help="Elements of numeric LAMMPS atom types, for dumps without an element column.",
    )


def add_reference(parser, required: bool = True) -> None:
    parser.add_argument(
        "-r",
        "--ref",
        action="append",
        type=Path,
        required=required,
        metavar="REF",
        default=None,
        help="Reference (training) structure files, or saved descriptors "
        "(.npy, .npz from `atominfo descriptors`); repeat for several.",
    )


def add_descriptor(parser, rescale: bool = True, multicomponent: bool = True) -> None:
    group = parser.add_argument_group("descriptor")
    group.add_argument(
        "-k", "--k", type=typed("k", "-k"), default=32, help="Nearest neighbours per environment."
    )
    group.add_argument(
        "-c", "--cutoff", type=typed("cutoff", "--cutoff"), default=5.0, help="Cutoff radius rc, Å."
    )
    if rescale:
        group.add_argument(
            "--rescale-volume",
            type=typed("rescale_volume", "--rescale-volume"),
            default=None,
            metavar="V",
            help="Rescale every structure isotropically to V Å^3 per atom "
            "before descriptors, to compare different densities.",
        )
    if multicomponent:
        group.add_argument(
            "--multicomponent",
            action="store_true",
            help="Experimental: append per-species descriptor blocks.",
        )


def add_bandwidth(parser, several: bool = True) -> None:
    if several:
        parser.add_argument(
            "-b",
            "--bandwidth",
            type=bandwidths,
            default=[0.015],
            metavar="H",
            help="Kernel bandwidth h in 1/Å; a comma-separated "
            "list gives one result per bandwidth (e.g. 0.015,0.05).",
        )
    else:
        parser.add_argument(
            "-b",
            "--bandwidth",
            type=typed("bandwidth", "--bandwidth"),
            default=0.015,
            metavar="H",
            help="Kernel bandwidth h in 1/Å.",
        )


def add_engine(parser, backends: bool = True) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--threads",
        type=typed("threads", "--threads"),
        default=None,
        help="CPU threads for the kernels (default and most: all cores).",
    )
    if not backends:
        return
    group.add_argument(
        "--backend",
        type=typed("backend", "--backend"),
        default=None,
        help="Kernel-sum engine: cpu (default), dask (see --dask) or torch (see --device).",
    )
    group.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="Run the kernel sums on Dask: a scheduler address "
        "(tcp://host:8786, file:scheduler.json) or local:N for N local "
        "workers. Implies --backend dask.",
    )
    group.add_argument(
        "--device",
        default=None,
        help="PyTorch device for --backend torch: cuda, cuda:1 or cpu. Implies --backend torch.",
    )
    group.add_argument(
        "--precision",
        type=typed("precision", "--precision"),
        default="float64",
        help="torch arithmetic: float64 (exact) or float32 (faster on GPUs).",
    )


def add_output(parser, json: bool = True, quiet: bool = True) -> None:
    if json:
        parser.add_argument("--json", action="store_true", help="Print machine-readable JSON.")
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help="No progress bar.")


def add_plot(parser) -> None:
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="Write a figure; format from the extension (.png, .svg, .pdf).",
    )


def add_resume(parser, unit: str) -> None:
    """--resume and --restart of a resumable command (`atominfo.runs.checkpoint`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--resume",
        action="store_true",
        help=f"Continue an interrupted run from its last complete {unit}. A run with "
        "other options or changed inputs is refused (saying what differs), and its "
        "work is kept.",
    )
    group.add_argument(
        "--restart",
        action="store_true",
        help="Discard the work of an interrupted run (its checkpoint and partial "
        "outputs) and start again. Without --resume or --restart, a run refuses to "
        "start over an interrupted run's work.",
    )


def add_false_alarm(parser, cost: str = "") -> None:
    """--false-alarm: novelty decided by conformal p-values (`atominfo.reference.conformal`);
    `cost`, what it costs the command, ends the help."""
    parser.add_argument(
        "--false-alarm",
        type=typed("false_alarm", "--false-alarm"),
        default=None,
        metavar="RATE",
        help="Call an atom novel when its conformal p-value is at most RATE (e.g. 0.01) "
        "instead of when dH > 0: of atoms drawn like the reference's, at most that "
        "fraction is flagged on average. The threshold is calibrated on the reference "
        "itself (held-out reference environments scored against the rest)." + cost,
    )


def add_seed(parser, help: str = "Random seed.") -> None:
    parser.add_argument("--seed", type=typed("seed", "--seed"), default=0, help=help)


# Clean-ups the entry point runs when a command ends, however it ends (e.g.
# closing a Dask client the command connected or started).
AT_END: list = []


# -- from options to API arguments -----------------------------------------------------


def h_value(args):
    """The bandwidth as the API takes it: a float for one value, a list for several."""
    h = args.bandwidth
    if isinstance(h, list):
        return h[0] if len(h) == 1 else h
    return h


def reading(args) -> dict:
    return {"index": args.index, "format": args.format, "type_map": args.type_map}


def apply_threads(args) -> None:
    """Limit numba, BLAS and OpenMP threads to --threads, and to the CPUs this
    process may use: more only wait on each other (--threads 4096 on 2 cores started
    4096 OpenMP threads)."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    import os

    import numba
    from threadpoolctl import threadpool_limits

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = min(threads, cpus or 1)

    # numba.config sets its options at import time, out of the type checker's sight
    # (getattr with a constant name instead is ruff's B009)
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(min(threads, most))
    threadpool_limits(threads)


def dask_client(spec: str):
    """The Dask client of a ``--dask`` value, closed when the command ends (see `AT_END`)."""
    import logging

    from atominfo.engine.dask_client import close_client, get_client

    try:
        client = get_client(spec, log_level=logging.CRITICAL)
    except InputError as exc:
        raise InputError(f"--dask {spec}: {exc.reason}") from None

    def close():
        # The command is ending (maybe interrupted mid-task): tasks cut short log
        # tracebacks while the cluster shuts down; its one line has said what happened.
        for name in ("distributed", "asyncio", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        close_client(client)

    AT_END.append(close)
    return client


def engine(args):
    """Engine options from --backend, --dask, --device and --precision.

    A Dask client made here is closed when the command ends (see `AT_END`).
    """
    from atominfo.engine.options import EngineOptions

    backend = getattr(args, "backend", None)
    dask = getattr(args, "dask", None)
    device = getattr(args, "device", None)
    precision = getattr(args, "precision", "float64")
    if backend is None:
        backend = "dask" if dask is not None else "torch" if device is not None else "cpu"
    if dask is not None and backend != "dask":
        raise InputError(f"--dask needs --backend dask, got --backend {backend}")
    if device is not None and backend not in ("torch", "dask"):
        raise InputError(f"--device needs --backend torch or dask, got --backend {backend}")
    if precision != "float64" and device is None and backend != "torch":
        raise InputError("--precision float32 needs --backend torch or --device")
    if backend == "cpu":
        return EngineOptions(threads=getattr(args, "threads", None))
    if backend == "torch":
        from atominfo.engine.torch import resolve_device

        return EngineOptions(backend="torch", device=resolve_device(device), precision=precision)
    client = dask_client(dask if dask is not None else "local")
    if device is not None:  # each Dask worker runs the torch engine on `device`
        return EngineOptions(
            backend="dask",
            client=client,
            worker_backend="torch",
            device=device,
            precision=precision,
        )
    return EngineOptions(backend="dask", client=client)
