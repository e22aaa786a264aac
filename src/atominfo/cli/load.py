"""Structures and references as the commands read them, with progress bars."""

from __future__ import annotations

from atominfo.cli import options
from atominfo.cli.report import progress


def descriptor_options(args, species=None) -> dict:
    """Keyword arguments of `atominfo.descriptors` named by the command line."""
    return {
        "k": args.k,
        "cutoff": args.cutoff,
        "rescale_volume": getattr(args, "rescale_volume", None),
        "multicomponent": species if species else False,
        **options.reading(args),
    }


def species(args, *file_lists) -> list[str] | None:
    """One species list for every input (so that multicomponent blocks line up), or None."""
    if not getattr(args, "multicomponent", False):
        return None
    from atominfo.descriptor.multicomponent import resolve_species
    from atominfo.structures.frames import iter_frames

    files = [
        str(f)
        for files in file_lists
        for f in files
        if str(f).rsplit(".", 1)[-1] not in ("npy", "npz")
    ]
    return resolve_species(iter_frames(files, **options.reading(args)), True)


def note_padding(X, args, what: str) -> None:
    """Warn when some environments have fewer than k neighbours within the cutoff."""
    import warnings

    from atominfo.descriptor import padding_note

    note = padding_note(X, args.k, args.cutoff)
    if note is not None:
        warnings.warn(f"{what}: {note}", stacklevel=2)


def describe(files, args, label: str = "descriptors", species=None, return_index=False):
    """Descriptors of `files` (with a progress bar)."""
    from atominfo.descriptor import descriptors

    with progress(label, None, args.quiet) as advance:
        out = descriptors(
            list(map(str, files)),
            progress=advance,
            return_index=return_index,
            **descriptor_options(args, species),
        )
    note_padding(out[0] if return_index else out, args, ", ".join(map(str, files)))
    return out


def reference(args, h, species=None, engine=None):
    """The `Reference` named by --ref: structure files or saved descriptors."""
    from atominfo.reference import Reference

    # --index and --format select and read the test frames; a reference is read whole,
    # its format guessed from its name (a type map applies to any dump).
    opts = {**descriptor_options(args, species), "index": ":", "format": None}
    with progress("reference descriptors", None, args.quiet) as advance:
        ref = Reference.from_files(args.ref, h, engine=engine, progress=advance, **opts)
    if all(str(r).rsplit(".", 1)[-1] not in ("npy", "npz") for r in args.ref):
        note_padding(ref.X, args, "reference " + ", ".join(map(str, args.ref)))
    return ref
