"""Rescaling structures isotropically to a common volume per atom.

Datasets sampled at different densities are compared at one density by
scaling every periodic structure (cell and positions) to the same volume per
atom before computing descriptors.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError

# Volume per atom (Å^3) the paper rescaled elemental datasets to (TM23 median).
REFERENCE_VOLUME = 15.8


def volume_per_atom(atoms: Atoms, *, source="<memory>", frame=0) -> float:
    if not np.all(atoms.pbc):
        raise InputError(
            "volume per atom needs a fully periodic cell "
            f"(pbc={tuple(bool(p) for p in atoms.pbc)})",
            source=source,
            frame=frame,
        )
    return float(abs(atoms.cell.volume)) / len(atoms)


def rescale_to_volume(atoms: Atoms, volume: float, *, source="<memory>", frame=0) -> Atoms:
    """A copy of `atoms` scaled isotropically (cell and positions) to `volume` Å^3/atom.

    `volume` is in the range of ``params.CONSTRAINTS["rescale_volume"]``: no
    denser than matter can be (`params.MIN_VOLUME_PER_ATOM`).
    """
    volume = params.check("rescale_volume", volume)
    factor = (volume / volume_per_atom(atoms, source=source, frame=frame)) ** (1.0 / 3.0)
    scaled = atoms.copy()
    scaled.set_cell(np.asarray(atoms.cell[:]) * factor, scale_atoms=True)
    return scaled
