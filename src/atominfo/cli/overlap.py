"""Overlap (fraction with dH <= 0) and novelty (dH > 0) of TEST against the reference."""

from __future__ import annotations

from atominfo.cli import options
from atominfo.cli import species as species_mode


def add_arguments(parser) -> None:
    options.add_inputs(parser, help="Test structure files.")
    options.add_reference(parser)
    parser.add_argument(
        "--method",
        type=options.typed("method_inside", "--method"),
        default="auto",
        help="classify: exact sign of dH from cluster bounds "
        "(fast); exact: compute every dH; auto: classify for large sets.",
    )
    options.add_descriptor(parser)
    options.add_bandwidth(parser)
    options.add_false_alarm(parser)
    options.add_engine(parser)
    options.add_output(parser)
    species_mode.add_species(parser)


def run(args) -> None:
    import numpy as np

    from atominfo import information
    from atominfo.cli.load import describe, reference, species
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.reference.conformal import calibration_size

    options.apply_threads(args)
    if species_mode.wanted(args):
        return species_mode.overlap(args)
    h = options.h_value(args)
    engine = options.engine(args)
    sp = species(args, args.ref, args.files)
    ref = reference(args, h, sp, engine)
    Y = describe(args.files, args, "test descriptors", sp)
    if args.false_alarm is not None:  # novel at a stated false-alarm rate: p <= rate
        with progress("calibration", calibration_size(len(ref), ref.seed), args.quiet, "envs") as a:
            ref.calibration(progress=a)
        with progress("p-values", len(Y), args.quiet, "envs") as advance:
            novel = np.reshape(ref.novel(Y, args.false_alarm, progress=advance), (-1, len(Y)))
    with progress("dH sign", len(Y), args.quiet, "envs") as advance:
        inside = information.inside_domain(
            Y, ref.X, np.atleast_1d(h), method=args.method, engine=engine, progress=advance
        )
    ov = inside.mean(axis=1)
    scalar = np.ndim(h) == 0
    result = {
        "bandwidth": h,
        "environments": len(Y),
        "reference_environments": len(ref),
        "method": args.method,
        "overlap": ov[0] if scalar else ov,
        "novelty": 1 - ov[0] if scalar else 1 - ov,
    }
    if args.false_alarm is not None:
        flagged = novel.mean(axis=1)
        result.update(false_alarm=args.false_alarm, flagged=flagged[0] if scalar else flagged)
    if args.json:
        print_json(result)
        return
    say(
        f"overlap {fmt(result['overlap'])}   novelty {fmt(result['novelty'])}   ({len(Y)} test "
        f"vs {len(ref)} reference environments, h = {fmt(h)} 1/Å)"
    )
    if args.false_alarm is not None:
        rate = fmt(args.false_alarm)
        say(f"novel at false-alarm rate {rate} (p <= {rate}): {fmt(result['flagged'])}")
