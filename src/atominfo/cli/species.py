"""--species for `atominfo entropy` and `atominfo overlap`: the species-resolved mode
(`atominfo.workflows.species_run`), its options, checks and printed tables."""

from __future__ import annotations

from atominfo.cli import options


def add_species(parser) -> None:
    group = parser.add_argument_group("species-resolved mode")
    group.add_argument(
        "--species",
        action="store_true",
        help="Species-resolved: each centre species against the same species, with "
        "the chemical term H(species) and the joint H = H(species) + sum_z p(z) H(X|z); "
        "the species are those of the data.",
    )
    group.add_argument(
        "--species-descriptor",
        type=options.typed("species_descriptor", "--species-descriptor"),
        default=None,
        help="Descriptor of each atom in --species mode: multicomponent (default: its "
        "neighbours by species, sees chemical order) or plain (element-blind).",
    )


def wanted(args) -> bool:
    """Whether the run is in --species mode; a UsageError for --species-descriptor alone."""
    from atominfo.cli import UsageError

    if args.species_descriptor is not None and not args.species:
        raise UsageError("--species-descriptor needs --species")
    if args.species_descriptor is None:
        args.species_descriptor = "multicomponent"
    return bool(args.species)


def settings(args, files, refused: dict):
    """(h, spec, reading) of a --species run; InputError for what the mode does not take."""
    from atominfo.errors import InputError
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.structures.saved import is_saved_descriptors

    for option, given in refused.items():
        if given:
            raise InputError(f"--species does not take {option}")
    h = options.h_value(args)
    if isinstance(h, list):
        raise InputError("--species takes one bandwidth")
    saved = [str(f) for f in files if is_saved_descriptors(f)]
    if saved:
        raise InputError(f"{saved[0]}: --species needs structure files (the species of each atom)")
    spec = DescriptorSpec(args.k, args.cutoff, args.rescale_volume)
    return h, spec, Reading(args.index, args.format, args.type_map)


def entropy(args) -> None:
    """`atominfo entropy --species`: per file (and all), per species H, D and the totals."""
    from atominfo.cli.report import fmt, print_json, progress, say, table
    from atominfo.workflows.species_run import species_entropy_table

    h, spec, reading = settings(args, args.files, {"--multicomponent": args.multicomponent})
    with progress("species entropy", None, args.quiet, "envs") as advance:
        result = species_entropy_table(
            list(map(str, args.files)),
            h,
            spec=spec,
            reading=reading,
            descriptor=args.species_descriptor,
            engine=options.engine(args),
            progress=lambda name, n: advance(n),
            sample=args.sample,
            seed=args.seed,
        )
    if args.json:
        print_json({**result.to_dict(), "k": args.k, "cutoff": args.cutoff})
        return
    cols = result.columns()
    sampled = "H_low" in cols
    lows, highs = cols.get("H_low", cols["H"]), cols.get("H_high", cols["H"])
    keys = ("set", "species", "n", "p", "H", "D")
    rows = [
        [s, sp, "-" if n is None else n, fmt(p), _h(H, lo, hi, sampled), fmt(D)]
        for s, sp, n, p, H, D, lo, hi in zip(*(cols[k] for k in keys), lows, highs)
    ]
    title = (
        f"species-resolved information ({result.descriptor} descriptor, h = {fmt(h)} 1/Å, "
        f"k = {args.k}, rc = {args.cutoff} Å)"
    )
    say(table(["set", "species", "n", "p(z)", "H (nats)", "D (nats)"], rows, title=title, left=2))
    say("species rows: H(X|z) of each centre species; chemical: H(species) = -sum p log p;")
    say("total: the joint H = H(species) + sum_z p(z) H(X|z)")
    if sampled:
        exact = sorted({sp for _, r in result.sets for sp, e in zip(r.species, r.sampled) if not e})
        say(
            f"H(X|z) estimated from {args.sample} random environments of each species "
            f"(seed {args.seed}); H(species) exact; D not computed.\n"
            "[low, high]: the intervals of a set hold together with probability >= 95% for "
            "any data (Bonferroni: each of its k sampled species at level 0.05/k; total: "
            "H(species) + sum_z p(z) bounds)"
        )
        if exact:
            say(f"exact (no more than {args.sample} environments): {', '.join(exact)}")


def _h(H, low, high, sampled: bool) -> str:
    from atominfo.cli.report import fmt

    # a zero-width interval (exact species, the chemical term) is the value alone
    return f"{fmt(H)} [{fmt(low)}, {fmt(high)}]" if sampled and low != high else fmt(H)


def overlap(args) -> None:
    """`atominfo overlap --species`: per species, the fraction of test atoms novel against
    the reference atoms of the same species."""
    from atominfo.cli.report import fmt, print_json, progress, say, table
    from atominfo.workflows.species_run import species_novelty

    refused = {
        "--false-alarm": args.false_alarm is not None,
        "--multicomponent": args.multicomponent,
    }
    h, spec, reading = settings(args, [*args.files, *args.ref], refused)
    with progress("species dH", None, args.quiet, "envs") as advance:
        result = species_novelty(
            list(map(str, args.files)),
            list(map(str, args.ref)),
            h,
            spec=spec,
            reading=reading,
            descriptor=args.species_descriptor,
            engine=options.engine(args),
            progress=advance,
        )
    summary = {**result.to_dict(), "overlap": 1 - result.total_novelty}
    if args.json:
        print_json(summary)
        return
    cols = result.columns()
    keys = ("species", "n", "n_reference", "novelty", "mean_dH", "max_dH", "status")
    rows = [
        [c if isinstance(c, (str, int)) else fmt(c) for c in r] for r in zip(*map(cols.get, keys))
    ]
    heads = ["species", "n", "n ref", "novelty", "mean dH", "max dH", "status"]
    title = (
        f"each species against the same species ({result.descriptor} descriptor, h = {fmt(h)} 1/Å)"
    )
    say(table(heads, rows, title=title))
    say(f"overlap {fmt(summary['overlap'])}   novelty {fmt(result.total_novelty)}")
