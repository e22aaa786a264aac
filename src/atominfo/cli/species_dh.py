"""--species for `atominfo dh` and `atominfo extract`: the reference split by species
(`atominfo.workflows.species_dh`), the options the mode refuses, the printed breakdown."""

from __future__ import annotations

import os

from atominfo.cli import options


def reference(args, refs: list, files: list):
    """The `SpeciesReference` of a --species run (a progress bar while it is described);
    InputError for an option the mode does not take, or for saved descriptors."""
    from atominfo.cli.report import progress
    from atominfo.cli.species import settings
    from atominfo.errors import InputError
    from atominfo.workflows.species_dh import SpeciesReference

    refused = {
        "--multicomponent": args.multicomponent,
        "--ref self": any(str(r) == "self" for r in args.ref or ()),
        "--dedupe": getattr(args, "dedupe", False),  # (extract: picks across species)
        "--chemiscope": getattr(args, "chemiscope", None) is not None,  # (dH null)
    }
    h, spec, reading = settings(args, [*files, *refs], refused)
    if not refs:
        raise InputError("--species needs --ref: the reference atoms of each species")
    with progress("reference descriptors", None, args.quiet) as advance:
        return SpeciesReference.from_files(
            list(map(str, refs)),
            [str(f) for f in files if os.path.exists(f)],  # (watch: a file still to come)
            h,
            spec=spec,
            reading=reading,
            descriptor=args.species_descriptor,
            engine=options.engine(args),
            progress=advance,
        )


def say_breakdown(breakdown: list[dict], descriptor: str) -> None:
    """The per-species lines of a --species run: atoms, reference atoms, novel fraction
    (and at the false-alarm rate), max and mean dH (nats; '-' where not determined),
    status."""
    from atominfo.cli.report import fmt, say, table

    keys = ["species", "atoms", "n_reference", "novelty", "flagged", "max_dH", "mean_dH", "status"]
    heads = ["species", "atoms", "n ref", "novel", "at rate", "max dH", "mean dH", "status"]
    if not breakdown or "flagged" not in breakdown[0]:  # (no --false-alarm)
        keys, heads = keys[:4] + keys[5:], heads[:4] + heads[5:]
    # (JSON keeps the status in full)
    shown = [{**b, "status": "scored" if b["n_reference"] else "absent: novel"} for b in breakdown]
    rows = [
        [b[k] if isinstance(b[k], (str, int)) else "-" if b[k] is None else fmt(b[k]) for k in keys]
        for b in shown
    ]
    title = f"  each species against the same species ({descriptor} descriptor):"
    say(table(heads, rows, title=title))
    say("  (atoms of a species absent from the reference count novel; max and mean dH are")
    say("  over the atoms whose dH is determined)")


def frame_note(row: dict, species: list) -> str:
    """A watched frame's per-species novel percentages ('absent' for a species the
    reference lacks), for its printed line."""
    from atominfo.cli.report import fmt

    parts = [
        f"{s} {'absent' if row[f'max_dH_{s}'] is None else fmt(100 * row[f'novelty_{s}'], 4) + '%'}"
        for s in species
        if row[f"atoms_{s}"]
    ]
    return f"  [{', '.join(parts)}]"
