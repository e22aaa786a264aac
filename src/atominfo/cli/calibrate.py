"""Errors against dH: running average (20 bins), Pearson/Spearman, conformal intervals."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    t = options.typed
    parser.add_argument(
        "--errors",
        type=Path,
        required=True,
        help="Per-environment errors: .npy, or an extxyz with per-atom "
        "reference and predicted forces (error = norm of the difference), or "
        "an 'error' array.",
    )
    parser.add_argument(
        "--dh",
        type=Path,
        default=None,
        help="Per-environment dH (nats): .npy or extxyz with a 'dH' array "
        "(e.g. from `atominfo dh`). Default: the per-atom 'dH' array of an "
        "extxyz --errors file; without either the command stops.",
    )
    parser.add_argument(
        "--forces", default="forces", help="Name of the reference forces in the extxyz."
    )
    parser.add_argument(
        "--predicted",
        default="predicted_forces",
        help="Name of the predicted forces in the extxyz.",
    )
    parser.add_argument(
        "--coverage",
        type=t("coverage", "--coverage"),
        default=0.9,
        help="Nominal coverage of the conformal intervals.",
    )
    parser.add_argument(
        "--test-fraction",
        type=t("test_fraction", "--test-fraction"),
        default=0.25,
        help="Share held out to measure the intervals' coverage.",
    )
    options.add_seed(parser, "Seed of the random splits.")
    parser.add_argument("-o", "--output", type=Path, default=None, help="Results as JSON.")
    options.add_plot(parser)
    parser.add_argument("--unit", default="eV/Å", help="Unit of the errors, for the plot.")
    options.add_output(parser, quiet=False)


def run(args) -> None:
    from atominfo.cli.report import print_json, say
    from atominfo.workflows.uncertainty import run_calibration

    result = run_calibration(
        args.errors,
        args.dh,
        forces=args.forces,
        predicted=args.predicted,
        coverage=args.coverage,
        test_fraction=args.test_fraction,
        seed=args.seed,
        output=args.output,
        plot=args.plot,
        unit=args.unit,
    )
    if args.json:
        print_json(result)
        return
    c = result.correlations
    say(f"{c.n} environments: Pearson {c.pearson:.3f}, Spearman {c.spearman:.3f} (error vs dH)")
    say(
        f"conformal intervals, nominal coverage {args.coverage:.0%}: held-out coverage "
        f"{result.held_out_coverage:.1%} on {result.n_test} points, mean width "
        f"{result.mean_interval_width:.4g} {args.unit} (seed {args.seed})"
    )
    ra = result.running_average
    say("running average (dH centre in nats -> mean error):")
    for centre, mean, count in zip(ra.centre, ra.mean_error, ra.count):
        if count:
            say(f"  {centre:9.3f}  {mean:.4g}  (n={count})")
    for name, path in (("results", args.output), ("plot", args.plot)):
        if path:
            say(f"{name} written to {path}")
