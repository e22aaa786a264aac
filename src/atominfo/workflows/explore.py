"""Biased exploration: molecular dynamics pushed toward environments new to a dataset.

`BiasedCalculator` wraps any ASE calculator and adds a bias force along the
analytic gradient of the structure's novelty against a reference
(`atominfo.information_gradient.novelty_gradient`):

    F = F_physical + weight * d(novelty)/dR

with novelty the sum, mean or largest of the atoms' dH (nats) or the entropy
gain, and weight in eV per nat. It is the force of the biased energy
``E - weight * novelty`` (reported as "energy"), so the dynamics climbs dH
while the physical force field keeps the structure sensible; each atom's bias
force is capped at `max_bias_force` (eV/Å, then not an exact gradient) so that
one far outlier cannot throw atoms together. The cell is held fixed (no
stress is biased).

`explore` runs Langevin MD with it and takes a snapshot whenever the largest
dH of the structure reaches `target` (nats): the snapshot's environments then
join the reference (like metadynamics hills), so the bias moves on to what is
still new. Each snapshot keeps ``arrays["unbiased_forces"]``,
``arrays["bias_forces"]`` and ``arrays["dH"]``, and ``info["max_dH"]``,
``info["unbiased_energy"]``, ``info["bias_energy"]`` (eV) and ``info["step"]``.
`ExploreWalk` runs the same MD a check at a time, with a state that can be saved
and continued bit for bit (``atominfo explore --resume``,
`atominfo.workflows.explore_run`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from atominfo import params
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.errors import InputError
from atominfo.information import as_descriptor_matrix
from atominfo.information_gradient import dh_descriptor_gradient, novelty_gradient
from atominfo.results import Result
from atominfo.structures.frames import validate_atoms

__all__ = [
    "BiasOptions",
    "BiasedCalculator",
    "ExploreOptions",
    "ExploreWalk",
    "Exploration",
    "explore",
]


@dataclass(frozen=True)
class BiasOptions:
    """The bias: ``weight`` eV/nat along the gradient of ``objective`` (see
    `atominfo.information_gradient.OBJECTIVES`), capped at ``max_bias_force`` eV/Å
    per atom; descriptors with ``k``, ``cutoff`` (Å), kernel bandwidth ``h`` (1/Å)."""

    weight: float = 0.1
    objective: str = "max"
    max_bias_force: float = 1.0
    h: float = DEFAULT_BANDWIDTH
    k: int = DEFAULT_K
    cutoff: float = DEFAULT_CUTOFF

    def __post_init__(self):
        _checked(
            self,
            weight=("bias_weight", "bias weight"),
            objective=("novelty_objective", "objective"),
            max_bias_force=("max_bias_force", "max_bias_force"),
            h=("bandwidth", "bandwidth h"),
            k=("k", "k"),
            cutoff=("cutoff", "cutoff"),
        )


def _checked(options, **fields) -> None:
    """Check each field of a frozen dataclass against its `params` constraint, and keep
    the checked value (ints as int, numbers as float: one signature for one setting)."""
    for name, (constraint, label) in fields.items():
        object.__setattr__(
            options, name, params.check(constraint, getattr(options, name), label=label)
        )


class BiasedCalculator(Calculator):
    """Any ASE calculator plus a bias force toward novel environments (module docstring).

    ``results``: "energy" and "forces" biased; "unbiased_energy", "unbiased_forces",
    "bias_forces" (eV/Å), "dH" (per atom, nats) and "novelty" (the objective, nats)
    beside them. The reference (array (n, 2k-1), 1/Å) can grow: `add_reference`.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, calc, reference, options: BiasOptions | None = None):
        super().__init__()
        self.calc = calc
        self.options = options or BiasOptions()
        self.reference = as_descriptor_matrix(reference, "reference", copy=True)
        if self.reference.shape[1] != 2 * self.options.k - 1:
            raise InputError(
                f"reference of {self.reference.shape[1]} columns; k={self.options.k} "
                f"needs {2 * self.options.k - 1}"
            )

    def add_reference(self, X) -> None:
        """Add descriptor rows (m, 2k-1) to the reference: they are no longer novel."""
        self.reference = np.concatenate([self.reference, as_descriptor_matrix(X)])
        self.reset()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        # Asked of the wrapped calculator directly (no copy of the structure), so that one
        # keeping state between calls (a restart file, a running process) keeps it.
        energy = float(self.calc.get_potential_energy(atoms))
        forces = np.array(self.calc.get_forces(atoms))
        opt = self.options
        grad = novelty_gradient(
            atoms, self.reference, opt.h, k=opt.k, cutoff=opt.cutoff, objective=opt.objective
        )
        bias = opt.weight * grad.gradient
        norm = np.linalg.norm(bias, axis=1, keepdims=True)
        bias *= opt.max_bias_force / np.maximum(norm, opt.max_bias_force)  # min(1, cap/norm)
        biased_energy = energy - opt.weight * grad.value
        self.results = {
            "energy": biased_energy,
            "free_energy": biased_energy,
            "forces": forces + bias,
            "unbiased_energy": energy,
            "unbiased_forces": forces,
            "bias_forces": bias,
            "dH": grad.dH,
            "novelty": grad.value,
        }


