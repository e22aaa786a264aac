"""Keep the most informative structures: writes them and a JSON summary (H, D, overlap)."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import dataset, options



def add_arguments(parser) -> None:
    dataset.add_common(parser)
    parser.add_argument("-s", "--size", required=True, type=options.selection_size,
                        help="Structures to keep: a fraction (0.5) or a number (200).")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="Selected frames, unchanged (all info and arrays), as .extxyz.")
    parser.add_argument("-m", "--method", type=options.typed("compression_method", "--method"),
                        default="msc", help="msc | fps | kmeans | random.")
    options.add_reference(parser, required=False)
    options.add_seed(parser, "Random seed (random, kmeans).")
    parser.add_argument("--summary", type=Path, default=None,
                        help="JSON summary file (default: the output name with .json).")
    parser.add_argument("--chemiscope", type=Path, default=None, metavar="PATH",
                        help="Also write every structure for the chemiscope viewer (.json.gz "
                        "or .json): kept or not, pick order, per-atom dH against the kept.")


def run(args) -> None:
    from atominfo.cli.load import species
    from atominfo.cli.report import print_json, progress, say, write_json
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.compression import select, selection_size, write_selection

    summary = args.summary or args.output.with_suffix(".json")
    refs = args.ref or []
    with OutputGuard(inputs=[*args.files, *refs],
                     outputs=[(args.output, (".extxyz", ".xyz")), (summary, (".json",)),
                              (args.chemiscope, (".json.gz", ".json"))]):
        options.apply_threads(args)
        sp = species(args, args.files, refs)
        data = dataset.load(args, species=sp)
        reference = None
        if refs:
            reference = dataset.load(args, refs, "reference descriptors", sp, index=":").X
        m = selection_size(args.size, len(data))
        with progress(f"{args.method} selection", m, args.quiet, "structures") as advance:
            selection = select(data, args.size, args.method, args.bandwidth, seed=args.seed,
                               reference=reference, progress=advance)
        write_selection(data, selection, args.output)
        result = selection.to_dict()
        result.update({"input": args.files, "reference": refs, "output": args.output,
                       "k": args.k, "cutoff": args.cutoff,
                       "rescale_volume": args.rescale_volume})
        write_json(summary, result)
        if args.chemiscope is not None:
            from atominfo.outputs.chemiscope import write_selection_chemiscope

            write_selection_chemiscope(args.chemiscope, data, selection, args.bandwidth,
                                       reference, cutoff=args.cutoff)
    if args.json:
        print_json(result)
        return
    s = selection
    say(f"{args.method}: kept {s.n_structures} of {s.total_structures} structures "
        f"({s.n_environments} of {s.total_environments} environments) in {s.seconds:.1f} s")
    say(f"  selection H = {s.entropy:.4f} nats, D = {s.diversity:.4f} nats; full set inside "
        f"the selection{' + reference' if refs else ''}: {s.overlap:.1%}")
    say(f"  frames written to {args.output}, summary to {summary}")
