"""What to label next: novel environments cut out as DFT-ready structures.

From a trajectory (or any set of structures) and a reference (the training
set), every atom with dH > `min_dh` against the reference is a *candidate*:
an environment the training set does not cover (docs/method.md, section 3.3).
`extract` runs the whole job, as ``atominfo extract`` does:

1. finds the candidates (`atominfo.workflows.labelling_novel.find_novel`),
   streaming the frames, keeping only their descriptor rows and where they
   came from;
2. optionally deduplicates them (`atominfo.workflows.labelling_picks.deduplicate`):
   greedy maximum dH against the reference plus the candidates already
   picked, so 500 copies of one new environment become one structure and
   each pick fills a different gap;
3. cuts each chosen environment out of its frame as a small structure a DFT
   code can label (`atominfo.workflows.labelling_cut`: `cut_cluster`,
   `cut_cell`), with its provenance in ``info`` and a check that the centre
   atom's descriptor is unchanged;
4. writes the cut-outs (extxyz) and a JSON summary, all or none.

The knobs of the job are one `ExtractOptions`; which frames are read, a
`atominfo.settings.Reading`; the descriptor, a `atominfo.settings.DescriptorSpec`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.workflows.labelling_cut import centre_descriptor, cut_cell, cut_cluster
from atominfo.workflows.labelling_novel import NovelEnvironments, find_novel
from atominfo.workflows.labelling_picks import Deduplication, deduplicate

# Suffixes of the outputs: the cut-outs, the summary.
OUTPUTS = (".extxyz", ".xyz")
SUMMARY_OUTPUTS = (".json",)


@dataclass(frozen=True)
class ExtractOptions:
    """What `extract` keeps and how it cuts it out; validated when made.

    Parameters
    ----------
    mode : "cluster" (non-periodic, in vacuum), "cell" (periodic) or "both"
        (`atominfo.workflows.labelling_cut`).
    buffer : Å, >= 0, shell kept beyond the cutoff.
    vacuum : Å, > 0, between a cluster and each face of its box.
    min_dh : nats; candidates are the atoms with dH above it.
    top : keep only the `top` candidates of largest dH (bounded memory).
    dedupe : keep a few diverse candidates (`deduplicate`).
    max_picks : at most this many structures per mode (largest dH first
        without `dedupe`).
    duplicate_distance : with `dedupe`, in bandwidths: candidates this close
        to a pick are its duplicates (0: pure dH criterion).
    h : bandwidth, 1/Å, of a stored dH (without a reference; default 0.015).
    dh_array : name of the stored per-atom dH array (without a reference).
    """

    mode: str = "cluster"
    buffer: float = 2.0
    vacuum: float = 6.0
    min_dh: float = 0.0
    top: int | None = None
    dedupe: bool = False
    max_picks: int | None = None
    duplicate_distance: float = 1.0
    h: float | None = None
    dh_array: str = "dH"

    def __post_init__(self) -> None:
        checked = {
            "mode": params.check("extract_mode", self.mode),
            "buffer": params.check("buffer", self.buffer),
            "vacuum": params.check("vacuum", self.vacuum),
            "max_picks": params.check_optional("max_picks", self.max_picks),
            "min_dh": params.check("min_dh", self.min_dh, label="min_dh"),
            "top": params.check_optional("top", self.top),
            "duplicate_distance": params.check("duplicate_distance", self.duplicate_distance),
            "h": params.check_optional("bandwidth", self.h, label="bandwidth"),
            "dedupe": bool(self.dedupe),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclass
class Extraction(Result):
    """Cut-out structures ready for labelling, with what they came from.

    Attributes
    ----------
    structures : list of ase.Atoms, in pick order (cluster before cell for mode "both").
    candidates : NovelEnvironments, all environments above the threshold.
    chosen : list of int, candidate numbers cut out, in pick order.
    deduplication : Deduplication or None.
    mode : "cluster", "cell" or "both";  buffer, vacuum : Å.
    max_descriptor_error : float, 1/Å: largest |descriptor of the centre atom in a
        cut-out - its descriptor in the source| (NaN where not checked: rescaled
        descriptors).
    files : names of the input files (None for structures in memory).
    output, summary : the files written (None where not asked).
    """

    structures: list = field(repr=False)
    candidates: NovelEnvironments = field(repr=False)
    chosen: list[int] = field(repr=False)
    deduplication: Deduplication | None = field(repr=False)
    mode: str
    buffer: float
    vacuum: float
    max_descriptor_error: float
    files: list[str] | None = field(default=None, repr=False)
    output: Path | None = field(default=None, repr=False)
    summary: Path | None = field(default=None, repr=False)

    _fields_shown = ("mode", "buffer", "vacuum", "max_descriptor_error")

    def to_dict(self) -> dict:
        """JSON-ready summary (what the summary file holds)."""
        c = self.candidates
        out = {
            **c.to_dict(),
            "chosen": len(self.chosen),
            "structures": len(self.structures),
            "atoms": [len(a) for a in self.structures],
            "mode": self.mode,
            "buffer": self.buffer,
            "vacuum": self.vacuum,
            "max_descriptor_error": self.max_descriptor_error,
            "deduplication": None if self.deduplication is None else self.deduplication.to_dict(),
            "input": self.files,
            "output": self.output,
        }
        return jsonable(out)


def extract(
    structures,
    reference=None,
    options: ExtractOptions | None = None,
    *,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    output=None,
    summary=None,
    reference_files: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> Extraction:
    """Novel environments of `structures`, cut out as structures to label.

    Finds the environments with dH > ``min_dh`` (`find_novel`), keeps the
    ``top`` largest, optionally deduplicates them (`deduplicate`), keeps at
    most ``max_picks`` (largest dH first without deduplication), and cuts each
    out (`cut_cluster`, `cut_cell`). The frames are read twice: once to score,
    once to cut (only the frames holding a chosen environment are kept). With
    `output` and/or `summary`, writes them under an `atominfo.runs.guard.OutputGuard`
    (all or none; an output that is an input is refused before any work)::

        extract("md.extxyz", ref, ExtractOptions(dedupe=True, max_picks=50),
                output="candidates.extxyz", summary="candidates.json")
        extract("md.extxyz", ref, dedupe=True, max_picks=50, k=32)  # the same knobs

    Each cut-out's ``info`` holds: mode, source, source_frame, frame (over all
    inputs), timestep and time (where the input gives them), centre_atom
    (index in the source frame), centre_index (0), dH (against the reference,
    nats), dH_at_pick (after deduplication), pick (rank), bandwidth, k,
    cutoff, buffer, cut_radius, vacuum (clusters), reference (file names),
    reference_environments, reference_sha256 (`reference_fingerprint`),
    descriptor_error (1/Å, see `Extraction`), min_distance and
    source_min_distance (Å).

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths.
    reference : Reference or None (then the frames carry a stored per-atom dH).
    options : `ExtractOptions` (default: its defaults).
    reading : `Reading`, which frames are read;  spec : `DescriptorSpec`.
    output : the cut-outs, .extxyz or .xyz;  summary : `Extraction.to_dict`, .json.
    reference_files : the reference's file names (provenance; never overwritten).
    progress : called with the atoms of each frame scored.
    **keywords : the fields of `ExtractOptions`, `Reading` and `DescriptorSpec`
        one by one (``mode=``, ``buffer=``, ``dedupe=``, ``max_picks=``, ``k=``,
        ``cutoff=``, ``index=``, ...), replacing those of the bundles given.

    Raises
    ------
    InputError
        For bad parameters, inputs or outputs, for a cut-out larger than
        ``atominfo.params.MAX_CUT_ATOMS`` atoms, and when a frame read the second
        time is not the frame scored the first time (the input changed meanwhile).
    """
    from atominfo.runs.guard import OutputGuard

    options, reading, spec = with_keywords(
        keywords, options or ExtractOptions(), reading or Reading(), spec or DescriptorSpec()
    )
    if isinstance(structures, Atoms):
        structures = [structures]
    elif not isinstance(structures, (str, bytes)) and not hasattr(structures, "__fspath__"):
        structures = list(structures)  # read twice: a generator would be used up
    output, summary = (None if p is None else Path(p) for p in (output, summary))
    files = _file_names(structures)
    guard: contextlib.AbstractContextManager = contextlib.nullcontext()
    if output is not None or summary is not None:
        guard = OutputGuard(
            inputs=[*(files or []), *map(str, reference_files)],
            outputs=[(output, OUTPUTS), (summary, SUMMARY_OUTPUTS)],
        )
    with guard:
        cand = find_novel(
            structures,
            reference,
            min_dh=options.min_dh,
            top=options.top,
            h=options.h,
            dh_array=options.dh_array,
            reading=reading,
            spec=spec,
            reference_files=reference_files,
            progress=progress,
        )
        result = _Cutter(cand, options, spec).run(structures, reading)
        result.files, result.output, result.summary = files, output, summary
        if output is not None:
            write_structures(result.structures, output)
        if summary is not None:
            write_summary(result, summary)
    return result


def _file_names(structures) -> list[str] | None:
    """The input file names, or None for structures in memory."""
    items = [structures] if isinstance(structures, (str, os.PathLike)) else structures
    if all(isinstance(s, (str, os.PathLike)) for s in items):
        return [str(s) for s in items]
    return None


def _info_value(value):
    """A provenance value extxyz writes and reads back as it is (None -> omitted)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value


