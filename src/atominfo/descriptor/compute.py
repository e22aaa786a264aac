"""Descriptors of every atom of every structure, with the frame each row came from."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from atominfo import params
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import min_distance, structure_descriptors
from atominfo.descriptor.multicomponent import multicomponent_descriptors, resolve_species
from atominfo.errors import InputError
from atominfo.settings import Reading, with_keywords
from atominfo.structures.frames import Frame, iter_frames
from atominfo.structures.frameset import FrameSet


def validate_parameters(k, cutoff) -> None:
    """Raise InputError unless `k` and `cutoff` (Å) are in their valid ranges."""
    params.check("k", k)
    params.check("cutoff", cutoff)


def descriptors(
    structures,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    *,
    reading: Reading | None = None,
    multicomponent: bool | Sequence[str] = False,
    rescale_volume: float | None = None,
    return_index: bool = False,
    progress: Callable[[int], None] | None = None,
    elements: set[str] | None = None,
    **reading_keywords,
):
    """QUESTS descriptors of every atom of every structure.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
        Files are read with ASE (any format it reads), frame by frame.
    k : int
        Number of nearest neighbours (>= 2).
    cutoff : float
        Cutoff radius rc in Å.
    reading : `atominfo.settings.Reading`: which frames of file inputs are read
        (``index``, ``format``, ``type_map``); these may also be given as
        keywords: ``index="::10"`` (ASE frame selection), ``format=`` (file
        format), ``type_map={1: "Cu"}`` or ``"1=Cu,2=O"`` (species of numeric
        LAMMPS types).
    multicomponent : bool or list of str
        Experimental. True: append per-species descriptors for the sorted
        species of all structures; a list fixes the species (and their order).
        A single species gives the plain descriptor (see
        `atominfo.descriptor.multicomponent`).
    rescale_volume : float, optional
        Rescale every structure isotropically to this volume per atom (Å^3)
        first (see docs/method.md).
    return_index : bool
        Also return a `FrameSet` saying which frame and atom each row is.
    progress : callable, optional
        Called with the number of atoms done after each structure.
    elements : set, optional
        When given, the chemical symbols of every structure described are
        added to it (what a reference holds, recorded with saved descriptors).

    Returns
    -------
    X : ndarray, shape (n_atoms_total, 2k-1), float64, 1/Å
        (``(1 + S)(2k-1)`` columns for the multicomponent variant with S >= 2.)
    frames : FrameSet, only if `return_index`
        ``frames.X is X``; ``frames.frame[r]`` and ``frames.atom[r]`` give the
        frame and atom of row r, ``frames.locate(r)`` its (file, frame in
        file, atom). The structures themselves are not kept.

    Raises
    ------
    InputError
        Besides unreadable structures and parameters out of range: inputs in
        which no atom at all has a neighbour within the cutoff (every
        descriptor would be zero: nothing could be measured), naming the file,
        frame and smallest interatomic distance. A single frame of several
        atoms with no neighbour within the cutoff is a warning.
    """
    data = load_frames(
        structures,
        k,
        cutoff,
        reading=reading,
        multicomponent=multicomponent,
        rescale_volume=rescale_volume,
        progress=progress,
        keep_atoms=False,
        elements=elements,
        **reading_keywords,
    )
    return (data.X, data) if return_index else data.X


def load_frames(
    structures,
    k: int | None = None,
    cutoff: float | None = None,
    *,
    reading: Reading | None = None,
    multicomponent: bool | Sequence[str] = False,
    rescale_volume: float | None = None,
    progress: Callable[[int], None] | None = None,
    keep_atoms: bool = True,
    elements: set[str] | None = None,
    **reading_keywords,
) -> FrameSet:
    """Read structures and compute their descriptors, keeping the frame boundaries.

    Parameters are those of `atominfo.descriptors` (k and cutoff default to 32
    and 5 Å when None; ``index``, ``format``, ``type_map`` as keywords or a
    `Reading`); `progress` is called with the number of atoms done
    after each frame. With `keep_atoms` the structures as read (not rescaled:
    rescaling applies to the descriptors only) are kept in ``FrameSet.atoms``;
    otherwise frames are streamed and only descriptors kept. `elements`, when
    given, collects the chemical symbols of every structure.
    """
    k = DEFAULT_K if k is None else k
    cutoff = DEFAULT_CUTOFF if cutoff is None else cutoff
    validate_parameters(k, cutoff)
    k, cutoff = int(k), float(cutoff)
    if rescale_volume is not None:
        params.check("rescale_volume", rescale_volume)
    (reading,) = with_keywords(reading_keywords, reading or Reading())
    frames: Iterable[Frame] = iter_frames(structures, **reading.kwargs())
    if multicomponent is True:  # needs every frame's species first
        frames = list(frames)
    species = resolve_species(frames if multicomponent is True else None, multicomponent)
    blocks, sources, source_frames, kept = [], [], [], []
    first_empty: str | None = None  # the first frame whose every environment is empty
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", EmptyFrameWarning)
        for f in frames:
            blocks.append(
                frame_descriptors(f, k, cutoff, species=species, rescale_volume=rescale_volume)
            )
            sources.append(f.source)
            source_frames.append(f.index)
            if keep_atoms:
                kept.append(f.atoms)
            if elements is not None:
                elements.update(f.atoms.symbols.species())
            if progress is not None:
                progress(len(f.atoms))
    for note in notes:
        if issubclass(note.category, EmptyFrameWarning) and first_empty is None:
            first_empty = str(note.message)
    if not blocks:
        raise InputError("no structures given")
    X = np.concatenate(blocks, axis=0)
    if not X[:, 0].any():
        raise InputError(
            f"no atom of the {len(blocks)} structures has a neighbour within the cutoff "
            f"{cutoff:g} Å: every descriptor is zero, so nothing can be measured; use a larger "
            "cutoff" + (f" ({first_empty})" if first_empty else ""),
            source=sources[0],
        )
    for note in notes:  # the rest of the input is measurable: say which frames are not
        warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
    return FrameSet(X, offsets, sources, source_frames, kept)


class EmptyFrameWarning(UserWarning):
    """A frame of several atoms none of which has a neighbour within the cutoff."""


def frame_descriptors(
    frame: Frame, k: int, cutoff: float, *, species=None, rescale_volume: float | None = None
) -> np.ndarray:
    """Descriptors of one `Frame`, with optional rescaling and species blocks.

    `species` is a list from `resolve_species` (None: plain descriptor).
    Returns an array of shape (n_atoms, width), 1/Å.

    Warns (`EmptyFrameWarning`) for a frame of two or more atoms none of which
    has a neighbour within the cutoff: its descriptors are all zero, the same
    for any structure (a dimer scanned beyond the cutoff is such a frame;
    `load_frames` refuses an input made only of them).
    """
    atoms = frame.atoms
    if rescale_volume is not None:
        from atominfo.structures.rescale import rescale_to_volume

        atoms = rescale_to_volume(atoms, rescale_volume, source=frame.source, frame=frame.index)
    try:
        if species is not None:
            X = multicomponent_descriptors(
                atoms, species, k, cutoff, source=frame.source, frame=frame.index
            )
        else:
            X = structure_descriptors(atoms, k, cutoff, source=frame.source, frame=frame.index)
    except InputError as exc:
        if rescale_volume is None:
            raise
        # the cell refused is the rescaled one: say so
        raise InputError(
            f"{exc.reason} (after --rescale-volume {rescale_volume:g} Å^3/atom)",
            source=exc.source,
            frame=exc.frame,
            atom=exc.atom,
        ) from None
    # The first column is the nearest neighbour's term, > 0 exactly when there is one.
    if len(atoms) > 1 and not X[:, 0].any():
        nearest = _nearest_pair(atoms, cutoff) + (
            " after rescaling" if rescale_volume is not None else ""
        )
        # A legitimate frame can be this (a dimer scanned beyond the cutoff), so it is
        # a warning; an input in which no environment at all is measured is refused.
        warnings.warn(
            EmptyFrameWarning(
                f"{frame.source}: frame {frame.index}: no atom has a neighbour within the "
                f"cutoff {cutoff:g} Å ({nearest}): its descriptors are all zero"
            ),
            stacklevel=2,
        )
    return X


def _nearest_pair(atoms, cutoff: float) -> str:
    """'the smallest interatomic distance is X Å', searched out to a few times the cutoff."""
    radius = 2.0 * cutoff
    while radius <= 4.0 * params.MAX_CUTOFF:
        try:
            d = min_distance(atoms, radius)
        except InputError:  # too many periodic images that far: stop looking
            break
        if d <= radius or not atoms.pbc.any():
            return f"the smallest interatomic distance is {d:.3g} Å"
        radius *= 2.0
    return f"no two atoms are within {radius / 2.0:g} Å"


def padded_environments(X, k: int) -> int:
    """Number of environments with fewer than `k` neighbours within the cutoff.

    Their rows are padded with zeros (virtual neighbours at infinite
    distance): the k-th neighbour term ``X[:, k-1]`` is zero exactly when the
    cutoff sphere holds fewer than k atoms. Works on the plain block of a
    multicomponent descriptor too.

    Parameters
    ----------
    X : array, shape (n_environments, width >= 2k-1), 1/Å
    k : int, the k the descriptors were computed with.
    """
    X = np.asarray(X)
    k = params.check("k", k)
    if X.ndim != 2 or X.shape[1] < 2 * k - 1:
        raise InputError(
            f"descriptors of shape {X.shape} were not computed with k={k} "
            f"(need at least {2 * k - 1} columns)"
        )
    return int(np.count_nonzero(X[:, k - 1] == 0))


def padding_note(X, k: int, cutoff: float) -> str | None:
    """A one-line note when some environments have fewer than k neighbours, else None.

    E.g. ``"12 of 108 environments have fewer than k=32 neighbours within rc=3 Å
    (padded with zeros)"``.
    """
    n = padded_environments(X, k)
    if n == 0:
        return None
    return (
        f"{n} of {len(X)} environments have fewer than k={int(k)} neighbours within "
        f"rc={float(cutoff):g} Å (padded with zeros)"
    )
