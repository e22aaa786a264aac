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
        help="Output .npz (recommended: the matrix X, the file, frame and atom of each "
        "row, and the parameters k, cutoff, --rescale-volume and species, which a "
        "command reading it as --ref checks against its own, refusing a mismatch) or "
        ".npy (the bare matrix: read as --ref, only its width can be checked, and a "
        "warning says so).",
    )
    options.add_descriptor(parser)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def run(args) -> None:
    import numpy as np

    from atominfo.cli.load import describe, species
    from atominfo.cli.report import print_json, say
    from atominfo.runs.atomic import atomic_output
    from atominfo.runs.guard import OutputGuard
    from atominfo.structures.saved import DescriptorParameters, save_descriptors

    with OutputGuard(inputs=args.files, outputs={args.output: SUFFIXES}):
        options.apply_threads(args)
        sp = species(args, args.files)
        elements: set[str] = set()
        X, index = describe(args.files, args, species=sp, return_index=True, elements=elements)
        with atomic_output(args.output) as tmp, open(tmp, "wb") as fh:
            if args.output.suffix == ".npy":
                np.save(fh, X)
            else:
                parameters = DescriptorParameters(
                    k=args.k,
                    cutoff=args.cutoff,
                    rescale_volume=args.rescale_volume,
                    species=DescriptorParameters.blocks(sp),
                    elements=tuple(sorted(elements)),
                )
                save_descriptors(
                    fh,
                    X,
                    parameters,
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
