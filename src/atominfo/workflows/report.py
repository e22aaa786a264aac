"""A dataset report: how much information a dataset holds, whether it is complete, where it
is redundant, what is new against a reference, and how to reproduce every number.

`dataset_report` runs the analyses of the other workflows on one `FrameSet`
and collects their results in a `DatasetReport`; `atominfo.outputs.html`
writes it as one self-contained page and `atominfo.outputs.chemiscope` as an
interactive chemiscope file. Every number comes from the public API:

* information per group and for the whole dataset: entropy H, diversity D,
  log n and the efficiency H / log n (`atominfo.entropy_and_diversity`);
* each structure's share of the dataset entropy: H is the mean over the
  atoms of ``s_i = log n - log sum_j K_h(x_i, x_j)`` (the atom's surprise),
  so the contributions ``sum_{i in structure} s_i / n`` add up to H;
* learning curves per group and for the whole dataset, each classified
  saturated / still rising / not determined by the rise of H per doubling
  of N at the full size, with the asymptote, the information gap and their
  intervals only for a curve still rising whose fit passes its checks
  (`atominfo.workflows.curves.learning_curve`);
* the overlap matrix between groups (`overlap_matrix`) and what msc
  compression keeps at a few sizes, with random selections of the same size
  as a baseline (`atominfo.workflows.compression.select`);
* against a reference: per-atom dH, the novelty (fraction with dH > 0) of each
  group, the most novel structures and atoms (`atominfo.delta_entropy`).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    check_widths,
    delta_entropy,
    entropy_and_diversity,
    surprisals,
)
from atominfo.results import Result, jsonable
from atominfo.settings import with_keywords
from atominfo.structures.frameset import FrameSet

# Fractions of the structures kept by the compression summary.
KEEP = (0.1, 0.25, 0.5)
# Packages whose versions the report records.
PACKAGES = ("atominfo", "numpy", "scipy", "numba", "ase", "matplotlib", "faiss-cpu")
ALL = "all"


@dataclass
class GroupInformation(Result):
    """Information content of one group of structures.

    Attributes
    ----------
    name : str, the group label (``"all"`` for the whole dataset).
    structures, environments : int, counts.
    entropy, diversity : float, H and D in nats.
    log_n : float, ln(environments), nats: the largest H and D possible.
    efficiency : float, H / log n (1 when every environment is distinct; nan for one).
    """

    name: str
    structures: int
    environments: int
    entropy: float
    diversity: float
    log_n: float
    efficiency: float


@dataclass
class DatasetReport(Result):
    """Everything `dataset_report` measured; see the module docstring for the definitions.

    Attributes
    ----------
    bandwidth : float, h in 1/Å.
    group_key : str or None, the info key of the groups (None: groups are files).
    groups : dict name -> array of frame numbers (int), in display order.
    information : list of GroupInformation, one per group then the whole dataset.
    structure_group : list of str, shape (n_frames,), the group of each structure.
    surprise : array (n_environments,), each atom's ``log n - log sum_j K`` in
        [0, log n], nats (`atominfo.information.surprisals`; mean: H of the whole dataset).
    contribution : array (n_frames,), each structure's share of H, nats (sum: H).
    curves : dict name -> LearningCurve (the groups, then ``"all"``).
    overlap : OverlapMatrix or None (None for a single group).
    compression : list of dict, ``Selection.to_dict()`` of each (method, size).
    selected : dict size -> array of bool (n_frames,), kept by msc at that size.
    dH : array (n_environments,) or None, per-atom dH against the reference, nats.
    reference_environments : int (0 without a reference).
    novelty : dict name -> fraction of the group's environments with dH > 0.
    structure_novelty, structure_max_dH : arrays (n_frames,) or None.
    provenance : dict: settings, package versions, input fingerprints, commands.
    species : SpeciesReport or None (with ``ReportOptions(species=True)``).
    """

    bandwidth: float
    group_key: str | None
    groups: dict
    information: list
    structure_group: list = field(repr=False)
    surprise: np.ndarray = field(repr=False)
    contribution: np.ndarray = field(repr=False)
    curves: dict = field(default_factory=dict)
    overlap: Any = None
    compression: list = field(default_factory=list)
    selected: dict = field(default_factory=dict)
    dH: np.ndarray | None = field(default=None, repr=False)
    reference_environments: int = 0
    novelty: dict = field(default_factory=dict)
    structure_novelty: np.ndarray | None = field(default=None, repr=False)
    structure_max_dH: np.ndarray | None = field(default=None, repr=False)
    provenance: dict = field(default_factory=dict)
    data: FrameSet | None = field(default=None, repr=False)
    species: Any = None

    _fields_shown = ("bandwidth", "group_key", "information", "reference_environments", "novelty")

    @property
    def total(self) -> GroupInformation:
        """Information of the whole dataset."""
        return self.information[-1]

    def most_novel_structures(self, top: int = 10) -> list[dict]:
        """The `top` structures with the largest max dH (empty without a reference)."""
        if (
            self.dH is None
            or self.data is None
            or self.structure_max_dH is None
            or self.structure_novelty is None
        ):
            return []
        order = np.argsort(-self.structure_max_dH, kind="stable")[:top]
        return [
            {
                "frame": int(f),
                "source": self.data.sources[f],
                "source_frame": int(self.data.source_frames[f]),
                "group": self.structure_group[f],
                "atoms": int(self.data.sizes[f]),
                "novelty": float(self.structure_novelty[f]),
                "max_dH": float(self.structure_max_dH[f]),
            }
            for f in order
        ]

    def most_novel_atoms(self, top: int = 10) -> list[dict]:
        """The `top` environments with the largest dH (empty without a reference)."""
        if self.dH is None or self.data is None:
            return []
        rows = []
        frame_of = self.data.frame
        for r in np.argsort(-self.dH, kind="stable")[:top]:
            source, source_frame, atom = self.data.locate(int(r))
            f = int(frame_of[r])
            symbol = str(self.data.atoms[f].get_chemical_symbols()[atom]) if self.data.atoms else ""
            rows.append(
                {
                    "source": source,
                    "source_frame": source_frame,
                    "atom": atom,
                    "element": symbol,
                    "group": self.structure_group[f],
                    "dH": float(self.dH[r]),
                }
            )
        return rows

    def to_dict(self) -> dict:
        """JSON-ready summary (per-atom arrays left out; non-finite numbers as None)."""
        return jsonable(
            {
                "bandwidth": self.bandwidth,
                "group_key": self.group_key,
                "information": [g.to_dict() for g in self.information],
                "curves": {n: c.to_dict() for n, c in self.curves.items()},
                "overlap": None if self.overlap is None else self.overlap.to_dict(),
                "compression": self.compression,
                "reference_environments": self.reference_environments,
                "novelty": self.novelty,
                "most_novel_structures": self.most_novel_structures(),
                "most_novel_atoms": self.most_novel_atoms(),
                "provenance": self.provenance,
                **({} if self.species is None else {"species": self.species.to_dict()}),
            }
        )


def file_fingerprint(path) -> dict:
    """{"path", "bytes", "sha256"} of a file (sha256 of its bytes, read in 1 MiB blocks)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def package_versions(names: Sequence[str] = PACKAGES) -> dict:
    """Installed versions of `names` (None where not installed), and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _information(name, X, h, structures, engine) -> GroupInformation:
    H, D = (float(v) for v in entropy_and_diversity(X, h, engine=engine))
    log_n = float(np.log(len(X)))
    return GroupInformation(
        name, int(structures), len(X), H, D, log_n, H / log_n if log_n > 0 else float("nan")
    )


def _sizes(fractions, total: int) -> list[int]:
    """Distinct structure counts for `fractions` of `total`, each in 1..total-1."""
    sizes = sorted({min(max(1, int(round(f * total))), total - 1) for f in fractions})
    return [m for m in sizes if 1 <= m < total]


@dataclass(frozen=True)
class ReportOptions:
    """The sampling settings of a dataset report (validated when made).

    Parameters
    ----------
    n_sizes, n_seeds, seed : learning-curve sizes (at least 9 for a fit), random
        subsets per size and the first seed (also the seed of the random baseline).
    keep : fractions of the structures kept by the compression summary, each in (0, 1).
    species : add the species-resolved block (per-species table and learning curve,
        `atominfo.workflows.species_dataset.species_report`); needs the structures.
    """

    n_sizes: int = 12
    n_seeds: int = 3
    seed: int = 0
    keep: tuple[float, ...] = KEEP
    species: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "n_sizes", params.check("n_sizes", self.n_sizes, label="number of sizes")
        )
        object.__setattr__(
            self, "n_seeds", params.check("n_seeds", self.n_seeds, label="number of seeds")
        )
        object.__setattr__(self, "seed", params.check("seed", self.seed))
        keep = [float(f) for f in self.keep]
        if any(not 0 < f < 1 for f in keep):
            raise InputError(f"compression fractions must be in (0, 1), got {keep}")
        object.__setattr__(self, "keep", tuple(keep))


def dataset_report(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    options: ReportOptions | None = None,
    *,
    groups: Mapping[str, np.ndarray] | None = None,
    group_by: str | None = None,
    reference=None,
    engine=None,
    progress: Callable[[str], None] | None = None,
    provenance: Mapping | None = None,
    **option_keywords,
) -> DatasetReport:
    """Measure a dataset's information, completeness, redundancy and novelty.

    Parameters
    ----------
    data : FrameSet with structures (`atominfo.structures.frameset.load_frames`).
    h : float, bandwidth in 1/Å (one value).
    options : ReportOptions (n_sizes, n_seeds, seed, keep); its fields may also be
        given as keywords (``n_sizes=9, n_seeds=2``), which replace those of `options`.
    groups : {name: array of frame numbers}, optional; default: by `group_by`,
        else one group per input file (a single group when there is one file).
    group_by : str, optional, an ``atoms.info`` key whose values define the groups.
    reference : Reference or array (n_ref, d) of descriptors, optional: the
        training set against which novelty (dH > 0) is measured.
    engine : EngineOptions or None, the kernel engine.
    progress : callable or None, called with the name of each analysis as it starts.
    provenance : dict, optional, merged into ``report.provenance`` (the CLI puts
        the command line, descriptor settings and input files there).

    Returns
    -------
    DatasetReport
    """
    from atominfo.engine.options import as_engine

    (options,) = with_keywords(option_keywords, options or ReportOptions())
    if not isinstance(data, FrameSet):
        raise InputError("a dataset report needs a FrameSet (atominfo.load_frames)")
    if np.ndim(h) != 0:
        raise InputError("a dataset report takes one bandwidth")
    h = float(params.check("bandwidth", h, label="bandwidth h"))
    engine = as_engine(engine)
    say = progress if progress is not None else (lambda name: None)
    if len(data) < 1:
        raise InputError("the dataset is empty")
    groups = _report_groups(data, groups, group_by)
    structure_group = _group_of_each(groups, len(data))
    several = len(groups) > 1
    # the learning curves, and the novelty, of each group and of the whole dataset
    parts = {**(groups if several else {}), ALL: np.arange(len(data))}

    say("information")
    surprise, contribution, information = _information_of(data, groups, h, engine)
    say("learning curves")
    curves = _curves_of(data, parts, h, options, engine)
    matrix = None
    if several:
        say("overlap matrix")
        matrix = _overlap_of(data, groups, h, engine)
    say("compression")
    compression, selected = _compression_of(data, h, options, engine)
    novelty = Novelty()
    if reference is not None:
        say("novelty against the reference")
        novelty = _novelty_of(data, parts, reference, h, engine)
    species = None
    if options.species:
        from atominfo.workflows.species_dataset import species_report

        say("species")
        sampling = _sampling(options, len(data))
        species = species_report(data, h, sampling, engine=engine)
        species.curve.descriptor = species.entropy.descriptor = (provenance or {}).get(
            "species_descriptor"
        )
    info = _provenance_of(data, h, group_by, options, provenance)
    return DatasetReport(
        h,
        group_by,
        groups,
        information,
        structure_group,
        surprise,
        contribution,
        curves,
        matrix,
        compression,
        selected,
        novelty.dH,
        novelty.reference_environments,
        novelty.novelty,
        novelty.structure_novelty,
        novelty.structure_max_dH,
        info,
        data,
        species,
    )


def _report_groups(data: FrameSet, groups, group_by) -> dict[str, np.ndarray]:
    """The groups given, or by `group_by`, or one per file (short names where distinct)."""
    if groups is None:
        if group_by is not None:
            groups = data.groups(group_by)
        elif len(set(data.sources)) > 1:
            by_file = data.groups(None)
            names = [Path(k).name for k in by_file]
            if len(set(names)) == len(names):  # short names where they stay distinct
                by_file = dict(zip(names, by_file.values()))
            groups = by_file
        else:
            groups = {ALL: np.arange(len(data))}
    return {str(k): np.asarray(v, dtype=np.int64) for k, v in groups.items()}


def _group_of_each(groups: Mapping[str, np.ndarray], n_frames: int) -> list[str]:
    structure_group = [""] * n_frames
    for name, frames in groups.items():
        for f in frames:
            structure_group[int(f)] = name
    if any(g == "" for g in structure_group):
        raise InputError("every structure must belong to a group")
    return structure_group


def _information_of(data: FrameSet, groups, h: float, engine):
    """Each atom's surprise, each structure's share of H, and H, D, log n per group."""
    from atominfo.engine import log_kernel_sums

    log_sums = log_kernel_sums(data.X, data.X, np.array([h]), engine)[0]
    n = data.n_rows
    surprise = surprisals(log_sums, n)
    contribution = np.add.reduceat(surprise, data.offsets[:-1]) / n
    information = (
        [
            _information(name, data.environments(frames), h, len(frames), engine)
            for name, frames in groups.items()
        ]
        if len(groups) > 1
        else []
    )
    information.append(_information(ALL, data.X, h, len(data), engine))
    return surprise, contribution, information


def _curves_of(data: FrameSet, parts, h: float, options: ReportOptions, engine) -> dict:
    from atominfo.workflows.curves import learning_curve, subset_frames

    curves = {}
    for name, frames in parts.items():
        part = subset_frames(data, frames)
        curves[name] = learning_curve(part, h, _sampling(options, len(part)), engine=engine)
    return curves


def _sampling(options: ReportOptions, structures: int):
    """The CurveOptions of a report's learning curve of `structures` structures."""
    from atominfo.workflows.curves import CurveOptions

    return CurveOptions(
        n_sizes=min(options.n_sizes, structures), n_seeds=options.n_seeds, seed=options.seed
    )


