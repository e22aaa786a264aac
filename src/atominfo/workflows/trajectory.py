"""Per-atom dH of a trajectory against a reference, streamed frame by frame.

See docs/method.md, section 5.3.

Descriptors of one frame are computed, turned into dH with `Reference.delta_entropy`
(so any kernel backend configured on the reference is used) and handed to the
caller before the next frame is read: memory does not grow with the length of
the trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from ase import Atoms

from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, frame_descriptors, validate_parameters
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.structures.frames import iter_frames


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
    p : ndarray or None
        Conformal p-value of each atom (`Reference.p_values`; shaped as dH)
        when asked for (``p_values=True``), else None.
    """

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray
    timestep: int | None = None
    time: float | None = None
    p: np.ndarray | None = None

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
    """What `iter_trajectory_dh` needs of a reference: descriptor settings, dH, and
    conformal p-values (asked for only with ``p_values=True``)."""

    k: int | None
    cutoff: float | None

    def delta_entropy(self, Y) -> np.ndarray: ...

    def p_values(self, Y) -> np.ndarray: ...


def iter_trajectory_dh(
    structures,
    reference: Scorer,
    *,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    skip: int = 0,
    progress: Callable[[int], None] | None = None,
    p_values: bool = False,
    **keywords,
) -> Iterator[FrameDH]:
    """Yield the per-atom dH of each frame of `structures`, one frame at a time.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
        The trajectory; files are read frame by frame with ASE.
    reference : Reference
        Training environments and bandwidth(s); its kernel engine options apply.
    reading : `atominfo.settings.Reading`, optional
        Frame selection, file format and LAMMPS type map (default: every frame,
        format from the file name).
    spec : `atominfo.settings.DescriptorSpec`, optional
        k and cutoff (default: the reference's, else 32 and 5 Å), rescale
        volume per atom (Å^3) and experimental multicomponent species.
    skip : int
        Number of leading frames to pass over without computing anything
        (used to resume an interrupted run).
    progress : callable, optional
        Called with the number of atoms of each finished frame.
    p_values : bool
        Also give each atom's conformal p-value (`FrameDH.p`, from
        ``reference.p_values``: novelty at a stated false-alarm rate).
    **keywords :
        Fields of `reading` and `spec` as separate keywords, as in earlier
        versions (``index``, ``format``, ``type_map``; ``k``, ``cutoff``,
        ``rescale_volume``, ``species``); they replace those of the bundles.

    Yields
    ------
    FrameDH
        With the frame's MD timestep and time where the input gives them.
    """
    from atominfo import params

    reading, spec = with_keywords(keywords, reading or Reading(), spec or DescriptorSpec())
    k = int(spec.k if spec.k is not None else (reference.k or DEFAULT_K))
    cutoff = float(spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
    validate_parameters(k, cutoff)
    skip = params.check("skip", skip)
    species = spec.kwargs()["species"]
    for number, frame in enumerate(iter_frames(structures, **reading.kwargs())):
        if number < skip:
            continue
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=spec.rescale_volume)
        try:
            dH = reference.delta_entropy(Y)
            p = reference.p_values(Y) if p_values else None
        except InputError as exc:
            raise exc.located(frame.source, frame.index) from None
        if progress is not None:
            progress(len(frame.atoms))
        step, time = frame_time(frame.atoms)
        yield FrameDH(number, frame.source, frame.index, frame.atoms, dH, step, time, p)


