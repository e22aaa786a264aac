"""What the command line offers, found by introspecting its argparse parsers.

Every option of every command is enumerated from ``parser._actions``, so a new
option is covered (or, where the suite cannot derive its bad values, fails
loudly in `test_every_option_is_covered`) without editing the suite.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from atominfo import params
from atominfo.cli import COMMANDS, command_parser

# Path-valued arguments, by argparse dest: read (inputs) or written (outputs).
INPUT_DESTS = {"files", "file", "ref", "liquid_ref", "errors", "dh"}
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


def huge_valid_values(c: params.Interval) -> list[str]:
    """Values inside `c` but absurdly large: the run must not hang or print inf/NaN."""
    if c.high is not None:
        return []
    return ["1e308"] if c.kind is float else [str(10**30)]


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


def huge_values(opt: Option) -> list[str]:
    if opt.kind in ("typed", "bandwidths"):
        c = params.CONSTRAINTS[opt.constraint]
        if isinstance(c, params.Interval):
            return huge_valid_values(c)
    return []
