"""The annealing walk of `atominfo.workflows.generate`: one candidate from one seed.

Metropolis acceptance at a temperature lowered geometrically from the
schedule's start to its end over the steps. With the "target" objective the
walk stops as soon as the energy is zero (max dH in the target range) and
its final state is the candidate; with "entropy" the best state of the walk
is kept when its gain is positive and some atom has dH > 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from atominfo.workflows.generate_constraints import Constraints
from atominfo.workflows.generate_gradient import GradientMover
from atominfo.workflows.generate_moves import Mover, Walker
from atominfo.workflows.generate_objective import energy
from atominfo.workflows.generate_options import GenerateOptions


@dataclass
class StepClock:
    """Monte Carlo steps run, and seconds spent in them, over a campaign."""

    steps: int = 0
    seconds: float = 0.0


@dataclass
class Annealed:
    """One walk's candidate: its state, steps run, moves accepted, entropy gain (nats;
    NaN for the "target" objective)."""

    walker: Walker
    steps: int
    accepted: int
    gain: float


def anneal(
    seed_atoms: Atoms,
    cons: Constraints,
    mover: Mover | GradientMover,
    options: GenerateOptions,
    ref_self: np.ndarray | None,
    rng: np.random.Generator,
    clock: StepClock,
) -> Annealed | None:
    """Anneal a copy of `seed_atoms`: the candidate, or None when the objective is not met.

    Parameters
    ----------
    seed_atoms : the starting structure (satisfies `cons`).
    cons : the constraints every accepted state keeps.
    mover : makes the trial states (and holds the reference sums): single-atom
        moves, or collective moves along the gradient (`GradientMover`).
    options : objective, target, temperature schedule and steps.
    ref_self : log sums of the reference against itself ("entropy" objective), else None.
    rng : the campaign's random generator (drawn from in a fixed order).
    clock : counts the steps and their seconds.
    """
    objective, target = options.objective, options.target
    sums = mover.sums
    w = mover.start(seed_atoms.copy())
    E, gain = energy(w.X, w.L, objective, target, sums, ref_self)
    best = (E, w, gain)
    t0, t1 = options.temperature
    steps = options.steps
    accepted = 0
    done = 0
    started = time.perf_counter()
    for step in range(steps):
        if objective == "target" and E == 0.0:
            break
        T = t0 * (t1 / t0) ** (step / max(steps - 1, 1))
        done += 1
        clock.steps += 1
        trial = mover.propose(w, cons, rng)
        if trial is None:
            continue
        E_new, gain_new = energy(trial.X, trial.L, objective, target, sums, ref_self)
        dE = E_new - E
        if dE <= 0 or rng.random() < np.exp(-dE / T):
            w, E, gain = trial, E_new, gain_new
            accepted += 1
            if E < best[0]:
                best = (E, w, gain)
    clock.seconds += time.perf_counter() - started
    if objective == "target":
        return Annealed(w, done, accepted, float("nan")) if E == 0.0 else None
    E, w, gain = best
    if not gain > 0 or not (-w.L).max() > 0:
        return None
    return Annealed(w, done, accepted, gain)
