"""Learning curve: entropy of random subsets vs size, the asymptote fit with its
uncertainty, and the information gap (nats) — or a statement that the data do
not determine them."""

from __future__ import annotations

from atominfo.cli import dataset, options


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
        "--seeds", type=t("n_seeds", "--seeds"), default=3, help="Random subsets per size."
    )
    options.add_seed(parser, "First random seed (then seed+1, ...).")
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


def run(args) -> None:
    from pathlib import Path

    import numpy as np

    from atominfo.cli.report import print_json, progress, say
    from atominfo.outputs.guard import OutputGuard
    from atominfo.structures.frameset import FrameSet
    from atominfo.workflows.curves import learning_curve

    with OutputGuard(inputs=args.files, outputs=[(args.plot, (".png", ".pdf", ".svg"))]):
        options.apply_threads(args)
        data = dataset.load(args)
        if args.group_by is not None or args.per_file:
            groups = data.groups(args.group_by)
        else:
            groups = {"all": np.arange(len(data))}
        curves = {}
        for name, frames in groups.items():
            part = (
                data.subset(frames)
                if hasattr(data, "subset")
                else FrameSet(
                    data.X[data.rows(frames)],
                    np.concatenate([[0], np.cumsum(data.sizes[frames])]),
                    [data.sources[f] for f in frames],
                    [data.source_frames[f] for f in frames],
                )
            )
            total = len(part) if args.by == "structures" else len(part.X)
            with progress(
                f"curve {Path(name).name}", args.sizes * args.seeds, args.quiet, "subsets"
            ) as advance:
                curves[name] = learning_curve(
                    part,
                    args.bandwidth,
                    by=args.by,
                    n_sizes=min(args.sizes, total),
                    n_seeds=args.seeds,
                    seed=args.seed,
                    at=args.at or (),
                    progress=advance,
                )
        if args.plot is not None:
            from atominfo.cli.report import save_plot
            from atominfo.outputs.plots import plot_learning_curves

            labels = None if list(curves) == ["all"] else [Path(n).name for n in curves]
            save_plot(plot_learning_curves(list(curves.values()), labels=labels), args.plot)
    result = {
        "bandwidth": args.bandwidth,
        "k": args.k,
        "cutoff": args.cutoff,
        "plot": args.plot,
        "curves": {name: c.to_dict() for name, c in curves.items()},
    }
    if args.json:
        print_json(result)
        return
    for name, c in curves.items():
        _print_curve(name, c)
    if args.plot is not None:
        say(f"figure written to {args.plot}")


def _print_curve(name, curve) -> None:
    from atominfo.cli.report import say, table

    rows = []
    for i, n in enumerate(curve.sizes):
        fitted = "" if curve.fit is None or not curve.determined else f"{float(curve.fit(n)):.4f}"
        rows.append(
            [
                n,
                int(curve.environments[i].mean()),
                f"{curve.mean[i]:.4f}",
                f"{curve.sd[i]:.4f}",
                fitted,
            ]
        )
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
