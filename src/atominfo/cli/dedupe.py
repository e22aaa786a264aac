"""Remove duplicate structures (or environments) within a tolerance on descriptor distance.

Structures (default): a structure duplicates an earlier kept one when both
have the same composition and atom count and every environment of each lies
within --tol of an environment of the other. Environments (--by
environments): an environment duplicates the earliest kept one within --tol.
The first occurrence is always kept.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    options.add_inputs(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="Unique structures as .extxyz (unchanged frames; with --by "
        "environments, every frame with a per-atom 'duplicate_of' array, "
        "-1 for kept environments), or the unique descriptors as .npy.",
    )
    parser.add_argument(
        "--tol",
        type=options.typed("duplicate_tol", "--tol"),
        default=1e-3,
        help="Largest descriptor distance between duplicates, 1/Å.",
    )
    parser.add_argument(
        "--by",
        type=options.typed("by", "--by"),
        default="structures",
        help="structures | environments.",
    )
    options.add_descriptor(parser)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli import dataset
    from atominfo.cli.load import species
    from atominfo.cli.report import print_json, say
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.duplicates import OUTPUT_SUFFIXES, kept_rows, run_dedupe

    check_outputs(inputs=args.files, outputs=[(args.output, OUTPUT_SUFFIXES)])
    options.apply_threads(args)
    data = dataset.load(args, species=species(args, args.files))
    dups = run_dedupe(data, args.tol, args.by, output=args.output)
    rows = kept_rows(data, dups)
    unit = "structures" if args.by == "structures" else "environments"
    result = {
        "by": args.by,
        "tol": args.tol,
        unit: dups.n,
        "unique": dups.n_unique,
        "duplicates": dups.n - dups.n_unique,
        "environments_kept": len(rows),
        "output": args.output,
    }
    if args.json:
        print_json({**result, "duplicate_of": dups.duplicate_of})
        return
    say(
        f"{dups.n_unique} unique of {dups.n} {unit} ({dups.n - dups.n_unique} duplicates "
        f"within {args.tol:g} 1/Å)"
    )
    if args.output is not None:
        say(f"  written to {args.output}")
