"""Per generation: size, novelty against all earlier ones, H and D of the cumulative set."""

from __future__ import annotations

from atominfo.cli import dataset, options


def add_arguments(parser) -> None:
    dataset.add_common(
        parser,
        "extxyz info key holding the generation (sorted numerically "
        "when numbers); without it, one file per generation in the order given.",
    )
    options.add_plot(parser)


def run(args) -> None:
    from atominfo.cli.report import print_json, progress, say, table
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.generations import generation_report

    with OutputGuard(inputs=args.files, outputs=[(args.plot, (".png", ".pdf", ".svg"))]):
        options.apply_threads(args)
        data = dataset.load(args)
        groups = dataset.subsets(data, args.group_by, args.files, sort=args.group_by is not None)
        with progress("generations", len(groups), args.quiet, "generations") as advance:
            rows = generation_report(
                {n: data.environments(f) for n, f in groups.items()},
                args.bandwidth,
                structures={n: len(f) for n, f in groups.items()},
                progress=advance,
            )
        if args.plot is not None:
            from atominfo.cli.report import save_plot
            from atominfo.outputs.plots import plot_generations

            save_plot(plot_generations(rows), args.plot)
    result = {
        "bandwidth": args.bandwidth,
        "k": args.k,
        "cutoff": args.cutoff,
        "group_by": args.group_by,
        "plot": args.plot,
        "generations": [r.to_dict() for r in rows],
    }
    if args.json:
        print_json(result)
        return
    say(
        table(
            ["gen", "structures", "envs", "novel", "mean dH", "H", "D"],
            [
                [
                    r.label,
                    r.structures,
                    r.environments,
                    "-" if r.novelty is None else f"{r.novelty:.1%}",
                    "-" if r.mean_dH is None else f"{r.mean_dH:.3f}",
                    f"{r.cumulative_entropy:.4f}",
                    f"{r.cumulative_diversity:.4f}",
                ]
                for r in rows
            ],
            title=f"active-learning generations (h = {args.bandwidth:g} 1/Å; novel: dH > 0 "
            "against all earlier generations; H, D of the cumulative set, nats)",
        )
    )
    if args.plot is not None:
        say(f"figure written to {args.plot}")
