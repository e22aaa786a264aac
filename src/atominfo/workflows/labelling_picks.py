"""Which candidates to cut out: the largest dH first, or a few diverse ones.

`deduplicate` turns 500 copies of one new environment into one pick, and
makes each pick fill a different gap of the reference (docs/method.md,
section 3.3); `largest_first` orders them by dH alone. Both can cap the
picks of each frame and spread them round-robin over frames, so that one
phase of a trajectory (a melt) cannot take every pick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable


@dataclass
class Deduplication(Result):
    """Greedy picks among candidate environments.

    Attributes
    ----------
    picks : list of int, candidate numbers in pick order.
    dH_at_pick : list of float, nats: each pick's dH against the reference plus the
        earlier picks (non-increasing).
    duplicates : int, candidates not picked because they lie within
        `duplicate_distance` bandwidths of a pick.
    remaining_max_dH : float, nats: the largest dH left among the other candidates
        (neither picked nor duplicates), against the reference plus all picks:
        <= min_dh unless stopped by `max_picks` or `max_per_frame` (NaN when none is left).
    stopped_by : "coverage" (nothing left above min_dh), "max_picks", or
        "max_per_frame" (what is left above min_dh lies in frames already full).
    max_per_frame : int or None;  spread : bool, picks taken round-robin over frames.
    """

    picks: list[int]
    dH_at_pick: list[float]
    duplicates: int
    remaining_max_dH: float
    stopped_by: str
    candidates: int
    min_dh: float
    duplicate_distance: float
    bandwidth: float
    max_per_frame: int | None = None
    spread: bool = False

    _fields_shown = (
        "candidates",
        "duplicates",
        "stopped_by",
        "remaining_max_dH",
        "min_dh",
        "bandwidth",
    )

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return jsonable(
            {
                "candidates": self.candidates,
                "picked": len(self.picks),
                "picks": list(self.picks),
                "dH_at_pick": list(self.dH_at_pick),
                "duplicates": self.duplicates,
                "remaining_max_dH": self.remaining_max_dH,
                "stopped_by": self.stopped_by,
                "min_dH": self.min_dh,
                "duplicate_distance": self.duplicate_distance,
                "bandwidth": self.bandwidth,
                "max_per_frame": self.max_per_frame,
                "spread": self.spread,
            }
        )


def deduplicate(
    Y,
    dH,
    h: float,
    *,
    min_dh: float = 0.0,
    max_picks: int | None = None,
    duplicate_distance: float = 1.0,
    frames=None,
    max_per_frame: int | None = None,
    spread: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Deduplication:
    """Few diverse environments out of many candidates: greedy maximum dH.

    Pick the candidate with the largest dH against the reference; then, again
    and again, the candidate with the largest dH against the reference plus
    the candidates picked so far, stopping when no candidate has dH > `min_dh`
    any more (or after `max_picks`). Since
    ``dH(y | ref + S) = -log(exp(-dH(y | ref)) + sum_{s in S} K_h(y, s))``
    (docs/method.md, section 3.3), only the candidates' own kernel sums are
    updated after each pick (exactly, in log space); the reference is not
    needed again. Each pick fills a different gap.

    A pick covers itself (its dH becomes <= 0) but not, by this criterion
    alone, a copy at any distance d > 0 from it (its dH is d^2 / 2h^2 > 0
    until a second pick lands nearby): tight near-copies would cost two picks.
    Candidates within ``duplicate_distance * h`` of a pick (kernel >=
    exp(-duplicate_distance^2 / 2)) are therefore duplicates of it and no
    longer picked; 0 gives the pure coverage criterion.

    With the candidates' `frames`, ``max_per_frame`` caps the picks of each
    frame, and ``spread`` takes the picks round-robin over frames: each pick
    is the candidate of largest dH among the frames with the fewest picks so
    far (of those still holding a candidate above `min_dh`), so every such
    frame gives one pick before any gives a second, and one phase of a
    trajectory cannot take every pick.

    Parameters
    ----------
    Y : array, shape (n, d), 1/Å. Candidate descriptors.
    dH : array, shape (n,), nats. Their dH against the reference.
    h : float, 1/Å, the bandwidth `dH` was computed with.
    min_dh : float, nats. Stop when no candidate is above it.
    max_picks : int, optional. At most this many picks.
    duplicate_distance : float >= 0, in bandwidths (default 1).
    frames : array of int, shape (n,), optional. The frame of each candidate.
    max_per_frame : int, optional. At most this many picks per frame (with `frames`).
    spread : bool. Picks round-robin over frames (with `frames`).
    progress : called with 1 after each pick.
    """
    from atominfo.engine.fold import centre
    from atominfo.information import as_descriptor_matrix

    h = params.check("bandwidth", h, label="bandwidth")
    min_dh = params.check("min_dh", min_dh, label="min_dh")
    max_picks = None if max_picks is None else params.check("max_picks", max_picks)
    duplicate_distance = params.check("duplicate_distance", duplicate_distance)
    max_per_frame = params.check_optional("max_per_frame", max_per_frame)
    dH = np.asarray(dH, dtype=float).reshape(-1)
    quota = _FrameQuota.of(frames, len(dH), max_per_frame, bool(spread))
    settings = (float(min_dh), float(duplicate_distance), float(h), max_per_frame, bool(spread))
    if len(dH) == 0:
        return Deduplication([], [], 0, float("nan"), "coverage", 0, *settings)
    Y = as_descriptor_matrix(Y, "candidates")
    if len(Y) != len(dH):
        raise InputError(f"{len(Y)} candidate descriptors but {len(dH)} dH values")
    if np.isnan(dH).any():
        raise InputError("dH holds NaN", atom=int(np.argmax(np.isnan(dH))))
    greedy = _Greedy(np.ascontiguousarray(Y - centre(Y)), dH, h)
    # a product, not **: a distance too large to square is inf (everything is
    # a duplicate) where float ** raises OverflowError
    radius = duplicate_distance * h
    stopped = greedy.run(min_dh, max_picks, radius * radius, quota, progress)
    picked = np.zeros(len(dH), dtype=bool)
    picked[greedy.picks] = True
    open_ = greedy.open_
    remaining = -float(greedy.log_sums[open_].min()) if open_.any() else float("nan")
    duplicates = int((~open_ & ~picked).sum())
    return Deduplication(
        greedy.picks, greedy.gains, duplicates, remaining, stopped, len(dH), *settings
    )


def largest_first(
    dH,
    frames=None,
    *,
    max_picks: int | None = None,
    max_per_frame: int | None = None,
    spread: bool = False,
) -> list[int]:
    """Candidate numbers by decreasing dH (ties: first), at most `max_picks`.

    With the candidates' `frames`: at most `max_per_frame` of each frame, and with
    `spread`, round-robin over frames (every frame's largest dH, by decreasing dH,
    then every frame's second largest, ...), as `deduplicate` spreads its picks.
    """
    dH = np.asarray(dH, dtype=float).reshape(-1)
    max_picks = params.check_optional("max_picks", max_picks)
    max_per_frame = params.check_optional("max_per_frame", max_per_frame)
    quota = _FrameQuota.of(frames, len(dH), max_per_frame, bool(spread))
    order = np.lexsort((np.arange(len(dH)), -dH))
    if quota.max_per_frame is not None or quota.spread:
        in_frame = quota.frame[order]
        by_frame = np.argsort(in_frame, kind="stable")
        starts = np.searchsorted(in_frame[by_frame], in_frame[by_frame])
        rank = np.empty(len(order), dtype=np.int64)
        rank[by_frame] = np.arange(len(order)) - starts  # 0 for a frame's largest dH, ...
        keep = rank < max_per_frame if max_per_frame is not None else np.ones(len(order), bool)
        if quota.spread:
            keep_order = np.lexsort((np.arange(len(order)), rank))
            order, keep = order[keep_order], keep[keep_order]
        order = order[keep]
    return [int(i) for i in order[:max_picks]]


class _Greedy:
    """The state of the greedy picks: each candidate's log kernel sum against the
    reference plus the picks, and which candidates are still open."""

    def __init__(self, X: np.ndarray, dH: np.ndarray, h: float):
        self.X, self.h = X, h
        self.x_sq = np.einsum("ij,ij->i", X, X)
        self.log_sums = -dH.copy()  # log sum of kernels against the reference (+inf dH: -inf)
        self.open_ = np.ones(len(dH), dtype=bool)  # neither picked nor a duplicate of a pick
        self.picks: list[int] = []
        self.gains: list[float] = []

    def run(
        self, min_dh: float, max_picks: int | None, radius2: float, quota: _FrameQuota, progress
    ) -> str:
        """Pick until no open candidate has dH > `min_dh` (in a frame not full), or
        `max_picks`; says which."""
        from threadpoolctl import threadpool_limits

        from atominfo.workflows.compression import update_log_sums

        X, x_sq, log_sums, open_ = self.X, self.x_sq, self.log_sums, self.open_
        with threadpool_limits(1, user_api="blas"):
            while open_.any():
                allowed = quota.allowed(open_ & (-log_sums > min_dh))
                if allowed is None:
                    return "max_per_frame"
                if not allowed.any():
                    break
                scores = np.where(allowed, log_sums, np.inf)
                best = int(np.argmin(scores))  # largest dH; ties: first
                gain = -float(log_sums[best])
                if max_picks is not None and len(self.picks) == max_picks:
                    return "max_picks"
                quota.take(best)
                self.picks.append(best)
                self.gains.append(gain)
                p = X[best : best + 1]
                update_log_sums(log_sums, X, x_sq, p, self.h)
                d2 = x_sq + x_sq[best] - 2.0 * (X @ p[0])
                open_ &= d2 > radius2
                open_[best] = False
                if progress is not None:
                    progress(1)
        return "coverage"


class _FrameQuota:
    """Which candidates may be picked next, by their frame: none beyond `max_per_frame`
    picks in a frame; with `spread`, only those of the frames with the fewest picks."""

    def __init__(self, frames: np.ndarray, max_per_frame: int | None, spread: bool):
        _, self.frame = np.unique(frames, return_inverse=True)
        self.count = np.zeros(int(self.frame.max()) + 1 if len(frames) else 0, dtype=np.int64)
        self.max_per_frame, self.spread = max_per_frame, spread

    @classmethod
    def of(cls, frames, n: int, max_per_frame: int | None, spread: bool) -> _FrameQuota:
        """The quota of `n` candidates in `frames` (None: no quota, every candidate one frame)."""
        if frames is None:
            return cls(np.zeros(n, dtype=np.int64), None, False)
        frames = np.asarray(frames).reshape(-1)
        if len(frames) != n or (n and frames.dtype.kind not in "iu"):
            raise InputError(f"{len(frames)} frame numbers for {n} candidates (integers)")
        return cls(frames, max_per_frame, spread)

    def allowed(self, above: np.ndarray) -> np.ndarray | None:
        """The candidates of `above` that may be picked next; None when every one of
        them lies in a full frame (an empty `above` is returned as it is)."""
        if self.max_per_frame is None and not self.spread or not above.any():
            return above
        count = self.count[self.frame]
        if self.max_per_frame is not None:
            above = above & (count < self.max_per_frame)
            if not above.any():
                return None
        if self.spread:
            above = above & (count == count[above].min())
        return above

    def take(self, candidate: int) -> None:
        self.count[self.frame[candidate]] += 1
