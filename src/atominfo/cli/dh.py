"""Per-atom differential entropy dH of TEST against the reference (nats); dH > 0 is novel.

Frames are read, described and scored one at a time, so trajectories of any
length run in bounded memory; outputs grow frame by frame and appear under
their final names only when complete. An interrupted run continues from its
last complete frame with --resume (it refuses if an input or option changed).

With --ref self each frame is scored against all earlier frames of TEST (its
own past); frame 0 has no past and is not scored (it appears in no output).
"""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options

PER_ATOM = (".npy", ".json", ".extxyz", ".xyz")
TABLES = (".csv", ".json")
PLOTS = (".png", ".pdf", ".svg")


def add_arguments(parser) -> None:
    options.add_inputs(parser, help="Test structure files (a trajectory, any format ASE reads).")
    options.add_reference(parser)
    for action in parser._actions:
        if action.dest == "ref":
            action.help += (
                ' Or the word "self": each frame against all earlier frames of TEST '
                "(frame 0, with no past, is not scored; a file named self: ./self)."
            )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="Per-atom dH to .npy, .json, or .extxyz (the input frames with "
        "a per-atom 'dH' array, which OVITO and ASE read).",
    )
    parser.add_argument(
        "--table",
        type=Path,
        default=None,
        help="Per-frame table (.csv or .json): timestep, atoms, fraction with "
        "dH > 0, max and mean dH (nats).",
    )
    options.add_plot(parser)
    options.add_resume(parser, "frame")
    parser.add_argument(
        "--chemiscope",
        type=Path,
        default=None,
        metavar="PATH",
        help="Also write the frames with per-atom dH and per-frame novelty "
        "for the chemiscope viewer (.json.gz or .json; keeps the frames in "
        "memory).",
    )
    options.add_descriptor(parser)
    options.add_bandwidth(parser)
    options.add_engine(parser)
    options.add_output(parser)


