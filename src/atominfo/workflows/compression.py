"""Dataset compression: choose m of M structures keeping as much information as possible.

The methods (definitions in docs/method.md):

* ``random``: m structures uniformly at random (seeded).
* ``fps``: farthest point sampling on the mean environment distance between
  structures (mean over all pairs of their environments of |x - y|, 1/Å),
  starting from the structure with the highest own entropy.
* ``kmeans``: k-means (k = m, seeded k-means++) on the mean descriptor of each
  structure; for each centroid the nearest structure not yet chosen.
* ``msc`` (greedy maximum-surprise compression): start from the structure with the
  highest own entropy, then repeatedly pick the remaining structure maximising
  ``max_e dH(e | selected environments) + H(structure)``. The log kernel sums
  of every environment against the selection are updated incrementally after
  each pick: one BLAS distance block (all environments x the new structure's
  environments) and an exact log-space fold, never a recomputation.
  With a reference set (conditional msc) the sums start from the reference
  instead of from an empty selection.

Constraints (msc, fps and random; see `select`):

* a **budget**: each structure has a cost (default ``n_atoms**3``, the scaling
  of a DFT calculation, or the value of an ``info`` key); picks continue in the
  method's order while the total cost stays within the budget, and a structure
  that does not fit is skipped (never picked later: the budget only shrinks);
* **stratification** by an ``info`` key: each group gets a share of the
  selection proportional to its number of structures (at least one each when
  the selection has room for every group), or an explicit quota; with a budget,
  each group gets the share of the budget proportional to its cost, and at
  least the cost of its cheapest structure (the total budget still holds). The picks
  are still made by one greedy over all groups, so what one group's picks
  cover is not picked again in another; a group whose quota is full is closed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from atominfo import params
from atominfo.engine import log_kernel_sums
from atominfo.engine.fold import (
    centre,
    fold_into_log_sums,
    fold_into_log_sums_serial,
    inverse_two_h2,
)
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
from atominfo.structures.frameset import FrameSet

METHODS = ("msc", "fps", "kmeans", "random")
# Rows of the all-environments block per BLAS call (bounded memory: rows x new atoms floats).
BLOCK_ROWS = 32768
# Blocks with fewer entries are folded on one thread: waking threads costs more.
SERIAL_ENTRIES = 1 << 18


def update_log_sums(log_sums, X, x_sq, Y, h: float) -> None:
    """Add the kernels between every row of X and the rows of Y to `log_sums` in place.

    ``log_sums[i] = log sum_{selected y} exp(-|X_i - y|^2 / (2 h^2))``; `x_sq` is
    ``(X**2).sum(1)``. Float64 throughout, with the engine's fold and its error
    bound (`atominfo.engine.fold`); memory ``BLOCK_ROWS x len(Y)`` floats.
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    y_sq = np.einsum("ij,ij->i", Y, Y)
    c = float(inverse_two_h2(h)[0])
    for r0 in range(0, len(X), BLOCK_ROWS):
        dots = X[r0 : r0 + BLOCK_ROWS] @ Y.T
        fold = fold_into_log_sums if dots.size > SERIAL_ENTRIES else fold_into_log_sums_serial
        fold(dots, x_sq[r0 : r0 + BLOCK_ROWS], y_sq, c, log_sums[r0 : r0 + BLOCK_ROWS])


def own_entropies(data: FrameSet, h: float) -> np.ndarray:
    """Entropy of each structure's own environments, shape (n_frames,), nats.

    Same value as `atominfo.entropy` per structure, with the exact fold above:
    thousands of small structures cost little on one thread each.
    """
    out = np.empty(len(data))
    X = data.X - centre(data.X)  # small norms: small rounding (see engine.fold)
    with threadpool_limits(1, user_api="blas"):
        for f in range(len(data)):
            Xf = np.ascontiguousarray(X[data.offsets[f] : data.offsets[f + 1]])
            log_sums = np.full(len(Xf), -np.inf)
            update_log_sums(log_sums, Xf, np.einsum("ij,ij->i", Xf, Xf), Xf, h)
            out[f] = np.log(len(Xf)) - log_sums.mean()
    return out


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


