"""`atominfo watch` as one function: dH of each new frame of a file still being written.

`watch` follows a trajectory that a running simulation writes (a LAMMPS
text dump or extxyz; `atominfo.structures.follow`), computes dH of every
atom of each complete frame against a `Reference`, and flags a frame whose
novel fraction or largest dH crosses an alarm threshold::

    from atominfo import Reference
    from atominfo.workflows.watch import watch

    ref = Reference.from_files("train.extxyz", h=0.015)
    run = watch("md.lammpstrj", ref, idle_timeout=60, alarm_novelty=0.1)
    run.to_pandas()  # one row per frame: frame, timestep, atoms, novelty, max_dH, mean_dH, alarm
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading

__all__ = [
    "COLUMNS",
    "FALSE_ALARM_COLUMNS",
    "WatchOptions",
    "WatchRun",
    "check_alarm_band",
    "watch",
]

# A frame's row: its number in the file, the statistics of `frame_statistics`, the flag;
# with a false-alarm rate also the fraction flagged at it and the smallest p-value.
COLUMNS = ("frame", "timestep", "atoms", "novelty", "max_dH", "mean_dH", "alarm")
FALSE_ALARM_COLUMNS = ("flagged", "min_p")


def check_alarm_band(above: float | None, below: float | None, labels=("above", "below")) -> None:
    """InputError when the low alarm `below` is above the high one `above`: every frame
    would be flagged. `labels` name them (``--alarm-novelty``, ``--alarm-novelty-below``)."""
    if above is not None and below is not None and below > above:
        raise InputError(
            f"{labels[1]} {below:g} is above {labels[0]} {above:g}: every frame would be flagged"
        )


@dataclass(frozen=True)
class WatchOptions:
    """How `watch` follows a file and when it flags a frame; validated when made.

    Parameters
    ----------
    poll : float, seconds between checks for new frames (> 0, at most a day).
    idle_timeout : float, optional; stop after this many seconds without a new
        frame (None: never).
    max_frames : int, optional; stop after this many frames (0: none).
    new_only : bool, skip the frames already in the file.
    alarm_novelty : float in [0, 1], optional; flag a frame whose fraction of
        novel atoms (dH > 0, or p <= false_alarm with a rate) exceeds this.
    alarm_novelty_below : float in [0, 1], optional; flag a frame whose
        fraction falls below this (a transition toward the reference).
    alarm_dh : float, optional; flag a frame whose largest dH (nats) exceeds this.
    stop_on_alarm : bool, stop at the first flagged frame.
    false_alarm : float in (0, 1), optional; an atom is novel when its conformal
        p-value is at most this (`Reference.p_values`) instead of when dH > 0:
        of atoms drawn like the reference's, at most this fraction on average.
    """

    poll: float = 1.0
    idle_timeout: float | None = None
    max_frames: int | None = None
    new_only: bool = False
    alarm_novelty: float | None = None
    alarm_novelty_below: float | None = None
    alarm_dh: float | None = None
    stop_on_alarm: bool = False
    false_alarm: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "poll", params.check("poll", self.poll))
        for name, kind in (
            ("idle_timeout", "idle_timeout"),
            ("max_frames", "max_frames"),
            ("alarm_novelty", "alarm_novelty"),
            ("alarm_novelty_below", "alarm_novelty"),
            ("alarm_dh", "alarm_dh"),
            ("false_alarm", "false_alarm"),
        ):
            value = params.check_optional(kind, getattr(self, name), label=name)
            object.__setattr__(self, name, value)
        for name in ("new_only", "stop_on_alarm"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_alarm_band(
            self.alarm_novelty, self.alarm_novelty_below, ("alarm_novelty", "alarm_novelty_below")
        )

    @staticmethod
    def novel(row: dict):
        """The frame's novel fraction: flagged at the false-alarm rate where set, else dH > 0."""
        return row["flagged"] if "flagged" in row else row["novelty"]

    def below(self, row: dict) -> bool:
        """Whether the frame's novel fraction is below `alarm_novelty_below`."""
        return (
            self.alarm_novelty_below is not None
            and self.novel(row) is not None
            and self.novel(row) < self.alarm_novelty_below
        )

    def alarm(self, row: dict) -> bool:
        """Whether a frame (a row of `WatchRun.frames`) crosses an alarm threshold; a
        largest dH that is not finite (None), or an atom of a species the reference
        lacks (``absent``, --species: dH +inf), crosses `alarm_dh`."""
        return bool(
            (self.alarm_novelty is not None and (self.novel(row) or 0.0) > self.alarm_novelty)
            or self.below(row)
            or (
                self.alarm_dh is not None
                and (row["max_dH"] is None or row["max_dH"] > self.alarm_dh or row.get("absent"))
            )
        )


_OPTION_KEYWORDS = frozenset(f.name for f in fields(WatchOptions))


