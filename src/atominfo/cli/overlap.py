"""Overlap (fraction with dH <= 0) and novelty (dH > 0) of TEST against the reference."""

from __future__ import annotations

from atominfo.cli import options


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
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    import numpy as np

    from atominfo import information
    from atominfo.cli.load import describe, reference, species
    from atominfo.cli.report import fmt, print_json, progress, say

    options.apply_threads(args)
    h = options.h_value(args)
    engine = options.engine(args)
    sp = species(args, args.ref, args.files)
    ref = reference(args, h, sp, engine)
    Y = describe(args.files, args, "test descriptors", sp)
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
    if args.json:
        print_json(result)
        return
    say(
        f"overlap {fmt(result['overlap'])}   novelty {fmt(result['novelty'])}   ({len(Y)} test "
        f"vs {len(ref)} reference environments, h = {fmt(h)} 1/Å)"
    )
