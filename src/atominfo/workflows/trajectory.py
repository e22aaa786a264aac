"""Per-atom dH of a trajectory against a reference, streamed frame by frame.

See docs/method.md, section 5.3.

Descriptors of one frame are computed, turned into dH with `Reference.delta_entropy`
(so any kernel backend configured on the reference is used) and handed to the
caller before the next frame is read: memory does not grow with the length of
the trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, frame_descriptors, validate_parameters
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.frames import iter_frames
from atominfo.structures.scan import count_atoms  # noqa: F401  (re-exported)


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
    timestep : int or None
        MD timestep of the frame where the input gives one (LAMMPS dumps:
        ``ITEM: TIMESTEP``; extxyz: a ``timestep`` key), else None.
    time : float or None
        Simulation time where the input gives one (a ``time`` key of the
        frame's info, in the file's unit), else None.
    """

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray
    timestep: int | None = None
    time: float | None = None

    def summary(self) -> dict:
        """Row of the per-frame table: timestep, time, atoms, fraction with dH > 0, max and
        mean dH (nats); None where unknown or not finite."""
        return {
            "frame": self.number,
            "source": self.source,
            "source_frame": self.source_frame,
            "timestep": self.timestep,
            "time": self.time,
            **frame_statistics(self.dH),
        }


def frame_time(atoms: Atoms) -> tuple[int | None, float | None]:
    """(timestep, time) of a frame from its info, each None when absent or not a number.

    ASE puts the ``ITEM: TIMESTEP`` of a LAMMPS text dump in ``info['timestep']``;
    extxyz frames carry whatever keys they were written with.
    """
    import math
    import numbers

    step, time = atoms.info.get("timestep"), atoms.info.get("time")
    step = int(step) if isinstance(step, numbers.Integral) and not isinstance(step, bool) else None
    time = (
        float(time)
        if isinstance(time, numbers.Real)
        and not isinstance(time, bool)
        and math.isfinite(float(time))
        else None
    )
    return step, time


def frame_statistics(dH) -> dict:
    """Number of atoms, fraction with dH > 0 ('novelty'), max and mean dH (nats).

    Parameters
    ----------
    dH : array, shape (n_atoms,) or (n_bandwidths, n_atoms), nats

    Returns
    -------
    dict with 'atoms', 'novelty', 'max_dH', 'mean_dH': one value per bandwidth
    (a list) when `dH` has one row per bandwidth; None for a value that is
    not finite, so the dict is valid JSON.

    Raises
    ------
    InputError
        For no atoms (there is no fraction or maximum of nothing).
    """
    dH = np.asarray(dH, dtype=float)
    rows = np.atleast_2d(dH)
    if dH.ndim > 2 or rows.shape[1] == 0:
        raise InputError(
            f"dH must hold at least one atom (shape (n_atoms,) or "
            f"(n_bandwidths, n_atoms)), got shape {dH.shape}"
        )
    with np.errstate(invalid="ignore"):
        stats = {
            "novelty": (rows > 0).mean(axis=1),
            "max_dH": rows.max(axis=1),
            "mean_dH": rows.mean(axis=1),
        }
    stats = {key: [float(x) if np.isfinite(x) else None for x in v] for key, v in stats.items()}
    if dH.ndim == 1:
        stats = {key: v[0] for key, v in stats.items()}
    return {"atoms": int(rows.shape[1]), **stats}


class Scorer(Protocol):
    """What `iter_trajectory_dh` needs of a reference: descriptor settings and dH."""

    k: int | None
    cutoff: float | None

    def delta_entropy(self, Y) -> np.ndarray: ...


