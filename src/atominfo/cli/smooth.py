"""Kernel-weighted average of per-environment values of the reference at test environments.

Nadaraya-Watson regression with the Gaussian kernel and bandwidth h: e.g. a
smoothed force-error estimate for new environments from the known errors of
the reference's environments. Computed in log space; where a test
environment is so far from the reference that the kernel weights underflow
(or its dH exceeds --max-dh) the estimate is undetermined: NaN in .npy,
null in JSON, and counted in the summary.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    options.add_inputs(parser, help="Test structure files: where to estimate.")
    options.add_reference(parser)
    parser.add_argument(
        "--errors",
        type=Path,
        required=True,
        help="The reference's values, one per reference environment in "
        "order: .npy, or an extxyz with per-atom reference and predicted "
        "forces (value = norm of the difference) or an 'error' array.",
    )
    parser.add_argument(
        "--forces", default="forces", help="Name of the reference forces in an extxyz --errors."
    )
    parser.add_argument(
        "--predicted",
        default="predicted_forces",
        help="Name of the predicted forces in an extxyz --errors.",
    )
    parser.add_argument(
        "--max-dh",
        type=options.typed("max_dh", "--max-dh"),
        default=None,
        help="Leave undetermined (NaN) test environments with dH above this, "
        "nats (default: where the kernel weights underflow, 708.4).",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="Per-environment estimates: .npy, or .json with dH and the "
        "effective number of reference environments averaged.",
    )
    options.add_descriptor(parser)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.load import reference, species
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.runs.guard import check_outputs
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.workflows.regression import run_smoothing

    # refuse an output that is an input (or unwritable) before the reference is built
    check_outputs(
        inputs=[*args.files, *args.ref, args.errors], outputs=[(args.output, (".npy", ".json"))]
    )
    options.apply_threads(args)
    sp = species(args, args.files, args.ref)
    ref = reference(args, args.bandwidth, sp)
    with progress("test descriptors", None, args.quiet) as advance:
        result = run_smoothing(
            list(map(str, args.files)),
            ref,
            args.errors,
            forces=args.forces,
            predicted=args.predicted,
            max_dh=args.max_dh,
            output=args.output,
            reading=Reading(args.index, args.format, args.type_map),
            spec=DescriptorSpec(
                args.k, args.cutoff, args.rescale_volume, tuple(sp) if sp else None
            ),
            progress=advance,
        )
    if args.json:
        summary = result.to_dict()
        summary.pop("regression")
        print_json(summary)
        return
    say(
        f"{result.determined} of {result.environments} test environments estimated from "
        f"{len(ref)} reference values (h = {args.bandwidth:g} 1/Å)"
    )
    say(f"  mean estimate {fmt(result.mean_estimate)}, max {fmt(result.max_estimate)}")
    if result.reason:
        say(f"  undetermined: {result.reason}")
    if args.output is not None:
        say(f"  written to {args.output}")
