"""Per generation: size, novelty against all earlier ones, H and D of the cumulative set,
the gain in H and (with --gap) the information gap; then a verdict, "converged" or
"not converged", by a stated rule with the thresholds below."""

from __future__ import annotations

from atominfo.cli import dataset, options


def add_arguments(parser) -> None:
    dataset.add_common(
        parser,
        "extxyz info key holding the generation (sorted numerically "
        "when numbers); without it, one file per generation in the order given.",
    )
    options.add_seed(parser)
    group = parser.add_argument_group("verdict (when to stop)")
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
        help="converged needs each of them below this novelty, the fraction of its "
        "environments with dH > 0 against all earlier generations (default 0.01)",
    )
    group.add_argument(
        "--max-gain",
        type=options.typed("max_gain", "--max-gain"),
        default=0.05,
        metavar="NATS",
        help="... and each raising the cumulative H by less than this (default 0.05 nats)",
    )
    group.add_argument(
        "--gap",
        action="store_true",
        help="also compute the information gap of each cumulative set (a learning curve "
        "over its environments: about 36 entropies per generation) and require the last "
        "one determined and below --max-gap",
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
    from atominfo.cli.report import print_json, progress, say, table
    from atominfo.outputs.plots import PLOT_SUFFIXES
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.generations import VerdictRule, run_generations

    check_outputs(inputs=args.files, outputs=[(args.plot, PLOT_SUFFIXES)])
    options.apply_threads(args)
    data = dataset.load(args)
    groups = dataset.subsets(data, args.group_by, args.files, sort=args.group_by is not None)
    with progress("generations", len(groups), args.quiet, "generations") as advance:
        run = run_generations(
            data,
            args.bandwidth,
            groups,
            rule=VerdictRule(args.window, args.max_novelty, args.max_gain, args.max_gap),
            gap=args.gap,
            seed=args.seed,
            plot=args.plot,
            progress=advance,
        )
    rows, verdict = run.generations, run.verdict
    summary = run.to_dict()
    result = {
        "bandwidth": args.bandwidth,
        "k": args.k,
        "cutoff": args.cutoff,
        "group_by": args.group_by,
        "plot": args.plot,
        "generations": summary["generations"],
        "verdict": summary["verdict"],
    }
    if args.json:
        print_json(result)
        return
    say(
        table(
            ["gen", "structures", "envs", "novel", "mean dH", "H", "gain", "D"]
            + (["gap"] if args.gap else []),
            [
                [
                    r.label,
                    r.structures,
                    r.environments,
                    "-" if r.novelty is None else f"{r.novelty:.1%}",
                    "-" if r.mean_dH is None else f"{r.mean_dH:.3f}",
                    f"{r.cumulative_entropy:.4f}",
                    "-" if r.entropy_gain is None else f"{r.entropy_gain:+.4f}",
                    f"{r.cumulative_diversity:.4f}",
                ]
                + ([_gap_text(r)] if args.gap else [])
                for r in rows
            ],
            title=f"active-learning generations (h = {args.bandwidth:g} 1/Å; novel: dH > 0 "
            "against all earlier generations; H, D of the cumulative set and gain of H over "
            "the previous one, nats"
            + ("; gap: asymptote - H of the cumulative set" if args.gap else "")
            + ")",
        )
    )
    if args.gap:
        for r in rows:
            if r.gap is None and r.gap_reason:
                say(f"gap after generation {r.label} {r.gap_status}: {r.gap_reason}")
    say(f"rule: {verdict.rule}")
    say(verdict.line())
    if args.plot is not None:
        say(f"figure written to {args.plot}")


def _gap_text(row) -> str:
    if row.gap is not None:
        return f"{row.gap:.4f}"
    return row.gap_status
