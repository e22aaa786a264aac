"""What the command line offers, found by introspecting its argparse parsers.

Every option of every command is enumerated from ``parser._actions``, so a new
option is covered (or, where the suite cannot derive its bad values, fails
loudly in `test_every_option_is_covered`) without editing the suite.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from atominfo import params
from atominfo.cli import COMMANDS, command_parser

from .cases import BASE

# Path-valued arguments, by argparse dest: read (inputs) or written (outputs).
INPUT_DESTS = {"files", "file", "ref", "liquid_ref", "errors", "dh", "production"}
OUTPUT_DESTS = {"output", "table", "plot", "summary", "chemiscope", "dump"}

# Text options checked only when the command runs (no argparse type): values
# that must be refused. Free-text options (a unit label) have none.
RUN_LEVEL_BAD = {
    "index": ["abc", "1:2:0", "100", "", "0.5", "1:2:3:4", ":::"],
    "format": ["no-such-format", ""],
    "size": ["0", "-1", "abc", "nan", "inf", "1e308", "", "0.0"],
    "group_by": ["no_such_info_key"],
    "device": ["no-such-device"],
    "dask": ["no-such-scheduler-address"],
    "budget": ["abc", "-1", "0", "nan", "inf", "0%", "%", ""],
    "cost": ["no_such_info_key"],
    "stratify": ["no_such_info_key"],
    "quota": ["melt=1"],  # without --stratify
    "dh_array": ["no_such_array"],
    "forces": [],  # only read from an extxyz --errors; covered by the bad-file cases
    "predicted": [],
    "var": ["novalue", "=1", "a b=1"],
    "extract_mode": ["no-such-mode", ""],  # lammps --extract-mode (argparse choices)
    "calculator": ["nonsense", "", "os:getcwd", "no_such_module_x:EMT"],  # explore
}
FREE_TEXT = {"unit"}
# argparse types of text options whose bad values are those of RUN_LEVEL_BAD
TEXT_TYPES = {"ase_format", "selection_size", "frame_index"}


@dataclass(frozen=True)
class Option:
    command: str
    dest: str
    flag: str  # the option string used on the command line ('' for a positional)
    names: tuple  # every option string (to find it named in a message)
    kind: str  # 'typed', 'bandwidths', 'type_map', 'path', 'text', 'flag'
    constraint: str | None
    required: bool
    action: argparse.Action


@cache
def parser_of(command: str):
    return command_parser(command)


def options_of(command: str) -> list[Option]:
    """Every argument of `command` except --help and --version."""
    parser, _ = parser_of(command)
    out = []
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
            continue
        flag = max(a.option_strings, key=len) if a.option_strings else ""
        tname = getattr(a.type, "__name__", None) if a.type is not None else None
        if a.nargs == 0:
            kind = "flag"
        elif tname in params.CONSTRAINTS:
            kind = "typed"
        elif tname == "bandwidths":
            kind = "bandwidths"
        elif tname == "type_map":
            kind = "type_map"
        elif a.type is Path:
            kind = "path"
        elif a.type is None or tname in TEXT_TYPES:
            kind = "text"
        else:
            kind = f"unknown type {tname}"
        constraint = tname if kind == "typed" else "bandwidth" if kind == "bandwidths" else None
        out.append(
            Option(
                command,
                a.dest,
                flag,
                tuple(a.option_strings),
                kind,
                constraint,
                bool(a.required or not a.option_strings),
                a,
            )
        )
    return out


def all_options() -> list[Option]:
    return [o for c in COMMANDS for o in options_of(c)]


def _fmt(x) -> str:
    if isinstance(x, int):
        return str(x)
    return repr(float(x))


def interval_bad_values(c: params.Interval) -> list[str]:
    """Values outside `c`, as command-line text."""
    bad = ["nan", "NaN", "inf", "-inf", "", " ", "text", "1.2.3", "0x10"]
    lo_open = c.closed in ("right", "neither")
    hi_open = c.closed in ("left", "neither")
    if c.kind is int:
        base = c.low if c.low is not None else 0
        bad.append(_fmt(base + 0.5))  # a float for an int
    if c.low is not None:
        step = 1 if c.kind is int else max(abs(c.low), 1.0)
        bad.append(_fmt(c.low - step))
        bad.append("-1e308")
        if lo_open:
            bad.append(_fmt(c.low))
            if c.low == 0:
                bad += ["-0.0", "1e-400"]  # signed zero; a value that underflows to 0
    if c.high is not None:
        step = 1 if c.kind is int else max(abs(c.high), 1.0)
        bad.append(_fmt(c.high + step))
        bad += ["1e308", str(10**30)]
        if hi_open:
            bad.append(_fmt(c.high))
    return list(dict.fromkeys(bad))


def range_end_values(c: params.Interval) -> list[str]:
    """Both ends of `c`, as command-line text: a closed end itself; inside an
    open end, the nearest representable value (5e-324 above an open 0, the
    float just below an open 1); where unbounded, the largest finite float
    (10**30 for a count). Every one is valid: the run must give a finite
    answer or refuse it cleanly, never crash, hang or print inf/NaN."""
    lo_open = c.closed in ("right", "neither")
    hi_open = c.closed in ("left", "neither")
    ends = []
    for bound, is_open, direction in ((c.low, lo_open, -1), (c.high, hi_open, 1)):
        if c.kind is int:
            if bound is None:
                ends.append(str(direction * 10**30))
            else:
                ends.append(str(int(bound) - direction if is_open else int(bound)))
        elif bound is None:
            ends.append(repr(direction * sys.float_info.max))
        else:
            ends.append(repr(math.nextafter(bound, -direction * math.inf) if is_open else bound))
    return list(dict.fromkeys(ends))


def oneof_bad_values(c: params.OneOf) -> list[str]:
    first = c.choices[0]
    return list(
        dict.fromkeys(["", " ", "no-such-choice", first.upper(), first + " ", first + "x", "1"])
    )


def bad_values(opt: Option) -> list[str]:
    if opt.kind == "typed":
        c = params.CONSTRAINTS[opt.constraint]
        return interval_bad_values(c) if isinstance(c, params.Interval) else oneof_bad_values(c)
    if opt.kind == "bandwidths":
        return interval_bad_values(params.CONSTRAINTS["bandwidth"]) + [
            ",",
            "0.015,",
            ",0.015",
            "0.015,0.015",
            "0.015,nan",
            "0.015,-1",
            "0.015;0.05",
        ]
    if opt.kind == "type_map":
        return [
            "",
            "Cu",
            "1=",
            "=Cu",
            "0=Cu",
            "-1=Cu",
            "1=Xx",
            "a=Cu",
            "1=Cu,1=O",
            "1=Cu,",
            "1.5=Cu",
            "1=X",
        ]
    if opt.kind == "text":
        return list(RUN_LEVEL_BAD.get(opt.dest, []))
    return []


# Options that act only beside another: (command, dest) -> the extra arguments
# (placeholders as in `cases.BASE`) and the extra outputs they write.
COMPANIONS = {
    ("extract", "duplicate_distance"): (["--dedupe"], ()),
    ("generations", "max_gap"): (["--gap"], ()),
    ("clusters", "n_star"): (["--plot", "{dir}/clusters.png"], ("clusters.png",)),
}


def range_ends(opt: Option) -> list[str]:
    """The valid values at both ends of a numeric option's declared range."""
    if opt.kind in ("typed", "bandwidths"):
        c = params.CONSTRAINTS[opt.constraint]
        if isinstance(c, params.Interval):
            return range_end_values(c)
    return []


