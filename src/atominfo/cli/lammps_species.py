"""`atominfo lammps`: its reference (with --species split by species, over the reference's
species and those of the type map: `atominfo.workflows.lammps_species`) and its halt line."""

from __future__ import annotations

from atominfo.cli import options


def reference(args):
    """The reference of an `atominfo lammps` run: a `Reference`, or with --species a
    `SpeciesReference`; InputError for an option the species mode does not take."""
    from atominfo.cli import load
    from atominfo.cli.report import progress
    from atominfo.cli.species import settings, wanted
    from atominfo.errors import InputError
    from atominfo.workflows.species_dh import SpeciesReference

    if not wanted(args):
        return load.reference(args, args.bandwidth)
    refused = {
        "--ref self": any(str(r) == "self" for r in args.ref or ()),
    }
    h, spec, reading = settings(args, list(args.ref), refused)
    if not args.type_map:
        raise InputError(
            "--species needs --type-map (e.g. 1=Cu,2=Ni): the species of the LAMMPS types "
            "must be known before the reference is described"
        )
    with progress("reference descriptors", None, args.quiet) as advance:
        return SpeciesReference.from_files(
            list(map(str, args.ref)),
            [],
            h,
            spec=spec,
            reading=reading,
            descriptor=args.species_descriptor,
            engine=options.engine(args),
            progress=advance,
            also=tuple(args.type_map.values()),
        )


def halt_line(result, args) -> str:
    """Where and why the run halted, in one line (the thresholds crossed; with --species,
    the atoms of a species absent from the reference, which cross --halt-dh)."""
    from atominfo.cli.report import fmt

    h, over = result.halted, []
    rule = "dH > 0" if args.false_alarm is None else f"p <= {fmt(args.false_alarm)}"
    if args.halt_novelty is not None and h["novelty"] > args.halt_novelty:
        over.append(f"--halt-novelty {fmt(args.halt_novelty)}")
    absent = h.get("absent", 0)
    if args.halt_dh is not None and (
        absent or not (h["max_dH"] is not None and h["max_dH"] <= args.halt_dh)
    ):
        why = f" ({absent} atoms of a species absent from the reference: dH +inf)"
        over.append(f"--halt-dh {fmt(args.halt_dh)}{why if absent else ''}")
    return (
        f"halted at timestep {h['timestep']} (script line {result.halt_line}): "
        f"{fmt(100 * h['novelty'], 4)}% of atoms novel ({rule}), max dH "
        f"{fmt(h['max_dH'], 5)} nats; over {' and '.join(over)}"
    )