@dataclass(frozen=True)
class ExploreOptions:
    """Langevin MD: ``steps`` of ``timestep_fs`` at ``temperature`` K (``friction`` in
    ASE's inverse time unit, as `atominfo.structures.datasets.md_frames`; ``seed``);
    every ``interval`` steps a snapshot if the largest dH >= ``target`` nats, until
    ``max_snapshots``. ``bias``: the `BiasOptions` (weight 0: plain MD)."""

    temperature: float = 300.0
    steps: int = 1000
    timestep_fs: float = 2.0
    friction: float = 0.02
    seed: int = 0
    interval: int = 10
    target: float = 0.0
    max_snapshots: int | None = None
    bias: BiasOptions = field(default_factory=BiasOptions)

    def __post_init__(self):
        _checked(
            self,
            temperature=("md_temperature", "temperature"),
            steps=("md_steps", "steps"),
            timestep_fs=("md_timestep", "timestep_fs"),
            friction=("md_friction", "friction"),
            seed=("seed", "seed"),
            interval=("interval", "interval"),
            target=("alarm_dh", "target"),
        )
        if self.max_snapshots is not None:
            _checked(self, max_snapshots=("interval", "max_snapshots"))
        if not isinstance(self.bias, BiasOptions):
            raise InputError(f"bias must be a BiasOptions, got {type(self.bias).__name__}")


@dataclass(frozen=True)
class Exploration(Result):
    """What `explore` found.

    Attributes
    ----------
    snapshots : list of ase.Atoms, with arrays unbiased_forces, bias_forces, dH and info
        max_dH, step.
    steps : array, the MD steps checked (every `interval`).
    max_dH : array, the largest dH at each checked step against the reference at that
        time, nats.
    steps_run : MD steps run.
    seconds : wall time, s.
    """

    _fields_shown = ("steps_run", "seconds")
    snapshots: list
    steps: np.ndarray
    max_dH: np.ndarray
    steps_run: int
    seconds: float

    @property
    def n_snapshots(self) -> int:
        return len(self.snapshots)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "max_dH": self.max_dH})


