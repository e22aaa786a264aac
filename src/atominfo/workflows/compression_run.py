"""`atominfo compress` as one function: select, then write the selection and its summary.

`compress` owns the run: the output guard (all outputs or none), the
selection (`atominfo.workflows.compression.select`), the kept structures
(extxyz, unchanged), the JSON summary and, when asked, the chemiscope file.
The command line parses its options into these arguments and prints the
`CompressRun` it returns, so a Python user gets the same files as
``atominfo compress -s 200 -o small.extxyz``::

    from atominfo import load_frames
    from atominfo.workflows.compression_run import CompressOutputs, compress

    run = compress(load_frames("train.extxyz"), 200, "msc", 0.015,
                   outputs=CompressOutputs("small.extxyz"))
    run.selection.indices, run.summary_path  # small.json beside small.extxyz
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atominfo.information import DEFAULT_BANDWIDTH
from atominfo.outputs.chemiscope import DEFAULT_CUTOFF, write_selection_chemiscope
from atominfo.outputs.tables import write_json
from atominfo.results import Result, jsonable
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.compression import Selection, select, write_selection
from atominfo.workflows.compression_limits import Constraints

SELECTION_SUFFIXES = (".extxyz", ".xyz")
SUMMARY_SUFFIXES = (".json",)
CHEMISCOPE_SUFFIXES = (".json.gz", ".json")


@dataclass(frozen=True)
class CompressOutputs:
    """Where `compress` writes.

    Parameters
    ----------
    selection : the kept structures, unchanged, as .extxyz (or .xyz).
    summary : the JSON summary; default: `selection` with the suffix .json.
    chemiscope : every structure for the chemiscope viewer (.json.gz or .json):
        kept or not, pick order, per-atom dH against the kept; optional.
    chemiscope_cutoff : radius (Å) of the environment the viewer draws around
        an atom (the descriptor cutoff).
    """

    selection: Path
    summary: Path | None = None
    chemiscope: Path | None = None
    chemiscope_cutoff: float = DEFAULT_CUTOFF

    def __post_init__(self) -> None:
        object.__setattr__(self, "selection", Path(self.selection))
        summary = self.selection.with_suffix(".json") if self.summary is None else self.summary
        object.__setattr__(self, "summary", Path(summary))
        if self.chemiscope is not None:
            object.__setattr__(self, "chemiscope", Path(self.chemiscope))

    def checked(self) -> list[tuple[Path | None, tuple[str, ...]]]:
        """(path, allowed suffixes) of each output, for `atominfo.runs.guard`."""
        return [
            (self.selection, SELECTION_SUFFIXES),
            (self.summary, SUMMARY_SUFFIXES),
            (self.chemiscope, CHEMISCOPE_SUFFIXES),
        ]


@dataclass(repr=False)
class CompressRun(Result):
    """What `compress` selected and wrote.

    Attributes
    ----------
    selection : the `Selection` (indices, H, D, overlap, costs, groups).
    summary : the JSON summary as written (``Selection.to_dict()`` and the record).
    outputs : the `CompressOutputs` written.
    """

    _fields_shown = ("selection", "outputs")
    selection: Selection
    summary: dict = field(default_factory=dict)
    outputs: CompressOutputs | None = None

    def to_dict(self) -> dict:
        """The summary written to the JSON file."""
        return jsonable(self.summary)


def compress(
    data: FrameSet,
    size=None,
    method: str = "msc",
    h: float = DEFAULT_BANDWIDTH,
    *,
    outputs: CompressOutputs,
    seed: int = 0,
    constraints: Constraints | None = None,
    reference=None,
    record: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CompressRun:
    """Select structures of `data` (`select`) and write them, the summary and the
    chemiscope file, all or none.

    Parameters
    ----------
    data, size, method, h, seed, constraints, reference, progress : as `select`
        (`reference`: an array (n_ref, d) or a `atominfo.Reference`).
    outputs : `CompressOutputs`, where to write.
    record : what the summary records besides the selection, after it: by
        default ``input`` (the files of `data`), ``reference`` (none) and
        ``output``; the command line adds the reference files and the descriptor
        settings (``k``, ``cutoff``, ``rescale_volume``).
    """
    reference_X = getattr(reference, "X", reference)
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=outputs.checked()):
        selection = select(
            data,
            size,
            method,
            h,
            seed=seed,
            reference=reference_X,
            progress=progress,
            constraints=constraints,
        )
        write_selection(data, selection, outputs.selection)
        summary = selection.to_dict()
        summary.update({"input": inputs, "reference": [], "output": outputs.selection})
        summary.update(record or {})
        write_json(outputs.summary, summary)
        if outputs.chemiscope is not None:
            write_selection_chemiscope(
                outputs.chemiscope,
                data,
                selection,
                h,
                reference_X,
                cutoff=outputs.chemiscope_cutoff,
            )
    return CompressRun(selection, summary, outputs)
