"""Compute the descriptor matrix (n_atoms x (2k-1), 1/Å) and save it."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options

SUFFIXES = (".npy", ".npz")


def add_arguments(parser) -> None:
    options.add_inputs(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="Output .npy (the matrix) or .npz (the matrix X plus the file, "
        "frame and atom of each row).",
    )
    options.add_descriptor(parser)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    import numpy as np

    from atominfo.cli.load import describe, species
    from atominfo.cli.report import print_json, say
    from atominfo.outputs.atomic import atomic_output
    from atominfo.outputs.guard import OutputGuard

    with OutputGuard(inputs=args.files, outputs={args.output: SUFFIXES}):
        options.apply_threads(args)
        X, index = describe(args.files, args, species=species(args, args.files), return_index=True)
        with atomic_output(args.output) as tmp, open(tmp, "wb") as fh:
            if args.output.suffix == ".npy":
                np.save(fh, X)
            else:
                np.savez(
                    fh,
                    X=X,
                    frame=index.frame,
                    atom=index.atom,
                    source=np.array(index.sources),
                    source_frame=np.array(index.source_frames),
                )
    summary = {
        "output": str(args.output),
        "environments": X.shape[0],
        "width": X.shape[1],
        "frames": len(index.sources),
        "k": args.k,
        "cutoff": args.cutoff,
    }
    if args.json:
        print_json(summary)
    else:
        say(
            f"wrote {X.shape[0]} x {X.shape[1]} descriptors of {len(index.sources)} frames "
            f"to {args.output}"
        )