def explore(
    atoms: Atoms,
    calc,
    reference,
    options: ExploreOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> Exploration:
    """Biased (or, with weight 0, plain) Langevin MD from `atoms` with the physical `calc`,
    snapshotting structures whose largest dH against `reference` (array (n, 2k-1), 1/Å,
    grown by every snapshot) reaches the target. `progress` gets the steps done."""
    start = time.perf_counter()
    walk = ExploreWalk(atoms, calc, reference, options)
    snapshots: list[Atoms] = []
    checked, largest = [], []
    while not walk.done:
        snapshot = walk.advance()
        if progress is not None:
            progress(walk.step)
        checked.append(walk.step)
        largest.append(walk.last_max_dH)
        if snapshot is not None:
            snapshots.append(snapshot)
    return Exploration(
        snapshots, np.array(checked), np.array(largest), walk.step, time.perf_counter() - start
    )


class ExploreWalk:
    """`explore`'s MD from one structure, one check (``interval`` steps) at a time.

    Its `state` (step, positions, momenta, the random generator's state, snapshots
    taken) is JSON-able; a walk made with the state saved after ``advance(reset=True)``
    continues with the same steps, bit for bit, as the walk it was saved from. The
    reset empties the calculators (the physical one is reset when the walk starts
    too), so the forces after it depend on the positions alone, as they do in a
    walk started from a saved state: a neighbour list built at another step sums
    in another order, 1e-13 eV/Å apart, and MD amplifies that. A reset costs one
    more force evaluation; `explore` never resets.
    The snapshot's environments join the bias's reference (`reference` here);
    `advance` returns the snapshot, or None.
    """

    def __init__(self, atoms: Atoms, calc, reference, options=None, state: dict | None = None):
        from ase.md.langevin import Langevin

        try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution for this name
            from ase.md.velocitydistribution import thermalize_momenta
        except ImportError:  # older ASE: the same draw under its former name
            from ase.md.velocitydistribution import (
                MaxwellBoltzmannDistribution as thermalize_momenta,
            )

        if not isinstance(atoms, Atoms):
            raise InputError(f"expected an ase.Atoms structure, got {type(atoms).__name__}")
        validate_atoms(atoms, "<memory>", 0)
        self.options = options = options or ExploreOptions()
        self.atoms = atoms = atoms.copy()
        self.calc = calc
        # Plain MD (weight 0) runs the physical calculator alone and scores only the
        # checked steps: the gradient would cost more than the force field.
        self.biased = BiasedCalculator(calc, reference, options.bias)
        atoms.calc = self.biased if options.bias.weight > 0 else calc
        calc.reset()  # (its neighbour lists built here, as in a walk continued from a state)
        self.rng = np.random.default_rng(options.seed)
        self.step, self.snapshots, self.last_max_dH = 0, 0, float("nan")
        if state is None:
            thermalize_momenta(atoms, temperature_K=options.temperature, rng=self.rng)
        else:
            self._restore(state)
        self.dyn = Langevin(
            atoms,
            options.timestep_fs * units.fs,
            temperature_K=options.temperature,
            friction=options.friction,
            rng=self.rng,
            fixcm=False,
        )

    @property
    def done(self) -> bool:
        o = self.options
        full = o.max_snapshots is not None and self.snapshots >= o.max_snapshots
        return self.step >= o.steps or full

    def advance(self, reset: bool = False) -> Atoms | None:
        """Run to the next check; the snapshot taken there, or None. `reset`: empty the
        calculators after the check, where a state is to be saved (class docstring)."""
        o = self.options
        n = min(o.interval, o.steps - self.step)
        self.dyn.run(n)
        self.step += n
        results = _results(self.atoms, self.biased, o.bias.weight > 0)
        self.last_max_dH = float(results["dH"].max())
        snapshot = None
        if self.last_max_dH >= o.target:
            snapshot = _snapshot(self.atoms, results, self.step)
            self.biased.add_reference(structure_descriptors(self.atoms, o.bias.k, o.bias.cutoff))
            self.snapshots += 1
        if reset:
            self.calc.reset()
            self.biased.reset()
        return snapshot

    def state(self) -> dict:
        """What a walk continuing this one needs (JSON-able; floats exact)."""
        return {
            "step": self.step,
            "snapshots": self.snapshots,
            "last_max_dH": self.last_max_dH,
            "positions": self.atoms.positions.tolist(),
            "momenta": self.atoms.get_momenta().tolist(),
            "rng": self.rng.bit_generator.state,
        }

    def _restore(self, state: dict) -> None:
        positions = np.array(state["positions"], dtype=float)
        if positions.shape != self.atoms.positions.shape:
            raise InputError("the saved state of the walk is of another structure")
        self.atoms.positions[:] = positions
        self.atoms.set_momenta(np.array(state["momenta"], dtype=float))
        self.rng.bit_generator.state = state["rng"]
        self.step, self.snapshots = int(state["step"]), int(state["snapshots"])
        self.last_max_dH = float(state["last_max_dH"])


def _results(atoms: Atoms, biased: BiasedCalculator, is_biased: bool) -> dict:
    """The biased calculator's results at the current positions; for plain MD, the
    physical forces with a zero bias and dH against the same reference."""
    if is_biased:
        atoms.get_forces()
        return {name: np.asarray(value) for name, value in biased.results.items()}
    opt = biased.options
    X = structure_descriptors(atoms, opt.k, opt.cutoff)
    dH, _ = dh_descriptor_gradient(X, biased.reference, opt.h)
    forces = atoms.get_forces()
    return {
        "unbiased_forces": forces,
        "bias_forces": np.zeros_like(forces),
        "unbiased_energy": atoms.get_potential_energy(),
        "dH": dH,
    }


def _snapshot(atoms: Atoms, results: dict, step: int) -> Atoms:
    snap = atoms.copy()  # no calculator: the biased results stay in arrays and info
    for name in ("unbiased_forces", "bias_forces", "dH"):
        snap.arrays[name] = np.array(results[name])
    snap.info["max_dH"] = float(np.max(results["dH"]))
    snap.info["unbiased_energy"] = float(results["unbiased_energy"])
    # -weight x novelty: the biased energy is unbiased_energy + bias_energy (0 for plain MD)
    snap.info["bias_energy"] = float(results.get("energy", results["unbiased_energy"])) - float(
        results["unbiased_energy"]
    )
    snap.info["step"] = step
    return snap