def _msc(data: FrameSet, m: int, h: float, reference, own, progress, engine, limits=None):
    """Greedy msc with lazy evaluation of the scores.

    A structure's score ``max_e dH(e | selected) + H(structure)`` can only fall
    as the selection grows (every kernel sum only gains terms). So a score
    computed a few picks ago is an upper bound of the current one: keep the
    bounds in a heap, and bring only the structure on top up to date, by
    folding into its environments' log sums the environments of the picks it
    has not seen yet. When the structure on top is up to date it is the exact
    maximiser, the same pick as recomputing every score after every pick,
    at a fraction of the cost. No sum is ever recomputed from scratch.
    """
    shift = centre(data.X)  # small norms: small rounding (see engine.fold)
    X = np.ascontiguousarray(data.X - shift)
    x_sq = np.einsum("ij,ij->i", X, X)
    offsets = data.offsets
    if reference is None:
        log_sums = np.full(len(X), -np.inf)
    else:
        log_sums = log_kernel_sums(data.X, reference, np.array([h]), engine)[0].copy()
    # Re-evaluations are small products (one structure x recent picks): one BLAS
    # thread each avoids thread wake-ups that cost more than the product.
    with threadpool_limits(1, user_api="blas"):
        return _lazy_greedy(
            X, x_sq, offsets, own, log_sums, m, h, reference is None, progress, limits
        )


def _lazy_greedy(
    X: np.ndarray,
    x_sq: np.ndarray,
    offsets: np.ndarray,
    own: np.ndarray,
    log_sums: np.ndarray,
    m: int,
    h: float,
    from_empty: bool,
    progress: Callable[[int], object] | None,
    limits: _Limits | None = None,
) -> list[int]:
    """The lazy greedy; with `limits` (a `_Limits`), a maximiser that does not fit is
    dropped for good (its room only shrinks) and the next one is taken."""
    import heapq

    n = len(offsets) - 1
    picked_blocks: list[np.ndarray] = []  # environments of each pick, in pick order
    seen = np.zeros(n, dtype=np.int64)  # picks already folded into each structure's sums
    picks: list[int] = []

    def take(s):
        picks.append(s)
        picked_blocks.append(X[offsets[s] : offsets[s + 1]])
        if limits is not None:
            limits.take(s)
        if progress is not None:
            progress(1)

    def fits(s):
        return limits is None or limits.fits(s)

    def negative_score(s):  # heap key: the heap pops the smallest, ties by lowest index
        return log_sums[offsets[s] : offsets[s + 1]].min() - own[s]

    if from_empty:
        # Nothing selected: every dH is +inf; the method starts from the highest own entropy.
        # A key of -inf stands for a score not evaluated yet (+inf).
        order = [s for s in np.argsort(-own, kind="stable") if fits(int(s))]
        if not order:
            return picks
        first = int(order[0])
        heap = [(-np.inf, s) for s in range(n) if s != first and fits(s)]
        take(first)
    else:
        heap = [(negative_score(s), s) for s in range(n) if fits(s)]
    heapq.heapify(heap)
    while len(picks) < m and heap:
        _, s = heapq.heappop(heap)
        if not fits(s):
            continue  # no longer fits (budget or quota used up): never again
        if seen[s] == len(picked_blocks):  # up to date: the exact maximiser
            take(s)
            continue
        rows = slice(offsets[s], offsets[s + 1])
        missing = picked_blocks[seen[s] :]
        new = missing[0] if len(missing) == 1 else np.concatenate(missing)
        update_log_sums(log_sums[rows], X[rows], x_sq[rows], new, h)
        seen[s] = len(picked_blocks)
        heapq.heappush(heap, (negative_score(s), s))
    return picks


