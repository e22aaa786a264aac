"""Candidates to label: every environment with dH > `min_dh` against a reference.

`find_novel` streams the frames, keeps the descriptor rows of the atoms whose
dH against the reference (the training set) exceeds the threshold, and where
they came from (docs/method.md, section 3.3); with ``top`` it keeps only the
largest, in memory bounded by ``top``. Given the reference as an
`atominfo.workflows.dh_run.AtFalseAlarm`, the candidates are instead the atoms
whose conformal p-value is at most the false-alarm rate (still ranked by dH).
Without a reference, the frames carry a stored per-atom dH (``atominfo dh -o
flagged.extxyz``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.settings import DescriptorSpec, Reading, with_keywords


@dataclass
class NovelEnvironments(Result):
    """Environments with dH > `min_dh` against a reference, and where they are.

    Attributes
    ----------
    X : ndarray, shape (n, d), 1/Å
        Descriptor of each candidate environment.
    dH : ndarray, shape (n,), nats
        Its dH against the reference.
    frame : ndarray of int, shape (n,)
        Frame number over all inputs, from 0.
    atom : ndarray of int, shape (n,)
        Atom index within its frame.
    frames : dict
        Per frame number holding a candidate: source, source_frame, timestep, time.
    bandwidth : float, 1/Å;  k, cutoff : descriptor settings;  min_dh : threshold, nats
        (unused, 0, with a false-alarm rate).
    total_frames, total_environments : how many were scanned.
    reference : dict, what the dH was measured against (environments, sha256, files).
    p : ndarray, shape (n,), or None: each candidate's conformal p-value, with a
        false-alarm rate (`atominfo.reference.conformal`).
    false_alarm : the rate (candidates: p <= false_alarm), or None (dH > min_dh).
    calibration : dict, the calibration's sizes and seed (with a rate), else None.
    """

    X: np.ndarray = field(repr=False)
    dH: np.ndarray = field(repr=False)
    frame: np.ndarray = field(repr=False)
    atom: np.ndarray = field(repr=False)
    frames: dict = field(repr=False)
    bandwidth: float
    k: int
    cutoff: float
    min_dh: float
    total_frames: int
    total_environments: int
    reference: dict = field(default_factory=dict, repr=False)
    p: np.ndarray | None = field(default=None, repr=False)
    false_alarm: float | None = None
    calibration: dict | None = field(default=None, repr=False)

    _fields_shown = ("total_frames", "total_environments", "min_dh", "bandwidth")

    def __len__(self) -> int:
        return len(self.dH)

    def to_dict(self) -> dict:
        """JSON-ready summary (the descriptors are left out)."""
        return jsonable(
            {
                "candidates": len(self),
                "frames_with_candidates": len(self.frames),
                "total_frames": self.total_frames,
                "total_environments": self.total_environments,
                "min_dH": self.min_dh if self.false_alarm is None else None,
                "false_alarm": self.false_alarm,
                "max_p": float(np.max(self.p, initial=-np.inf, where=~np.isnan(self.p)))
                if self.p is not None and len(self)
                else None,
                "calibration": self.calibration,
                # (the largest finite dH: --species gives +inf for an absent species)
                "max_dH": float(np.max(self.dH, initial=-np.inf, where=np.isfinite(self.dH)))
                if len(self)
                else None,
                "bandwidth": self.bandwidth,
                "k": self.k,
                "cutoff": self.cutoff,
                "reference": self.reference,
            }
        )


def reference_fingerprint(X) -> str:
    """First 16 hex digits of the SHA-256 of a descriptor matrix (float64, C order)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    digest = hashlib.sha256(str(X.shape).encode())
    digest.update(X.tobytes())
    return digest.hexdigest()[:16]


def _stored_dh(atoms: Atoms, name: str, source: str, frame: int) -> np.ndarray:
    if name not in atoms.arrays:
        raise InputError(
            f"no per-atom {name!r} array: give a reference (--ref), or the "
            f"output of `atominfo dh -o FILE.extxyz`",
            source=source,
            frame=frame,
        )
    dH = np.asarray(atoms.arrays[name], dtype=float).reshape(-1)
    if len(dH) != len(atoms):
        raise InputError(
            f"per-atom {name!r} array has {len(dH)} values for {len(atoms)} atoms",
            source=source,
            frame=frame,
        )
    bad = ~np.isfinite(dH)
    if bad.any():
        raise InputError(
            f"{name!r} is not a finite number", source=source, frame=frame, atom=int(np.argmax(bad))
        )
    return dH


