"""Dataset summary: n, entropy H, diversity D, log n and efficiency H/log n, per group and total.

Groups are the values of an extxyz info key (--group-by config_type) or,
without it, the input files. Entropies in nats; the efficiency H / log n is 1
when every environment is unique on the scale of the bandwidth.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import dataset


def add_arguments(parser) -> None:
    dataset.add_common(
        parser,
        "extxyz info key whose values define the groups (e.g. "
        "config_type); without it, each file is a group.",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="The table as .json or .csv."
    )


def run(args) -> None:
    from atominfo.cli import options
    from atominfo.cli.report import fmt, print_json, progress, say, table
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.metrics import TABLE_SUFFIXES, run_metrics

    check_outputs(inputs=args.files, outputs=[(args.output, TABLE_SUFFIXES)])
    options.apply_threads(args)
    data = dataset.load(args)
    record = {"files": args.files, "k": args.k, "cutoff": args.cutoff}
    with progress("groups", None, args.quiet, "groups") as advance:
        metrics = run_metrics(
            data, args.bandwidth, args.group_by, output=args.output, record=record, progress=advance
        )
    if args.json:
        print_json({**metrics.to_dict(), **record})
        return
    say(
        table(
            ["group", "structures", "n", "H", "D", "log n", "H/log n"],
            [
                [
                    r["label"],
                    r["structures"],
                    r["n"],
                    fmt(r["H"], 5),
                    fmt(r["D"], 5),
                    fmt(r["log_n"], 5),
                    fmt(r["efficiency"], 4),
                ]
                for r in metrics.rows
            ],
            title=f"dataset metrics (nats; h = {args.bandwidth:g} 1/Å)",
        )
    )
    if args.output is not None:
        say(f"table written to {args.output}")
