"""Keep the most informative structures: writes them and a JSON summary (H, D, overlap)."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options, species, species_data


def add_arguments(parser) -> None:
    from atominfo.cli import dataset

    dataset.add_common(parser)
    parser.add_argument(
        "-s",
        "--size",
        default=None,
        type=options.selection_size,
        help="Structures to keep: a fraction (0.5) or a number (200). "
        "Needed unless --budget is given.",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="Selected frames, unchanged (all info and arrays), as .extxyz.",
    )
    parser.add_argument(
        "-m",
        "--method",
        type=options.typed("compression_method", "--method"),
        default="msc",
        help="msc | fps | kmeans | random.",
    )
    options.add_reference(parser, required=False)
    options.add_seed(parser, "Random seed (random, kmeans).")
    group = parser.add_argument_group("budget and strata (msc, fps, random)")
    group.add_argument(
        "--budget",
        default=None,
        metavar="B",
        help="Total cost of the kept structures: a number in cost units, or a "
        "percentage of the whole dataset's cost (10%%). Structures that do "
        "not fit are skipped.",
    )
    group.add_argument(
        "--cost",
        default=None,
        metavar="KEY",
        help="Cost of a structure: this info key (e.g. cpu_hours); default n_atoms^3.",
    )
    group.add_argument(
        "--stratify",
        default=None,
        metavar="KEY",
        help="Give each group of this info key (e.g. config_type) a share "
        "of the selection (and budget) proportional to its size, at least one.",
    )
    group.add_argument(
        "--quota",
        action="append",
        default=None,
        metavar="GROUP=N",
        help="Keep N structures of GROUP (with --stratify); repeat.",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="JSON summary file (default: the output name with .json).",
    )
    parser.add_argument(
        "--chemiscope",
        type=Path,
        default=None,
        metavar="PATH",
        help="Also write every structure for the chemiscope viewer (.json.gz "
        "or .json): kept or not, pick order, per-atom dH against the kept.",
    )
    species.add_species(parser)


def run(args) -> None:
    from atominfo.cli.load import reference as load_reference
    from atominfo.cli.report import print_json, progress, say
    from atominfo.errors import InputError
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.compression import selection_size
    from atominfo.workflows.compression_limits import Constraints, parse_quotas
    from atominfo.workflows.compression_run import CompressOutputs, compress

    if args.size is None and args.budget is None:
        raise InputError("give --size (a fraction or a count) or --budget")
    quotas = parse_quotas(args.quota)
    if quotas and args.stratify is None:
        raise InputError("--quota needs --stratify KEY (the info key of the groups)")
    outputs = CompressOutputs(args.output, args.summary, args.chemiscope, args.cutoff)
    refs = args.ref or []
    check_outputs(inputs=[*args.files, *refs], outputs=outputs.checked())
    options.apply_threads(args)
    refused = {"--ref": bool(refs), "--chemiscope": args.chemiscope is not None}
    sp, data = species_data.load(args, refs, refused)
    reference = load_reference(args, args.bandwidth, sp) if refs else None
    m = len(data) if args.size is None else selection_size(args.size, len(data))
    with progress(f"{args.method} selection", m, args.quiet, "structures") as advance:
        run = compress(
            data,
            args.size,
            args.method,
            args.bandwidth,
            outputs=outputs,
            seed=args.seed,
            constraints=Constraints(args.cost, args.budget, args.stratify, quotas, args.species),
            reference=reference,
            record={
                "input": args.files,
                "reference": refs,
                "output": args.output,
                "k": args.k,
                "cutoff": args.cutoff,
                "rescale_volume": args.rescale_volume,
            },
            progress=advance,
        )
    if args.json:
        print_json(run.to_dict())
        return
    s = run.selection
    say(
        f"{args.method}: kept {s.n_structures} of {s.total_structures} structures "
        f"({s.n_environments} of {s.total_environments} environments) in {s.seconds:.1f} s"
    )
    say(
        f"  selection H = {s.entropy:.4f} nats, D = {s.diversity:.4f} nats; full set inside "
        f"the selection{' + reference' if refs else ''}: {s.overlap:.1%}"
    )
    if s.budget is not None:
        say(
            f"  cost {s.cost:.6g} of a budget of {s.budget:.6g} ({s.cost / s.total_cost:.1%} "
            f"of the dataset's {s.total_cost:.6g}; cost: {args.cost or 'n_atoms^3'})"
        )
    for name, g in s.groups.items():
        say(f"  {args.stratify} = {name}: kept {g['picked']} of {g['structures']}")
    if s.species is not None:
        species_data.retention(s)
    say(f"  frames written to {args.output}, summary to {outputs.summary}")
