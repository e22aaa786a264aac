"""What to label next: novel environments cut out as DFT-ready structures.

From a trajectory (or any set of structures) and a reference (the training
set), every atom with dH > `min_dh` against the reference is a *candidate*:
an environment the training set does not cover (docs/method.md, section 3.3).
`extract` runs the whole job, as ``atominfo extract`` does:

1. finds the candidates (`atominfo.workflows.labelling_novel.find_novel`),
   streaming the frames, keeping only their descriptor rows and where they
   came from;
2. chooses among them (`atominfo.workflows.labelling_picks`): the largest
   dH first, or with ``dedupe`` greedy maximum dH against the reference plus
   the candidates already picked, so 500 copies of one new environment become
   one structure and each pick fills a different gap; by default round-robin
   over frames (``spread``), at most ``max_per_frame`` per frame;
3. cuts each chosen environment out of its frame as a small structure a DFT
   code can label (`atominfo.workflows.labelling_cut.cut_out`), with its
   provenance in ``info``, a check that the centre atom's descriptor is
   unchanged and, for periodic cells, no two atoms closer than 0.9 times the
   source frame's smallest distance;
4. writes the cut-outs (extxyz, floats in full precision) and a JSON summary,
   all or none; nothing when nothing is novel.

The knobs of the job are one `ExtractOptions`; which frames are read, a
`atominfo.settings.Reading`; the descriptor, a `atominfo.settings.DescriptorSpec`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.workflows.labelling_cut import CLASH_RATIO, centre_descriptor, cut_out
from atominfo.workflows.labelling_novel import NovelEnvironments, find_novel
from atominfo.workflows.labelling_picks import Deduplication, deduplicate, largest_first
from atominfo.workflows.species_dh import for_extract

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
    max_per_frame : at most this many structures per mode from one frame.
    spread : picks round-robin over frames: each frame holding a candidate
        gives one before any gives a second (False: by dH alone).
    duplicate_distance : with `dedupe`, in bandwidths: candidates this close
        to a pick are its duplicates (0: pure dH criterion).
    h : bandwidth, 1/Å, of a stored dH (without a reference; default 0.015).
    dh_array : name of the stored per-atom dH array (without a reference).
    false_alarm : rate in (0, 1), or None: the candidates are the atoms whose
        conformal p-value against the reference is at most it
        (`atominfo.reference.conformal`; needs a reference; replaces `min_dh`,
        which stays 0), still ranked by dH; with `dedupe`, picking stops when no
        candidate is above the smaller of 0 and the least dH of the candidates.
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
    max_per_frame: int | None = None
    spread: bool = True
    false_alarm: float | None = None

    def __post_init__(self) -> None:
        checked = {
            "mode": params.check("extract_mode", self.mode),
            "buffer": params.check("buffer", self.buffer),
            "vacuum": params.check("vacuum", self.vacuum),
            "max_picks": params.check_optional("max_picks", self.max_picks),
            "max_per_frame": params.check_optional("max_per_frame", self.max_per_frame),
            "min_dh": params.check("min_dh", self.min_dh, label="min_dh"),
            "top": params.check_optional("top", self.top),
            "duplicate_distance": params.check("duplicate_distance", self.duplicate_distance),
            "h": params.check_optional("bandwidth", self.h, label="bandwidth"),
            "dedupe": bool(self.dedupe),
            "spread": bool(self.spread),
            "false_alarm": params.check_optional("false_alarm", self.false_alarm),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.false_alarm is not None and self.min_dh != 0.0:
            raise InputError("a false-alarm rate replaces min_dh: give one of them")


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
    min_distance_ratio : float, smallest over the structures of their smallest
        interatomic distance (periodic images included) over their source frame's
        (NaN without structures); at least ``CLASH_RATIO`` (0.9).
    padded_cells : int, cells lengthened at their faces against a clash;
        max_cell_margin : float, Å, the most a cell's height was lengthened.
    max_per_frame, spread : as `ExtractOptions`.
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
    min_distance_ratio: float = float("nan")
    padded_cells: int = 0
    max_cell_margin: float = 0.0
    max_per_frame: int | None = None
    spread: bool = True
    files: list[str] | None = field(default=None, repr=False)
    output: Path | None = field(default=None, repr=False)
    summary: Path | None = field(default=None, repr=False)

    _fields_shown = ("mode", "buffer", "vacuum", "max_descriptor_error", "min_distance_ratio")

    @property
    def frames_picked(self) -> int:
        """How many frames the structures come from."""
        return len({int(self.candidates.frame[c]) for c in self.chosen})

    def summary_lines(self) -> list[str]:
        """What ``atominfo extract`` prints: the candidates, the picks, the checks; one line
        when nothing is novel."""
        c = self.candidates
        files, stored = c.reference.get("files"), c.reference.get("dH_array")
        against = f"{len(files)} reference file(s)" if files else "the reference"
        against = f"the per-atom {stored!r}" if stored else against
        if c.reference.get("species_descriptor"):  # (--species)
            against = f"the same species in {against}"
        scored = f"{c.total_environments} environments in {c.total_frames} frames"
        rule = f"dH > {_g(c.min_dh)} nats against {against} (h = {_g(c.bandwidth)} 1/Å)"
        if c.false_alarm is not None:
            rule = (
                f"a conformal p-value <= {_g(c.false_alarm)} (false-alarm rate) against "
                f"{against} (h = {_g(c.bandwidth)} 1/Å)"
            )
        if not self.structures:
            return [f"nothing novel: none of the {scored} has {rule}; no file written"]
        lines = [f"{len(c)} of the {scored} have {rule}"]
        if self.deduplication is not None:
            d = self.deduplication
            left = _g(d.remaining_max_dH)
            lines.append(
                f"  deduplicated to {len(d.picks)} ({d.stopped_by}); largest dH left: {left}"
            )
        where = "" if self.output is None else f" written to {self.output}"
        lines.append(
            f"  {len(self.structures)} structure(s) (mode {self.mode}) from {self.frames_picked} "
            f"frame(s){where}; centre descriptors checked to {_g(self.max_descriptor_error)} 1/Å"
        )
        check = (
            f"  smallest interatomic distance >= {_g(self.min_distance_ratio, 3)} x the source "
            f"frame's (required {_g(CLASH_RATIO)})"
        )
        if self.mode != "cluster":
            check += (
                f"; {self.padded_cells} cell(s) lengthened at their faces, by up to "
                f"{_g(self.max_cell_margin, 3)} Å"
            )
        return [*lines, check]

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
            "min_distance_ratio": self.min_distance_ratio,
            "required_min_distance_ratio": CLASH_RATIO,
            "padded_cells": self.padded_cells,
            "max_cell_margin": self.max_cell_margin,
            "max_per_frame": self.max_per_frame,
            "spread": self.spread,
            "frames_picked": self.frames_picked,
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
    most ``max_picks`` (largest dH first without deduplication, `largest_first`)
    and ``max_per_frame`` per frame, round-robin over frames unless ``spread``
    is False, and cuts each out (`cut_out`). The frames are read twice: once
    to score, once to cut (only the frames holding a chosen environment are
    kept). With `output` and/or `summary`, writes them under an
    `atominfo.runs.guard.OutputGuard` (all or none; an output that is an input
    is refused before any work); with nothing novel, writes neither (the
    result's ``output`` and ``summary`` are None)::

        extract("md.extxyz", ref, ExtractOptions(dedupe=True, max_picks=50),
                output="candidates.extxyz", summary="candidates.json")
        extract("md.extxyz", ref, dedupe=True, max_picks=50, k=32)  # the same knobs

    Each cut-out's ``info`` holds: mode, source, source_frame, frame (over all inputs),
    timestep and time (where the input gives them), centre_atom (index in the source
    frame), centre_index (0), dH (nats; species_absent instead for a species a
    `SpeciesReference` lacks), p_value (with ``false_alarm``), dH_at_pick (after
    deduplication), pick (rank), bandwidth, k, cutoff, buffer, cut_radius, vacuum
    (clusters), reference (file names), reference_environments, reference_sha256
    (`reference_fingerprint`), descriptor_error (1/Å, see `Extraction`), min_distance,
    source_min_distance (Å), cell_margin (cells, Å per cell vector).

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths.
    reference : Reference, SpeciesReference (own species; no dedupe) or None (stored dH).
    options : `ExtractOptions` (default: its defaults); with ``false_alarm``, the
        reference is calibrated (kept) and refused when too small for the rate.
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
    spec = for_extract(reference, spec, options.dedupe)  # (--species: the reference's)
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
            _at_rate(reference, options.false_alarm),
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
        result.files = files
        if result.structures:  # nothing novel: no file (an empty one reads as no structure)
            result.output, result.summary = output, summary
            if output is not None:
                write_structures(result.structures, output)
            if summary is not None:
                write_summary(result, summary)
    return result


def _g(value, digits: int = 6) -> str:
    """A number as printed ('-' where not finite)."""
    v = float(value)
    return f"{v:.{digits}g}" if math.isfinite(v) else "-"


# What `cut_out` records in a cut-out's info, written after the provenance.
_MEASURED = ("min_distance", "source_min_distance", "cell_margin")


def _distance_check(structures: Sequence[Atoms]) -> tuple[float, int, float]:
    """(smallest min_distance / source_min_distance, cells lengthened, largest margin Å)."""
    ratios = [
        a.info["min_distance"] / a.info["source_min_distance"]
        for a in structures
        if 0 < a.info["source_min_distance"] < math.inf
    ]
    margins = [float(np.max(a.info["cell_margin"])) for a in structures if "cell_margin" in a.info]
    return (
        float(min(ratios)) if ratios else float("nan"),
        sum(m > 0 for m in margins),
        max(margins, default=0.0),
    )


def _at_rate(reference, false_alarm: float | None):
    """The reference `find_novel` scores against: at a false-alarm rate, calibrated
    (`atominfo.workflows.dh_run.AtFalseAlarm`); InputError without a reference."""
    if false_alarm is None:
        return reference
    from atominfo.workflows.dh_run import AtFalseAlarm

    if reference is None:
        raise InputError("a false-alarm rate needs a reference to calibrate on (--ref)")
    return AtFalseAlarm(reference, false_alarm)


def _dedupe_level(cand: NovelEnvironments, options: ExtractOptions) -> float:
    """Where `deduplicate` stops: `min_dh`; at a false-alarm rate, the smaller of 0 and
    the least dH of the candidates (they were chosen by p-value, not by dH)."""
    if options.false_alarm is None or not len(cand):
        return options.min_dh
    return min(0.0, float(cand.dH.min()))


def _file_names(structures) -> list[str] | None:
    """The input file names, or None for structures in memory."""
    items = [structures] if isinstance(structures, (str, os.PathLike)) else structures
    if all(isinstance(s, (str, os.PathLike)) for s in items):
        return [str(s) for s in items]
    return None


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


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
                min_dh=_dedupe_level(cand, options),
                max_picks=options.max_picks,
                duplicate_distance=options.duplicate_distance,
                frames=cand.frame,
                max_per_frame=options.max_per_frame,
                spread=options.spread,
            )
            self.chosen, self.at_pick = list(self.dedup.picks), list(self.dedup.dH_at_pick)
        else:
            self.chosen = largest_first(
                cand.dH,
                cand.frame,
                max_picks=options.max_picks,
                max_per_frame=options.max_per_frame,
                spread=options.spread,
            )
            self.at_pick = [float(cand.dH[i]) for i in self.chosen]
        self.errors: list[float] = []

    def run(self, structures, reading: Reading) -> Extraction:
        from atominfo.structures.frames import iter_frames

        wanted: dict[int, list[int]] = {}
        for rank, c in enumerate(self.chosen):
            wanted.setdefault(int(self.cand.frame[c]), []).append(rank)
        cut: dict[int, list[Atoms]] = {}
        last = max(wanted, default=-1)
        frames = iter_frames(structures, **reading.kwargs()) if wanted else iter(())
        for number, fr in enumerate(frames):
            if number in wanted:
                self._same_frame(number, fr)
                cut.update(self._cut(number, fr, wanted[number]))
            if number >= last:  # the frames after the last pick are not read again
                break
        if len(cut) != len(self.chosen):
            raise InputError(
                "the input changed while it was being read (fewer frames the second time)"
            )
        o = self.options
        structures = [piece for rank in range(len(self.chosen)) for piece in cut[rank]]
        return Extraction(
            structures,
            self.cand,
            self.chosen,
            self.dedup,
            o.mode,
            float(o.buffer),
            float(o.vacuum),
            float(max(self.errors)) if self.errors else float("nan"),
            *_distance_check(structures),
            max_per_frame=o.max_per_frame,
            spread=o.spread,
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

    def _cut(self, number: int, fr, ranks: list[int]) -> dict[int, list[Atoms]]:
        """The cut-outs (one per mode) of the candidates picked `ranks`-th, from frame `fr`."""
        cand, o = self.cand, self.options
        atoms = [int(cand.atom[self.chosen[rank]]) for rank in ranks]
        for a in atoms:
            if a >= len(fr.atoms):
                raise InputError(
                    "the input changed while it was being read (the atom is gone)",
                    source=fr.source,
                    frame=fr.index,
                    atom=a,
                )
        pieces = cut_out(fr.atoms, atoms, cand.cutoff, o.buffer, o.vacuum, o.mode)
        per = len(pieces) // len(ranks)
        return {
            rank: [self._checked(number, fr, rank, p) for p in pieces[i * per : (i + 1) * per]]
            for i, rank in enumerate(ranks)
        }

    def _checked(self, number: int, fr, rank: int, piece: Atoms) -> Atoms:
        """`piece` with its centre descriptor checked and its provenance in ``info``."""
        cand, kind = self.cand, piece.info["mode"]
        c = self.chosen[rank]
        error = float("nan")
        if self.check_rows:
            row = centre_descriptor(
                piece, cand.k, cand.cutoff, species=self.species, source=fr.source, frame=fr.index
            )
            error = float(np.abs(row - cand.X[c]).max())
            self.errors.append(error)
        # provenance first, then what the cut itself recorded (min_distance, ...)
        measured = {key: piece.info.pop(key) for key in _MEASURED if key in piece.info}
        for key, value in self._provenance(kind, number, fr, rank, error).items():
            if value is None:
                piece.info.pop(key, None)
            else:
                piece.info[key] = _info_value(value)
        piece.info.update(measured)
        return piece

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
            # (--species: +inf, species absent from the reference, is left out)
            "dH": _finite(cand.dH[c]),
            "species_absent": True if np.isinf(cand.dH[c]) else None,
            "p_value": None if cand.p is None else _finite(cand.p[c]),
            "dH_at_pick": _finite(self.at_pick[rank]),
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
    """Write cut-outs as extxyz, atomically (the file appears only when complete), every
    float with 17 significant digits: read back, a cut-out gives its centre atom the very
    descriptor it was picked for (ASE's 8 decimals move it by about 1e-9 1/Å)."""
    from atominfo.runs.atomic import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for atoms in structures:
                fh.write(_extxyz_frame(atoms))


def _extxyz_frame(atoms: Atoms) -> str:
    """One extxyz frame as ``ase.io.write`` writes it (its header, its columns), floats exact."""
    from ase.io.extxyz import output_column_format

    skip = ("symbols", "positions", "numbers", "species", "pos")
    columns = ["symbols", "positions", *(k for k in atoms.arrays if k not in skip)]
    arrays = {**atoms.arrays, "symbols": np.array(atoms.get_chemical_symbols())}
    comment, ncols, dtype, fmt = output_column_format(atoms, columns, arrays)
    fmt = re.sub(r"%\d*\.\d+f", "%.17g", fmt)  # float64 round-trips in 17 digits
    data = np.zeros(len(atoms), dtype)
    for column, ncol in zip(columns, ncols):
        value = np.asarray(arrays[column])
        if ncol == 1:
            data[column] = value.reshape(len(atoms))
        else:
            for c in range(ncol):
                data[column + str(c)] = value[:, c]
    return "".join([f"{len(atoms)}\n{comment}\n", *(fmt % tuple(row) for row in data)])


def write_summary(result: Extraction, path) -> None:
    """Write `result.to_dict()` as indented JSON, atomically."""
    import json

    from atominfo.runs.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(jsonable(result.to_dict()), indent=2, allow_nan=False) + "\n")
