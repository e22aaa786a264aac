"""Novelty inside any ASE calculator: `NoveltyCalculator` reports dH with every evaluation.

`NoveltyMonitor` (`atominfo.workflows.monitor`) observes ASE dynamics; this
wrapper is for code that only sees a calculator (optimisers, NEB, workflow
engines). It delegates every property to the wrapped calculator and adds the
novelty of the evaluated structure against a `Reference`, by the path of
`atominfo snapshot` and `atominfo lammps` (`Reference.classify`, through
`atominfo.workflows.snapshot_box.BoxAnalyser`): the exact classification of
every atom first (`Reference.index`, built once), then dH only for the atoms
that need it, NaN for the others (inside the domain: dH <= 0, not computed).

Where the novelty goes, and what survives ASE's own conversions (tested):

* ``calc.results``: ``"dH"`` (n,) nats, ``"novelty"`` (fraction of atoms with
  dH > 0) and ``"max_dH"`` (nats), beside the wrapped calculator's results
  (with ``p_values=True`` also ``"p_value"`` (n,), conformal p-values).
  ASE's `SinglePointCalculator` accepts only ASE's own property names, so
  ``SinglePointCalculator(atoms, **calc.results)`` is refused by ASE for any
  extra key (this one's, or pacemaker's ``gamma``); copy only
  ``ase.calculators.calculator.all_properties`` (as ASE's writers do).
* The evaluated `Atoms` (written in place): ``atoms.arrays["dH"]`` (and
  ``"p_value"``) and
  ``atoms.info["novelty"]``, ``atoms.info["max_dH"]``. extxyz writes and reads
  back all three (per-atom column and comment-line keys); ASE trajectory files
  (``.traj``) keep ``info`` (novelty, max_dH) but store no per-atom array
  other than ASE's own; both survive replacing the calculator by a
  `SinglePointCalculator`, which never touches arrays or info.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, Calculator, all_changes, compare_atoms
from ase.data import atomic_numbers, chemical_symbols

from atominfo import params
from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import ghost_atoms
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.reference.novelty import Novelty
from atominfo.structures.frames import validate_atoms
from atominfo.workflows.lammps_monitor import check_reference
from atominfo.workflows.lammps_species import classify_species, species_record
from atominfo.workflows.monitor import MonitorRecord
from atominfo.workflows.snapshot_box import DEFAULT_DH_TOL, BoxAnalyser, box_descriptors, run_box

__all__ = ["NOVELTY_PROPERTIES", "SOURCE", "NoveltyCalculator", "NoveltyHalt"]

# The results this calculator adds; the same names in atoms.arrays / atoms.info.
NOVELTY_PROPERTIES = ("dH", "novelty", "max_dH")
# Structures up to this many atoms are checked on one thread (MD cells of ASE runs).
SMALL = 1024
# How errors and halts name the structure being evaluated (frame: evaluation number).
SOURCE = "<calculator>"


class NoveltyHalt(InputError):
    """Raised by `NoveltyCalculator` when an evaluation crosses a threshold.

    It propagates out of whatever called the calculator (``dyn.run``, an
    optimiser), ending the run. The message names the evaluation (``frame``)
    and the atom of largest dH.

    Attributes
    ----------
    record : `MonitorRecord` of the evaluation (step: evaluation number,
        novelty, max_dH, mean_dH, seconds).
    atoms : ase.Atoms, a copy of the structure at the halt, with its
        ``arrays["dH"]`` and ``info`` novelty (write it to extxyz as it is).
    dH : array (n,), nats (NaN where not computed: inside the domain).
    """

    def __init__(self, record: MonitorRecord, atoms: Atoms, dH: np.ndarray):
        self.record, self.atoms, self.dH = record, atoms, dH
        self.step = record.step
        worst = int(np.nanargmax(dH)) if np.isfinite(dH).any() else None
        super().__init__(
            f"{record.novelty:.1%} of atoms have dH > 0, largest dH "
            f"{record.max_dH:.3g} nats (outside the reference's domain)",
            source=SOURCE,
            frame=record.step,
            atom=worst,
        )


class NoveltyCalculator(Calculator):
    """An ASE calculator that wraps another and adds the novelty of every structure it evaluates.

    Energy, forces, stress and any other property come from `calc`, unchanged.
    Each new structure (ASE's cache decides, as for any calculator) is also
    checked against `reference`: ``results["dH"]`` per atom (nats),
    ``results["novelty"]`` (fraction of atoms with dH > 0, the exact labels of
    `Reference.inside`) and ``results["max_dH"]``; the same values go into the
    evaluated atoms' ``arrays["dH"]`` and ``info`` so that extxyz files keep
    them (see the module docstring for what survives where).

    Parameters
    ----------
    calc : ase calculator (a `BaseCalculator`, e.g. ``EMT()`` or an MLIP's).
    reference : `Reference` with one bandwidth (its descriptor settings are used);
        or a `atominfo.workflows.species_dh.SpeciesReference`: each atom judged
        against the reference atoms of its own species (`Reference.classify` of
        that species, exact: `dh_tol` does not apply); an atom of a species the
        reference lacks is novel, its dH +inf (an empty kernel sum), counted in
        ``last.absent`` and crossing any `max_dH`; ``last.species`` holds each
        species' novel fraction (`atominfo.workflows.lammps_species`). A species
        outside the reference's descriptor species list is refused (give it to
        ``SpeciesReference.from_files(..., also=...)``).
    dh : "novel" (default): dH of the atoms with dH > 0 only, NaN for the
        others (inside the domain: dH <= 0, not computed; ``max_dH`` is NaN
        when no atom is novel); "all": every atom's dH.
    dh_tol : nats: each dH is at most ``log(1 + dh_tol) <= dh_tol`` above the
        exact value, never below (`atominfo.engine.index.projected`).
    max_novelty, max_dH : thresholds (fraction, nats), optional: an evaluation
        with a larger novelty or max dH crosses them.
    on_alarm : "raise" (default): raise `NoveltyHalt` out of the evaluation;
        or a callable, called as ``on_alarm(record, dH)`` and the run goes on.
    k, cutoff : descriptor settings; default to the reference's.
    p_values : also ``results["p_value"]`` (and ``atoms.arrays["p_value"]``):
        each atom's conformal p-value (`Reference.p_values`; for environments
        drawn like the reference's, ``P(p <= alpha) <= alpha``). It costs an
        exact kernel sum of every atom against most of the reference (the
        calibration is built here, once).

    Attributes
    ----------
    calc : the wrapped calculator.
    last : `MonitorRecord` of the latest check (step = evaluation number from
        0), or None.
    checks : number of structures checked; seconds : their total wall time.

    Raises
    ------
    InputError
        For a `calc` that is no ASE calculator, a `reference` that is no
        `Reference` or has several bandwidths or another descriptor width,
        a parameter out of range; at evaluation, for atoms of an element the
        reference does not hold (where it records its elements) and for a
        structure the descriptor refuses, naming ``<calculator>``, the
        evaluation and the atom.
    """

    name = "atominfo-novelty"

    def __init__(
        self,
        calc: BaseCalculator,
        reference: Reference,
        *,
        dh: str = "novel",
        dh_tol: float = DEFAULT_DH_TOL,
        max_novelty: float | None = None,
        max_dH: float | None = None,
        on_alarm: str | Callable = "raise",
        k: int | None = None,
        cutoff: float | None = None,
        p_values: bool = False,
    ):
        super().__init__()
        if not isinstance(calc, BaseCalculator):
            raise InputError(f"calc must be an ASE calculator, got {type(calc).__name__}")
        check_reference(reference)
        self._species = species_reference(reference)
        if not (isinstance(on_alarm, str) and on_alarm == "raise") and not callable(on_alarm):
            raise InputError(f"on_alarm must be 'raise' or a callable, got {on_alarm!r}")
        self.calc, self.reference, self.on_alarm = calc, reference, on_alarm
        self.dh = params.check("snapshot_dh", dh, label="dh")
        if self.dh == "none":
            raise InputError("dh must be 'novel' or 'all', got 'none'")
        self.dh_tol = params.check("dh_tol", dh_tol)
        self.max_novelty = params.check_optional("alarm_novelty", max_novelty, label="max_novelty")
        self.max_dH = params.check_optional("alarm_dh", max_dH, label="max_dH")
        if self.dh == "novel" and self.max_dH is not None and self.max_dH < 0:
            # max_dH is then over the novel atoms only (dH > 0): never below 0
            raise InputError(f"max_dH = {self.max_dH:g} < 0 needs every atom's dH: pass dh='all'")
        k, cutoff = params.check_optional("k", k), params.check_optional("cutoff", cutoff)
        self.k = int(k if k is not None else (reference.k or DEFAULT_K))
        self.cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
        if self._species and (self.k, self.cutoff) != (reference.k, reference.cutoff):
            raise InputError(
                f"the species reference was described with k = {reference.k}, cutoff = "
                f"{reference.cutoff} Å, not k = {self.k}, cutoff = {self.cutoff} Å"
            )
        if not self._species and reference.X.shape[1] != 2 * self.k - 1:
            raise InputError(
                f"the reference's descriptors have width {reference.X.shape[1]}, but k = "
                f"{self.k} gives {2 * self.k - 1} (a multicomponent reference, or another k?)"
            )
        # allowed[Z]: whether the reference holds element Z (a table: np.isin cost
        # a tenth of a millisecond per evaluation)
        self._allowed: np.ndarray | None = None
        if not self._species and reference.elements is not None:
            self._allowed = np.zeros(len(chemical_symbols), dtype=bool)
            self._allowed[[atomic_numbers[s] for s in reference.elements]] = True
        # the reference's cluster index (and projected index) built once, here
        self._analyser = (
            None
            if self._species
            else BoxAnalyser(reference, self.k, self.cutoff, self.dh, self.dh_tol)
        )
        self.implemented_properties = [*calc.implemented_properties, *NOVELTY_PROPERTIES]
        # JSON-able (ASE trajectories store them); the reference itself is not
        self.parameters.update(
            calculator=getattr(calc, "name", type(calc).__name__),
            reference_environments=len(reference),
            h=float(reference.h),
            k=self.k,
            cutoff=self.cutoff,
            dh=self.dh,
            dh_tol=self.dh_tol,
            max_novelty=self.max_novelty,
            max_dH=self.max_dH,
        )
        if not isinstance(p_values, bool):
            raise InputError(f"p_values must be True or False, got {p_values!r}")
        self.p_values = p_values
        if p_values:
            reference.calibration()  # once, here: not in the first step of the run
            self.implemented_properties.append("p_value")
        self.last: MonitorRecord | None = None
        self.checks, self.seconds = 0, 0.0
        self._novelty: dict = {}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """The wrapped calculator's `properties`, then the novelty of a new structure.

        ASE clears ``results`` on any change of the structure, so those kept
        here always belong to it. Of the wrapped calculator's results, those of
        the structure it last evaluated are copied when that is this one (an
        MLIP computes energy, forces and stress at once: one evaluation serves all).
        """
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms if atoms is None else atoms
        values = {
            name: self.calc.get_property(name, atoms)
            for name in properties
            if name in self.calc.implemented_properties
        }
        # a property just asked for puts the wrapped calculator on this structure
        same = bool(values) or not compare_atoms(getattr(self.calc, "atoms", None), atoms)
        fresh = bool(system_changes) or not self._novelty
        if fresh:
            self._novelty = {}
            self._novelty = self._check(atoms)
        self.results = {
            **self.results,
            **(self.calc.results if same else {}),
            **values,
            **self._novelty,
        }
        annotate(atoms, self._novelty)
        if fresh and self._crossed(self.last):
            self._alarm(atoms)

    def _check(self, atoms: Atoms) -> dict:
        """dH of every atom (or of the novel ones) against the reference, as results."""
        start = time.perf_counter()
        step = self.checks
        if not isinstance(atoms, Atoms):
            raise InputError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")
        validate_atoms(atoms, SOURCE, step)
        if self._analyser is None:  # a SpeciesReference
            return self._check_species(atoms, step, start)
        self._check_elements(atoms, step)
        ghosts, owner = ghost_atoms(atoms, self.cutoff, source=SOURCE, frame=step)
        # one thread below a thousand atoms: starting threads cost more than they save
        self._analyser.threads = 1 if len(atoms) <= SMALL else None
        dH, novel = run_box(self._analyser, ghosts, len(atoms), owner, SOURCE, step, None)
        found = Novelty(novel, dH)  # (NaN: inside, not computed)
        novelty, max_dH, mean_dH = found.fraction, found.max_dH, found.mean_dH
        out = {"dH": dH, "novelty": novelty, "max_dH": max_dH}
        if self.p_values:  # the descriptors again: run_box keeps them to itself
            Y = box_descriptors(ghosts, len(atoms), self.k, self.cutoff, owner)
            out["p_value"] = np.asarray(self.reference.p_values(Y), dtype=float)
        self.checks += 1
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        self.last = MonitorRecord(step, len(atoms), novelty, max_dH, mean_dH, elapsed)
        return out

    def _check_species(self, atoms: Atoms, step: int, start: float) -> dict:
        """As `_check`, each atom against the reference atoms of its own species."""
        from atominfo.descriptor import frame_descriptors
        from atominfo.structures.frames import Frame

        ref: Any = self.reference  # a SpeciesReference
        symbols = np.asarray(atoms.get_chemical_symbols())
        Y = frame_descriptors(
            Frame(atoms, SOURCE, step), self.k, self.cutoff, species=ref.descriptor_species()
        )
        try:
            found = classify_species(ref, Y, symbols, self.dh)
        except InputError as exc:
            raise exc.located(SOURCE, step) from None
        out: dict = {"dH": found.dH}
        if self.p_values:  # NaN for an absent species (no calibration of its own)
            out["p_value"] = np.asarray(ref.p_values(Y, symbols), dtype=float)
        self.checks += 1
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        self.last = species_record(found, symbols, elapsed, step)
        out["novelty"], out["max_dH"] = self.last.novelty, self.last.max_dH
        return out

    def _check_elements(self, atoms: Atoms, step: int) -> None:
        if self._allowed is None:
            return
        numbers = atoms.numbers
        foreign = ~self._allowed[np.clip(numbers, 0, len(self._allowed) - 1)]
        if foreign.any():
            a = int(np.argmax(foreign))
            assert self.reference.elements is not None
            raise InputError(
                f"element {atoms.get_chemical_symbols()[a]} is not in the reference "
                f"({', '.join(sorted(self.reference.elements))})",
                source=SOURCE,
                frame=step,
                atom=a,
            )

    def _crossed(self, record: MonitorRecord | None) -> bool:
        return record is not None and bool(
            (self.max_novelty is not None and record.novelty > self.max_novelty)
            or (self.max_dH is not None and (record.absent > 0 or record.max_dH > self.max_dH))
        )

    def _alarm(self, atoms: Atoms) -> None:
        assert self.last is not None
        dH = self._novelty["dH"]
        if callable(self.on_alarm):
            self.on_alarm(self.last, dH)
            return
        frozen = atoms.copy()  # with the arrays and info annotate wrote: the state at the halt
        raise NoveltyHalt(self.last, frozen, dH.copy())


def species_reference(reference) -> bool:
    """Whether `reference` is a `SpeciesReference` (each atom against its own species)."""
    from atominfo.workflows.species_dh import SpeciesReference

    return isinstance(reference, SpeciesReference)


def annotate(atoms: Atoms, novelty: dict) -> None:
    """Novelty results onto `atoms`: ``arrays["dH"]`` (a copy), scalars in ``info``.

    These survive what ASE does with a calculator's results (extxyz keeps all
    three, trajectory files the scalars; see the module docstring).
    """
    atoms.arrays["dH"] = np.array(novelty["dH"], dtype=float)
    if "p_value" in novelty:
        atoms.arrays["p_value"] = np.array(novelty["p_value"], dtype=float)
    atoms.info["novelty"], atoms.info["max_dH"] = novelty["novelty"], novelty["max_dH"]
