"""What the dataset commands (curve, overlap-matrix, compress, generations) share."""

from __future__ import annotations

from atominfo.cli import options
from atominfo.cli.report import progress


def add_common(parser, group_by_help: str | None = None) -> None:
    options.add_inputs(parser)
    if group_by_help is not None:
        parser.add_argument("--group-by", default=None, metavar="KEY", help=group_by_help)
    options.add_descriptor(parser)
    options.add_bandwidth(parser, several=False)
    options.add_engine(parser, backends=False)
    options.add_output(parser)


def load(args, files=None, label: str = "descriptors", species=None, index=None):
    """A FrameSet of `files` (default: the command's inputs)."""
    from atominfo.cli.load import descriptor_options
    from atominfo.descriptor import load_frames

    opts = descriptor_options(args, species)
    if index is not None:
        opts["index"] = index
    from atominfo.cli.load import note_padding

    paths = list(map(str, files if files is not None else args.files))
    with progress(label, None, args.quiet) as advance:
        data = load_frames(paths, progress=advance, **opts)
    note_padding(data.X, args, ", ".join(paths))
    return data


def subsets(data, group_by, files, sort: bool = False) -> dict:
    """Frame numbers per subset: per info-key value, or per file."""
    from atominfo.errors import InputError

    if group_by is None and len(files) < 2:
        raise InputError("give several files or --group-by KEY to define the subsets")
    return data.groups(group_by, sort=sort)