def run(args) -> None:
    from atominfo.cli.load import reference, species
    from atominfo.cli.report import fmt, print_json, progress, say
    from atominfo.errors import InputError
    from atominfo.runs.guard import OutputGuard
    from atominfo.runs.stream import DHStreamWriter, Totals
    from atominfo.structures.scan import count_atoms
    from atominfo.workflows.trajectory import iter_self_dh, iter_trajectory_dh

    self_ref = any(str(r) == "self" for r in args.ref)
    if self_ref and len(args.ref) > 1:
        raise InputError("--ref self compares TEST with its own past: give no other --ref")
    refs = [] if self_ref else list(args.ref)
    if args.resume and args.output is None and args.table is None:
        raise InputError("--resume needs an output (-o) or a table (--table)")
    if args.resume and args.chemiscope is not None:
        raise InputError("--chemiscope needs every frame: it cannot be combined with --resume")
    outputs = [
        (args.output, PER_ATOM),
        (args.table, TABLES),
        (args.plot, PLOTS),
        (args.chemiscope, (".json.gz", ".json")),
    ]
    with OutputGuard(
        inputs=[*args.files, *refs],
        outputs=outputs,
        resume=args.resume,
        restart=args.restart,
        resumable=args.output is not None or args.table is not None,
    ):
        options.apply_threads(args)
        h = options.h_value(args)
        engine = options.engine(args)
        sp = species(args, refs, args.files)
        ref = None if self_ref else reference(args, h, sp, engine)
        signature = {
            "test": [str(Path(t).resolve()) for t in args.files],
            "ref": "self" if self_ref else [str(Path(r).resolve()) for r in refs],
            "bandwidth": h,
            "k": args.k,
            "cutoff": args.cutoff,
            "index": args.index,
            "format": args.format,
            "type_map": args.type_map,
            "rescale_volume": args.rescale_volume,
            "species": sp,
        }
        writer = None
        if args.output is not None or args.table is not None:
            writer = DHStreamWriter(
                args.output,
                args.table,
                h,
                signature,
                resume=args.resume,
                inputs=[*args.files, *refs],
            )
            if writer.finished:  # nothing to resume (Checkpoint.begin warned)
                return
        totals = writer.totals if writer is not None else Totals(h)
        table_rows = []
        skip = writer.frames_done if writer is not None else 0
        # --ref self: frame 0 is never scored, so the frames done are frames 1..skip
        first = skip + 1 if self_ref and skip else 0
        total = count_atoms(args.files, args.index, args.format)
        kept: list[tuple] | None = [] if args.chemiscope is not None else None
        try:
            with progress("dH", total, args.quiet, "atoms") as advance:
                if skip and not self_ref:  # (--ref self re-reads the done frames: the past)
                    advance(totals.state["atoms"])
                read = [0, 0]  # atoms read so far, atoms of the last frame read

                def counted(n: int) -> None:
                    read[0] += n
                    read[1] = n
                    advance(n)

                common = {
                    "index": args.index,
                    "format": args.format,
                    "type_map": args.type_map,
                    "k": args.k,
                    "cutoff": args.cutoff,
                    "rescale_volume": args.rescale_volume,
                    "species": sp,
                    "progress": counted,
                }
                files = list(map(str, args.files))
                if self_ref:
                    frames = iter_self_dh(files, h, engine=engine, skip=first, **common)
                else:
                    assert ref is not None  # built above unless --ref self
                    frames = iter_trajectory_dh(files, ref, skip=skip, **common)
                for frame in frames:
                    if kept is not None:
                        kept.append((frame.atoms, frame.dH))
                    if writer is not None:
                        writer.add(frame)
                    else:
                        totals.add(frame.dH)
                        table_rows.append(frame.summary())
                        skip += 1
                if self_ref and (writer.frames_done if writer is not None else skip) == 0:
                    raise InputError(
                        "--ref self: a single frame has no past to compare with "
                        "(give a trajectory of at least two frames)",
                        source=str(args.files[0]),
                    )
        finally:
            if writer is not None:
                writer.close()  # OutputGuard keeps or removes the files (its rules)
        if writer is None:
            summary = totals.summary(skip)
            table = _columns(table_rows, h)
        else:
            summary = writer.summary()
            table = writer.read_table()
        if args.plot is not None:
            from atominfo.cli.report import save_plot
            from atominfo.outputs.plots import plot_trajectory
            from atominfo.runs.stream import bandwidth_labels

            save_plot(
                plot_trajectory(
                    table,
                    bandwidth_labels(h)[0],
                    title=f"{_names(args.files)} against "
                    + ("its own past" if self_ref else _names(args.ref)),
                ),
                args.plot,
            )
        if kept is not None:
            from atominfo.outputs.chemiscope import write_dh_chemiscope

            write_dh_chemiscope(args.chemiscope, kept, h, cutoff=args.cutoff)
        if writer is not None:
            writer.finish()
    summary = {
        "bandwidth": h,
        **summary,
        **({"reference": "self"} if self_ref else {}),
        "reference_environments": read[0] - read[1] if ref is None else len(ref),
        "output": args.output,
        "table": args.table,
        "plot": args.plot,
    }
    if args.json:
        print_json(summary)
        return
    if self_ref:
        say(
            f"{summary['environments']} test environments in {summary['frames']} frames, each "
            f"frame against all earlier ones (frame 0 has no past and is not scored; "
            f"h = {fmt(h)} 1/Å)"
        )
    else:
        say(
            f"{summary['environments']} test environments in {summary['frames']} frames against "
            f"{summary['reference_environments']} reference environments (h = {fmt(h)} 1/Å)"
        )
    say(f"  fraction with dH > 0 (novel): {fmt(summary['novelty'])}")
    say(f"  max dH: {fmt(summary['max_dH'])} nats   mean dH: {fmt(summary['mean_dH'])} nats")
    for name, path in (
        ("per-atom dH", args.output),
        ("per-frame table", args.table),
        ("plot", args.plot),
    ):
        if path:
            say(f"  {name} written to {path}")


def _columns(rows: list[dict], h) -> dict:
    """Per-frame columns, named as in the table file, from `FrameDH.summary()` rows."""
    from atominfo.runs.stream import bandwidth_labels

    out: dict = {}
    labels = bandwidth_labels(h)
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key in ("novelty", "max_dH", "mean_dH"):
            for t, label in enumerate(labels):
                out[f"{key}{label}"] = [v if len(labels) == 1 else v[t] for v in values]
        else:
            out[key] = values
    return out


def _names(paths) -> str:
    names = [Path(p).name for p in paths]
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
