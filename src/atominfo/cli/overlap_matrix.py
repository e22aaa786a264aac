"""Overlap of every subset against every other: row i, column j = fraction of subset i
with dH(x | subset j) <= 0."""

from __future__ import annotations

from atominfo.cli import dataset, options


def add_arguments(parser) -> None:
    dataset.add_common(
        parser,
        "extxyz info key whose values label the subsets (e.g. "
        "config_type); without it, each file is a subset.",
    )
    options.add_plot(parser)


def run(args) -> None:
    from atominfo.cli.report import print_json, progress, say, table
    from atominfo.outputs.plots import PLOT_SUFFIXES
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.overlap_matrix import run_overlap_matrix

    check_outputs(inputs=args.files, outputs=[(args.plot, PLOT_SUFFIXES)])
    options.apply_threads(args)
    data = dataset.load(args)
    groups = dataset.subsets(data, args.group_by, args.files)
    with progress("overlap pairs", len(groups) ** 2, args.quiet, "pairs") as advance:
        matrix = run_overlap_matrix(data, args.bandwidth, groups, plot=args.plot, progress=advance)
    result = matrix.to_dict()
    result.update(
        {
            "structures": [len(groups[n]) for n in groups],
            "group_by": args.group_by,
            "k": args.k,
            "cutoff": args.cutoff,
            "plot": args.plot,
        }
    )
    if args.json:
        print_json(result)
        return
    say(
        table(
            ["subset (environments)", *matrix.labels],
            [
                [f"{label} ({matrix.sizes[i]})", *(f"{v:.3f}" for v in matrix.values[i])]
                for i, label in enumerate(matrix.labels)
            ],
            title=f"overlap of row subset with column subset (fraction of row environments "
            f"with dH <= 0; h = {args.bandwidth:g} 1/Å)",
        )
    )
    if args.plot is not None:
        say(f"figure written to {args.plot}")