@dataclass
class WatchRun(Result):
    """What `watch` saw.

    Attributes
    ----------
    file : str, the file followed.
    scored : int, frames scored.
    alarms : int, frames flagged.
    frames : list of dict, one per frame scored (none with ``keep_frames=False``):
        frame (number in the file), timestep (None when the file has none),
        atoms, novelty (fraction with dH > 0), max_dH and mean_dH (nats; None
        where not finite), alarm; with a false-alarm rate also flagged (fraction
        with p <= rate) and min_p (the frame's smallest p-value).
    stopped_on_alarm : bool, whether a flagged frame ended the watch (`stop_on_alarm`).
    """

    _fields_shown = ("file", "scored", "alarms", "stopped_on_alarm")
    file: str
    scored: int = 0
    alarms: int = 0
    frames: list = field(default_factory=list)
    stopped_on_alarm: bool = False

    def columns(self) -> dict[str, list]:
        """The frames as lists, one per column (`COLUMNS`; `FALSE_ALARM_COLUMNS` with a rate)."""
        extra = FALSE_ALARM_COLUMNS if self.frames and "flagged" in self.frames[0] else ()
        return {name: [row[name] for row in self.frames] for name in (*COLUMNS, *extra)}

    def to_pandas(self):
        """The frames as a `pandas.DataFrame`, one row per frame."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "WatchRun")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = f"WatchRun: {self.file}, {len(self.frames)} frames, {self.alarms} flagged"
        return html_table(self.columns(), caption)


def watch(
    path,
    reference,
    options: WatchOptions | None = None,
    *,
    spec: DescriptorSpec | None = None,
    reading: Reading | None = None,
    on_frame: Callable[[dict], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    keep_frames: bool = True,
    **keywords,
) -> WatchRun:
    """dH of each new frame of `path`, as frames complete, until the file goes idle.

    Parameters
    ----------
    path : file name of a LAMMPS text dump or extxyz file; it need not exist
        yet (it is waited for within ``options.idle_timeout``).
    reference : `Reference` with one bandwidth.
    options : `WatchOptions` (polling, stopping, alarm thresholds).
    spec : `DescriptorSpec`, k and cutoff (default: the reference's).
    reading : `Reading`, the format (default: from the name) and type map;
        every new frame is read, so it takes no index.
    on_frame : callable, optional; called with each frame's row (see `WatchRun.frames`).
    on_wait : callable, optional; called before each wait for more data.
    keep_frames : bool, keep each frame's row in `WatchRun.frames` (False: the
        rows only go to `on_frame`, for a watch that runs for days).
    **keywords : the fields of `WatchOptions` (``idle_timeout=``,
        ``alarm_novelty=``, ...), folded into `options`.

    Returns
    -------
    WatchRun; none scored when no frame completed within the idle timeout.

    Raises
    ------
    InputError
        For bad options, a file that cannot be followed (`follow_frames`: a
        directory, an unknown format, bad text, a frame ASE cannot parse), or
        a frame that cannot be scored.
    """
    from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K
    from atominfo.structures.follow import follow_frames
    from atominfo.structures.frames import validate_atoms
    from atominfo.workflows.lammps_monitor import check_reference
    from atominfo.workflows.species_dh import SpeciesReference

    options, spec, reading = _settings(options, spec, reading, keywords)
    if not isinstance(reference, SpeciesReference):  # (a SpeciesReference: per species)
        check_reference(reference)
    rate = options.false_alarm
    if rate is not None:  # calibrated once, before the first frame (kept in the Reference)
        rate = reference.calibration().check_rate(rate)
    k = int(spec.k if spec.k is not None else (reference.k or DEFAULT_K))
    cutoff = float(spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
    run = WatchRun(file=str(path))
    if options.max_frames == 0:
        return run

    def sleep(seconds: float) -> None:
        if on_wait is not None:
            on_wait()
        time.sleep(seconds)  # looked up at each call: tests replace it

    frames = follow_frames(
        path,
        reading.format,
        poll=options.poll,
        idle_timeout=options.idle_timeout,
        from_start=not options.new_only,
        type_map=reading.type_map,
        sleep=sleep,
    )
    warned: set[str] = set()  # (--species: the absent species warned about)
    for number, atoms in frames:
        validate_atoms(atoms, str(path), number)
        row = _row(reference, atoms, (str(path), number), (k, cutoff), rate, warned)
        row["alarm"] = options.alarm(row)
        run.scored += 1
        run.alarms += row["alarm"]
        if keep_frames:
            run.frames.append(row)
        if on_frame is not None:
            on_frame(row)
        if row["alarm"] and options.stop_on_alarm:
            run.stopped_on_alarm = True
            break
        if options.max_frames is not None and run.scored >= options.max_frames:
            break
    return run


def _row(reference, atoms, where: tuple, kc: tuple, rate, warned: set) -> dict[str, Any]:
    """A watched frame's row (before its alarm): frame, timestep and its statistics
    against `reference`; with a `SpeciesReference`, each atom against its own species
    (per-species columns, and ``absent``: atoms of a species the reference lacks)."""
    from atominfo.descriptor import structure_descriptors
    from atominfo.reference.conformal import flag
    from atominfo.workflows.species_dh import SpeciesReference, structure_row
    from atominfo.workflows.trajectory import frame_statistics

    (source, number), (k, cutoff) = where, kc
    row: dict[str, Any] = {"frame": number, "timestep": atoms.info.get("timestep")}
    if isinstance(reference, SpeciesReference):
        return {**row, **structure_row(reference, atoms, where, warned, rate)}
    X = structure_descriptors(atoms, k, cutoff, source=source, frame=number)
    row.update(frame_statistics(reference.delta_entropy(X)))
    if rate is not None:
        p = reference.p_values(X)
        row.update(flagged=float(flag(p, rate).mean()), min_p=float(p.min()))
    return row


def _settings(options, spec, reading, keywords: dict):
    """(options, spec, reading) with their defaults and `keywords` folded in, checked."""
    unknown = set(keywords) - _OPTION_KEYWORDS
    if unknown:
        raise TypeError(f"watch() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if options is None:
        options = WatchOptions(**keywords)
    elif keywords:
        options = replace(options, **keywords)
    spec = DescriptorSpec() if spec is None else spec
    reading = Reading() if reading is None else reading
    if spec.rescale_volume is not None or spec.species is not None:
        raise InputError(
            "watch describes frames as they are: a descriptor spec with "
            "rescale_volume or species is not supported"
        )
    if reading.index != ":":
        raise InputError(
            f"watch reads every new frame: a reading with index {reading.index!r} is not supported"
        )
    return options, spec, reading
