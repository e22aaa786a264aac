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
    """One species list for every input (so that multicomponent blocks line up), or None.

    The species of the structure files and those recorded in saved descriptors
    (.npz), sorted: a file's descriptor distances do not depend on the others
    (see `atominfo.descriptor.multicomponent`), only the columns line up.
    """
    if not getattr(args, "multicomponent", False):
        return None
    from atominfo.descriptor.multicomponent import resolve_species
    from atominfo.structures.frames import iter_frames
    from atominfo.structures.saved import is_saved_descriptors, saved_elements

    paths = [f for files in file_lists for f in files]
    files = [str(f) for f in paths if not is_saved_descriptors(f)]
    recorded = saved_elements([f for f in paths if is_saved_descriptors(f)])
    found = set(resolve_species(iter_frames(files, **options.reading(args)), True) or ())
    return sorted(found | recorded)


def note_padding(X, args, what: str) -> None:
    """Warn when some environments have fewer than k neighbours within the cutoff."""
    import warnings

    from atominfo.descriptor import padding_note

    note = padding_note(X, args.k, args.cutoff)
    if note is not None:
        warnings.warn(f"{what}: {note}", stacklevel=2)


def note_pooled_species(path, elements) -> None:
    """Warn that the element-blind descriptor pools the elements of a multi-element file."""
    import warnings

    if len(elements) > 1:
        warnings.warn(
            f"{path} holds {len(elements)} elements ({', '.join(sorted(elements))}): the "
            "element-blind descriptor pools them (which element sits where is not seen); "
            "--species gives H per element and the chemical term",
            stacklevel=2,
        )


def describe(
    files, args, label: str = "descriptors", species=None, return_index=False, elements=None
):
    """Descriptors of `files` (with a progress bar); `elements` (a set) collects their
    chemical symbols."""
    from atominfo.descriptor import descriptors

    with progress(label, None, args.quiet) as advance:
        out = descriptors(
            list(map(str, files)),
            progress=advance,
            return_index=return_index,
            elements=elements,
            **descriptor_options(args, species),
        )
    note_padding(out[0] if return_index else out, args, ", ".join(map(str, files)))
    return out


def reference(args, h, species=None, engine=None, files=None):
    """The `Reference` named by --ref (or by `files`): structure files or saved descriptors.

    The one way a command reads --ref (saved descriptors are checked against
    the run's parameters by `atominfo.structures.saved.read_reference`).
    Warns when the test structures (``args.files``, their first selected
    frame) hold other elements than the reference, without --multicomponent.
    """
    from atominfo.reference import Reference
    from atominfo.structures.saved import is_saved_descriptors

    # --index and --format select and read the test frames; a reference is read whole,
    # its format guessed from its name (a type map applies to any dump).
    opts = {**descriptor_options(args, species), "index": ":", "format": None}
    files = args.ref if files is None else files
    with progress("reference descriptors", None, args.quiet) as advance:
        ref = Reference.from_files(files, h, engine=engine, progress=advance, **opts)
    if not any(map(is_saved_descriptors, files)):
        note_padding(ref.X, args, "reference " + ", ".join(map(str, files)))
    if not species and ref.elements is not None and getattr(args, "files", None):
        note_species(args, args.files, ref.elements)
    return ref


def note_species(args, files, reference_elements) -> None:
    """Warn when the first selected frame of a test file holds other elements than the
    reference: the plain descriptor does not see species.

    Only the first frame is read (a full pass over a long trajectory would double
    its reading time); a species-resolved comparison needs --multicomponent.
    """
    import warnings

    from atominfo.structures.frames import iter_frames

    reference = set(reference_elements)
    for f in files:
        with warnings.catch_warnings():  # the file's own warnings come when it is read
            warnings.simplefilter("ignore")
            first = next(iter_frames([str(f)], **options.reading(args)), None)
        if first is None:
            continue
        held = set(first.atoms.symbols.species())
        if held != reference:
            warnings.warn(
                f"{f}: frame {first.index} holds {', '.join(sorted(held))} but the reference "
                f"holds {', '.join(sorted(reference))}: descriptors ignore species, so atoms "
                "are compared by geometry alone (use --multicomponent for species-resolved "
                "descriptors)",
                stacklevel=2,
            )
            return
