"""--species for the dataset commands (`atominfo curve`, `compress`, `report`): the
data read with the species-resolved descriptor, and the per-species tables printed
(`atominfo.workflows.species_dataset`)."""

from __future__ import annotations

from atominfo.cli import dataset, options, species


def load(args, refs=(), refused: dict | None = None):
    """(species list or None, FrameSet) of the command's inputs.

    With --species: the species are those of the data (inputs and `refs`), the
    descriptor is --species-descriptor's, and an option `refused` names is an
    InputError; without it, as before the mode (--multicomponent decides).
    """
    from atominfo.cli.load import species as multicomponent_species

    if not species.wanted(args):
        sp = multicomponent_species(args, args.files, refs)
        return sp, dataset.load(args, species=sp)
    from atominfo.errors import InputError
    from atominfo.settings import Reading
    from atominfo.structures.saved import is_saved_descriptors
    from atominfo.workflows.species_run import data_species

    for option, given in {"--multicomponent": args.multicomponent, **(refused or {})}.items():
        if given:
            raise InputError(f"--species does not take {option}")
    saved = [str(f) for f in [*args.files, *refs] if is_saved_descriptors(f)]
    if saved:
        raise InputError(f"{saved[0]}: --species needs structure files (the species of each atom)")
    reading = Reading(**options.reading(args))
    found = set(data_species(list(map(str, args.files)), reading=reading))
    if refs:  # a reference is read whole
        whole = Reading(type_map=reading.type_map)
        found |= set(data_species(list(map(str, refs)), reading=whole))
    sp = sorted(found) if args.species_descriptor == "multicomponent" else None
    return sp, dataset.load(args, species=sp)


def curve(args, bars) -> None:
    """`atominfo curve --species`: the learning curve of each species' H(X|z), of the joint
    H and of H(species); each species' curve classified. `bars`: the command's progress
    bars (a context giving ``advance(name, n)``)."""
    from atominfo.cli.report import print_json, say
    from atominfo.workflows.curves import CurveOptions
    from atominfo.workflows.species_dataset import run_species_curve

    refused = {
        "--group-by": args.group_by is not None,
        "--per-file": args.per_file,
        "--at": bool(args.at),
    }
    _, data = load(args, refused=refused)
    sampling = CurveOptions(by=args.by, n_sizes=args.sizes, n_seeds=args.seeds, seed=args.seed)
    with bars as advance:
        result = run_species_curve(
            data,
            args.bandwidth,
            sampling,
            plot=args.plot,
            engine=options.engine(args),
            progress=lambda n: advance("species", n),
        )
    result.descriptor = args.species_descriptor
    if args.json:
        print_json({"k": args.k, "cutoff": args.cutoff, "plot": args.plot, **result.to_dict()})
        return
    say(_curve_table(result))
    say("H(X|z): each centre species against the same species; joint: H = H(species) + ")
    say("sum_z p(z) H(X|z); chemical: H(species). A species' curve starts where every seed")
    say("holds it.")
    say(f"rule: {result.curves['joint'].test.rule}")
    for name, c in result.curves.items():
        say(f"  {name}: {c.headline()}")
    say(result.verdict())
    if args.plot is not None:
        say(f"figure written to {args.plot}")


def _curve_table(result) -> str:
    from atominfo.cli.report import table

    names = list(result.curves)
    columns = {name: dict(zip(c.sizes.tolist(), c.mean)) for name, c in result.curves.items()}
    rows = []
    for i, n in enumerate(result.sizes.tolist()):
        cells = [f"{columns[k][n]:.4f}" if n in columns[k] else "-" for k in names]
        rows.append([n, *cells, f"{result.chemical[i].mean():.4f}"])
    heads = [f"N ({result.unit})", *[f"H({k})" for k in names], "H(species)"]
    title = (
        f"learning curve of each species, mean H over seeds in nats ({result.descriptor} "
        f"descriptor, h = {result.bandwidth:g} 1/Å, by {result.unit})"
    )
    return table(heads, rows, title=title, left=0)


def retention(selection) -> None:
    """Print what a species-resolved selection keeps of each species."""
    from atominfo.cli.report import fmt, say, table

    r = selection.species
    cols = r.columns()
    keys = ("species", "n", "n_kept", "H", "H_kept", "retained")
    rows = [
        [c if isinstance(c, (str, int)) else fmt(c, 4) for c in row]
        for row in zip(*(cols[k] for k in keys))
    ]
    heads = ["species", "n", "n kept", "H(X|z)", "H(X|z) kept", "retained"]
    say(
        table(
            heads,
            rows,
            title="  per species (nats; retained: share of the species' "
            "environments inside the kept ones, dH <= 0)",
            left=1,
        )
    )
    say(
        f"  joint H {fmt(r.before.total, 4)} -> {fmt(r.after.total, 4)} nats; H(species) "
        f"{fmt(r.before.chemical + 0.0, 4)} -> {fmt(r.after.chemical + 0.0, 4)} nats"
    )
    if r.missing:
        import warnings

        warnings.warn(
            f"the selection holds no {', '.join(r.missing)} atoms: keep more structures",
            stacklevel=2,
        )
