"""Dataset compression: choose m of M structures keeping as much information as possible.

`select` picks structures by one of `METHODS` (msc, fps, kmeans, random;
`atominfo.workflows.compression_methods`), within a budget and strata when
asked (`Constraints`, `atominfo.workflows.compression_limits`), and
summarises what the selection keeps (`Selection`: H and D of the kept
environments, and the share of the full set inside them). `write_selection`
writes the kept structures unchanged; `atominfo.workflows.compression_run`
is the ``atominfo compress`` command as one function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atominfo import params
from atominfo.engine.options import EngineOptions, as_engine
from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    check_widths,
    entropy_and_diversity,
    overlap,
)
from atominfo.results import Result, jsonable
from atominfo.settings import with_keywords
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.compression_limits import Constraints, plan_limits
from atominfo.workflows.compression_methods import METHODS as METHODS
from atominfo.workflows.compression_methods import pick_structures

# Kept importable from here (`atominfo.workflows.labelling` folds with it).
from atominfo.workflows.compression_methods import update_log_sums as update_log_sums
from atominfo.workflows.species_dataset import row_species, species_retention


def selection_size(value, total: int) -> int:
    """Number of structures from a fraction (0 < value < 1, or a float such as 1.0) or a count."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise InputError(
            f"size must be a fraction such as 0.5 or a count such as 200, got {value!r}"
        ) from None
    is_fraction = ("." in text or "e" in text.lower()) and number <= 1.0
    if is_fraction:
        if not 0 < number <= 1:
            raise InputError(f"fraction must be in (0, 1], got {value!r}")
        m = max(1, int(round(number * total)))
    else:
        if number != int(number) or number < 1:
            raise InputError(f"count must be a positive integer, got {value!r}")
        m = int(number)
    if m > total:
        raise InputError(f"cannot select {m} of {total} structures")
    return m


