"""Per-atom dH of a trajectory against a reference, streamed frame by frame (SPEC.md section 5).

Descriptors of one frame are computed, turned into dH with `Reference.delta_entropy`
(so any kernel backend configured on the reference is used) and handed to the
caller before the next frame is read: memory does not grow with the length of
the trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, frame_descriptors, validate_parameters
from atominfo.errors import InputError
from atominfo.structures.frames import iter_frames
from atominfo.reference import Reference


@dataclass
class FrameDH:
    """dH of every atom of one frame.

    Attributes
    ----------
    number : int
        Frame number over all inputs, from 0.
    source : str
        File the frame was read from ('<memory>' for Atoms).
    source_frame : int
        Frame number within that file.
    atoms : ase.Atoms
        The structure.
    dH : ndarray, shape (n_atoms,) or (n_bandwidths, n_atoms)
        Differential entropy of each atom against the reference, nats.
    """

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray

    def summary(self) -> dict:
        """Row of the per-frame table: atoms, fraction with dH > 0, max and mean dH (nats)."""
        return {"frame": self.number, "source": self.source,
                "source_frame": self.source_frame, **frame_statistics(self.dH)}


def frame_statistics(dH) -> dict:
    """Number of atoms, fraction with dH > 0 ('novelty'), max and mean dH (nats).

    One value per bandwidth (a list) when `dH` has one row per bandwidth.
    """
    dH = np.asarray(dH, dtype=float)
    rows = np.atleast_2d(dH)
    stats = {"novelty": (rows > 0).mean(axis=1), "max_dH": rows.max(axis=1),
             "mean_dH": rows.mean(axis=1)}
    if dH.ndim == 1:
        stats = {key: float(v[0]) for key, v in stats.items()}
    else:
        stats = {key: v.tolist() for key, v in stats.items()}
    return {"atoms": int(rows.shape[1]), **stats}


def iter_trajectory_dh(structures, reference: Reference, *, index=":", format=None,
                       k: int | None = None, cutoff: float | None = None,
                       rescale_volume: float | None = None,
                       species: Sequence[str] | None = None, skip: int = 0,
                       progress: Callable[[int], None] | None = None) -> Iterator[FrameDH]:
    """Yield the per-atom dH of each frame of `structures`, one frame at a time.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
        The trajectory; files are read frame by frame with ASE.
    reference : Reference
        Training environments and bandwidth(s); its kernel engine options apply.
    index, format : ASE frame selection and file format.
    k, cutoff : descriptor parameters; default to the reference's, else 32 and 5 Å.
    rescale_volume : float, optional
        Rescale each frame to this volume per atom (Å^3) first.
    species : list of str, optional
        Experimental multicomponent descriptor with these species.
    skip : int
        Number of leading frames to pass over without computing anything
        (used to resume an interrupted run).
    progress : callable, optional
        Called with the number of atoms of each finished frame.

    Yields
    ------
    FrameDH
    """
    k = int(k if k is not None else (reference.k or DEFAULT_K))
    cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
    validate_parameters(k, cutoff)
    for number, frame in enumerate(iter_frames(structures, index=index, format=format)):
        if number < skip:
            continue
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=rescale_volume)
        try:
            dH = reference.delta_entropy(Y)
        except InputError as exc:
            raise exc.located(frame.source, frame.index) from None
        if progress is not None:
            progress(len(frame.atoms))
        yield FrameDH(number, frame.source, frame.index, frame.atoms, dH)


def trajectory_dh(structures, reference: Reference, **options) -> dict:
    """Per-frame table of a whole trajectory (per-atom values are not kept).

    Same parameters as `iter_trajectory_dh`. Returns a dict of arrays, one
    entry per frame: 'frame', 'atoms', 'novelty' (fraction with dH > 0),
    'max_dH' and 'mean_dH' (nats; shape (n_frames, n_bandwidths) for several
    bandwidths), plus 'source' and 'source_frame' lists.
    """
    rows = [f.summary() for f in iter_trajectory_dh(structures, reference, **options)]
    if not rows:
        raise InputError("trajectory has no frames")
    return {key: (np.array([r[key] for r in rows]) if key not in ("source",)
                  else [r[key] for r in rows]) for key in rows[0]}


def count_atoms(paths, index=":", format=None) -> int | None:
    """Total number of atoms in the selected frames, by a quick scan of the text.

    Only for extxyz/xyz and LAMMPS text dumps (others: None). Used for the
    progress bar's time left; never raises.
    """
    from ase.io.formats import string2index

    try:
        selection = string2index(index) if isinstance(index, str) else index
        total = 0
        for path in paths:
            name = str(path)
            fmt = format or _guess_format(name)
            if fmt in ("extxyz", "xyz"):
                counts = _xyz_counts(name)
            elif fmt == "lammps-dump-text":
                counts = _lammps_counts(name)
            else:
                return None
            chosen = counts[selection] if isinstance(selection, slice) else [counts[selection]]
            total += int(sum(chosen))
        return total
    except Exception:  # a progress estimate must never break a run
        return None


def _guess_format(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith((".extxyz", ".xyz")):
        return "extxyz"
    if "lammpstrj" in lower or lower.endswith(".dump"):
        return "lammps-dump-text"
    return None


def _xyz_counts(name: str) -> list[int]:
    counts = []
    with open(name, "rb") as fh:
        while True:
            line = fh.readline()
            if not line:
                break
            if not line.strip():
                continue
            n = int(line)
            counts.append(n)
            for _ in range(n + 1):
                fh.readline()
    return counts


def _lammps_counts(name: str) -> list[int]:
    counts = []
    with open(name, "rb") as fh:
        for line in fh:
            if line.startswith(b"ITEM: NUMBER OF ATOMS"):
                counts.append(int(fh.readline()))
    return counts


def load_reference(paths: Sequence[Path], h, *, k: int = DEFAULT_K,
                   cutoff: float = DEFAULT_CUTOFF, descriptor_options=None,
                   progress=None, **engine) -> Reference:
    """A `Reference` from structure files, or from saved descriptors (.npy, or .npz with 'X').

    Saved descriptors must have been computed with the same k (the width is checked
    when the reference is queried).
    """
    paths = [Path(p) for p in paths]
    saved = [p.suffix in (".npy", ".npz") for p in paths]
    if any(saved) and not all(saved):
        raise InputError("--ref: give either structure files or saved descriptors, not both")
    if not all(saved):
        from atominfo.descriptor import descriptors

        X = descriptors([str(p) for p in paths], k, cutoff, progress=progress,
                        **(descriptor_options or {}))
        return Reference(X, h, k=k, cutoff=cutoff, **engine)
    blocks = []
    for p in paths:
        if not p.exists():
            raise InputError("file not found", source=str(p))
        try:
            data = np.load(p, allow_pickle=False)
            X = data["X"] if p.suffix == ".npz" else data
        except Exception as exc:
            raise InputError(f"cannot read saved descriptors ({type(exc).__name__})",
                             source=str(p)) from None
        blocks.append(np.asarray(X, dtype=np.float64))
    return Reference(np.concatenate(blocks), h, k=k, cutoff=cutoff, **engine)
