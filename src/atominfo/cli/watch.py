"""Report dH of each new frame of a file still being written (e.g. a running LAMMPS dump).

The file may not exist yet: watch waits for it (within --idle-timeout). A
frame is read once all its lines are written. Exit status 3 with
--stop-on-alarm when a frame crosses a threshold.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options
from atominfo.cli.species import add_species, wanted

ALARM_EXIT = 3
# The alarm options: (range in `atominfo.params`, help).
FLAG = "Flag frames whose fraction of atoms with dH > 0 (or p <= --false-alarm) "
ALARMS = {
    "--alarm-novelty": ("alarm_novelty", FLAG + "exceeds this."),
    "--alarm-novelty-below": (
        "alarm_novelty",
        FLAG + "falls below this (a transition toward the reference, e.g. a melt that "
        "crystallises, watched against a reference of the crystal).",
    ),
    "--alarm-dh": ("alarm_dh", "Flag frames whose max dH (nats) exceeds this."),
}


def add_arguments(parser) -> None:
    t = options.typed
    text = "Trajectory being written: LAMMPS text dump or extxyz."
    parser.add_argument("file", type=Path, metavar="FILE", help=text)
    options.add_reference(parser)
    text = "Seconds between checks for new frames."
    parser.add_argument("--poll", type=t("poll", "--poll"), default=1.0, help=text)
    text = "Stop after this many seconds without a new frame (default: run until interrupted)."
    parser.add_argument("--idle-timeout", type=t("idle_timeout", "--idle-timeout"), help=text)
    text = "Stop after this many frames (0: none)."
    parser.add_argument("--max-frames", type=t("max_frames", "--max-frames"), help=text)
    text = "Skip the frames already in the file."
    parser.add_argument("--new-only", action="store_true", help=text)
    for flag, (kind, text) in ALARMS.items():
        parser.add_argument(flag, type=t(kind, flag), help=text)
    text = f"Exit with status {ALARM_EXIT} at the first flagged frame."
    parser.add_argument("--stop-on-alarm", action="store_true", help=text)
    text = "lammps-dump-text or extxyz (guessed from the name if omitted)."
    parser.add_argument("--format", type=options.ase_format, help=text)
    text = "Elements of numeric LAMMPS atom types."
    parser.add_argument("--type-map", type=options.type_map, metavar="1=Cu,2=O", help=text)
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_false_alarm(parser)
    add_species(parser)
    options.add_engine(parser, backends=False)
    text = "One JSON object per frame (JSON lines)."
    parser.add_argument("--json", action="store_true", help=text)
    parser.add_argument("-q", "--quiet", action="store_true", help="No start-up message.")


def run(args) -> int:
    import sys

    from atominfo.cli import species_dh
    from atominfo.cli.load import reference
    from atominfo.cli.report import fmt, json_text, progress, say
    from atominfo.errors import InputError
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.workflows.dh_run import calibration_total
    from atominfo.workflows.watch import WatchOptions, check_alarm_band, watch

    check_alarm_band(
        args.alarm_novelty, args.alarm_novelty_below, ("--alarm-novelty", "--alarm-novelty-below")
    )
    options.apply_threads(args)
    args.rescale_volume, args.multicomponent, args.index = None, False, ":"
    by_species = wanted(args)  # each atom against the reference atoms of its own species
    ref = species_dh.reference(args, args.ref, [args.file]) if by_species else None
    ref = ref or reference(args, args.bandwidth)
    if args.false_alarm is not None:  # calibrated once, before watching
        with progress("calibration", calibration_total(ref), args.quiet, "envs") as a:
            ref.calibration(progress=a)
    settings = WatchOptions(
        args.poll,
        args.idle_timeout,
        args.max_frames,
        args.new_only,
        args.alarm_novelty,
        args.alarm_novelty_below,
        args.alarm_dh,
        args.stop_on_alarm,
        args.false_alarm,
    )
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

    def show(row: dict) -> None:
        announce()
        if args.json:
            return say(json_text(row, indent=None))
        step = f" (timestep {row['timestep']})" if row["timestep"] is not None else ""
        flag = ""
        if row["alarm"]:
            flag = "  ALARM: " + (
                "novel fraction below --alarm-novelty-below"
                if settings.below(row)
                else "outside the reference's domain"
            )
        rate = "" if "flagged" not in row else f" ({fmt(100 * row['flagged'], 4)}% with p <= rate)"
        say(
            f"frame {row['frame']}{step}: {row['atoms']} atoms, {fmt(100 * row['novelty'], 4)}% "
            f"with dH > 0{rate}, max dH {fmt(row['max_dH'], 5)} nats, mean dH "
            f"{fmt(row['mean_dH'], 5)} nats{flag}"
            + (species_dh.frame_note(row, ref.species) if by_species else "")
        )

    result = watch(
        args.file,
        ref,
        settings,
        spec=DescriptorSpec(args.k, args.cutoff),
        reading=Reading(":", args.format, args.type_map),
        on_frame=show,
        on_wait=announce,
        keep_frames=False,  # printed as they come; a watch may run for days
    )
    if result.stopped_on_alarm:
        return ALARM_EXIT
    if result.scored == 0 and args.max_frames != 0:
        waited = f"within --idle-timeout {args.idle_timeout:g} s"
        if not args.new_only:  # a file that never held a frame: likely the wrong file
            raise InputError(f"no complete frame {waited}", source=str(args.file))
        # --new-only skips the frames there: none arriving is a quiet run, not bad input
        note = f"no new frame arrived in {args.file} {waited}"
        row = {"file": str(args.file), "scored": 0, "new_frame": False, "note": note}
        say(json_text(row, indent=None) if args.json else note)
    return 0
