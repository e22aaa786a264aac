"""Experimental multicomponent descriptor: the plain block, then one block per species.

With several species, each atom's row is the descriptor on all atoms followed,
for every species s, by the descriptor on the sub-structure of species s
alone (zeros for atoms of other species). With a single species that
sub-structure is the whole structure and its block would repeat the plain
one, multiplying every descriptor distance by sqrt(2) and so changing what a
bandwidth means; a single species therefore gives the plain descriptor
itself (width 2k-1), so that results and bandwidths stay comparable with the
plain descriptor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.errors import InputError


def resolve_species(frames: Iterable | None, multicomponent) -> list[str] | None:
    """The species list of the multicomponent descriptor, or None for the plain one.

    Parameters
    ----------
    frames : iterable of `Frame` or ase.Atoms, or None
        All the structures to be described: with ``multicomponent=True`` the
        species are the sorted chemical symbols found over all of them.
        Ignored otherwise.
    multicomponent : bool, list of str, or str
        False/None: plain descriptor (returns None). True: species of `frames`.
        A list (or comma-separated text ``"Cu,O"``) fixes the species and
        their order.

    Returns
    -------
    list of str or None

    Raises InputError for an empty, repeated or unknown species.
    """
    if multicomponent is None or multicomponent is False:
        return None
    if multicomponent is True:
        if frames is None:
            raise InputError("multicomponent=True needs the structures to find their species")
        found = set()
        for f in frames:
            atoms = f if isinstance(f, Atoms) else f.atoms
            found.update(atoms.get_chemical_symbols())
        if not found:
            raise InputError("no structures to find species in")
        return sorted(found)
    if isinstance(multicomponent, str):
        species = [s.strip() for s in multicomponent.split(",")]
    else:
        try:
            species = list(multicomponent)
        except TypeError:
            raise InputError(
                f"multicomponent must be True, False or a list of species, got {multicomponent!r}"
            ) from None
    if not species:
        raise InputError("the species list is empty")
    for s in species:
        if not isinstance(s, str) or s not in chemical_symbols[1:]:
            raise InputError(f"{s!r} in the species list is not a chemical symbol")
    if len(set(species)) != len(species):
        raise InputError(f"species list {species} repeats a species")
    return species


def descriptor_width(k: int, species: Sequence[str] | None) -> int:
    """Columns of a descriptor row: 2k-1, times 1 + S for S >= 2 species."""
    width = 2 * int(k) - 1
    return width if species is None or len(species) < 2 else width * (1 + len(species))


def multicomponent_descriptors(
    atoms: Atoms,
    species: Sequence[str],
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    *,
    source="<memory>",
    frame: int = 0,
) -> np.ndarray:
    """Experimental multicomponent variant of the descriptor (see docs/method.md).

    Parameters
    ----------
    atoms : ase.Atoms
    species : list of str
        The species blocks, in this order (see `resolve_species`).
    k, cutoff : neighbours and cutoff radius (Å).

    Returns
    -------
    ndarray, float64, 1/Å
        Shape ``(len(atoms), (1 + S) * (2k-1))`` for S >= 2 species: the
        descriptor on all atoms, then for each species the descriptor on the
        sub-structure of that species alone (zeros for the other atoms).
        For a single species, the plain descriptor ``(len(atoms), 2k-1)``:
        its one block would only repeat the plain one.
    """
    width = 2 * k - 1
    symbols = np.asarray(atoms.get_chemical_symbols())
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        a = int(np.flatnonzero(~np.isin(symbols, list(species)))[0])
        raise InputError(
            f"species {unknown} not in the species list {list(species)}",
            source=source,
            frame=frame,
            atom=a,
        )
    plain = structure_descriptors(atoms, k, cutoff, source=source, frame=frame)
    if len(species) < 2:
        return plain
    out = np.zeros((len(atoms), width * (1 + len(species))))
    out[:, :width] = plain
    for s, symbol in enumerate(species):
        mask = symbols == symbol
        if mask.any():
            sub = atoms[mask]
            block = slice(width * (1 + s), width * (2 + s))
            out[mask, block] = structure_descriptors(sub, k, cutoff, source=source, frame=frame)
    return out
