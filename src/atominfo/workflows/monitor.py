"""On-the-fly dH monitoring: an observer for ASE molecular dynamics. The follower
of trajectory files still being written lives in `atominfo.structures.follow`
(re-exported here as `follow_frames`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, structure_descriptors
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.follow import follow_frames  # noqa: F401  (re-exported)
from atominfo.structures.frames import validate_atoms


@dataclass
class MonitorRecord:
    """One check of the monitored structure.

    Attributes: `step` (MD step, or check number without dynamics), `atoms`,
    `novelty` (fraction with dH > 0), `max_dH` and `mean_dH` (nats), `seconds`
    (wall time of this check), `timestep` (the frame's MD timestep: the
    dynamics' step count, or ``atoms.info['timestep']`` as read from a LAMMPS
    dump; None when unknown) and `time` (simulation time: fs for ASE
    dynamics, else ``atoms.info['time']`` in the file's unit; None when unknown).
    With a `SpeciesReference`, `absent` counts the atoms of a species the
    reference lacks (novel by construction: in `novelty`, not in max_dH or mean_dH,
    NaN when no atom's dH is determined).
    """

    step: int
    atoms: int
    novelty: float
    max_dH: float
    mean_dH: float
    seconds: float
    timestep: int | None = None
    time: float | None = None
    absent: int = 0

    def as_dict(self) -> dict:
        """The record as JSON-able values (None where a number is not finite); `absent`
        only where some atom's species is absent from a `SpeciesReference`."""
        out = asdict(self)
        if not out["absent"]:  # (the records of a plain Reference stay as they were)
            del out["absent"]
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


class ExtrapolationDetected(RuntimeError):
    """Raised by `NoveltyMonitor` when a threshold is crossed; `record` says where."""

    def __init__(self, record: MonitorRecord, dH: np.ndarray):
        self.record, self.dH = record, dH
        super().__init__(
            f"step {record.step}: {record.novelty:.1%} of atoms have dH > 0, "
            f"max dH {record.max_dH:.2f} nats (outside the reference's domain)"
        )


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
        Training environments (single bandwidth); or a
        `atominfo.workflows.species_dh.SpeciesReference`: each atom against the
        reference atoms of its own species (dH NaN for a species the reference
        lacks, warned once; such an atom crosses `max_dH`).
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

    Raises
    ------
    InputError
        For a parameter out of range (`atominfo.params`: thresholds must be
        finite, max_novelty in [0, 1]), a reference with several bandwidths,
        or `atoms` that is not an ase.Atoms.
    """

    def __init__(
        self,
        atoms: Atoms,
        reference: Reference,
        *,
        max_novelty: float | None = None,
        max_dH: float | None = None,
        on_alarm: str | Callable = "raise",
        k: int | None = None,
        cutoff: float | None = None,
        dyn=None,
        log: Callable[[MonitorRecord], None] | None = None,
    ):
        from atominfo import params

        if not isinstance(atoms, Atoms):
            raise InputError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
        from atominfo.workflows.species_dh import SpeciesReference

        if not isinstance(reference, (Reference, SpeciesReference)):
            raise InputError(f"reference must be a Reference, got {type(reference).__name__}")
        if np.ndim(reference.h) != 0:
            raise InputError("the monitor needs a reference with a single bandwidth")
        if not (isinstance(on_alarm, str) and on_alarm == "raise") and not callable(on_alarm):
            raise InputError(f"on_alarm must be 'raise' or a callable, got {on_alarm!r}")
        if log is not None and not callable(log):
            raise InputError(f"log must be a callable, got {log!r}")
        self.atoms, self.reference = atoms, reference
        self.max_novelty = params.check_optional("alarm_novelty", max_novelty, label="max_novelty")
        self.max_dH = params.check_optional("alarm_dh", max_dH, label="max_dH")
        self.on_alarm, self.log = on_alarm, log
        k = params.check_optional("k", k)
        cutoff = params.check_optional("cutoff", cutoff)
        self.k = int(k if k is not None else (reference.k or DEFAULT_K))
        self.cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
        if isinstance(reference, SpeciesReference) and (self.k, self.cutoff) != (
            reference.k,
            reference.cutoff,
        ):
            raise InputError(
                f"the species reference was described with k = {reference.k}, cutoff = "
                f"{reference.cutoff} Å: the monitor cannot use k = {self.k}, "
                f"cutoff = {self.cutoff} Å"
            )
        self.dyn = dyn
        self.history: list[MonitorRecord] = []
        self.warned: set[str] = set()  # (SpeciesReference: absent species warned about)
        self.last_dH: np.ndarray | None = None
        self.seconds = 0.0

    def attach(self, dyn, interval: int = 10) -> NoveltyMonitor:
        """``dyn.attach(self, interval)``, remembering `dyn` to record its step numbers.

        `interval` is a whole number of steps, >= 1.
        """
        from atominfo import params

        interval = params.check("interval", interval)
        if not hasattr(dyn, "attach"):
            raise InputError(f"dyn must be ASE dynamics (with .attach), got {type(dyn).__name__}")
        self.dyn = dyn
        dyn.attach(self, interval=interval)
        return self

    def check(self, atoms: Atoms | None = None, step: int | None = None) -> MonitorRecord:
        """Compute and record dH of `atoms` (default: the monitored structure).

        `step` (an integer >= 0) defaults to the dynamics' step count, else the
        number of checks so far.
        """
        from atominfo import params
        from atominfo.workflows.trajectory import frame_time

        start = time.perf_counter()
        atoms = self.atoms if atoms is None else atoms
        if not isinstance(atoms, Atoms):
            raise InputError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
        if step is None:
            step = self.dyn.nsteps if self.dyn is not None else len(self.history)
        step = params.check("skip", step, label="step")
        validate_atoms(atoms, "<md>", step)  # an exploded run has NaN positions
        dH = self._dH(atoms, step)
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        timestep, sim_time = frame_time(atoms)
        if self.dyn is not None and atoms is self.atoms:
            timestep = int(self.dyn.nsteps)
            if hasattr(self.dyn, "get_time"):
                from ase import units

                sim_time = float(self.dyn.get_time()) / units.fs
        known = dH[~np.isnan(dH)]  # (all but a SpeciesReference's absent species)
        record = MonitorRecord(
            step,
            len(atoms),
            float(np.mean(np.isnan(dH) | (np.nan_to_num(dH) > 0))),
            float(known.max()) if len(known) else math.nan,
            float(known.mean()) if len(known) else math.nan,
            elapsed,
            timestep,
            sim_time,
            len(dH) - len(known),
        )
        self.history.append(record)
        self.last_dH = dH
        if self.log is not None:
            self.log(record)
        if self.crossed(record):
            if isinstance(self.on_alarm, str):  # "raise", the one string __init__ accepts
                raise ExtrapolationDetected(record, dH)
            self.on_alarm(record, dH)
        return record

    def _dH(self, atoms: Atoms, step: int) -> np.ndarray:
        from atominfo.workflows.species_dh import SpeciesReference, score_structure

        if isinstance(self.reference, SpeciesReference):
            return score_structure(self.reference, atoms, ("<md>", step), self.warned)[0]
        return self.reference.delta_entropy(
            structure_descriptors(atoms, self.k, self.cutoff, source="<md>", frame=step)
        )

    def __call__(self):
        self.check()

    def crossed(self, record: MonitorRecord) -> bool:
        """Whether `record` crosses a threshold (an atom of an absent species: `max_dH`)."""
        over_dH = self.max_dH is not None and (record.absent > 0 or record.max_dH > self.max_dH)
        return bool((self.max_novelty is not None and record.novelty > self.max_novelty) or over_dH)
