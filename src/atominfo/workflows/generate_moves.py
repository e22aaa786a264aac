"""Monte Carlo moves of `atominfo.workflows.generate`, and the descriptors they change.

A state (`Walker`) is a structure with its periodic images, its descriptors
and their log kernel sums against the reference. `Mover.propose` makes one
trial state: a single-atom displacement or (fully periodic cells) a small
symmetric cell strain, rejected before any descriptor is computed when it
violates the constraints.

A displacement changes the descriptors only of atoms within the cutoff of
the moved atom's old or new position (periodic images included, see
docs/method.md, section 1.1): only those rows are recomputed
(`local_descriptors`, the library's own descriptor kernel, bit for bit the
full result) and only their sums re-evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import (
    describe_points,
    ghost_atoms,
    structure_descriptors,
)
from atominfo.errors import InputError
from atominfo.workflows.generate_constraints import Constraints
from atominfo.workflows.generate_objective import ReferenceSums


def local_descriptors(
    atoms: Atoms,
    rows,
    X: np.ndarray,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    ghosts=None,
) -> np.ndarray:
    """`X` with the descriptor rows of atoms `rows` recomputed for `atoms`.

    Parameters
    ----------
    atoms : the structure (n atoms).
    rows : int array (r,), atoms whose descriptors to recompute.
    X : array (n, 2k-1), current descriptors, 1/Å; not modified.
    k, cutoff : descriptor settings (cutoff in Å).
    ghosts : array (g, 3) or None, `atoms`' periodic images (from
        `descriptor.kernel.ghost_atoms`), when already built.

    Returns
    -------
    array (n, 2k-1): equal, bit for bit, to ``structure_descriptors(atoms)`` on
    `rows` when every other row is unaffected.
    """
    if ghosts is None:
        ghosts, _ = ghost_atoms(atoms, cutoff)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.array(X, dtype=np.float64, copy=True)
    coincident = describe_points(ghosts, rows, k, cutoff, out)
    if (coincident >= 0).any():
        raise InputError(f"two atoms at the same position (atom {int(rows[coincident >= 0][0])})")
    return out


def atoms_near(ghosts: np.ndarray, owner: np.ndarray, point, radius: float) -> np.ndarray:
    """Original atoms with an image within `radius` of `point`: sorted int array."""
    d2 = ((ghosts - point) ** 2).sum(axis=1)
    return np.unique(owner[d2 < radius * radius])


@dataclass
class Walker:
    """One state of the walk.

    Attributes
    ----------
    atoms : the structure.
    ghosts, owner : its periodic images and the original atom of each
        (`descriptor.kernel.ghost_atoms`).
    X : array (n, 2k-1), its descriptors, 1/Å.
    L : array (n,), log kernel sums of each atom against the reference (-dH), nats.
    """

    atoms: Atoms
    ghosts: np.ndarray
    owner: np.ndarray
    X: np.ndarray
    L: np.ndarray


@dataclass(frozen=True)
class Mover:
    """Makes trial states of one walk.

    Attributes
    ----------
    sums : the reference the trial's sums are taken against.
    k, cutoff : descriptor settings (cutoff in Å).
    step_size : Å, standard deviation of a displacement (per coordinate).
    strain : standard deviation of a strain component (0: no cell moves).
    strain_probability : chance that a move of a fully periodic cell is a strain.
    local : recompute only the descriptors a displacement changes.
    """

    sums: ReferenceSums
    k: int
    cutoff: float
    step_size: float
    strain: float
    strain_probability: float
    local: bool

    def start(self, atoms: Atoms) -> Walker:
        """The state of `atoms` (every descriptor computed)."""
        ghosts, owner = ghost_atoms(atoms, self.cutoff)
        X = structure_descriptors(atoms, self.k, self.cutoff)
        return Walker(atoms, ghosts, owner, X, self.sums.log_sums(X))

    def propose(self, w: Walker, cons: Constraints, rng: np.random.Generator) -> Walker | None:
        """A trial state from `w`, or None when the move violates `cons`.

        Draws from `rng` in a fixed order (whether to strain, then the move),
        so the same generator state gives the same trial.
        """
        atoms = w.atoms.copy()
        periodic = bool(np.all(atoms.pbc))
        if periodic and self.strain > 0 and rng.random() < self.strain_probability:
            return self._strained(atoms, cons, rng)
        return self._displaced(w, atoms, cons, rng)

    def _strained(self, atoms: Atoms, cons: Constraints, rng) -> Walker | None:
        eps = rng.normal(scale=self.strain, size=(3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        if cons.violations(atoms, self.cutoff):
            return None
        return self.start(atoms)

    def _displaced(self, w: Walker, atoms: Atoms, cons: Constraints, rng) -> Walker | None:
        a = int(rng.integers(len(atoms)))
        old = w.ghosts[a].copy()
        atoms.positions[a] += rng.normal(scale=self.step_size, size=3)
        ghosts, owner = ghost_atoms(atoms, self.cutoff)
        d2 = ((ghosts - ghosts[a]) ** 2).sum(axis=1)
        d2[a] = np.inf
        if d2.min() < cons.min_distance**2:
            return None
        if not self.local:
            X = structure_descriptors(atoms, self.k, self.cutoff)
            return Walker(atoms, ghosts, owner, X, self.sums.log_sums(X))
        rows = np.union1d(
            atoms_near(w.ghosts, w.owner, old, self.cutoff),
            atoms_near(ghosts, owner, ghosts[a], self.cutoff),
        )
        X = local_descriptors(atoms, rows, w.X, self.k, self.cutoff, ghosts=ghosts)
        L = w.L.copy()
        L[rows] = self.sums.log_sums(X[rows])
        return Walker(atoms, ghosts, owner, X, L)
