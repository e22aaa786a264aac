"""Report dH of each new frame of a file still being written (e.g. a running LAMMPS dump).

The file may not exist yet: watch waits for it (within --idle-timeout). A
frame is read once all its lines are written. Exit status 3 with
--stop-on-alarm when a frame crosses a threshold.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options

ALARM_EXIT = 3


def add_arguments(parser) -> None:
    t = options.typed
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="Trajectory being written: LAMMPS text dump or extxyz.",
    )
    options.add_reference(parser)
    parser.add_argument(
        "--poll",
        type=t("poll", "--poll"),
        default=1.0,
        help="Seconds between checks for new frames.",
    )
    parser.add_argument(
        "--idle-timeout",
        type=t("idle_timeout", "--idle-timeout"),
        default=None,
        help="Stop after this many seconds without a new frame (default: run until interrupted).",
    )
    parser.add_argument(
        "--max-frames",
        type=t("max_frames", "--max-frames"),
        default=None,
        help="Stop after this many frames (0: none).",
    )
    parser.add_argument(
        "--new-only", action="store_true", help="Skip the frames already in the file."
    )
    parser.add_argument(
        "--alarm-novelty",
        type=t("alarm_novelty", "--alarm-novelty"),
        default=None,
        help="Flag frames whose fraction of atoms with dH > 0 exceeds this.",
    )
    parser.add_argument(
        "--alarm-novelty-below",
        type=t("alarm_novelty", "--alarm-novelty-below"),
        default=None,
        help="Flag frames whose fraction of atoms with dH > 0 falls below this "
        "(a transition toward the reference, e.g. a melt that crystallises, watched against "
        "a reference of the crystal).",
    )
    parser.add_argument(
        "--alarm-dh",
        type=t("alarm_dh", "--alarm-dh"),
        default=None,
        help="Flag frames whose max dH (nats) exceeds this.",
    )
    parser.add_argument(
        "--stop-on-alarm",
        action="store_true",
        help=f"Exit with status {ALARM_EXIT} at the first flagged frame.",
    )
    parser.add_argument(
        "--format",
        type=options.ase_format,
        default=None,
        help="lammps-dump-text or extxyz (guessed from the name if omitted).",
    )
    parser.add_argument(
        "--type-map",
        type=options.type_map,
        default=None,
        metavar="1=Cu,2=O",
        help="Elements of numeric LAMMPS atom types.",
    )
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    parser.add_argument(
        "--json", action="store_true", help="One JSON object per frame (JSON lines)."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="No start-up message.")


def run(args) -> int:
    import sys
    import time

    from atominfo.cli.load import reference
    from atominfo.cli.report import fmt, json_text, say
    from atominfo.descriptor import structure_descriptors
    from atominfo.structures.follow import follow_frames
    from atominfo.structures.frames import validate_atoms
    from atominfo.workflows.trajectory import frame_statistics

    if (
        args.alarm_novelty is not None
        and args.alarm_novelty_below is not None
        and args.alarm_novelty_below > args.alarm_novelty
    ):
        from atominfo.errors import InputError

        raise InputError(
            f"--alarm-novelty-below {args.alarm_novelty_below:g} is above --alarm-novelty "
            f"{args.alarm_novelty:g}: every frame would be flagged"
        )
    options.apply_threads(args)
    args.rescale_volume, args.multicomponent, args.index = None, False, ":"
    ref = reference(args, args.bandwidth)
    if args.max_frames == 0:
        return 0
    # The start line waits until the file has proved readable (a first frame
    # done, or a first wait for more): bad input prints its error line alone.
    announced = args.json or args.quiet

    def announce() -> None:
        nonlocal announced
        if not announced:
            print(
                f"watching {args.file} against {len(ref)} reference environments "
                f"(h = {args.bandwidth} 1/Å); Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            announced = True

    def wait(seconds: float) -> None:
        announce()
        time.sleep(seconds)

    seen = 0
    for number, atoms in follow_frames(
        args.file,
        args.format,
        poll=args.poll,
        idle_timeout=args.idle_timeout,
        from_start=not args.new_only,
        type_map=args.type_map,
        sleep=wait,
    ):
        validate_atoms(atoms, str(args.file), number)
        dH = ref.delta_entropy(
            structure_descriptors(atoms, args.k, args.cutoff, source=str(args.file), frame=number)
        )
        announce()
        row = {"frame": number, "timestep": atoms.info.get("timestep"), **frame_statistics(dH)}
        row["alarm"] = bool(
            (args.alarm_novelty is not None and (row["novelty"] or 0.0) > args.alarm_novelty)
            or (
                args.alarm_novelty_below is not None
                and row["novelty"] is not None
                and row["novelty"] < args.alarm_novelty_below
            )
            or (
                args.alarm_dh is not None
                and (row["max_dH"] is None or row["max_dH"] > args.alarm_dh)
            )
        )
        if args.json:
            say(json_text(row, indent=None))
        else:
            step = f" (timestep {row['timestep']})" if row["timestep"] is not None else ""
            flag = ""
            if row["alarm"]:
                low = args.alarm_novelty_below is not None and (
                    row["novelty"] is not None and row["novelty"] < args.alarm_novelty_below
                )
                flag = (
                    "  ALARM: novel fraction below --alarm-novelty-below"
                    if low
                    else "  ALARM: outside the reference's domain"
                )
            say(
                f"frame {number}{step}: {row['atoms']} atoms, {fmt(100 * row['novelty'], 4)}% "
                f"with dH > 0, max dH {fmt(row['max_dH'], 5)} nats, mean dH "
                f"{fmt(row['mean_dH'], 5)} nats{flag}"
            )
        seen += 1
        if row["alarm"] and args.stop_on_alarm:
            return ALARM_EXIT
        if args.max_frames is not None and seen >= args.max_frames:
            break
    if seen == 0:
        from atominfo.errors import InputError

        what = "new complete frame" if args.new_only else "complete frame"
        raise InputError(
            f"no {what} within --idle-timeout {args.idle_timeout:g} s", source=str(args.file)
        )
    return 0
