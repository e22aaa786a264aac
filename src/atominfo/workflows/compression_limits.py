"""What limits a compression besides its size: a labelling budget, strata and quotas.

Constraints (msc, fps and random; see `atominfo.workflows.compression.select`):

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

`Constraints` holds them; `plan_limits` turns them into the `Limits` the
methods consult pick by pick, and the per-group record of a `Selection`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atominfo.errors import InputError
from atominfo.structures.frameset import FrameSet


@dataclass(frozen=True)
class Constraints:
    """What limits a selection besides its size (for msc, fps and random).

    Parameters
    ----------
    cost : None (``n_atoms**3``), an info key, or one value per structure; see
        `structure_costs`. Used with `budget`, and reported.
    budget : number (cost units) or percentage of the total cost ("10%"), optional.
        Structures are taken in the method's order while they fit; one that does
        not fit is skipped. The selection may hold fewer than its size.
    stratify : info key, optional. Groups of structures by its value; each group
        gets a share of the size proportional to its number of structures (at
        least one each when the size allows; `apportion`) and, with a budget, a
        share of the budget proportional to its total cost (at least the cost of
        its cheapest structure).
    quotas : dict group -> count, optional (needs `stratify`). Explicit counts for
        some groups; the others share the rest of the size (or, with a budget
        only, are not capped in number).
    species : keep each species' information (msc or random; no reference): msc
        with the species-resolved kernel, so that an atom of a species not yet
        kept is infinitely surprising and every species is kept as soon as the
        size allows; the selection's summary gains what it keeps of each species
        (`atominfo.workflows.species_dataset.species_retention`). Needs the
        structures (the species of each atom).
    """

    cost: str | Sequence[float] | None = field(default=None, hash=False)
    budget: float | str | None = None
    stratify: str | None = None
    quotas: Mapping[str, Any] | None = field(default=None, hash=False)
    species: bool = False

    def __post_init__(self) -> None:
        if self.quotas and self.stratify is None:
            raise InputError("quotas need groups: give stratify (the info key of the groups)")

    @property
    def active(self) -> bool:
        """Whether a budget or strata limit the picks."""
        return self.budget is not None or self.stratify is not None


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


class Limits:
    """What may still be picked: total budget, per-group counts and budgets (in place)."""

    def __init__(self, cost, budget=None, group_of=None, counts=None, group_budgets=None):
        self.cost = cost
        self.left = math.inf if budget is None else float(budget)
        self.group_of = group_of  # group number of each structure, or None
        self.counts = None if counts is None else np.asarray(counts, dtype=float)
        self.group_left = None if group_budgets is None else np.asarray(group_budgets, float)
        # a relative slack: a selection that spends the budget exactly is allowed
        self.slack = 1e-12

    def fits(self, s: int) -> bool:
        """Whether structure `s` fits what is left."""
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
        """Which structures fit what is left (bool, (n_frames,))."""
        ok = self.cost <= self.left * (1 + self.slack)
        if self.group_of is not None:
            if self.counts is not None:
                ok &= self.counts[self.group_of] >= 1
            if self.group_left is not None:
                ok &= self.cost <= self.group_left[self.group_of] * (1 + self.slack)
        return ok

    def take(self, s: int) -> None:
        """Spend what structure `s` costs."""
        self.left -= self.cost[s]
        if self.group_of is not None:
            g = self.group_of[s]
            if self.counts is not None:
                self.counts[g] -= 1
            if self.group_left is not None:
                self.group_left[g] -= self.cost[s]


def quota_count(name, value) -> int:
    """A quota as an int >= 0 (an int, or text or a float holding one)."""
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
        out[name] = quota_count(name, value)
    return out


@dataclass
class Plan:
    """The limits of one selection, and its record per group.

    Attributes
    ----------
    costs : array (n_frames,), the cost of each structure; total_cost their sum.
    budget : the budget in cost units, or None.
    limits : the `Limits` the methods consult, or None (no budget, no strata).
    group_of : array (n_frames,) of group numbers, or None without strata.
    groups : per group (in order of first appearance): structures, quota
        (count, or None), budget (or None), picked, cost.
    """

    costs: np.ndarray
    total_cost: float
    budget: float | None
    limits: Limits | None = None
    group_of: np.ndarray | None = None
    groups: dict = field(default_factory=dict)

    def record(self, picks: Sequence[int]) -> None:
        """Count the picks and their cost in their groups."""
        if self.group_of is None:
            return
        names = list(self.groups)
        for p in picks:
            entry = self.groups[names[self.group_of[p]]]
            entry["picked"] += 1
            entry["cost"] += float(self.costs[p])


def plan_limits(data: FrameSet, constraints: Constraints, m: int, size_given: bool) -> Plan:
    """The costs, budget and limits of selecting up to `m` structures of `data`
    (`size_given`: `m` came from a size, not only from the budget)."""
    costs = structure_costs(data, constraints.cost)
    total_cost = float(costs.sum())
    budget = None if constraints.budget is None else budget_value(constraints.budget, total_cost)
    plan = Plan(costs, total_cost, budget)
    if constraints.stratify is not None:
        _stratify(plan, data, constraints, m, size_given)
    elif budget is not None:
        plan.limits = Limits(costs, budget)
    return plan


def _stratify(plan: Plan, data: FrameSet, constraints: Constraints, m: int, size_given: bool):
    """Groups of `constraints.stratify`: their counts and budgets, into `plan`."""
    assert constraints.stratify is not None
    _labels(data, constraints.stratify, "stratify")
    members = data.groups(constraints.stratify)
    names = list(members)
    group_of = np.empty(len(data), dtype=np.int64)
    for g, name in enumerate(names):
        group_of[members[name]] = g
    fixed = {str(k): quota_count(k, v) for k, v in (constraints.quotas or {}).items()}
    sizes = {name: len(members[name]) for name in names}
    counts = _group_counts(sizes, fixed, m, size_given)
    costs, budget = plan.costs, plan.budget
    group_budget = None
    if budget is not None:
        # proportional to the group's cost, and at least its cheapest structure
        # (the total budget still caps the sum)
        group_budget = {
            name: max(
                budget * float(costs[members[name]].sum()) / plan.total_cost,
                float(costs[members[name]].min()),
            )
            for name in names
        }
    plan.limits = Limits(
        costs,
        budget,
        group_of,
        [counts[n] for n in names],
        None if group_budget is None else [group_budget[n] for n in names],
    )
    plan.group_of = group_of
    plan.groups = {
        name: {
            "structures": sizes[name],
            "quota": counts[name] if (size_given or name in fixed) else None,
            "budget": None if group_budget is None else group_budget[name],
            "picked": 0,
            "cost": 0.0,
        }
        for name in names
    }


def _group_counts(sizes: dict[str, int], fixed: dict[str, int], m: int, size_given: bool):
    """How many structures each group may give: `m` apportioned, or with a budget alone its
    quota or all of it."""
    if size_given:
        return apportion(sizes, m, fixed)
    unknown = [k for k in fixed if k not in sizes]
    if unknown:
        apportion(sizes, sum(fixed.values()), fixed)  # raises, naming the group
    for name, q in fixed.items():
        if q > sizes[name]:
            raise InputError(f"quota {q} for group {name!r} of {sizes[name]} structures")
    return {name: fixed.get(name, sizes[name]) for name in sizes}