def _fps(data: FrameSet, m: int, own, progress, limits=None):
    X = np.ascontiguousarray(data.X)
    x_sq = np.einsum("ij,ij->i", X, X)
    starts, sizes = data.offsets[:-1], data.sizes
    nearest = np.full(len(data), np.inf)
    chosen = np.zeros(len(data), dtype=bool)
    fits = np.ones(len(data), dtype=bool) if limits is None else limits.fitting()
    if not fits.any():
        return []
    pick = int(np.argmax(np.where(fits, own, -np.inf)))
    picks = []
    for step in range(m):
        chosen[pick] = True
        picks.append(pick)
        if limits is not None:
            limits.take(pick)
            fits = limits.fitting()
        if progress is not None:
            progress(1)
        if step + 1 == m or not (fits & ~chosen).any():
            break
        Y = X[data.offsets[pick] : data.offsets[pick + 1]]
        y_sq = np.einsum("ij,ij->i", Y, Y)
        row_mean = np.empty(len(X))
        for r0 in range(0, len(X), BLOCK_ROWS):
            d2 = X[r0 : r0 + BLOCK_ROWS] @ Y.T
            d2 *= -2.0
            d2 += x_sq[r0 : r0 + BLOCK_ROWS, None]
            d2 += y_sq[None, :]
            np.maximum(d2, 0.0, out=d2)
            row_mean[r0 : r0 + BLOCK_ROWS] = np.sqrt(d2).mean(axis=1)
        distance = np.add.reduceat(row_mean, starts) / sizes
        np.minimum(nearest, distance, out=nearest)
        candidates = np.where(chosen | ~fits, -np.inf, nearest)
        pick = int(np.argmax(candidates))
    return picks


def _kmeans(data: FrameSet, m: int, seed: int, progress):
    from scipy.cluster.vq import kmeans2

    means = np.add.reduceat(data.X, data.offsets[:-1], axis=0) / data.sizes[:, None]
    centroids, _ = kmeans2(means, m, minit="++", seed=np.random.default_rng(seed))
    chosen = np.zeros(len(data), dtype=bool)
    picks = []
    for centroid in centroids:
        d2 = ((means - centroid) ** 2).sum(axis=1)
        d2[chosen] = np.inf
        pick = int(np.argmin(d2))
        chosen[pick] = True
        picks.append(pick)
        if progress is not None:
            progress(1)
    return picks


# -- constraints: budget and strata ----------------------------------------------------------


def structure_costs(
    data: FrameSet, cost: str | Sequence[float] | None = None, exponent: float = 3.0
) -> np.ndarray:
    """Cost of labelling each structure, shape (n_frames,), > 0.

    Parameters
    ----------
    data : FrameSet.
    cost : None, an info key, or one value per structure.
        None: ``n_atoms ** exponent`` (the cubic scaling of DFT; relative units).
        A key: the value of ``atoms.info[key]`` of each frame (e.g. CPU hours).
    exponent : float, for the default cost.

    Raises
    ------
    InputError
        For a missing, non-numeric, non-finite or non-positive cost (naming the frame).
    """
    if cost is None:
        return data.sizes.astype(float) ** float(exponent)
    if isinstance(cost, str):
        labelled: list[float] = []
        for f, value in enumerate(_labels(data, cost, "the cost")):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(float(value))
                or float(value) <= 0
            ):
                raise InputError(
                    f"cost {cost!r} must be a finite number > 0, got {value!r}",
                    source=data.sources[f],
                    frame=data.source_frames[f],
                )
            labelled.append(float(value))
        return np.asarray(labelled)
    values = np.asarray(cost, dtype=float).reshape(-1)
    if len(values) != len(data):
        raise InputError(f"{len(values)} costs for {len(data)} structures")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        f = int(np.argmax(bad))
        raise InputError(
            f"cost must be a finite number > 0, got {values[f]!r}",
            source=data.sources[f],
            frame=data.source_frames[f],
        )
    return values