def iter_self_dh(
    structures,
    h,
    *,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    engine=None,
    skip: int = 0,
    progress: Callable[[int], None] | None = None,
    **keywords,
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
    reading : `atominfo.settings.Reading`, optional
        Frame selection, file format and LAMMPS type map.
    spec : `atominfo.settings.DescriptorSpec`, optional
        k and cutoff (default 32 and 5 Å), rescale volume per atom (Å^3) and
        experimental multicomponent species.
    engine : EngineOptions, optional
        Kernel engine for the sums (default: CPU).
    skip : int
        Frames numbered below `skip` are not scored or yielded, but their
        descriptors are still computed: they are the past of later frames
        (used to resume an interrupted run; the results do not depend on it).
    progress : callable, optional
        Called with the number of atoms of every frame read (scored or not).
    **keywords :
        Fields of `reading` and `spec` as separate keywords, as in earlier
        versions (``index``, ``format``, ``type_map``, ``k``, ``cutoff``,
        ``rescale_volume``, ``species``); they replace those of the bundles.

    Yields
    ------
    FrameDH
        Frames 1, 2, ... (from ``max(skip, 1)``); `dH` has shape (n_atoms,), or
        (n_bandwidths, n_atoms) for a sequence of bandwidths, nats.
    """
    from atominfo import params
    from atominfo.information import bandwidths, delta_entropy

    reading, spec = with_keywords(keywords, reading or Reading(), spec or DescriptorSpec())
    k = int(spec.k if spec.k is not None else DEFAULT_K)
    cutoff = float(spec.cutoff if spec.cutoff is not None else DEFAULT_CUTOFF)
    validate_parameters(k, cutoff)
    bandwidths(h)  # refuse a bad bandwidth before reading anything
    skip = params.check("skip", skip)
    species = spec.kwargs()["species"]
    past: np.ndarray | None = None  # capacity doubles: appending is amortised O(1) per row
    n_past = 0
    for number, frame in enumerate(iter_frames(structures, **reading.kwargs())):
        Y = frame_descriptors(frame, k, cutoff, species=species, rescale_volume=spec.rescale_volume)
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


# The per-frame columns of `TrajectoryDH`, in table order; the last three hold
# one value per bandwidth.
TRAJECTORY_COLUMNS = (
    "frame",
    "source",
    "source_frame",
    "timestep",
    "time",
    "atoms",
    "novelty",
    "max_dH",
    "mean_dH",
)
PER_BANDWIDTH = ("novelty", "max_dH", "mean_dH")


@dataclass
class TrajectoryDH(Result):
    """Per-frame dH of a whole trajectory (`trajectory_dh`): one entry per frame per column.

    Attributes
    ----------
    bandwidth : float or list of float, 1/Å.
    frame, source_frame, atoms : int arrays (n_frames,): frame number over all
        inputs, within its file, and atoms.
    source : list of str, the file of each frame.
    timestep, time : lists, None where the input gives none.
    novelty, max_dH, mean_dH : float arrays (n_frames,), or (n_frames,
        n_bandwidths) for several bandwidths: fraction with dH > 0, max and
        mean dH (nats; NaN where not finite).

    ``result["novelty"]`` reads a column by name; `columns` gives the table
    of ``atominfo dh --table`` (one column per bandwidth) and `to_pandas` the
    same as a `pandas.DataFrame`.
    """

    _fields_shown = ("bandwidth", "frame", "novelty", "max_dH")
    bandwidth: Any
    frame: np.ndarray
    source: list
    source_frame: np.ndarray
    timestep: list
    time: list
    atoms: np.ndarray
    novelty: np.ndarray
    max_dH: np.ndarray
    mean_dH: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, column: str):
        if column not in TRAJECTORY_COLUMNS:
            raise KeyError(f"{column!r}: the columns are {', '.join(TRAJECTORY_COLUMNS)}")
        return getattr(self, column)

    def columns(self) -> dict[str, list]:
        """The per-frame table as lists, named as in ``atominfo dh --table``: one
        column per bandwidth (``novelty_h0.01``, ...) for several bandwidths."""
        from atominfo.runs.stream import bandwidth_labels

        labels = bandwidth_labels(self.bandwidth)
        out: dict[str, list] = {}
        for name in TRAJECTORY_COLUMNS:
            values = self[name]
            if name not in PER_BANDWIDTH:
                out[name] = list(values.tolist() if isinstance(values, np.ndarray) else values)
                continue
            table = np.asarray(values, dtype=float).reshape(len(self), len(labels))
            for t, label in enumerate(labels):
                out[name + label] = table[:, t].tolist()
        return out

    def to_pandas(self):
        """The per-frame table (`columns`) as a `pandas.DataFrame`, one row per frame."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "TrajectoryDH")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        frames = f"{len(self)} frame" + ("" if len(self) == 1 else "s")
        h = ", ".join(f"{v:g}" for v in np.atleast_1d(self.bandwidth))
        caption = f"TrajectoryDH: {frames}, h = {h} 1/Å"
        return html_table(self.columns(), caption)


def trajectory_dh(structures, reference: Reference, **options) -> TrajectoryDH:
    """Per-frame table of a whole trajectory (per-atom values are not kept).

    Same parameters as `iter_trajectory_dh` (`reading`, `spec`, `skip`,
    `progress`, or the separate keywords). Returns a `TrajectoryDH`: columns
    'frame', 'atoms', 'novelty' (fraction with dH > 0), 'max_dH' and
    'mean_dH' (nats; shape (n_frames, n_bandwidths) for several bandwidths),
    plus 'source', 'source_frame', 'timestep' and 'time' (None where unknown);
    ``table["novelty"]`` reads one, ``table.to_pandas()`` gives them all.
    """
    rows = [f.summary() for f in iter_trajectory_dh(structures, reference, **options)]
    if not rows:
        raise InputError("trajectory has no frames")

    def listed(key: str) -> list:
        return [r[key] for r in rows]

    def array(key: str) -> np.ndarray:
        return np.array(listed(key), dtype=float if key in PER_BANDWIDTH else None)

    return TrajectoryDH(
        bandwidth=reference.h,
        frame=array("frame"),
        source=listed("source"),
        source_frame=array("source_frame"),
        timestep=listed("timestep"),
        time=listed("time"),
        atoms=array("atoms"),
        novelty=array("novelty"),
        max_dH=array("max_dH"),
        mean_dH=array("mean_dH"),
    )