class _Cutter:
    """The second pass of `extract`: the chosen candidates, cut out of their frames."""

    def __init__(self, cand: NovelEnvironments, options: ExtractOptions, spec: DescriptorSpec):
        self.cand, self.options = cand, options
        self.species = spec.kwargs()["species"]
        self.check_rows = spec.rescale_volume is None
        self.dedup: Deduplication | None = None
        if options.dedupe:
            self.dedup = deduplicate(
                cand.X,
                cand.dH,
                cand.bandwidth,
                min_dh=options.min_dh,
                max_picks=options.max_picks,
                duplicate_distance=options.duplicate_distance,
            )
            self.chosen, self.at_pick = list(self.dedup.picks), list(self.dedup.dH_at_pick)
        else:
            order = np.lexsort((np.arange(len(cand)), -cand.dH))
            self.chosen = [int(i) for i in order[: options.max_picks]]
            self.at_pick = [float(cand.dH[i]) for i in self.chosen]
        self.errors: list[float] = []

    def run(self, structures, reading: Reading) -> Extraction:
        from atominfo.structures.frames import iter_frames

        wanted: dict[int, list[int]] = {}
        for rank, c in enumerate(self.chosen):
            wanted.setdefault(int(self.cand.frame[c]), []).append(rank)
        cut: dict[int, list[Atoms]] = {}
        for number, fr in enumerate(iter_frames(structures, **reading.kwargs())):
            if number in wanted:
                self._same_frame(number, fr)
                for rank in wanted[number]:
                    cut[rank] = self._cut(number, fr, rank)
        if len(cut) != len(self.chosen):
            raise InputError(
                "the input changed while it was being read (fewer frames the second time)"
            )
        o = self.options
        return Extraction(
            [piece for rank in range(len(self.chosen)) for piece in cut[rank]],
            self.cand,
            self.chosen,
            self.dedup,
            o.mode,
            float(o.buffer),
            float(o.vacuum),
            float(max(self.errors)) if self.errors else float("nan"),
        )

    def _same_frame(self, number: int, fr) -> None:
        meta = self.cand.frames[number]
        if (fr.source, fr.index) != (meta["source"], meta["source_frame"]):
            raise InputError(
                "the input changed while it was being read (frame "
                f"{number} is now {fr.source}: frame {fr.index})",
                source=meta["source"],
                frame=meta["source_frame"],
            )

    def _cut(self, number: int, fr, rank: int) -> list[Atoms]:
        """The cut-outs (one per mode) of the candidate picked `rank`-th, from frame `fr`."""
        cand, o = self.cand, self.options
        c = self.chosen[rank]
        a = int(cand.atom[c])
        if a >= len(fr.atoms):
            raise InputError(
                "the input changed while it was being read (the atom is gone)",
                source=fr.source,
                frame=fr.index,
                atom=a,
            )
        pieces = []
        if o.mode in ("cluster", "both"):
            pieces.append(("cluster", cut_cluster(fr.atoms, a, cand.cutoff, o.buffer, o.vacuum)))
        if o.mode in ("cell", "both"):
            pieces.append(("cell", cut_cell(fr.atoms, a, cand.cutoff, o.buffer)))
        out = []
        for kind, piece in pieces:
            error = float("nan")
            if self.check_rows:
                row = centre_descriptor(
                    piece,
                    cand.k,
                    cand.cutoff,
                    species=self.species,
                    source=fr.source,
                    frame=fr.index,
                )
                error = float(np.abs(row - cand.X[c]).max())
                self.errors.append(error)
            info = self._provenance(kind, number, fr, rank, error)
            for key, value in info.items():
                if value is None:
                    piece.info.pop(key, None)
                else:
                    piece.info[key] = _info_value(value)
            out.append(piece)
        return out

    def _provenance(self, kind: str, number: int, fr, rank: int, error: float) -> dict:
        """The ``info`` entries of a cut-out (None: left out), in the order written."""
        cand, o = self.cand, self.options
        c = self.chosen[rank]
        meta = cand.frames[number]
        return {
            "mode": kind,
            "source": fr.source,
            "source_frame": fr.index,
            "frame": number,
            "timestep": meta["timestep"],
            "time": meta["time"],
            "centre_atom": int(cand.atom[c]),
            "centre_index": 0,
            "dH": float(cand.dH[c]),
            "dH_at_pick": self.at_pick[rank],
            "pick": rank,
            "bandwidth": cand.bandwidth,
            "k": cand.k,
            "cutoff": cand.cutoff,
            "buffer": o.buffer,
            "cut_radius": cand.cutoff + o.buffer,
            "vacuum": o.vacuum if kind == "cluster" else None,
            "reference": ",".join(cand.reference.get("files") or []) or None,
            "reference_environments": cand.reference.get("environments"),
            "reference_sha256": cand.reference.get("sha256"),
            "descriptor_error": error if math.isfinite(error) else None,
        }


def write_structures(structures: Sequence[Atoms], path) -> None:
    """Write cut-outs as extxyz, atomically (the file appears only when complete)."""
    import ase.io

    from atominfo.runs.atomic import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for atoms in structures:
                ase.io.write(fh, atoms, format="extxyz")


def write_summary(result: Extraction, path) -> None:
    """Write `result.to_dict()` as indented JSON, atomically."""
    import json

    from atominfo.runs.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False) + "\n")
