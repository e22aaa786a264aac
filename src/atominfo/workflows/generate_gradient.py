"""Collective moves of `atominfo.workflows.generate` along the gradient of its objective.

``moves="gradient"``: instead of one atom displaced at random, every atom is
displaced at once along the analytic gradient of the annealing energy
(`atominfo.information_gradient.novelty_gradient`, through the descriptor),
and, for fully periodic cells with ``strain > 0``, the cell is strained along
the gradient's strain part at the same time:

* the direction is minus the gradient of the energy: for "target", up the
  largest dH while it is below the range, down while above; for "entropy",
  up the dataset's entropy gain;
* the displacement is ``step_size * g / max_i |g_i|`` (the atom the gradient
  moves most moves `step_size`, Å; the gradient of one atom's dH moves only
  its neighbourhood, so a norm over all atoms would throw those few atoms
  far) plus Gaussian noise of standard deviation ``noise * step_size`` per
  coordinate; the strain is
  ``strain * S / |S|`` (Frobenius norm `strain`, S the symmetric part of the
  strain gradient) plus noise ``noise * strain`` per component (symmetrised);
* the trial then goes through the same constraints and the same Metropolis
  criterion as a Monte Carlo move.

Where the energy is flat (a structure whose environments are all in the
reference, or a largest dH already in the range), there is no direction, and
a collective random move of every atom throws the largest dH far past any
range: the move is then the Monte Carlo one (`generate_moves.Mover`).

The proposal is not symmetric (the forward move follows the gradient, the
backward one would not), so the walk is an annealed optimiser, not a sampler
of ``exp(-E / T)``: no detailed balance is claimed. The noise lets different seeds of the random
generator reach different structures.

Every atom moves, so every descriptor is recomputed (no local update).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from atominfo.information_gradient import novelty_gradient
from atominfo.workflows.generate_constraints import Constraints
from atominfo.workflows.generate_moves import Mover, Walker

# nats/Å (nats per unit strain): a gradient below this is rounding, not a direction (a
# structure whose environments are all in the reference has a gradient of about 1e-14)
FLAT = 1e-8


class GradientMover:
    """Makes trial states by collective moves along the energy's gradient.

    Parameters
    ----------
    mover : the Monte Carlo `Mover` (reference sums, descriptor settings,
        step size and strain are its).
    objective : "target" or "entropy".
    target : (low, high), nats, the target range of the largest dH.
    noise : standard deviation of the random part, as a fraction of the step
        (and of the strain).
    """

    def __init__(self, mover: Mover, objective: str, target, noise: float):
        self.mover, self.objective, self.target, self.noise = mover, objective, target, noise
        self.sums = mover.sums
        self._last: tuple[Walker, np.ndarray, np.ndarray] | None = None

    def start(self, atoms: Atoms) -> Walker:
        return self.mover.start(atoms)

    def ascent(self, w: Walker) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n, 3), strain (3, 3)): minus the gradient of the energy at `w`,
        nats/Å and nats (the strain part symmetric; zeros where the energy is flat)."""
        if self._last is not None and self._last[0] is w:  # a rejected trial: same state
            return self._last[1], self._last[2]
        m = self.mover
        if self.objective == "entropy":
            sign, kind = 1.0, "entropy_gain"
        else:
            top = float((-w.L).max())
            sign = 1.0 if top < self.target[0] else -1.0 if top > self.target[1] else 0.0
            kind = "max"
        if sign == 0.0:
            g, s = np.zeros((len(w.atoms), 3)), np.zeros((3, 3))
        else:
            ng = novelty_gradient(
                w.atoms, self.sums.rows(), self.sums.h, k=m.k, cutoff=m.cutoff, objective=kind
            )
            g, s = sign * ng.gradient, sign * 0.5 * (ng.strain_gradient + ng.strain_gradient.T)
        self._last = (w, g, s)
        return g, s

    def step(self, w: Walker, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(displacement (n, 3) Å, strain (3, 3)) of one move from `w`; draws from `rng`
        in a fixed order (displacement noise, then strain noise when the cell moves)."""
        m = self.mover
        g, s = self.ascent(w)
        size = float(np.sqrt((g * g).sum(axis=1).max()))
        shift = m.step_size * g / size if size > FLAT else np.zeros_like(g)
        strained = bool(np.all(w.atoms.pbc)) and m.strain > 0
        size = float(np.linalg.norm(s))
        eps = m.strain * s / size if strained and size > FLAT else np.zeros((3, 3))
        rise = float((g * shift).sum() + (s * eps).sum())  # first-order change, nats
        gap = self._gap(w)
        if 0 < gap < rise:  # land, to first order, in the middle of the target range
            shift, eps = shift * (gap / rise), eps * (gap / rise)
        shift = shift + rng.normal(scale=self.noise * m.step_size, size=shift.shape)
        if strained:
            e = rng.normal(scale=self.noise * m.strain, size=(3, 3))
            eps = eps + 0.5 * (e + e.T)
        return shift, eps

    def _gap(self, w: Walker) -> float:
        """How far the largest dH is from the middle of the target range, nats ("target";
        infinite for "entropy", which has no range)."""
        if self.objective != "target":
            return float("inf")
        return abs(0.5 * (self.target[0] + self.target[1]) - float((-w.L).max()))

    def propose(self, w: Walker, cons: Constraints, rng: np.random.Generator) -> Walker | None:
        """A trial state from `w`, or None when the move violates `cons`: a Monte Carlo
        move where the energy is flat (no direction), else a collective one."""
        g, s = self.ascent(w)
        if not (np.abs(g).max() > FLAT or np.abs(s).max() > FLAT):
            return self.mover.propose(w, cons, rng)
        shift, eps = self.step(w, rng)
        atoms = moved(w.atoms, shift, eps)
        if cons.violations(atoms, self.mover.cutoff):
            return None
        return self.start(atoms)


def moved(atoms: Atoms, shift: np.ndarray, eps: np.ndarray) -> Atoms:
    """A copy of `atoms` displaced by `shift` (Å), then with cell and positions mapped by
    I + eps (the convention of `novelty_gradient`'s strain derivative)."""
    out = atoms.copy()
    out.positions = out.positions + shift
    if np.any(eps):
        out.set_cell(out.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
    return out
