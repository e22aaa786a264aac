"""Build a compact reference of a dataset: per species at most --size weighted centres, saved
as .npz with its size on disk and the error of dH measured on held-out environments.

Query it with `atominfo inside FILE --ref ref.npz` ("is my system inside this dataset?").
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    options.add_inputs(parser)
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="Output compact reference (.npz)."
    )
    parser.add_argument(
        "--size",
        type=options.typed("min_size", "--size"),
        default=1000,
        help="Most centres kept per species (k-means; every environment when fewer).",
    )
    parser.add_argument(
        "--held-out",
        type=options.typed("test_fraction", "--held-out"),
        default=0.1,
        help="Fraction of each species' environments held out (at most 2000) to measure "
        "the error of the estimated dH against the exact value.",
    )
    parser.add_argument(
        "--species-descriptor",
        type=options.typed("species_descriptor", "--species-descriptor"),
        default="multicomponent",
        help="multicomponent (neighbours resolved by species) or plain (element-blind).",
    )
    options.add_descriptor(parser, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_seed(parser, help="Seed of the k-means and of the held-out draw.")
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.report import fmt, print_json, progress, say, table
    from atominfo.runs.guard import OutputGuard
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.workflows.compact_reference import CompactReference

    options.apply_threads(args)
    spec = DescriptorSpec(args.k, args.cutoff, args.rescale_volume)
    with OutputGuard(inputs=args.files, outputs={args.output: (".npz",)}):
        with progress("describing, then summarising", None, args.quiet, "envs") as advance:
            written = CompactReference.build(
                list(map(str, args.files)),
                args.size,
                args.bandwidth,
                spec=spec,
                reading=Reading(args.index, args.format, args.type_map),
                descriptor=args.species_descriptor,
                held_out=args.held_out,
                seed=args.seed,
                engine=options.engine(args),
                progress=advance,
            ).save(args.output)
    if args.json:
        print_json(written)
        return
    rows = [
        [s, n, c, e.line()]
        for s, n, c, e in zip(written.species, written.n, written.centres, written.error)
    ]
    say(table(["species", "environments", "centres", "error of dH (held out)"], rows, left=4))
    say(
        f"wrote {written.output}: {written.bytes} bytes, {fmt(written.ratio, 3)} of the "
        f"full descriptors ({written.full_bytes} bytes as float64)"
    )