def _scoring(reference, h, dh_array: str, spec: DescriptorSpec, reference_files):
    """(bandwidth, k, cutoff, reference provenance) of the dH the candidates are chosen by."""
    from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K
    from atominfo.information import DEFAULT_BANDWIDTH

    if reference is None:
        h = params.check("bandwidth", DEFAULT_BANDWIDTH if h is None else h, label="bandwidth")
        k = int(spec.k if spec.k is not None else DEFAULT_K)
        cutoff = float(spec.cutoff if spec.cutoff is not None else DEFAULT_CUTOFF)
        return (
            h,
            k,
            cutoff,
            {"environments": None, "sha256": None, "files": [], "dH_array": dh_array},
        )
    if not np.ndim(reference.h) == 0:
        raise InputError("extracting novel environments takes one bandwidth")
    k = int(spec.k if spec.k is not None else (reference.k or DEFAULT_K))
    cutoff = float(spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
    ref_info = {
        "environments": len(reference),
        "sha256": getattr(reference, "digest", "")[:16] or reference_fingerprint(reference.X),
        "files": [str(f) for f in reference_files],
    }
    if hasattr(reference, "digest"):  # --species: each atom against its own species
        ref_info["species_descriptor"] = reference.descriptor
    return float(reference.h), params.check("k", k), params.check("cutoff", cutoff), ref_info


def _scores(reference, rate: float | None, Y: np.ndarray, fr, warned: set):
    """(dH, p) of frame `fr`'s rows Y against `reference`: p is 1 without a rate, the
    p-value where it is <= `rate`, +inf where not (a second exact sum, over part A).
    `warned`: the species absent from a `SpeciesReference` warned about so far (their
    atoms: dH +inf, p NaN, candidates by construction)."""
    from atominfo.workflows.species_dh import SpeciesReference, note_absent

    try:
        if isinstance(reference, SpeciesReference):  # --species: NaN for an absent species
            symbols = np.asarray(fr.atoms.get_chemical_symbols())
            dH = reference.delta_entropy(Y, symbols)
            note_absent(fr, symbols, dH, warned)
            # no reference term: dH = +inf, novel by construction (ranked first)
            dH = np.where(np.isnan(dH), np.inf, dH)
            p = None if rate is None else reference.p_values(Y, symbols)
        else:
            dH = np.asarray(reference.delta_entropy(Y), dtype=float)
            p = None if rate is None else np.asarray(reference.p_values(Y), dtype=float)
    except InputError as exc:
        raise exc.located(fr.source, fr.index) from None
    if p is None:
        return dH, np.ones(len(Y))
    return dH, np.where((p <= rate) | np.isnan(p), p, np.inf)


class _Kept:
    """The candidates found so far: rows, dH, frame, atom and p-value of each, per frame;
    with `top`, trimmed to the `top` largest dH whenever twice as many are kept."""

    def __init__(self, min_dh: float, top: int | None):
        self.min_dh, self.top = min_dh, top
        self.threshold = min_dh
        self.blocks: list[list[np.ndarray]] = [[], [], [], [], []]  # X, dH, frame, atom, p
        self.frames: dict[int, dict] = {}
        self.kept = 0

    def add(self, number: int, fr, Y: np.ndarray, dH: np.ndarray, p: np.ndarray) -> None:
        """Keep the atoms of frame `fr` with dH above the threshold and p <= 1 (their
        p-values: all 1 without a false-alarm rate, +inf where not flagged at it)."""
        from atominfo.workflows.trajectory import frame_time

        hit = np.flatnonzero((dH > self.threshold) & ((p <= 1.0) | np.isnan(p)))
        if not hit.size:
            return
        rows = (Y[hit], dH[hit], np.full(hit.size, number), hit, p[hit])
        for block, values in zip(self.blocks, rows):
            block.append(values)
        step, time = frame_time(fr.atoms)
        self.frames[number] = {
            "source": fr.source,
            "source_frame": fr.index,
            "timestep": step,
            "time": time,
        }
        self.kept += hit.size
        if self.top is not None and self.kept > 2 * self.top:  # trim: memory stays O(top)
            self._trim()
            self.threshold = max(self.min_dh, float(self.blocks[1][0].min()))

    def _trim(self) -> None:
        """The `top` largest dH (ties: earliest), as one block each."""
        columns = [np.concatenate(b) for b in self.blocks]
        dH = columns[1]
        order = np.lexsort((np.arange(len(dH)), -dH))[: self.top]
        order.sort()  # keep the trajectory order
        self.blocks = [[c[order]] for c in columns]
        self.kept = len(order)

    def arrays(self, width: Callable[[], int]):
        """(X, dH, frame, atom, p) of every candidate kept; `width()` gives the descriptor
        width when there is none."""
        if not self.blocks[1]:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros((0, width())), np.zeros(0), empty, empty, np.zeros(0)
        if self.top is not None:
            self._trim()
        return tuple(np.concatenate(b) for b in self.blocks)


def find_novel(
    structures,
    reference=None,
    *,
    min_dh: float = 0.0,
    top: int | None = None,
    h: float | None = None,
    dh_array: str = "dH",
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    reference_files: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> NovelEnvironments:
    """Every environment of `structures` with dH > `min_dh`, streamed frame by frame.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths.
    reference : Reference, AtFalseAlarm or None
        The training set (one bandwidth); as an
        `atominfo.workflows.dh_run.AtFalseAlarm`, the candidates are the atoms with
        conformal p-value <= its rate (`min_dh` unused: keep it 0). None: the frames must carry a
        per-atom `dh_array` (``atominfo dh -o flagged.extxyz`` writes one),
        computed with bandwidth `h` and the descriptor settings of `spec`.
    min_dh : float, nats. Threshold: environments with dH > min_dh are kept.
    top : int, optional. Keep only the `top` largest dH (memory stays bounded).
    h : float, 1/Å, only without a reference (default 0.015).
    dh_array : name of the stored per-atom dH array (without a reference).
    reading : `Reading`, which frames are read (default: every frame).
    spec : `DescriptorSpec`; k and cutoff default to the reference's, else 32
        and 5 Å (rescaled descriptors cannot be checked against an unscaled
        cut-out; see `atominfo.workflows.labelling.extract`).
    reference_files : file names recorded as provenance.
    progress : called with the atoms of each frame done.
    **keywords : the fields of `Reading` and `DescriptorSpec` one by one
        (``index=``, ``format=``, ``type_map=``, ``k=``, ``cutoff=``,
        ``rescale_volume=``, ``species=``), replacing those of `reading`, `spec`.

    Returns
    -------
    NovelEnvironments (descriptors and dH of the candidates, frames they are in).
    """
    from atominfo.descriptor import frame_descriptors
    from atominfo.structures.frames import iter_frames

    reading, spec = with_keywords(keywords, reading or Reading(), spec or DescriptorSpec())
    from atominfo.workflows.dh_run import AtFalseAlarm

    min_dh = params.check("min_dh", min_dh, label="min_dh")
    top = None if top is None else params.check("top", top)
    rate = None
    if isinstance(reference, AtFalseAlarm):
        if min_dh != 0.0:
            raise InputError("a false-alarm rate replaces min_dh: give one of them")
        reference, rate = reference.reference, reference.false_alarm
    h, k, cutoff, ref_info = _scoring(reference, h, dh_array, spec, reference_files)
    species, rescale_volume = spec.kwargs()["species"], spec.rescale_volume

    def describe(fr) -> np.ndarray:
        return frame_descriptors(fr, k, cutoff, species=species, rescale_volume=rescale_volume)

    found = _Kept(min_dh if rate is None else -np.inf, top)
    warned: set[str] = set()
    total_frames = total_envs = 0
    fr = None
    for number, fr in enumerate(iter_frames(structures, **reading.kwargs())):
        total_frames += 1
        total_envs += len(fr.atoms)
        Y = describe(fr)
        if reference is not None:
            dH, p = _scores(reference, rate, Y, fr, warned)
        else:
            dH, p = _stored_dh(fr.atoms, dh_array, fr.source, fr.index), np.ones(len(Y))
        found.add(number, fr, Y, dH, p)
        if progress is not None:
            progress(len(fr.atoms))
    if fr is None:
        raise InputError("no structures given")
    last = fr
    X, dH, frame, atom, p = found.arrays(lambda: describe(last).shape[1])
    used = set(int(f) for f in frame)
    frames = {f: v for f, v in found.frames.items() if f in used}
    return NovelEnvironments(
        X,
        dH,
        frame.astype(np.int64),
        atom.astype(np.int64),
        frames,
        float(h),
        k,
        cutoff,
        float(min_dh),
        total_frames,
        total_envs,
        ref_info,
        p=None if rate is None else p,
        false_alarm=rate,
        calibration=None if rate is None else reference.calibration().to_dict(),
    )
