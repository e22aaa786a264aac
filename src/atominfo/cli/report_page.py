"""One self-contained HTML page on a dataset: information, completeness, redundancy, novelty.

With the commands, package versions and input fingerprints that reproduce it.

The page answers: how much information the dataset holds (H, D, log n and
H / log n per group); whether it is complete (learning curves, the information
gap or a statement that the data do not determine it); where it is redundant
(overlap between groups, what msc compression keeps); what is new against
--ref (novelty per group, the most novel structures and atoms, dH histograms).
It loads nothing from outside the file (inline style, embedded figures).
"""

from __future__ import annotations

import sys
from pathlib import Path

from atominfo.cli import dataset, options, species


def add_arguments(parser) -> None:
    t = options.typed
    dataset.add_common(
        parser,
        "extxyz info key whose values define the groups (e.g. "
        "config_type); without it, each file is a group.",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="The report page (.html).")
    options.add_reference(parser, required=False)
    parser.add_argument(
        "--chemiscope",
        type=Path,
        default=None,
        metavar="PATH",
        help="Also write the structures with their per-structure and "
        "per-atom values for the chemiscope viewer (.json.gz or .json).",
    )
    parser.add_argument(
        "--sizes",
        type=t("n_sizes", "--sizes"),
        default=12,
        help="Number of learning-curve subset sizes, the full size included (at least 9 "
        "for an asymptote fit).",
    )
    parser.add_argument(
        "--seeds",
        type=t("n_seeds", "--seeds"),
        default=3,
        help="Random subsets per learning-curve size.",
    )
    options.add_seed(parser, "First random seed (learning curves, random baseline).")
    species.add_species(parser)


def _command_line() -> str:
    import shlex

    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name == "atominfo" else None
    return "atominfo " + " ".join(shlex.quote(a) for a in argv) if argv else ""


def run(args) -> None:
    from atominfo.cli import species_data
    from atominfo.cli.load import reference as load_reference
    from atominfo.cli.report import print_json, say
    from atominfo.runs.guard import check_outputs
    from atominfo.workflows.report import ReportOptions
    from atominfo.workflows.report_run import ReportOutputs, run_report

    refs = args.ref or []
    title = ", ".join(Path(f).name for f in args.files)
    outputs = ReportOutputs(args.output, args.chemiscope, args.cutoff, title)
    check_outputs(inputs=[*args.files, *refs], outputs=outputs.checked())
    options.apply_threads(args)
    sp, data = species_data.load(args, refs)
    reference = load_reference(args, args.bandwidth, sp) if refs else None
    provenance = {
        "files": [str(f) for f in args.files],
        "reference_files": [str(r) for r in refs],
        "k": args.k,
        "cutoff": args.cutoff,
        "index": args.index,
        "format": args.format,
        "rescale_volume": args.rescale_volume,
        "title": title,
        "command": _command_line(),
        "species_descriptor": args.species_descriptor if args.species else None,
    }
    step = (
        (lambda name: None)
        if args.quiet or not sys.stderr.isatty()
        else (lambda name: print(f"atominfo report: {name}", file=sys.stderr, flush=True))
    )
    report = run_report(
        data,
        args.bandwidth,
        ReportOptions(args.sizes, args.seeds, args.seed, species=args.species),
        outputs=outputs,
        group_by=args.group_by,
        reference=reference,
        provenance=provenance,
        progress=step,
    )
    if args.json:
        result = report.to_dict()
        result.update({"output": args.output, "chemiscope": args.chemiscope})
        print_json(result)
        return
    total = report.total
    say(
        f"{len(data)} structures, {total.environments} environments: H = "
        f"{total.entropy:.4f} nats, D = {total.diversity:.4f} nats, log n = "
        f"{total.log_n:.4f} nats (h = {report.bandwidth:g} 1/Å)"
    )
    say("  " + report.curves["all"].headline())
    if report.species is not None:
        say("  " + report.species.curve.verdict())
    if report.dH is not None:
        say(f"  novel against the reference (dH > 0): {report.novelty['all']:.1%}")
    say(f"  report written to {args.output}")
    if args.chemiscope is not None:
        say(
            f"  chemiscope file written to {args.chemiscope} (open it at chemiscope.org or "
            "with chemiscope.show_input in Jupyter)"
        )
