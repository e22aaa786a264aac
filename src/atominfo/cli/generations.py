"""Per generation: size, novelty against all earlier ones, H and D of the cumulative set,
the gain in H, what re-sampling gives for both and (with --gap) the information gap;
with --production, the production runs' novelty against the whole training set; then
a verdict, "converged", "not converged" or "undetermined", by a stated rule."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import dataset, options


def add_arguments(parser) -> None:
    dataset.add_common(
        parser,
        "extxyz info key holding the generation (sorted numerically "
        "when numbers); without it, one file per generation in the order given.",
    )
    options.add_seed(parser, "Random seed of the re-sampling (and of the --gap curves).")
    group = parser.add_argument_group("verdict (can I stop?)")
    group.add_argument(
        "--production",
        nargs="+",
        type=Path,
        default=None,
        metavar="FILE",
        help="structures of the production runs (the simulations the potential is for): "
        "converged needs their novel fraction against the whole training set below "
        "--max-novelty at 95%% confidence (structures as independent draws: about 300 "
        "without a novel environment show 1%%). Without it the verdict covers only the "
        "data's own self-consistency. --index applies to these files too",
    )
    group.add_argument(
        "--window",
        type=options.typed("verdict_window", "--window"),
        default=2,
        metavar="N",
        help="the verdict looks at the last N generations (default 2)",
    )
    group.add_argument(
        "--max-novelty",
        type=options.typed("max_novelty", "--max-novelty"),
        default=0.01,
        metavar="FRACTION",
        help="converged needs each of them within this of the novelty re-sampling gives "
        "(fraction of environments with dH > 0 against all earlier generations; 95%% "
        "quantile), and production below it (default 0.01)",
    )
    group.add_argument(
        "--max-gain",
        type=options.typed("max_gain", "--max-gain"),
        default=None,
        metavar="NATS",
        help="also require each of them to raise the cumulative H by less than this beyond "
        "what re-sampling gives (off by default: an MD run still equilibrating raises H "
        "beyond re-sampling with no novel environment)",
    )
    group.add_argument(
        "--resamples",
        type=options.typed("verdict_resamples", "--resamples"),
        default=199,
        metavar="N",
        help="random re-splits of the structures per generation behind the re-sampled "
        "values (default 199; at least 19)",
    )
    group.add_argument(
        "--gap",
        action="store_true",
        help="also compute the information gap of each cumulative set (a learning curve "
        "over its environments: about 36 entropies per generation) and require the last "
        "curve saturated or its gap below --max-gap; a gap the data do not determine "
        "makes the verdict undetermined",
    )
    group.add_argument(
        "--max-gap",
        type=options.typed("max_gap", "--max-gap"),
        default=0.05,
        metavar="NATS",
        help="with --gap: the largest information gap that counts as converged (default 0.05)",
    )
    options.add_plot(parser)


def run(args) -> None:
    from atominfo.cli.load import species
    from atominfo.cli.report import print_json, progress, say, table
    from atominfo.outputs.plots import PLOT_SUFFIXES
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.generations import VerdictRule, run_generations

    production_files = args.production or []
    check_outputs(inputs=args.files + production_files, outputs=[(args.plot, PLOT_SUFFIXES)])
    options.apply_threads(args)
    sp = species(args, args.files, production_files)
    data = dataset.load(args, species=sp)
    production = None
    if production_files:
        production = dataset.load(args, production_files, "production", species=sp)
    groups = dataset.subsets(data, args.group_by, args.files, sort=args.group_by is not None)
    rule = VerdictRule(args.window, args.max_novelty, args.max_gain, args.max_gap, args.resamples)
    with progress("generations", len(groups), args.quiet, "generations") as advance:
        run = run_generations(
            data,
            args.bandwidth,
            groups,
            rule=rule,
            gap=args.gap,
            production=production,
            seed=args.seed,
            plot=args.plot,
            progress=advance,
        )
    if args.json:
        print_json({"k": args.k, "cutoff": args.cutoff, "group_by": args.group_by, **run.to_dict()})
        return
    headers, rows, title = run.table()
    say(table(headers, rows, title=title))
    for line in run.text_lines():
        say(line)
    if args.plot is not None:
        say(f"figure written to {args.plot}")
