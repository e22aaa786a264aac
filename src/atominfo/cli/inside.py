"""Is my system inside this dataset? dH of every atom against a compact reference
(`atominfo reference`), species by species, with the error of dH stated.

Per species: the fraction novel (estimated dH > 0), the fraction whose rigorous
dH interval lies on one side of 0 (decided for sure), and the error of the
estimate measured on held-out environments when the reference was built.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    options.add_inputs(parser)
    parser.add_argument(
        "-r",
        "--ref",
        type=Path,
        required=True,
        help="Compact reference (.npz from `atominfo reference`).",
    )
    group = parser.add_argument_group(
        "descriptor", "Taken from the reference; a value given here must be the reference's."
    )
    group.add_argument("-k", "--k", type=options.typed("k", "-k"), default=None, help="Neighbours.")
    group.add_argument(
        "-c", "--cutoff", type=options.typed("cutoff", "--cutoff"), default=None, help="Å."
    )
    group.add_argument(
        "--rescale-volume",
        type=options.typed("rescale_volume", "--rescale-volume"),
        default=None,
        metavar="V",
        help="Å^3 per atom.",
    )
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.report import fmt, print_json, progress, say, table
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.workflows.compact_reference import query_files

    options.apply_threads(args)
    spec = DescriptorSpec(args.k, args.cutoff, args.rescale_volume)
    with progress("describing", None, args.quiet) as advance:
        result = query_files(
            list(map(str, args.files)),
            args.ref,
            spec=spec,
            reading=Reading(args.index, args.format, args.type_map),
            progress=advance,
        )
    if args.json:
        print_json(result)
        return
    cols = result.columns()
    keys = ("species", "n", "n_reference", "novelty", "decided", "status")
    rows = [
        [c if isinstance(c, (str, int)) else fmt(c) for c in r] for r in zip(*map(cols.get, keys))
    ]
    heads = ["species", "n", "n ref", "novelty", "decided", "status"]
    title = (
        f"each species against the compact reference {args.ref} (h = {fmt(result.bandwidth)} 1/Å)"
    )
    say(table(heads, rows, title=title))
    for s, line in zip(result.species, result.error):
        say(f"{s}: {line}")
    say(
        f"novelty {fmt(result.total_novelty)} "
        "(decided: the rigorous dH interval lies on one side of 0)"
    )