def budget_value(budget, total_cost: float) -> float:
    """A budget in cost units: a number (> 0) or a percentage of the total, e.g. "10%"."""
    text = str(budget).strip()
    percent = text.endswith("%")
    try:
        number = float(text[:-1] if percent else text)
    except ValueError:
        number = math.nan
    if percent:
        if not (math.isfinite(number) and 0 < number <= 100):
            raise InputError(f"budget percentage must be in (0, 100], got {budget!r}")
        return number / 100.0 * float(total_cost)
    if not (math.isfinite(number) and number > 0):
        raise InputError(
            f"budget must be a number > 0 (cost units) or a percentage such as 10%, got {budget!r}"
        )
    return number


def apportion(sizes: dict[str, int], m: int, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Split `m` picks among groups in proportion to their sizes (largest remainders).

    Every group gets at least one pick when `m` leaves room for all of them, and
    never more than its size. `fixed` gives some groups an explicit count; the
    others share what is left.

    Raises
    ------
    InputError
        For a fixed count of an unknown group, above the group's size, or fixed
        counts adding up to more than `m`.
    """
    fixed = dict(fixed or {})
    for name, q in fixed.items():
        if name not in sizes:
            raise InputError(
                f"quota for group {name!r}, which does not exist "
                f"(groups: {', '.join(map(str, sizes))})"
            )
        if not 0 <= q <= sizes[name]:
            raise InputError(f"quota {q} for group {name!r} of {sizes[name]} structures")
    rest = m - sum(fixed.values())
    if rest < 0:
        raise InputError(
            f"quotas add up to {sum(fixed.values())}, more than the {m} structures selected"
        )
    free = [g for g in sizes if g not in fixed]
    room = sum(sizes[g] for g in free)
    if rest > room:
        raise InputError(
            f"cannot select {m} structures with these quotas: the other groups hold {room}"
        )
    out = dict(fixed)
    if not free:
        if rest:
            raise InputError(f"quotas add up to {m - rest}, not the {m} structures selected")
        return {g: out[g] for g in sizes}
    ideal = {g: rest * sizes[g] / room for g in free}
    floor = 1 if rest >= len(free) else 0
    share = {g: min(sizes[g], max(floor, int(math.floor(ideal[g])))) for g in free}
    while sum(share.values()) < rest:  # largest remainder first; ties: first group
        g = max((g for g in free if share[g] < sizes[g]), key=lambda g: ideal[g] - share[g])
        share[g] += 1
    while sum(share.values()) > rest:  # only after the floor of one: smallest remainder
        g = min((g for g in free if share[g] > floor), key=lambda g: ideal[g] - share[g])
        share[g] -= 1
    out.update(share)
    return {g: out[g] for g in sizes}


def _labels(data: FrameSet, key: str, what: str) -> list:
    """``data.labels(key)``, with errors naming `what` needs the key."""
    try:
        return data.labels(key)
    except InputError as exc:
        raise InputError(
            exc.reason.replace("--group-by", what), source=exc.source, frame=exc.frame
        ) from None


class _Limits:
    """What may still be picked: total budget, per-group counts and budgets."""

    def __init__(self, cost, budget=None, group_of=None, counts=None, group_budgets=None):
        self.cost = cost
        self.left = math.inf if budget is None else float(budget)
        self.group_of = group_of  # group number of each structure, or None
        self.counts = None if counts is None else np.asarray(counts, dtype=float)
        self.group_left = None if group_budgets is None else np.asarray(group_budgets, float)
        # a relative slack: a selection that spends the budget exactly is allowed
        self.slack = 1e-12

    def fits(self, s: int) -> bool:
        c = self.cost[s]
        if c > self.left * (1 + self.slack):
            return False
        if self.group_of is not None:
            g = self.group_of[s]
            if self.counts is not None and self.counts[g] < 1:
                return False
            if self.group_left is not None and c > self.group_left[g] * (1 + self.slack):
                return False
        return True

    def fitting(self) -> np.ndarray:
        ok = self.cost <= self.left * (1 + self.slack)
        if self.group_of is not None:
            if self.counts is not None:
                ok &= self.counts[self.group_of] >= 1
            if self.group_left is not None:
                ok &= self.cost <= self.group_left[self.group_of] * (1 + self.slack)
        return ok

    def take(self, s: int) -> None:
        self.left -= self.cost[s]
        if self.group_of is not None:
            g = self.group_of[s]
            if self.counts is not None:
                self.counts[g] -= 1
            if self.group_left is not None:
                self.group_left[g] -= self.cost[s]


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
    cost=None,
    budget=None,
    stratify: str | None = None,
    quotas: dict | None = None,
) -> Selection:
    """Choose structures of `data` by `method` and summarise what the selection keeps.

    Parameters
    ----------
    data : FrameSet (e.g. from `atominfo.frameset.load_frames`).
    size : fraction of the structures (0.5) or their number (200); see `selection_size`.
        May be None with a `budget` (then the budget alone decides).
    method : "msc", "fps", "kmeans" or "random".
    h : bandwidth, 1/Å (one value).
    seed : random seed (random and kmeans; recorded for every method).
    reference : array (n_ref, d), optional. Environments already in the training set:
        msc then picks what best complements them (conditional selection).
    summary : compute H, D and the overlap of the full set with the selection.
    progress : called with 1 after each pick.
    engine : EngineOptions or None, the kernel engine of the summary and reference sums.
    cost : None (``n_atoms**3``), an info key, or one value per structure; see
        `structure_costs`. Used with `budget`, and reported.
    budget : number (cost units) or percentage of the total cost ("10%"), optional.
        Structures are taken in the method's order while they fit; one that does
        not fit is skipped. The selection may hold fewer than `size` structures.
    stratify : info key, optional. Groups of structures by its value; each group
        gets a share of `size` proportional to its number of structures (at least
        one each when `size` allows; `apportion`) and, with a budget, a share of
        the budget proportional to its total cost (at least the cost of its
        cheapest structure).
    quotas : dict group -> count, optional (needs `stratify`). Explicit counts for
        some groups; the others share the rest of `size` (or, with a budget only,
        are not capped in number).

    Notes
    -----
    Not for kmeans: `budget`, `stratify`.
    """
    import time

    method = params.check("compression_method", method, label="method")
    if np.ndim(h) != 0:
        raise InputError("compression takes one bandwidth")
    h = params.check("bandwidth", h, label="bandwidth h")
    seed = params.check("seed", seed)
    engine = as_engine(engine)
    if size is None and budget is None:
        raise InputError("give a size (fraction or count) or a budget")
    m = len(data) if size is None else selection_size(size, len(data))
    if reference is not None:
        if method != "msc":
            raise InputError("a reference set (conditional selection) needs method 'msc'")
        reference = as_descriptor_matrix(reference, "reference")
        check_widths(data.X, reference)
    if quotas and stratify is None:
        raise InputError("quotas need groups: give stratify (the info key of the groups)")
    constrained = budget is not None or stratify is not None
    if constrained and method == "kmeans":
        raise InputError("a budget or strata need method msc, fps or random (not kmeans)")
    costs = structure_costs(data, cost)
    total_cost = float(costs.sum())
    budget_cost = None if budget is None else budget_value(budget, total_cost)
    groups: dict[str, dict[str, Any]] = {}
    limits, group_of = None, None
    if stratify is not None:
        _labels(data, stratify, "stratify")
        members = data.groups(stratify)
        names = list(members)
        group_of = np.empty(len(data), dtype=np.int64)
        for g, name in enumerate(names):
            group_of[members[name]] = g
        fixed = {str(k): _quota_count(k, v) for k, v in (quotas or {}).items()}
        sizes = {name: len(members[name]) for name in names}
        if size is not None:
            counts = apportion(sizes, m, fixed)
        else:
            unknown = [k for k in fixed if k not in sizes]
            if unknown:
                apportion(sizes, sum(fixed.values()), fixed)  # raises, naming the group
            counts = {name: fixed.get(name, sizes[name]) for name in names}
            for name, q in fixed.items():
                if q > sizes[name]:
                    raise InputError(f"quota {q} for group {name!r} of {sizes[name]} structures")
        group_cost = {name: float(costs[members[name]].sum()) for name in names}
        group_budget = None
        if budget_cost is not None:
            # proportional to the group's cost, and at least its cheapest structure
            # (the total budget still caps the sum)
            group_budget = {
                name: max(
                    budget_cost * group_cost[name] / total_cost, float(costs[members[name]].min())
                )
                for name in names
            }
        limits = _Limits(
            costs,
            budget_cost,
            group_of,
            [counts[n] for n in names],
            None if group_budget is None else [group_budget[n] for n in names],
        )
        groups = {
            name: {
                "structures": sizes[name],
                "quota": counts[name] if (size is not None or name in fixed) else None,
                "budget": None if group_budget is None else group_budget[name],
                "picked": 0,
                "cost": 0.0,
            }
            for name in names
        }
    elif budget_cost is not None:
        limits = _Limits(costs, budget_cost)
    t0 = time.perf_counter()
    if method == "random":
        order = [int(i) for i in np.random.default_rng(seed).permutation(len(data))]
        if limits is None:
            picks = order[:m]
        else:
            picks = []
            for i in order:
                if len(picks) == m:
                    break
                if limits.fits(i):
                    limits.take(i)
                    picks.append(i)
        if progress is not None:
            progress(len(picks))
    elif method == "kmeans":
        picks = _kmeans(data, m, seed, progress)
    else:
        own = own_entropies(data, float(h))
        if method == "fps":
            picks = _fps(data, m, own, progress, limits)
        else:
            picks = _msc(data, m, float(h), reference, own, progress, engine, limits)
    picks = [int(p) for p in picks]
    seconds = time.perf_counter() - t0
    if not picks:
        raise InputError(
            "nothing fits: the budget is smaller than the cost of every "
            f"structure (cheapest {costs.min():.6g}, budget {budget_cost:.6g})"
        )
    if group_of is not None:
        names = list(groups)
        for p in picks:
            entry = groups[names[group_of[p]]]
            entry["picked"] += 1
            entry["cost"] += float(costs[p])
    kept = data.environments(picks)
    H = D = ov = float("nan")
    if summary:
        H, D = (float(v) for v in entropy_and_diversity(kept, h, engine=engine))
        known = kept if reference is None else np.concatenate([kept, reference])
        ov = float(overlap(data.X, known, h, engine=engine))
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
        float(costs[picks].sum()),
        total_cost,
        budget_cost,
        stratify,
        groups,
    )


def _quota_count(name, value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        and not (isinstance(value, (float, str)) and str(value).strip().lstrip("+").isdigit())
    ):
        raise InputError(f"quota for group {name!r} must be a count >= 0, got {value!r}")
    return int(value)


def parse_quotas(items) -> dict[str, int]:
    """``["melt=3", "bulk=5"]`` -> ``{"melt": 3, "bulk": 5}`` (the command line's --quota)."""
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, value = str(item).rpartition("=")
        if not sep or not name:
            raise InputError(f"quota must be GROUP=COUNT such as melt=3, got {item!r}")
        if name in out:
            raise InputError(f"quota for group {name!r} given twice")
        out[name] = _quota_count(name, value)
    return out


def write_selection(data: FrameSet, selection: Selection, path) -> None:
    """Write the selected structures, unchanged and in their original order, as extxyz.

    Every ``info`` and ``arrays`` entry is kept (and energies/forces read by
    ASE). The file appears only when complete.
    """
    import ase.io

    from atominfo.outputs.atomic import atomic_output

    if not data.atoms:
        raise InputError("this FrameSet holds no structures to write")
    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for f in sorted(selection.indices):
                ase.io.write(fh, data.atoms[f], format="extxyz")
