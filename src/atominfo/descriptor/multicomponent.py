"""Experimental multicomponent descriptor: the plain block, then one block per species.

With several species, each atom's row is the descriptor on all atoms followed,
for every species s, by the descriptor on the sub-structure of species s
alone (zeros for atoms of other species), the whole row scaled by 1/sqrt(2).

The scale makes a structure's descriptor distances independent of the
species list it is described with, as long as the list holds its species:
blocks of absent species are zero for all its atoms and add nothing, and
for a structure of a single species the sub-structure is the whole structure,
so its one non-zero block repeats the plain one and (p, p)/sqrt(2) is exactly
as far from (q, q)/sqrt(2) as p is from q. A file's entropy is therefore the
same whatever other files share the run (and its species list), and a single
species list gives the plain descriptor itself (width 2k-1), with the same
distances and so the same meaning of a bandwidth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.errors import InputError

# Factor of every column of a multi-species row (see the module docstring).
BLOCK_SCALE = 1.0 / np.sqrt(2.0)


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
        sub-structure of that species alone (zeros for the other atoms), all
        times `BLOCK_SCALE` = 1/sqrt(2). For a single species, the plain
        descriptor ``(len(atoms), 2k-1)``, whose distances are those of its
        scaled two blocks.
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
    out[:, :width] = plain * BLOCK_SCALE
    for s, symbol in enumerate(species):
        mask = symbols == symbol
        if mask.any():
            sub = atoms[mask]
            block = slice(width * (1 + s), width * (2 + s))
            out[mask, block] = (
                structure_descriptors(sub, k, cutoff, source=source, frame=frame) * BLOCK_SCALE
            )
    return out


def to_species_layout(
    X: np.ndarray,
    k: int,
    from_species: Sequence[str],
    elements: Sequence[str] | None,
    species: Sequence[str] | None,
    *,
    source: str = "<memory>",
) -> np.ndarray:
    """Descriptors `X` computed with species blocks `from_species`, in the column layout
    of the species list `species` (what saved descriptors need to join a run).

    Parameters
    ----------
    X : array (n, width), 1/Å.
    k : int, the k of `X`.
    from_species : the species blocks of `X` (empty: the plain descriptor).
    elements : elements of the structures `X` describes, or None if unknown.
    species : the run's species list (None or one species: the plain descriptor).

    Returns
    -------
    `X` itself when the layouts agree; else a new array: blocks moved to the
    run's order (blocks of species absent from `X` are zero, as the descriptor
    of structures without them has), or the plain descriptor of structures of
    one element turned into their multicomponent descriptor (plain and own
    block, both times `BLOCK_SCALE`).

    Raises InputError naming `source` where `X` lacks what the run's layout
    needs: species blocks for a plain run, a species the run's list lacks, or
    the plain descriptor of several elements (or unknown ones) for a
    multicomponent run.
    """
    from atominfo.structures.saved import describe_species

    have = tuple(from_species) if len(from_species) >= 2 else ()
    want = tuple(species) if species is not None and len(species) >= 2 else ()
    if have == want:
        return X
    mismatch = (
        f"descriptors were computed with {describe_species(have)}, "
        f"this run uses {describe_species(want)}"
    )
    if not want:
        raise InputError(mismatch, source=source)
    width = 2 * int(k) - 1
    out = np.zeros((len(X), width * (1 + len(want))))
    if have:
        missing = [s for s in have if s not in want]
        if missing:
            raise InputError(f"{mismatch} (no {', '.join(missing)})", source=source)
        out[:, :width] = X[:, :width]
        for i, symbol in enumerate(have):
            j = want.index(symbol)
            out[:, width * (1 + j) : width * (2 + j)] = X[:, width * (1 + i) : width * (2 + i)]
        return out
    # Structures of one element: their sub-structure is the whole structure.
    if elements is None or len(elements) != 1 or elements[0] not in want:
        held = ", ".join(elements) if elements else "unknown elements"
        raise InputError(f"{mismatch} (the structures described hold {held})", source=source)
    j = want.index(elements[0])
    out[:, :width] = X * BLOCK_SCALE
    out[:, width * (1 + j) : width * (2 + j)] = X * BLOCK_SCALE
    return out