def _overlap_of(data: FrameSet, groups, h: float, engine):
    from atominfo.workflows.overlap_matrix import overlap_matrix

    subsets = {name: data.environments(frames) for name, frames in groups.items()}
    return overlap_matrix(subsets, h, engine=engine)


def _compression_of(data: FrameSet, h: float, options: ReportOptions, engine):
    """msc and random selections at the `keep` fractions, and which structures msc keeps."""
    from atominfo.workflows.compression import select

    compression, selected = [], {}
    for m in _sizes(options.keep, len(data)):
        for method in ("msc", "random"):
            selection = select(data, m, method, h, seed=options.seed, engine=engine)
            compression.append(selection.to_dict())
            if method == "msc":
                flags = np.zeros(len(data), dtype=bool)
                flags[selection.indices] = True
                selected[m] = flags
    return compression, selected


@dataclass
class Novelty:
    """Per-atom dH against the reference and what it says per group and per structure
    (all None, and no reference environments, without a reference)."""

    dH: np.ndarray | None = None
    reference_environments: int = 0
    novelty: dict = field(default_factory=dict)
    structure_novelty: np.ndarray | None = None
    structure_max_dH: np.ndarray | None = None


def _novelty_of(data: FrameSet, parts, reference, h: float, engine) -> Novelty:
    ref_X = as_descriptor_matrix(getattr(reference, "X", reference), "reference")
    check_widths(data.X, ref_X)
    dH = np.asarray(delta_entropy(data.X, ref_X, h, engine=engine))
    novel = dH > 0
    starts = data.offsets[:-1]
    return Novelty(
        dH,
        len(ref_X),
        {name: float(novel[data.rows(frames)].mean()) for name, frames in parts.items()},
        np.add.reduceat(novel.astype(float), starts) / data.sizes,
        np.maximum.reduceat(dH, starts),
    )


def _provenance_of(data: FrameSet, h: float, group_by, options: ReportOptions, provenance):
    """Settings, versions, platform and input fingerprints, then what the caller adds."""
    info: dict[str, Any] = {
        "bandwidth": h,
        "group_by": group_by,
        "n_sizes": options.n_sizes,
        "n_seeds": options.n_seeds,
        "seed": options.seed,
        "keep": list(options.keep),
        "descriptor_width": int(data.X.shape[1]),
        "versions": package_versions(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
    }
    files = [s for s in dict.fromkeys(data.sources) if Path(s).is_file()]
    info["inputs"] = [file_fingerprint(p) for p in files]
    info.update(dict(provenance or {}))
    if "reference_files" in info:
        info["reference"] = [
            file_fingerprint(p) for p in info["reference_files"] if Path(p).is_file()
        ]
    return info
