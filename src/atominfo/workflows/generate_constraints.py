"""Physical constraints of generated structures: minimum distance, density range, composition.

Every state the annealing walk of `atominfo.workflows.generate` accepts
satisfies them (a move violating one is rejected before its dH is
computed), and a seed that violates them is refused. Defaults come from
the seed itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from atominfo.descriptor.kernel import min_distance
from atominfo.errors import InputError

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3
MIN_DISTANCE_FRACTION = 0.8  # default minimum distance: this share of the seed's smallest
DENSITY_FRACTION = 0.1  # default density range: the seed's density +- 10%


def mass_density(atoms: Atoms) -> float:
    """Mass density of a periodic structure, g/cm³."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


def min_distance_value(atoms: Atoms, cutoff: float) -> float:
    """Smallest interatomic distance, periodic images included, Å (NaN when no pair
    lies within `cutoff`: a finite number or NaN, never infinity, for provenance)."""
    d = min_distance(atoms, cutoff)
    return float(d) if np.isfinite(d) else float("nan")


@dataclass(frozen=True)
class Constraints:
    """Physical constraints every accepted structure satisfies.

    Attributes
    ----------
    min_distance : float, Å, smallest allowed interatomic distance (images included).
    density : (low, high), g/cm³, or None (non-periodic structures).
    composition : chemical formula that must not change (e.g. 'Cu32').
    """

    min_distance: float
    density: tuple[float, float] | None
    composition: str

    def violations(self, atoms: Atoms, cutoff: float) -> list[str]:
        """What `atoms` violates: a list of sentences (empty when it satisfies all)."""
        out = []
        d = min_distance(atoms, cutoff)
        if d < self.min_distance:
            out.append(f"interatomic distance {d:.4g} Å < minimum {self.min_distance:.4g} Å")
        if self.density is not None:
            rho = mass_density(atoms)
            if not self.density[0] <= rho <= self.density[1]:
                out.append(
                    f"density {rho:.4g} g/cm³ outside [{self.density[0]:.4g}, "
                    f"{self.density[1]:.4g}]"
                )
        if atoms.get_chemical_formula() != self.composition:
            out.append(f"composition {atoms.get_chemical_formula()} != {self.composition}")
        return out


def constraints_for(seed: Atoms, cutoff: float, min_dist=None, density_range=None) -> Constraints:
    """The constraints of one seed: user values, or defaults from the seed itself.

    Defaults: minimum distance 0.8 x the seed's smallest distance; density the
    seed's +- 10% (periodic seeds only).
    """
    periodic = bool(np.all(seed.pbc))
    if min_dist is None:
        d0 = min_distance(seed, cutoff)
        min_dist = MIN_DISTANCE_FRACTION * d0 if np.isfinite(d0) else 0.0
    rho_range = None
    if density_range is not None:
        if not periodic:
            raise InputError("a density range needs fully periodic seed structures")
        lo, hi = density_range
        rho_range = (0.0 if lo is None else float(lo), np.inf if hi is None else float(hi))
    elif periodic:
        rho = mass_density(seed)
        rho_range = (rho * (1 - DENSITY_FRACTION), rho * (1 + DENSITY_FRACTION))
    return Constraints(float(min_dist), rho_range, seed.get_chemical_formula())