@dataclass
class Selection(Result):
    """A compressed dataset: which structures were kept and what they hold.

    Attributes
    ----------
    indices : list of int, frame numbers in the order they were picked.
    method, seed, bandwidth (1/Å), reference_environments (0 without a reference).
    n_structures, n_environments : kept, out of total_structures / total_environments.
    entropy, diversity : H and D of the kept environments, nats.
    overlap : fraction of all environments of the full set with dH <= 0 against
        the kept ones (plus the reference, when given).
    cost, total_cost : cost of the kept structures and of all (see `structure_costs`).
    budget : the budget in cost units, or None.
    groups : per group of `stratify` (else empty): structures, quota (count, or
        None), budget (or None), picked, cost.
    species : `SpeciesRetention` (what is kept of each species) with
        ``Constraints(species=True)`` and a summary, else None.
    """

    indices: list[int]
    method: str
    seed: int | None
    bandwidth: float
    n_structures: int
    n_environments: int
    total_structures: int
    total_environments: int
    entropy: float
    diversity: float
    overlap: float
    reference_environments: int = 0
    seconds: float = 0.0
    cost: float = float("nan")
    total_cost: float = float("nan")
    budget: float | None = None
    stratify: str | None = None
    groups: dict = field(default_factory=dict)
    species: Any = None

    _fields_shown = (
        "method",
        "n_structures",
        "total_structures",
        "n_environments",
        "entropy",
        "diversity",
        "overlap",
        "bandwidth",
        "seconds",
    )

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers, e.g. without a summary, as None)."""
        return jsonable(
            {
                "method": self.method,
                "seed": self.seed,
                "bandwidth": self.bandwidth,
                "structures": self.n_structures,
                "environments": self.n_environments,
                "total_structures": self.total_structures,
                "total_environments": self.total_environments,
                "entropy": self.entropy,
                "diversity": self.diversity,
                "overlap": self.overlap,
                "reference_environments": self.reference_environments,
                "selection_seconds": self.seconds,
                "cost": self.cost,
                "total_cost": self.total_cost,
                "budget": self.budget,
                "stratify": self.stratify,
                "groups": self.groups,
                "indices": sorted(self.indices),
                "pick_order": list(self.indices),
                **({} if self.species is None else {"species": self.species.to_dict()}),
            }
        )


def select(
    data: FrameSet,
    size=None,
    method: str = "msc",
    h: float = DEFAULT_BANDWIDTH,
    *,
    seed: int = 0,
    reference=None,
    summary: bool = True,
    progress: Callable[[int], None] | None = None,
    engine: EngineOptions | None = None,
    constraints: Constraints | None = None,
    **constraint_keywords,
) -> Selection:
    """Choose structures of `data` by `method` and summarise what the selection keeps.

    Parameters
    ----------
    data : FrameSet (e.g. from `atominfo.frameset.load_frames`).
    size : fraction of the structures (0.5) or their number (200); see `selection_size`.
        May be None with a budget (then the budget alone decides).
    method : "msc", "fps", "kmeans" or "random".
    h : bandwidth, 1/Å (one value).
    seed : random seed (random and kmeans; recorded for every method).
    reference : array (n_ref, d), optional. Environments already in the training set:
        msc then picks what best complements them (conditional selection).
    summary : compute H, D and the overlap of the full set with the selection.
    progress : called with 1 after each pick.
    engine : EngineOptions or None, the kernel engine of the summary and reference sums.
    constraints : `Constraints` (cost, budget, stratify, quotas, species), optional; its
        fields may also be given as keywords (``budget="10%", stratify="config_type"``,
        ``species=True``), which replace those of `constraints`. Not for kmeans.
    """
    method = params.check("compression_method", method, label="method")
    if np.ndim(h) != 0:
        raise InputError("compression takes one bandwidth")
    h = params.check("bandwidth", h, label="bandwidth h")
    seed = params.check("seed", seed)
    engine = as_engine(engine)
    (constraints,) = with_keywords(constraint_keywords, constraints or Constraints())
    if size is None and constraints.budget is None:
        raise InputError("give a size (fraction or count) or a budget")
    m = len(data) if size is None else selection_size(size, len(data))
    if reference is not None:
        if method != "msc":
            raise InputError("a reference set (conditional selection) needs method 'msc'")
        reference = as_descriptor_matrix(reference, "reference")
        check_widths(data.X, reference)
    if constraints.active and method == "kmeans":
        raise InputError("a budget or strata need method msc, fps or random (not kmeans)")
    symbols, codes = _species_of(data, method, reference, constraints)
    plan = plan_limits(data, constraints, m, size is not None)
    t0 = time.perf_counter()
    picks = pick_structures(
        method,
        data,
        m,
        float(h),
        seed=seed,
        reference=reference,
        engine=engine,
        limits=plan.limits,
        progress=progress,
        codes=codes,
    )
    seconds = time.perf_counter() - t0
    if not picks:
        raise InputError(
            "nothing fits: the budget is smaller than the cost of every "
            f"structure (cheapest {plan.costs.min():.6g}, budget {plan.budget:.6g})"
        )
    plan.record(picks)
    kept = data.environments(picks)
    H = D = ov = float("nan")
    species = None
    if summary:
        H, D, ov, species = _summary(data, picks, reference, h, engine, symbols)
    return Selection(
        picks,
        method,
        seed,
        float(h),
        len(picks),
        len(kept),
        len(data),
        len(data.X),
        H,
        D,
        ov,
        0 if reference is None else len(reference),
        seconds,
        float(plan.costs[picks].sum()),
        plan.total_cost,
        plan.budget,
        constraints.stratify,
        plan.groups,
        species,
    )


def _summary(data: FrameSet, picks, reference, h: float, engine, symbols):
    """H and D of the kept environments, the share of the full set inside them (and the
    reference), and with `symbols` what they keep of each species."""
    kept = data.environments(picks)
    H, D = (float(v) for v in entropy_and_diversity(kept, h, engine=engine))
    known = kept if reference is None else np.concatenate([kept, reference])
    ov = float(overlap(data.X, known, h, engine=engine))
    species = None
    if symbols is not None:
        species = species_retention(data.X, symbols, data.rows(picks), h, engine=engine)
    return H, D, ov, species


def _species_of(data: FrameSet, method: str, reference, constraints: Constraints):
    """(symbol, species code) of each row for a species-resolved selection, else (None, None)."""
    if not constraints.species:
        return None, None
    if method not in ("msc", "random"):
        raise InputError(f"a species-resolved selection needs method msc or random, not {method}")
    if reference is not None:
        raise InputError("a species-resolved selection takes no reference set")
    symbols = row_species(data)
    return symbols, np.unique(symbols, return_inverse=True)[1]


def write_selection(data: FrameSet, selection: Selection, path) -> None:
    """Write the selected structures, unchanged and in their original order, as extxyz.

    Every ``info`` and ``arrays`` entry is kept (and energies/forces read by
    ASE). The file appears only when complete.
    """
    import ase.io

    from atominfo.runs.atomic import atomic_output

    if not data.atoms:
        raise InputError("this FrameSet holds no structures to write")
    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for f in sorted(selection.indices):
                ase.io.write(fh, data.atoms[f], format="extxyz")
