"""The default bandwidth, its FCC calibration, and the volume rule."""

from __future__ import annotations

from atominfo.cli import options


def add_arguments(parser) -> None:
    parser.add_argument(
        "--volume",
        type=options.typed("volume", "--volume"),
        default=None,
        help="Volume per atom (Å^3): print the volume rule's h.",
    )
    parser.add_argument(
        "--rule",
        type=options.typed("volume_rule", "--rule"),
        default="gaussian",
        help="Volume rule: gaussian or cutoff.",
    )
    parser.add_argument(
        "--lattice",
        type=options.typed("lattice", "--lattice"),
        default=3.58,
        help="FCC lattice parameter, Å.",
    )
    parser.add_argument(
        "--strain",
        type=options.typed("strain", "--strain"),
        default=None,
        help="Strain of the second crystal (default: the 3.54/3.58 Å pair).",
    )
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_output(parser, quiet=False)


def run(args) -> None:
    from atominfo.cli.report import print_json, say
    from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH, fcc_calibration, volume_bandwidth

    cal = fcc_calibration(args.lattice, args.strain, args.k, args.cutoff)
    result = {"default_h": DEFAULT_BANDWIDTH, "fcc_calibration": cal}
    if args.volume is not None:
        result.update(
            volume=args.volume,
            rule=args.rule,
            volume_rule_h=volume_bandwidth(args.volume, args.rule),
        )
    if args.json:
        print_json(result)
        return
    say(f"default bandwidth h = {DEFAULT_BANDWIDTH} 1/Å")
    say(
        f"FCC calibration: descriptor distance between a = {cal['lattice']:.4f} Å and "
        f"{cal['strained_lattice']:.4f} Å (strain {cal['strain']:.4f}) is "
        f"{cal['distance']:.5f} 1/Å, so h = {cal['h']:.5f} 1/Å (half of it)"
    )
    if args.volume is not None:
        say(
            f"volume rule '{args.rule}' at {args.volume} Å^3/atom: h = "
            f"{result['volume_rule_h']:.5f} 1/Å"
        )
