"""Cut out the novel environments (dH > threshold) of structures as DFT-ready structures.

Every atom of the inputs with dH > --min-dh against the reference is a
candidate; --dedupe keeps a few diverse ones (greedy maximum dH against the
reference plus the picks so far, until no candidate is left above
--min-dh), --max caps their number. Each is cut out as a non-periodic
cluster (every atom within cutoff + buffer of it, unwrapped, centred in a
vacuum box) and/or a periodic cell carved around it, with its provenance
(file, frame, timestep, atom, dH, bandwidth, reference) in the info of each
structure. Without --ref, the inputs must carry a per-atom dH array (the
extxyz output of `atominfo dh`).
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options

OUTPUTS = (".extxyz", ".xyz")


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
        help="Cut-out structures, as .extxyz (provenance in each info).",
    )
    parser.add_argument(
        "--summary", type=Path, default=None, help="Also write a JSON summary here."
    )
    group = parser.add_argument_group("selection")
    group.add_argument(
        "--min-dh",
        type=options.typed("min_dh", "--min-dh"),
        default=0.0,
        metavar="NATS",
        help="Candidates are the atoms with dH above this.",
    )
    group.add_argument(
        "--top",
        type=options.typed("top", "--top"),
        default=None,
        metavar="N",
        help="Keep only the N candidates of largest dH (bounded memory).",
    )
    group.add_argument(
        "--dedupe",
        action="store_true",
        help="Keep a few diverse candidates: greedy maximum dH against the "
        "reference plus the picks so far.",
    )
    group.add_argument(
        "--duplicate-distance",
        type=options.typed("duplicate_distance", "--duplicate-distance"),
        default=1.0,
        metavar="D",
        help="With --dedupe: candidates within D "
        "bandwidths of a pick are its duplicates (0: pure dH criterion).",
    )
    group.add_argument(
        "--max",
        dest="max_picks",
        type=options.typed("max_picks", "--max"),
        default=None,
        metavar="N",
        help="At most N structures per mode.",
    )
    group.add_argument(
        "--dh-array",
        default=None,
        metavar="NAME",
        help="Per-atom dH array of the inputs, used without --ref (default: dH).",
    )
    group = parser.add_argument_group("cut-out")
    group.add_argument(
        "--mode",
        type=options.typed("extract_mode", "--mode"),
        default="cluster",
        help="cluster (non-periodic, in vacuum) | cell (periodic) | both.",
    )
    group.add_argument(
        "--buffer",
        type=options.typed("buffer", "--buffer"),
        default=2.0,
        metavar="Å",
        help="Shell kept beyond the cutoff, Å.",
    )
    group.add_argument(
        "--vacuum",
        type=options.typed("vacuum", "--vacuum"),
        default=6.0,
        metavar="Å",
        help="Vacuum between a cluster and each face of its box, Å.",
    )
    options.add_descriptor(parser)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.load import reference, species
    from atominfo.cli.report import fmt, print_json, progress, say, write_json
    from atominfo.errors import InputError
    from atominfo.outputs.guard import OutputGuard
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.labelling import extract, write_structures

    refs = args.ref or []
    outputs = [(args.output, OUTPUTS), (args.summary, (".json",))]
    with OutputGuard(inputs=[*args.files, *refs], outputs=outputs):
        options.apply_threads(args)
        sp = species(args, refs, args.files)
        ref = None
        if refs and args.dh_array is not None:
            raise InputError(
                "--dh-array reads stored dH without --ref; with --ref, dH is "
                "computed against the reference"
            )
        args.dh_array = args.dh_array or "dH"
        if refs:
            ref = reference(args, args.bandwidth, sp, options.engine(args))
        total = count_atoms(args.files, args.index, args.format)
        with progress("dH", total, args.quiet, "atoms") as advance:
            result = extract(
                list(map(str, args.files)),
                ref,
                mode=args.mode,
                buffer=args.buffer,
                vacuum=args.vacuum,
                min_dh=args.min_dh,
                top=args.top,
                dedupe=args.dedupe,
                max_picks=args.max_picks,
                duplicate_distance=args.duplicate_distance,
                h=args.bandwidth,
                dh_array=args.dh_array,
                index=args.index,
                format=args.format,
                type_map=args.type_map,
                k=args.k,
                cutoff=args.cutoff,
                rescale_volume=args.rescale_volume,
                species=sp,
                reference_files=[str(r) for r in refs],
                progress=advance,
            )
        write_structures(result.structures, args.output)
        summary = {**result.to_dict(), "input": args.files, "output": args.output}
        if args.summary is not None:
            write_json(args.summary, summary)
    if args.json:
        print_json(summary)
        return
    c = result.candidates
    against = f"{len(refs)} reference file(s)" if refs else f"the per-atom {args.dh_array!r}"
    say(
        f"{len(c)} of {c.total_environments} environments in {c.total_frames} frames have "
        f"dH > {fmt(args.min_dh)} nats against {against} (h = {fmt(c.bandwidth)} 1/Å)"
    )
    if result.deduplication is not None:
        d = result.deduplication
        say(
            f"  deduplicated to {len(d.picks)} ({d.stopped_by}); largest dH left: "
            f"{fmt(d.remaining_max_dH)} nats"
        )
    say(
        f"  {len(result.structures)} structure(s) (mode {args.mode}) written to {args.output}; "
        f"centre descriptors checked to {fmt(result.max_descriptor_error)} 1/Å"
    )
