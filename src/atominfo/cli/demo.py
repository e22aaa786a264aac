"""Built-in demo: Cu crystal at 300 K and 1000 K and a melt (EMT): H, D and dH."""

from __future__ import annotations

from atominfo.cli import options


def add_arguments(parser) -> None:
    parser.add_argument(
        "--frames",
        type=options.typed("n_frames", "--frames"),
        default=10,
        help="MD frames per set.",
    )
    parser.add_argument(
        "--repeat",
        type=options.typed("repeat", "--repeat"),
        default=3,
        help="Supercell repeat (4 * repeat^3 atoms).",
    )
    options.add_output(parser, quiet=False)


def run(args) -> None:
    from atominfo.cli.report import print_json, say
    from atominfo.workflows.demo import run as demo

    result = demo(
        repeat=args.repeat, n_frames=args.frames, log=(lambda *a: None) if args.json else say
    )
    if args.json:
        print_json(result)
