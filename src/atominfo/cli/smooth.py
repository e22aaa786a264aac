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
    import numpy as np

    from atominfo.cli.calibrate import _values
    from atominfo.cli.load import describe, reference, species
    from atominfo.cli.report import fmt, print_json, say, write_json
    from atominfo.errors import InputError
    from atominfo.outputs.atomic import atomic_output
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.regression import UNDERFLOW_DH, kernel_regression

    with OutputGuard(
        inputs=[*args.files, *args.ref, args.errors], outputs=[(args.output, (".npy", ".json"))]
    ):
        options.apply_threads(args)
        sp = species(args, args.files, args.ref)
        ref = reference(args, args.bandwidth, sp)
        values = _values(args.errors, "values", "error", forces=(args.forces, args.predicted))
        if len(values) != len(ref):
            raise InputError(
                f"{len(values)} values for {len(ref)} reference environments "
                "(one value per reference environment, in order)",
                source=str(args.errors),
            )
        Y = describe(args.files, args, "test descriptors", sp)
        max_dh = UNDERFLOW_DH if args.max_dh is None else args.max_dh
        reg = kernel_regression(Y, ref.X, values, args.bandwidth, max_dh=max_dh)
        if args.output is not None and args.output.suffix == ".npy":
            with atomic_output(args.output) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, reg.estimate)
        elif args.output is not None:
            write_json(args.output, reg.to_dict())
    est = reg.estimate[reg.determined]
    summary = {
        "environments": len(Y),
        "determined": int(reg.determined.sum()),
        "undetermined": int((~reg.determined).sum()),
        "reason": reg.reason,
        "mean_estimate": float(est.mean()) if est.size else None,
        "max_estimate": float(est.max()) if est.size else None,
        "max_dh": max_dh,
        "bandwidth": args.bandwidth,
        "output": args.output,
    }
    if args.json:
        print_json(summary)
        return
    say(
        f"{summary['determined']} of {len(Y)} test environments estimated from "
        f"{len(ref)} reference values (h = {args.bandwidth:g} 1/Å)"
    )
    say(f"  mean estimate {fmt(summary['mean_estimate'])}, max {fmt(summary['max_estimate'])}")
    if reg.reason:
        say(f"  undetermined: {reg.reason}")
    if args.output is not None:
        say(f"  written to {args.output}")
