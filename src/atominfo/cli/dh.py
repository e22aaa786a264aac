"""Per-atom differential entropy dH of TEST against the reference (nats); dH > 0 is novel.

Frames are read, described and scored one at a time, so trajectories of any
length run in bounded memory; outputs grow frame by frame and appear under
their final names only when complete. An interrupted run continues from its
last complete frame with --resume (it refuses if an input or option changed).

With --ref self each frame is scored against all earlier frames of TEST (its
own past); frame 0 has no past and is not scored (it appears in no output).
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options
from atominfo.cli.species import add_species, wanted


def add_arguments(parser) -> None:
    options.add_inputs(parser, help="Test structure files (a trajectory, any format ASE reads).")
    options.add_reference(parser)
    for action in parser._actions:
        if action.dest == "ref":
            action.help += (
                ' Or the word "self": each frame against all earlier frames of TEST '
                "(frame 0, with no past, is not scored; a file named self: ./self)."
            )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="Per-atom dH to .npy, .json, or .extxyz (the input frames with "
        "a per-atom 'dH' array, which OVITO and ASE read; with --false-alarm also 'p').",
    )
    parser.add_argument(
        "--table",
        type=Path,
        default=None,
        help="Per-frame table (.csv or .json): timestep, atoms, fraction with "
        "dH > 0, max and mean dH (nats).",
    )
    options.add_plot(parser)
    options.add_resume(parser, "frame")
    parser.add_argument(
        "--chemiscope",
        type=Path,
        default=None,
        metavar="PATH",
        help="Also write the frames with per-atom dH and per-frame novelty "
        "for the chemiscope viewer (.json.gz or .json; keeps the frames in "
        "memory).",
    )
    options.add_descriptor(parser)
    options.add_bandwidth(parser)
    options.add_false_alarm(parser)
    add_species(parser)
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli import species_dh
    from atominfo.cli.load import reference, species
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.errors import InputError
    from atominfo.runs.guard import check_outputs, discard
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.dh_run import (
        CHEMISCOPE_SUFFIXES,
        PER_ATOM_SUFFIXES,
        PLOT_SUFFIXES,
        TABLE_SUFFIXES,
        AtFalseAlarm,
        OwnPast,
        calibration_total,
        run_dh,
    )

    self_ref = any(str(r) == "self" for r in args.ref)
    if self_ref and len(args.ref) > 1:
        raise InputError("--ref self compares TEST with its own past: give no other --ref")
    refs = [] if self_ref else list(args.ref)
    outputs = [args.output, args.table, args.plot, args.chemiscope]
    per_atom = [s for s in PER_ATOM_SUFFIXES if args.false_alarm is None or s != ".npy"]
    suffixes = [per_atom, TABLE_SUFFIXES, PLOT_SUFFIXES, CHEMISCOPE_SUFFIXES]
    # refuse an output that is an input (or unwritable) before the reference is built
    check_outputs(inputs=[*args.files, *refs], outputs=list(zip(outputs, suffixes)))
    if args.restart:
        discard(outputs)
    options.apply_threads(args)
    h = options.h_value(args)
    engine = options.engine(args)
    sp = species(args, refs, args.files)
    if wanted(args):  # each atom against the reference atoms of its own species
        ref = species_dh.reference(args, refs, args.files)
    else:
        ref = OwnPast(h, engine) if self_ref else reference(args, h, sp, engine)
    if args.false_alarm is not None:
        size = calibration_total(ref)
        with progress("calibration", size, args.quiet, "envs") as advance:
            ref = AtFalseAlarm(ref, args.false_alarm, advance)
    total = count_atoms(args.files, args.index, args.format)
    with progress("dH", total, args.quiet, "atoms") as advance:
        result = run_dh(
            list(map(str, args.files)),
            ref,
            output=args.output,
            table=args.table,
            plot=args.plot,
            chemiscope=args.chemiscope,
            resume=args.resume,
            reading=Reading(args.index, args.format, args.type_map),
            spec=DescriptorSpec(
                args.k, args.cutoff, args.rescale_volume, tuple(sp) if sp else None
            ),
            progress=advance,
        )
    if result.finished:
        return
    if args.json:
        summary = result.to_dict()
        summary.pop("per_frame")
        print_json(summary)
        return
    what = (
        ", each frame against all earlier ones (frame 0 has no past and is not scored; "
        if self_ref
        else f" against {result.reference_environments} reference environments ("
    )
    say(f"{result.environments} test environments in {result.frames} frames{what}h = {fmt(h)} 1/Å)")
    say(f"  fraction with dH > 0 (novel): {fmt(result.novelty)}")
    if result.false_alarm is not None:
        rate = fmt(result.false_alarm)
        say(f"  fraction novel at false-alarm rate {rate} (p <= {rate}): {fmt(result.flagged)}")
    say(f"  max dH: {fmt(result.max_dH)} nats   mean dH: {fmt(result.mean_dH)} nats")
    if result.species is not None:
        species_dh.say_breakdown(result.species, str(result.species_descriptor))
    for name, path in (
        ("per-atom dH", args.output),
        ("per-frame table", args.table),
        ("plot", args.plot),
    ):
        if path:
            say(f"  {name} written to {path}")
