"""Learning curve: entropy of random subsets vs size, classified saturated / still rising /
not determined by the rise of H per doubling of N at the full size (its 95% interval
over seeds below 0.05 nats: saturated; above: still rising; otherwise not determined);
only a still rising curve gets an asymptote fit, information gap and saturation size,
and only when the fit passes its checks."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

from atominfo.cli import dataset, options, species


def add_arguments(parser) -> None:
    t = options.typed
    dataset.add_common(parser, "One curve per value of this extxyz info key (e.g. config_type).")
    parser.add_argument(
        "--by",
        type=t("by", "--by"),
        default="structures",
        help="Sample whole structures or single environments.",
    )
    parser.add_argument(
        "--sizes",
        type=t("n_sizes", "--sizes"),
        default=12,
        help="Number of log-spaced subset sizes, the full size included (the fit drops the "
        "first and last three, so it needs at least 9).",
    )
    parser.add_argument(
        "--seeds",
        type=t("n_seeds", "--seeds"),
        default=3,
        help="Random subsets per size (the interval of the rise per doubling is over seeds: "
        "2 or more; one seed uses the residuals of the last sizes).",
    )
    options.add_seed(parser, "First random seed (then seed+1, ...).")
    parser.add_argument(
        "--sample",
        type=t("n_samples", "--sample"),
        default=None,
        metavar="M",
        help="H of each subset from M random environments (a new draw per seed, the full set "
        "too); the rise test then holds the sampling error (2+ seeds); no asymptote fit.",
    )
    parser.add_argument(
        "--at",
        type=t("subset_size", "--at"),
        action="append",
        default=None,
        help="Also report H and the information gap at this size (repeatable).",
    )
    parser.add_argument(
        "--per-file",
        action="store_true",
        help="One curve per file instead of one for all files together.",
    )
    options.add_plot(parser)
    species.add_species(parser)


def run(args) -> None:
    from atominfo.cli.report import print_json, say
    from atominfo.errors import InputError
    from atominfo.outputs.plots import PLOT_SUFFIXES
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.curves import CurveOptions
    from atominfo.workflows.curves_run import run_curves

    check_outputs(inputs=args.files, outputs=[(args.plot, PLOT_SUFFIXES)])
    options.apply_threads(args)
    if args.species:
        from atominfo.cli import species_data

        if args.sample is not None:
            raise InputError("curve --species does not take --sample")
        return species_data.curve(args, _bars(args))
    species.wanted(args)  # --species-descriptor alone is refused
    data = dataset.load(args)
    sampling = CurveOptions(
        by=args.by, n_sizes=args.sizes, n_seeds=args.seeds, seed=args.seed, at=args.at or ()
    )
    with _bars(args) as advance:
        result = run_curves(
            data,
            args.bandwidth,
            sampling,
            group_by=args.group_by,
            per_file=args.per_file,
            plot=args.plot,
            progress=advance,
            sample=args.sample,
        )
    if args.json:
        extra = {} if args.sample is None else {"sample": args.sample}
        head = {"bandwidth": args.bandwidth, "k": args.k, "cutoff": args.cutoff, **extra}
        print_json({**head, **result.to_dict()})
        return
    for name, c in result.curves.items():
        _print_curve(name, c)
    if args.plot is not None:
        say(f"figure written to {args.plot}")


@contextmanager
def _bars(args):
    """``advance(curve name, n)``: one progress bar per curve, opened at its first subset."""
    from pathlib import Path

    from atominfo.cli.report import progress

    with ExitStack() as stack:
        current: dict = {}

        def advance(name: str, n: int) -> None:
            if current.get("name") != name:
                stack.close()
                total = args.sizes * args.seeds
                bar = progress(f"curve {Path(name).name}", total, args.quiet, "subsets")
                current.update(name=name, step=stack.enter_context(bar))
            current["step"](n)

        yield advance


def _print_curve(name, curve) -> None:
    from atominfo.cli.report import say, table

    rows = [
        [
            r["N"],
            r["environments"],
            f"{r['H_mean']:.4f}",
            f"{r['H_sd']:.4f}",
            "" if r["fit"] is None else f"{r['fit']:.4f}",
        ]
        for r in curve.rows()
    ]
    say(
        table(
            [f"N ({curve.unit})", "environments", "H mean (nats)", "H sd (nats)", "fit (nats)"],
            rows,
            left=0,
            title=f"learning curve of {name} (h = {curve.bandwidth:g} 1/Å, by {curve.unit}, "
            f"seeds {curve.seeds})",
        )
    )
    for line in curve.summary_lines():
        say("  " + line)
