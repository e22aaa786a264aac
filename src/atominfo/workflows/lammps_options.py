"""The knobs of the LAMMPS monitor, validated once: `MonitorOptions`.

`LammpsMonitor` and `run_script` take a `MonitorOptions` (how often to
check, the thresholds, whether to halt, the type map, the per-atom
property's name) and a `atominfo.settings.DescriptorSpec` (k, cutoff); their
former keyword arguments (``every=``, ``max_dH=``, ``k=``, ...) fold into
these objects (`monitor_settings`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from atominfo import params
from atominfo.errors import InputError
from atominfo.settings import DescriptorSpec

__all__ = [
    "EXTRACT_MODES",
    "EXTRACT_SUFFIXES",
    "MAX_EVERY",
    "MonitorOptions",
    "check_every",
    "extract_path",
    "monitor_settings",
]

# Largest check interval: fix external takes it as a 32-bit integer.
MAX_EVERY = 2**31 - 1
# The extracted frames are extended XYZ.
EXTRACT_SUFFIXES = (".extxyz", ".xyz")
# What is extracted of a crossing frame: cut-outs (as `atominfo extract --mode`) or the frame.
EXTRACT_MODES = ("cluster", "cell", "both", "frame")


def check_every(every: int, label: str = "every") -> int:
    """`every` as a check interval LAMMPS can count (1 to `MAX_EVERY` steps); InputError
    naming `label` (``--every`` on the command line) otherwise."""
    every = params.check("interval", every, label=label)
    if every > MAX_EVERY:
        raise InputError(
            f"{label} must be <= {MAX_EVERY} (LAMMPS counts the steps between "
            f"checks in 32 bits), got {every}"
        )
    return every


@dataclass(frozen=True)
class MonitorOptions:
    """How `LammpsMonitor` checks a run; validated when made (`atominfo.params`).

    Parameters
    ----------
    every : int
        Check every this many steps (timesteps that are multiples of it,
        including the first step of each run when it is one), 1 to `MAX_EVERY`.
    max_novelty : float in [0, 1], optional
        Threshold on the fraction of atoms with dH > 0 (with `false_alarm`: with p
        <= false_alarm).
    max_dH : float, optional
        Threshold on the largest dH, nats.
    halt : bool
        When a check crosses a threshold (fraction > `max_novelty` or largest
        dH > `max_dH`), end the run at the end of that step (True, default)
        or go on (False), extracting every crossing frame.
    type_map : mapping int -> str or '1=Cu,2=O', optional
        Elements of the LAMMPS types (default: recognised from the masses);
        kept as ``{type: symbol}``.
    name : str
        The per-atom property: ``d_<name>`` (default ``d_dH``) in dumps.
    start_step : int
        No check before this timestep (default 0: from the first step).
    skip_minimize : bool
        No check inside ``minimize`` (`run_script` pauses the monitor for
        that command; through the API, ``with monitor.paused(): ...``).
    exact_dH : bool
        Every atom's exact dH (True), or (False, default) the exact labels
        of every atom (`Reference.inside`) and the exact dH of the novel
        ones only: atoms inside the domain store 0 (their dH is <= 0), a
        check's ``mean_dH`` is not determined, nor its ``max_dH`` when no
        atom is novel. A ``max_dH`` threshold below 0 needs every exact dH
        and implies True.
    extract_mode : "cluster" (default), "cell", "both" or "frame"
        What is written for a frame that crossed a threshold: cut-outs of
        its novel environments (as `atominfo.workflows.labelling.extract`,
        deduplicated) or the whole frame.
    max_picks : int
        At most this many cut-outs (per mode) per crossing frame (default 10).
    reference_files : sequence of str
        The reference's files, recorded in the extracted structures.
    false_alarm : float in (0, 1), optional
        A check's novel atoms are those whose conformal p-value against the
        reference is at most this rate (`atominfo.reference.conformal`), not
        those with dH > 0: its novelty, `max_novelty` and the table use that
        fraction; the stored dH is unchanged. Costs a second exact kernel sum
        of every atom (against the calibration's proper part, about 0.8 of
        the reference) per check, and the calibration once.

    Raises
    ------
    InputError
        For a value out of range, naming the field.
    """

    every: int = 100
    max_novelty: float | None = None
    max_dH: float | None = None
    halt: bool = True
    type_map: Mapping[int, str] | str | None = field(default=None, hash=False)
    name: str = "dH"
    start_step: int = 0
    skip_minimize: bool = False
    exact_dH: bool = False
    extract_mode: str = "cluster"
    max_picks: int = 10
    reference_files: tuple[str, ...] = ()
    false_alarm: float | None = None

    def __post_init__(self) -> None:
        from atominfo.structures.lammps import parse_type_map

        object.__setattr__(self, "every", check_every(self.every))
        limits = (("max_novelty", "alarm_novelty"), ("max_dH", "alarm_dh"))
        for name, kind in (*limits, ("false_alarm", "false_alarm")):
            value = params.check_optional(kind, getattr(self, name), label=name)
            object.__setattr__(self, name, value)
        for name in ("halt", "skip_minimize", "exact_dH"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")
        object.__setattr__(
            self, "start_step", params.check("skip", self.start_step, label="start_step")
        )
        if self.extract_mode not in EXTRACT_MODES:
            raise InputError(
                f"extract_mode must be one of {', '.join(EXTRACT_MODES)}, got {self.extract_mode!r}"
            )
        object.__setattr__(self, "max_picks", params.check("max_picks", self.max_picks))
        object.__setattr__(self, "reference_files", tuple(map(str, self.reference_files)))
        object.__setattr__(self, "type_map", parse_type_map(self.type_map))
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise InputError(
                f"name must be a LAMMPS identifier (letters, digits, _), got {self.name!r}"
            )

    @property
    def all_exact(self) -> bool:
        """Whether a check computes every atom's exact dH (`exact_dH`, or a max_dH
        threshold below 0, which the labels cannot decide)."""
        return self.exact_dH or (self.max_dH is not None and self.max_dH < 0)

    @property
    def has_threshold(self) -> bool:
        """Whether a check can cross anything (`max_novelty` or `max_dH` set)."""
        return self.max_novelty is not None or self.max_dH is not None

    def crossed(self, novelty: float, max_dH: float) -> bool:
        """Whether a check with this novel fraction and largest dH crosses a threshold
        (a NaN largest dH counts as crossing)."""
        return bool(
            (self.max_novelty is not None and novelty > self.max_novelty)
            or (self.max_dH is not None and not max_dH <= self.max_dH)
        )


_OPTION_KEYWORDS = frozenset(f.name for f in fields(MonitorOptions))
_SPEC_KEYWORDS = frozenset({"k", "cutoff"})


def monitor_settings(
    options: MonitorOptions | None, spec: DescriptorSpec | None, keywords: Mapping[str, Any]
) -> tuple[MonitorOptions, DescriptorSpec]:
    """`options` and `spec` (their defaults where None) with `keywords` folded in.

    `keywords` are fields of `MonitorOptions` (``every=``, ``max_dH=``, ...)
    and ``k=``/``cutoff=``; any other name is a TypeError, as for a function
    without it. A spec with a volume rescaling or species is refused: the
    monitor describes the configuration as it is.
    """
    unknown = set(keywords) - _OPTION_KEYWORDS - _SPEC_KEYWORDS
    if unknown:
        raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
    option_values = {k: v for k, v in keywords.items() if k in _OPTION_KEYWORDS}
    spec_values = {k: v for k, v in keywords.items() if k in _SPEC_KEYWORDS}
    if options is None:
        options = MonitorOptions(**option_values)
    elif option_values:
        options = replace(options, **option_values)
    if spec is None:
        spec = DescriptorSpec(**spec_values)
    elif spec_values:
        spec = replace(spec, **spec_values)
    if not isinstance(options, MonitorOptions):
        raise InputError(f"options must be a MonitorOptions, got {type(options).__name__}")
    if not isinstance(spec, DescriptorSpec):
        raise InputError(f"spec must be a DescriptorSpec, got {type(spec).__name__}")
    if spec.rescale_volume is not None or spec.species is not None:
        raise InputError(
            "the LAMMPS monitor describes the configuration as it is: a descriptor "
            "spec with rescale_volume or species is not supported"
        )
    return options, spec


def extract_path(extract) -> Path | None:
    """The file of the extracted frames as a Path (None: none); InputError unless it
    ends in .extxyz or .xyz."""
    if extract is None:
        return None
    extract = Path(extract)
    if extract.suffix not in EXTRACT_SUFFIXES:
        raise InputError(
            "the extracted frames are written as extended XYZ: give a .extxyz or .xyz file",
            source=str(extract),
        )
    return extract
