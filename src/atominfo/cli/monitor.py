"""`atominfo watch`: follow a trajectory file that is still being written, frame by frame."""

from __future__ import annotations

import json as _json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from atominfo.descriptor import structure_descriptors
from atominfo.errors import InputError
from atominfo.structures.frames import validate_atoms
from atominfo.workflows.monitor import follow_frames
from atominfo.workflows.trajectory import frame_statistics
from atominfo.cli.common import (BandwidthOpt, CutoffOpt, FormatOpt, KOpt, QuietOpt, ThreadsOpt,
                     parse_bandwidths, set_threads, stdout)
from atominfo.cli.trajectory import RefOpt, reference_from_options


def cmd_watch(
    file: Annotated[Path, typer.Argument(help="Trajectory being written: LAMMPS text dump "
                                         "or extxyz.")],
    ref: RefOpt,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between checks for new "
                                        "frames.")] = 1.0,
    idle_timeout: Annotated[Optional[float], typer.Option(
        "--idle-timeout", help="Stop after this many seconds without a new frame "
        "(default: run until interrupted).")] = None,
    max_frames: Annotated[Optional[int], typer.Option(
        "--max-frames", help="Stop after this many frames.")] = None,
    new_only: Annotated[bool, typer.Option(
        "--new-only", help="Skip the frames already in the file.")] = False,
    alarm_novelty: Annotated[Optional[float], typer.Option(
        "--alarm-novelty", help="Flag frames whose fraction of atoms with dH > 0 exceeds "
        "this.")] = None,
    alarm_dh: Annotated[Optional[float], typer.Option(
        "--alarm-dh", help="Flag frames whose max dH (nats) exceeds this.")] = None,
    stop_on_alarm: Annotated[bool, typer.Option(
        "--stop-on-alarm", help="Exit with status 3 at the first flagged frame.")] = False,
    k: KOpt = 32, cutoff: CutoffOpt = 5.0, bandwidth: BandwidthOpt = "0.015",
    format: FormatOpt = None, threads: ThreadsOpt = None, quiet: QuietOpt = False,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per frame (JSON "
                                       "lines).")] = False,
):
    """Report dH of each new frame of a file still being written (e.g. a running LAMMPS dump)."""
    set_threads(threads)
    h = parse_bandwidths(bandwidth)
    if isinstance(h, list):
        raise InputError("watch needs a single bandwidth")
    if poll <= 0:
        raise InputError(f"--poll must be > 0, got {poll}")
    reference = reference_from_options(ref, h, k, cutoff, None, None, quiet)
    if not json and not quiet:
        print(f"watching {file} against {len(reference)} reference environments "
              f"(h = {h} 1/Å); Ctrl-C to stop", file=sys.stderr)
    seen = 0
    for number, atoms in follow_frames(file, format, poll=poll, idle_timeout=idle_timeout,
                                       from_start=not new_only):
        validate_atoms(atoms, str(file), number)
        dH = reference.delta_entropy(structure_descriptors(atoms, k, cutoff, source=str(file),
                                                           frame=number))
        row = {"frame": number, **frame_statistics(dH)}
        row["alarm"] = bool((alarm_novelty is not None and row["novelty"] > alarm_novelty)
                            or (alarm_dh is not None and row["max_dH"] > alarm_dh))
        if json:
            print(_json.dumps(row), flush=True)
        else:
            flag = "  ALARM: outside the reference's domain" if row["alarm"] else ""
            stdout.print(f"frame {number}: {row['atoms']} atoms, {row['novelty']:.2%} with "
                         f"dH > 0, max dH {row['max_dH']:.3f} nats, mean dH "
                         f"{row['mean_dH']:.3f} nats{flag}")
        seen += 1
        if row["alarm"] and stop_on_alarm:
            raise typer.Exit(3)
        if max_frames is not None and seen >= max_frames:
            break
