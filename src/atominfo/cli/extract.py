"""Cut out the novel environments (dH > threshold) of structures as DFT-ready structures.

Every atom of the inputs with dH > --min-dh against the reference is a
candidate; --dedupe keeps a few diverse ones (greedy maximum dH against the
reference plus the picks so far, until no candidate is left above
--min-dh), --max caps their number, --max-per-frame their number per frame;
picks go round-robin over frames (--no-spread: by dH alone). Each is cut out
as a non-periodic cluster (every atom within cutoff + buffer of it,
unwrapped, centred in a vacuum box) and/or a periodic cell carved around it,
lengthened at its faces so that no two atoms are closer than 0.9 times the
source frame's smallest distance, with its provenance (file, frame,
timestep, atom, dH, bandwidth, reference) in the info of each structure.
With --false-alarm RATE, the candidates are instead the atoms whose conformal
p-value against the reference is at most RATE (each cut-out's info holds its
centre atom's p_value). With nothing novel, no file is written. Without --ref, the inputs must carry
a per-atom dH array (the extxyz output of `atominfo dh`).
"""

from __future__ import annotations

from pathlib import Path

from atominfo import params
from atominfo.cli import options
from atominfo.cli.species import add_species, wanted


def _typed(group, flag, constraint, default, metavar, text, dest=None) -> None:
    kind = options.typed(constraint, flag)
    group.add_argument(flag, dest=dest, type=kind, default=default, metavar=metavar, help=text)


def add_arguments(parser) -> None:
    options.add_inputs(
        parser,
        help="Structure files to search (a trajectory, any format ASE "
        "reads; without --ref, the .extxyz output of `atominfo dh`).",
    )
    options.add_reference(parser, required=False)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="Cut-out structures, as .extxyz (provenance in each info; full precision; "
        "no file when nothing is novel).",
    )
    parser.add_argument(
        "--summary", type=Path, default=None, help="Also write a JSON summary here."
    )
    group = parser.add_argument_group("selection")
    min_dh = "Candidates are the atoms with dH above this (default 0)."
    _typed(group, "--min-dh", "min_dh", None, "NATS", min_dh)
    options.add_false_alarm(group)
    top = "Keep only the N candidates of largest dH (bounded memory)."
    _typed(group, "--top", "top", None, "N", top)
    group.add_argument(
        "--dedupe",
        action="store_true",
        help="Keep a few diverse candidates: greedy maximum dH against the "
        "reference plus the picks so far.",
    )
    duplicate = "With --dedupe: candidates within D bandwidths of a pick are its duplicates"
    text = duplicate + " (0: pure dH criterion)."
    _typed(group, "--duplicate-distance", "duplicate_distance", 1.0, "D", text)
    _typed(group, "--max", "max_picks", None, "N", "At most N structures per mode.", "max_picks")
    per_frame = "At most N structures per mode from one frame."
    _typed(group, "--max-per-frame", "max_per_frame", None, "N", per_frame)
    group.add_argument(
        "--no-spread",
        action="store_true",
        help="Pick by dH alone (default: round-robin over frames, each frame holding a "
        "candidate gives one pick before any gives a second).",
    )
    group.add_argument(
        "--dh-array",
        default=None,
        metavar="NAME",
        help="Per-atom dH array of the inputs, used without --ref (default: dH).",
    )
    group = parser.add_argument_group("cut-out")
    modes = "cluster (non-periodic, in vacuum) | cell (periodic, clash-free faces) | both."
    _typed(group, "--mode", "extract_mode", "cluster", None, modes)
    limit = f"a cut-out of more than {params.MAX_CUT_ATOMS:,} atoms is refused"
    _typed(group, "--buffer", "buffer", 2.0, "Å", f"Shell kept beyond the cutoff, Å ({limit}).")
    vacuum = "Vacuum between a cluster and each face of its box, Å."
    _typed(group, "--vacuum", "vacuum", 6.0, "Å", vacuum)
    options.add_descriptor(parser)
    add_species(parser)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli import species_dh
    from atominfo.cli.load import reference, species
    from atominfo.cli.report import print_json, progress, say
    from atominfo.errors import InputError
    from atominfo.runs.guard import check_outputs
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.dh_run import calibration_total
    from atominfo.workflows.labelling import OUTPUTS, SUMMARY_OUTPUTS, ExtractOptions, extract

    refs = args.ref or []
    # refuse an output that is an input (or unwritable) before the reference is built
    outputs = [(args.output, OUTPUTS), (args.summary, SUMMARY_OUTPUTS)]
    check_outputs(inputs=[*args.files, *refs], outputs=outputs)
    options.apply_threads(args)
    sp = species(args, refs, args.files)
    if refs and args.dh_array is not None:
        raise InputError(
            "--dh-array reads stored dH without --ref; with --ref, dH is "
            "computed against the reference"
        )
    if args.false_alarm is not None and args.min_dh is not None:
        raise InputError("--false-alarm and --min-dh are two thresholds: give one of them")
    by_species = wanted(args)  # each atom against the reference atoms of its own species
    engine = options.engine(args)
    ref = reference(args, args.bandwidth, sp, engine) if refs and not by_species else None
    ref = species_dh.reference(args, refs, args.files) if by_species else ref
    if ref is not None and args.false_alarm is not None:  # calibrated once, kept in ref
        with progress("calibration", calibration_total(ref), args.quiet, "envs") as a:
            ref.calibration(progress=a)
    knobs = ExtractOptions(
        *(args.mode, args.buffer, args.vacuum, args.min_dh or 0.0, args.top, args.dedupe),
        *(args.max_picks, args.duplicate_distance, args.bandwidth, args.dh_array or "dH"),
        *(args.max_per_frame, not args.no_spread, args.false_alarm),
    )
    total = count_atoms(args.files, args.index, args.format)
    with progress("dH", total, args.quiet, "atoms") as advance:
        result = extract(
            list(map(str, args.files)),
            ref,
            knobs,
            reading=Reading(args.index, args.format, args.type_map),
            spec=DescriptorSpec(
                args.k, args.cutoff, args.rescale_volume, tuple(sp) if sp else None
            ),
            output=args.output,
            summary=args.summary,
            reference_files=[str(r) for r in refs],
            progress=advance,
        )
    if args.json:
        print_json(result.to_dict())
        return
    for line in result.summary_lines():
        say(line)