# Range ends whose run is costly by design (the bound caps that work): each runs
# once, in the first command offering it, since every command reaches it
# through the same descriptor code.
ONCE_ENDS = {("--k", "1024"), ("--cutoff", "50.0")}

# Range ends not run at all, by (command, flag, value; "*" for any), and why.
_REPORT_RENDERS = (
    "report renders four figures, seconds a run: its descriptor options reach the "
    "code whose ends every other command runs"
)
_COUNTED_WORK = "the count multiplies the work of the base run, which succeeds"
UNRUN_ENDS = {
    ("report", "--k", "*"): _REPORT_RENDERS,
    ("report", "--cutoff", "*"): _REPORT_RENDERS,
    ("report", "--rescale-volume", "*"): _REPORT_RENDERS,
    ("report", "--threads", "*"): _REPORT_RENDERS,
    ("*", "--seeds", "10000"): _COUNTED_WORK + " (10^4 subsets per size)",
    ("generate", "--n-candidates", "100000"): _COUNTED_WORK + " (10^5 annealing runs)",
    ("generate", "--generations", "1000"): _COUNTED_WORK + " (10^3 rounds)",
    ("explore", "--steps", "1000000000"): _COUNTED_WORK + " (10^9 MD steps)",
    ("demo", "--frames", "100000"): _COUNTED_WORK + " (10^5 MD frames per set)",
    ("demo", "--repeat", "20"): _COUNTED_WORK + " (32,000-atom MD frames)",
    ("watch", "--idle-timeout", "2592000.0"): "watch waits 30 days for a new frame, by design",
}


def unrun_reason(opt: Option, value: str) -> str | None:
    """Why the range end `value` of `opt` is not run, or None."""
    base = BASE[opt.command]
    given = [base[i + 1] for i, token in enumerate(base[:-1]) if token in opt.names]
    if given and given[-1] == value:
        return "the base command line's own value (test_base_command_line_succeeds)"
    for key in (
        (opt.command, opt.flag, value),
        (opt.command, opt.flag, "*"),
        ("*", opt.flag, value),
    ):
        if key in UNRUN_ENDS:
            return UNRUN_ENDS[key]
    return None