def iter_trajectory_dh(
    structures,
    reference: Scorer,
    *,
    index=":",
    format=None,
    k: int | None = None,
    cutoff: float | None = None,
    rescale_volume: float | None = None,
    species: Sequence[str] | None = None,
    skip: int = 0,
    progress: Callable[[int], None] | None = None,
    type_map=None,
) -> Iterator[FrameDH]:
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
    type_map : dict or str, optional
        Elements of numeric LAMMPS atom types (``{1: "Cu"}`` or ``"1=Cu,2=O"``).

    Yields
    ------
    FrameDH
        With the frame's MD timestep and time where the input gives them.
    """
    from atominfo import params

    k = int(k if k is not None else (reference.k or DEFAULT_K))
    cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
    validate_parameters(k, cutoff)
    skip = params.check("skip", skip)
    rescale_volume = params.check_optional("rescale_volume", rescale_volume)
    frames = iter_frames(structures, index=index, format=format, type_map=type_map)
    for number, frame in enumerate(frames):
        if number < skip:
            continue
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=rescale_volume)
        try:
            dH = reference.delta_entropy(Y)
        except InputError as exc:
            raise exc.located(frame.source, frame.index) from None
        if progress is not None:
            progress(len(frame.atoms))
        yield FrameDH(number, frame.source, frame.index, frame.atoms, dH, *frame_time(frame.atoms))


def iter_self_dh(
    structures,
    h,
    *,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    index=":",
    format=None,
    type_map=None,
    rescale_volume: float | None = None,
    species: Sequence[str] | None = None,
    engine=None,
    skip: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Iterator[FrameDH]:
    """Yield the per-atom dH of each frame against ALL EARLIER frames of `structures`.

    Frame t is scored with the exact sum ``dH(Y_t | concat(Y_0, ..., Y_{t-1}))``
    (`atominfo.delta_entropy`): dH > 0 marks an environment that the trajectory
    has not visited before ("novelty against its own past").

    Frame 0 has no past, so it has no dH: it is never yielded (it only becomes
    the past of frame 1). The first `FrameDH` is therefore frame 1, and a
    trajectory of one frame yields nothing.

    Frames are read one at a time, but the descriptors of every frame read so
    far are kept: memory grows as (atoms so far) x (descriptor width) x 8 bytes
    (about 0.5 kB per atom for k = 32), and the work of frame t grows with the
    number of past atoms (quadratic in the trajectory length overall). This is
    inherent to comparing with the whole past.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
        The trajectory, in order; files are read frame by frame with ASE.
    h : float or sequence of floats
        Bandwidth(s), 1/Å.
    k, cutoff : descriptor parameters (neighbours, cutoff radius in Å).
    index, format : ASE frame selection and file format.
    type_map : dict or str, optional
        Elements of numeric LAMMPS atom types (``{1: "Cu"}`` or ``"1=Cu,2=O"``).
    rescale_volume : float, optional
        Rescale each frame to this volume per atom (Å^3) first.
    species : list of str, optional
        Experimental multicomponent descriptor with these species.
    engine : EngineOptions, optional
        Kernel engine for the sums (default: CPU).
    skip : int
        Frames numbered below `skip` are not scored or yielded, but their
        descriptors are still computed: they are the past of later frames
        (used to resume an interrupted run; the results do not depend on it).
    progress : callable, optional
        Called with the number of atoms of every frame read (scored or not).

    Yields
    ------
    FrameDH
        Frames 1, 2, ... (from ``max(skip, 1)``); `dH` has shape (n_atoms,), or
        (n_bandwidths, n_atoms) for a sequence of bandwidths, nats.
    """
    from atominfo import params
    from atominfo.information import bandwidths, delta_entropy

    k, cutoff = int(k), float(cutoff)
    validate_parameters(k, cutoff)
    bandwidths(h)  # refuse a bad bandwidth before reading anything
    skip = params.check("skip", skip)
    rescale_volume = params.check_optional("rescale_volume", rescale_volume)
    past: np.ndarray | None = None  # capacity doubles: appending is amortised O(1) per row
    n_past = 0
    frames = iter_frames(structures, index=index, format=format, type_map=type_map)
    for number, frame in enumerate(frames):
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=rescale_volume)
        scored = number >= max(skip, 1)
        if scored:
            assert past is not None  # frame 0 was appended
            try:
                dH = delta_entropy(Y, past[:n_past], h, engine=engine)
            except InputError as exc:
                raise exc.located(frame.source, frame.index) from None
        if past is None or n_past + len(Y) > len(past):
            grown = np.empty((max(2 * n_past, n_past + len(Y)), Y.shape[1]), dtype=np.float64)
            if past is not None:
                grown[:n_past] = past[:n_past]
            past = grown
        past[n_past : n_past + len(Y)] = Y
        n_past += len(Y)
        if progress is not None:
            progress(len(frame.atoms))
        if scored:
            yield FrameDH(
                number, frame.source, frame.index, frame.atoms, dH, *frame_time(frame.atoms)
            )


def trajectory_dh(structures, reference: Reference, **options) -> dict:
    """Per-frame table of a whole trajectory (per-atom values are not kept).

    Same parameters as `iter_trajectory_dh`. Returns a dict of arrays, one
    entry per frame: 'frame', 'atoms', 'novelty' (fraction with dH > 0),
    'max_dH' and 'mean_dH' (nats; shape (n_frames, n_bandwidths) for several
    bandwidths), plus 'source', 'source_frame', 'timestep' and 'time' lists
    (None where unknown).
    """
    rows = [f.summary() for f in iter_trajectory_dh(structures, reference, **options)]
    if not rows:
        raise InputError("trajectory has no frames")
    lists = ("source", "timestep", "time")
    return {
        key: (
            np.array(
                [r[key] for r in rows],
                dtype=float if key in ("novelty", "max_dH", "mean_dH") else None,
            )
            if key not in lists
            else [r[key] for r in rows]
        )
        for key in rows[0]
    }
