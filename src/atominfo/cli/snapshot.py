"""Novelty of every atom of one huge snapshot (a LAMMPS dump or extxyz frame), by chunks.

The frame is streamed and cut into spatial boxes, each with a halo of the
cutoff (so every descriptor is that of the whole frame) and scored on its
own: memory is set by --chunk-atoms, not by the snapshot. Writes exact labels (dH > 0: novel) for
every atom and dH for the novel ones (--dh all: every atom), at most --dh-tol
nats above exact: a .npy (fields id, type, dH, novel; one row per atom in
file order) and optionally a LAMMPS dump for OVITO (--dump). A killed run
continues from its last complete box with --resume. With --dask the boxes
are analysed on Dask workers, which receive positions only.
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="LAMMPS text dump (.dump, .lammpstrj) or extxyz file, plain or .gz.",
    )
    options.add_reference(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="Per-atom results (.npy, structured: id, type, dH, novel).",
    )
    parser.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="Also a LAMMPS text dump with columns id type x y z dH novel "
        "(.dump or .lammpstrj), which OVITO reads.",
    )
    group = parser.add_argument_group("reading")
    group.add_argument(
        "--frame",
        type=options.typed("frame_number", "--frame"),
        default=0,
        help="Frame of the file to analyse (from 0).",
    )
    group.add_argument(
        "--format",
        default=None,
        choices=("lammps-dump-text", "extxyz"),
        help="File format; guessed from the file name when omitted.",
    )
    group.add_argument(
        "--type-map",
        type=options.type_map,
        default=None,
        metavar="1=Cu,2=O",
        help="Elements of numeric LAMMPS atom types.",
    )
    parser.add_argument(
        "--dh",
        default="novel",
        type=options.typed("snapshot_dh", "--dh"),
        help="Atoms whose dH is computed (the costly part: one kernel term "
        "per reference environment): the novel ones (the others, dH <= 0, "
        "get NaN), all, or none (labels only).",
    )
    parser.add_argument(
        "--dh-tol",
        type=options.typed("dh_tol", "--dh-tol"),
        default=1e-9,
        metavar="NATS",
        help="Bound on each dH: at most this many nats above exact dH, never "
        "below (default 1e-9; 0.01 is plenty to rank novel atoms). The labels "
        "are exact whatever it is.",
    )
    parser.add_argument(
        "--chunk-atoms",
        type=options.typed("chunk_atoms", "--chunk-atoms"),
        default=200_000,
        help="Atoms per spatial box: sets the memory used (about 2 kB an "
        "atom besides the reference).",
    )
    options.add_resume(parser, "box")
    options.add_descriptor(parser, rescale=False, multicomponent=False)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="Analyse the boxes on Dask workers, which receive positions only "
        "(a scheduler address tcp://host:8786, file:scheduler.json, or local:N "
        "for N local workers); the outputs are the same bytes.",
    )
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.load import reference
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.runs.guard import check_outputs, discard
    from atominfo.settings import DescriptorSpec, Reading
    from atominfo.structures.fastread import StreamedFrame
    from atominfo.workflows.snapshot import DUMP_SUFFIXES, analyse_snapshot
    from atominfo.workflows.snapshot_settings import SnapshotOptions

    options.apply_threads(args)
    # refuse bad outputs and an unreadable frame header before building the reference
    outputs = [(args.output, (".npy",)), (args.dump, DUMP_SUFFIXES)]
    check_outputs(inputs=[args.file, *args.ref], outputs=outputs)
    if args.restart:
        discard([args.output, args.dump])
    with StreamedFrame(args.file, args.frame, format=args.format, type_map=args.type_map) as stream:
        assert stream.header is not None
        n_atoms = stream.header.n_atoms
    args.index, args.rescale_volume = ":", None  # what load.reference reads of args
    ref = reference(args, args.bandwidth)
    client = options.dask_client(args.dask) if args.dask is not None else None
    with progress("snapshot", n_atoms, args.quiet, "atoms") as advance:
        result = analyse_snapshot(
            args.file,
            ref,
            args.output,
            dump=args.dump,
            reading=Reading(args.frame, args.format, args.type_map),
            spec=DescriptorSpec(args.k, args.cutoff),
            options=SnapshotOptions(args.dh, args.dh_tol, args.chunk_atoms),
            client=client,
            resume=args.resume,
            progress=advance,
        )
    if result.finished:  # nothing computed (a warning said so): no numbers under new labels
        return
    if args.json:
        return print_json({**result.to_dict(), "reference_environments": len(ref)})
    say(
        f"{result.atoms} atoms of {result.source} frame {result.frame} against {len(ref)} "
        f"reference environments (h = {fmt(result.bandwidth)} 1/Å), in {result.chunks} boxes"
    )
    say(f"  novel (dH > 0, exact): {result.novel} atoms, fraction {fmt(result.novelty)}")
    say(
        f"  max dH: {fmt(result.max_dH)} nats (dH computed for {result.dh} atoms, "
        f"each at most {fmt(result.dh_tol)} nats above exact)"
    )
    say(f"  per-atom results written to {result.output}")
    if result.dump:
        say(f"  per-atom dump (OVITO) written to {result.dump}")
