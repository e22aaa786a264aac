"""Descriptors of every atom of every structure, with the frame each row came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.descriptor.multicomponent import multicomponent_descriptors
from atominfo.errors import check_positive
from atominfo.structures.frames import Frame, iter_frames


@dataclass
class DescriptorIndex:
    """Where each descriptor row comes from: `frame[r]`, `atom[r]`, and source names."""

    frame: np.ndarray  # global frame number (0..n_frames-1) over all inputs
    atom: np.ndarray  # atom number within its frame
    sources: list[str]  # per global frame, the file it was read from
    source_frames: list[int]  # per global frame, its frame number within that file

    def __len__(self) -> int:
        return len(self.frame)

    def locate(self, row: int) -> tuple[str, int, int]:
        """(file, frame within file, atom) of descriptor row `row`."""
        f = int(self.frame[row])
        return self.sources[f], self.source_frames[f], int(self.atom[row])


def validate_parameters(k, cutoff) -> None:
    check_positive("k", k, minimum=2, integer=True)
    check_positive("cutoff", cutoff)


def descriptors(structures, k: int = DEFAULT_K, cutoff: float = DEFAULT_CUTOFF, *,
                index=":", format=None, multicomponent: bool | Sequence[str] = False,
                rescale_volume: float | None = None, return_index: bool = False,
                progress: Callable[[int], None] | None = None):
    """QUESTS descriptors of every atom of every structure.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
        Files are read with ASE (any format it reads), frame by frame.
    k : int
        Number of nearest neighbours (>= 2).
    cutoff : float
        Cutoff radius rc in Å.
    index, format : ASE frame selection and file format, for file inputs.
    multicomponent : bool or list of str
        Experimental. True: append per-species descriptors for the sorted
        species of all structures; a list fixes the species (and their order).
    rescale_volume : float, optional
        Rescale every structure isotropically to this volume per atom (Å^3)
        first (SPEC.md section 2).
    return_index : bool
        Also return a `DescriptorIndex` mapping rows to (frame, atom).
    progress : callable, optional
        Called with the number of atoms done after each structure.

    Returns
    -------
    X : ndarray, shape (n_atoms_total, 2k-1), float64, 1/Å
    index : DescriptorIndex, only if `return_index`
    """
    validate_parameters(k, cutoff)
    k = int(k)
    frames = iter_frames(structures, index=index, format=format)
    species = None
    if multicomponent is True:  # needs every frame's species first
        frames = list(frames)
        species = sorted({s for f in frames for s in f.atoms.get_chemical_symbols()})
    elif multicomponent:
        species = list(multicomponent)
    blocks, counts, sources, source_frames = [], [], [], []
    for f in frames:  # streamed: only descriptors are kept, not the structures
        blocks.append(frame_descriptors(f, k, cutoff, species=species,
                                        rescale_volume=rescale_volume))
        counts.append(len(f.atoms))
        sources.append(f.source)
        source_frames.append(f.index)
        if progress is not None:
            progress(len(f.atoms))
    X = np.concatenate(blocks, axis=0)
    if not return_index:
        return X
    idx = DescriptorIndex(
        frame=np.repeat(np.arange(len(counts)), counts),
        atom=np.concatenate([np.arange(c) for c in counts]),
        sources=sources,
        source_frames=source_frames,
    )
    return X, idx


def frame_descriptors(frame: Frame, k: int, cutoff: float, *, species=None,
                      rescale_volume: float | None = None) -> np.ndarray:
    """Descriptors of one `Frame`, with optional rescaling and species blocks."""
    atoms = frame.atoms
    if rescale_volume is not None:
        from atominfo.structures.rescale import rescale_to_volume

        atoms = rescale_to_volume(atoms, rescale_volume, source=frame.source, frame=frame.index)
    if species is not None:
        return multicomponent_descriptors(atoms, species, k, cutoff,
                                          source=frame.source, frame=frame.index)
    return structure_descriptors(atoms, k, cutoff, source=frame.source, frame=frame.index)
