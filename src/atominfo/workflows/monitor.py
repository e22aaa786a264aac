"""On-the-fly dH monitoring: an observer for ASE molecular dynamics, and a follower
for trajectory files that are still being written (LAMMPS dumps, extxyz).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, structure_descriptors
from atominfo.errors import InputError
from atominfo.structures.frames import validate_atoms
from atominfo.reference import Reference


@dataclass
class MonitorRecord:
    """One check of the monitored structure.

    Attributes: `step` (MD step, or check number without dynamics), `atoms`,
    `novelty` (fraction with dH > 0), `max_dH` and `mean_dH` (nats), `seconds`
    (wall time of this check).
    """

    step: int
    atoms: int
    novelty: float
    max_dH: float
    mean_dH: float
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


class ExtrapolationDetected(RuntimeError):
    """Raised by `NoveltyMonitor` when a threshold is crossed; `record` says where."""

    def __init__(self, record: MonitorRecord, dH: np.ndarray):
        self.record, self.dH = record, dH
        super().__init__(f"step {record.step}: {record.novelty:.1%} of atoms have dH > 0, "
                         f"max dH {record.max_dH:.2f} nats (outside the reference's domain)")


class NoveltyMonitor:
    """Observer for ASE dynamics: dH of the current frame against a `Reference`.

    Attach it with ``dyn.attach(monitor, interval=n)`` (or ``monitor.attach(dyn, n)``):
    every n steps it computes the descriptors of `atoms`, their dH against the
    reference, and records the fraction of atoms with dH > 0 and the max dH.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure being simulated (the same object the dynamics moves).
    reference : Reference
        Training environments (single bandwidth).
    max_novelty : float, optional
        Alarm when the fraction of atoms with dH > 0 exceeds this.
    max_dH : float, optional
        Alarm when any atom's dH (nats) exceeds this.
    on_alarm : 'raise' or callable
        'raise': raise `ExtrapolationDetected` (it propagates out of
        ``dyn.run``, stopping the run). A callable is called as
        ``on_alarm(record, dH)`` instead and the run goes on.
    k, cutoff : descriptor parameters; default to the reference's.
    dyn : ASE dynamics, optional
        Its step counter numbers the records (set by `attach`); without it,
        records are numbered by check.
    log : callable, optional
        Called with each `MonitorRecord` (e.g. to print it).

    Attributes
    ----------
    history : list of MonitorRecord
    last_dH : ndarray (n_atoms,), nats, of the latest check
    seconds : total wall time spent in the monitor, s
    """

    def __init__(self, atoms: Atoms, reference: Reference, *, max_novelty: float | None = None,
                 max_dH: float | None = None, on_alarm: str | Callable = "raise",
                 k: int | None = None, cutoff: float | None = None, dyn=None,
                 log: Callable[[MonitorRecord], None] | None = None):
        if np.ndim(reference.h) != 0:
            raise InputError("the monitor needs a reference with a single bandwidth")
        if on_alarm != "raise" and not callable(on_alarm):
            raise InputError("on_alarm must be 'raise' or a callable")
        self.atoms, self.reference = atoms, reference
        self.max_novelty, self.max_dH, self.on_alarm, self.log = (max_novelty, max_dH,
                                                                  on_alarm, log)
        self.k = int(k or reference.k or DEFAULT_K)
        self.cutoff = float(cutoff or reference.cutoff or DEFAULT_CUTOFF)
        self.dyn = dyn
        self.history: list[MonitorRecord] = []
        self.last_dH: np.ndarray | None = None
        self.seconds = 0.0

    def attach(self, dyn, interval: int = 10) -> "NoveltyMonitor":
        """``dyn.attach(self, interval)``, remembering `dyn` to record its step numbers."""
        self.dyn = dyn
        dyn.attach(self, interval=interval)
        return self

    def check(self, atoms: Atoms | None = None, step: int | None = None) -> MonitorRecord:
        """Compute and record dH of `atoms` (default: the monitored structure)."""
        start = time.perf_counter()
        atoms = self.atoms if atoms is None else atoms
        if step is None:
            step = self.dyn.nsteps if self.dyn is not None else len(self.history)
        validate_atoms(atoms, "<md>", int(step))  # an exploded run has NaN positions
        dH = self.reference.delta_entropy(structure_descriptors(atoms, self.k, self.cutoff,
                                                                source="<md>", frame=int(step)))
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        record = MonitorRecord(int(step), len(atoms), float(np.mean(dH > 0)),
                               float(dH.max()), float(dH.mean()), elapsed)
        self.history.append(record)
        self.last_dH = dH
        if self.log is not None:
            self.log(record)
        if self.crossed(record):
            if self.on_alarm == "raise":
                raise ExtrapolationDetected(record, dH)
            self.on_alarm(record, dH)
        return record

    def __call__(self):
        self.check()

    def crossed(self, record: MonitorRecord) -> bool:
        """Whether `record` crosses a threshold."""
        return bool((self.max_novelty is not None and record.novelty > self.max_novelty)
                    or (self.max_dH is not None and record.max_dH > self.max_dH))


# -- following a file that is still being written ---------------------------------

def _complete_lammps(lines: list[str]) -> int:
    """Number of leading lines forming complete LAMMPS dump frames."""
    done, i, n_lines = 0, 0, len(lines)
    while i < n_lines:
        if not lines[i].startswith("ITEM: TIMESTEP"):
            raise InputError(f"not a LAMMPS text dump (line {i + 1}: {lines[i][:40]!r})")
        j, n_atoms = i + 1, None
        while j < n_lines and not lines[j].startswith("ITEM: ATOMS"):
            if lines[j].startswith("ITEM: NUMBER OF ATOMS") and j + 1 < n_lines:
                n_atoms = int(lines[j + 1])
            j += 1
        if j >= n_lines or n_atoms is None or j + 1 + n_atoms > n_lines:
            break
        i = j + 1 + n_atoms
        done = i
    return done


def _complete_xyz(lines: list[str]) -> int:
    """Number of leading lines forming complete (ext)xyz frames."""
    done, i = 0, 0
    while i < len(lines):
        try:
            n_atoms = int(lines[i])
        except ValueError:
            raise InputError(f"not an xyz file (line {i + 1}: {lines[i][:40]!r})") from None
        if i + 2 + n_atoms > len(lines):
            break
        i += 2 + n_atoms
        done = i
    return done


FOLLOWERS = {"lammps-dump-text": _complete_lammps, "extxyz": _complete_xyz,
             "xyz": _complete_xyz}


def follow_frames(path, format: str | None = None, *, poll: float = 1.0,
                  idle_timeout: float | None = None, from_start: bool = True,
                  sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[int, Atoms]]:
    """Yield (frame number, Atoms) of a file still being written, as frames complete.

    A frame is read only once all its lines are in the file (a frame being
    written is left for the next poll).

    Parameters
    ----------
    path : file name
    format : 'lammps-dump-text', 'extxyz' or 'xyz' (guessed from the name if None)
    poll : seconds between checks for new data
    idle_timeout : stop after this many seconds without a new frame (None: never)
    from_start : False to skip the frames already in the file
    """
    import ase.io

    path = Path(path)
    format = format or _guess(path)
    if format not in FOLLOWERS:
        raise InputError(f"cannot follow format {format!r}; use one of {sorted(FOLLOWERS)}",
                         source=str(path))
    complete = FOLLOWERS[format]
    offset, pending, number = 0, "", 0
    last_frame = time.monotonic()
    skip_existing = not from_start
    while True:
        if not path.exists():
            raise InputError("file not found", source=str(path))
        size = path.stat().st_size
        if size < offset:
            raise InputError("file shrank while being followed (truncated or replaced)",
                             source=str(path))
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(size - offset)
            offset = size
            text = pending + data.decode()
            lines = text.split("\n")
            tail = lines.pop()  # text after the last newline: an unfinished line
            try:
                n_done = complete(lines)
            except InputError as exc:
                raise exc.located(str(path), number) from None
            chunk = "\n".join(lines[:n_done]) + "\n" if n_done else ""
            pending = "\n".join(lines[n_done:] + [tail])
            if chunk:
                try:
                    frames = ase.io.read(io.StringIO(chunk), index=":", format=format)
                except Exception as exc:
                    raise InputError(f"cannot read frame ({type(exc).__name__}: {exc})",
                                     source=str(path), frame=number) from None
                if skip_existing:
                    number += len(frames)
                    frames = []
                for atoms in frames:
                    yield number, atoms
                    number += 1
                last_frame = time.monotonic()
            skip_existing = False
        if idle_timeout is not None and time.monotonic() - last_frame > idle_timeout:
            return
        sleep(poll)


def _guess(path: Path) -> str | None:
    name = path.name.lower()
    if "lammpstrj" in name or name.endswith(".dump"):
        return "lammps-dump-text"
    if name.endswith((".extxyz", ".xyz")):
        return "extxyz"
    return None
