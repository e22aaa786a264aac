"""Experimental multicomponent descriptor: the plain block, then one block per species."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.errors import InputError


def multicomponent_descriptors(atoms: Atoms, species: Sequence[str], k: int = DEFAULT_K,
                               cutoff: float = DEFAULT_CUTOFF, *, source="<memory>",
                               frame: int = 0) -> np.ndarray:
    """Experimental multicomponent variant (SPEC.md section 1).

    The descriptor on all atoms, then for each species in `species` the
    descriptor on the sub-structure of that species alone (zeros for the
    other atoms). Width `(1 + len(species)) * (2k-1)`.
    """
    width = 2 * k - 1
    symbols = np.asarray(atoms.get_chemical_symbols())
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise InputError(f"species {unknown} not in the species list {list(species)}",
                         source=source, frame=frame)
    out = np.zeros((len(atoms), width * (1 + len(species))))
    out[:, :width] = structure_descriptors(atoms, k, cutoff, source=source, frame=frame)
    for s, symbol in enumerate(species):
        mask = symbols == symbol
        if mask.any():
            sub = atoms[mask]
            block = slice(width * (1 + s), width * (2 + s))
            out[mask, block] = structure_descriptors(sub, k, cutoff, source=source, frame=frame)
    return out
