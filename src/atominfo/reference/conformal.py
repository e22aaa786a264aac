"""Novelty at a stated false-alarm rate: conformal p-values of dH, calibrated on the reference.

``dH > 0`` is one fixed threshold whose false-alarm rate nobody chose. Here the
threshold comes from the reference itself (split conformal prediction):

* The reference's rows are cut into contiguous blocks (rows follow the atoms of
  the frames in file order, so a block holds whole frames or runs of
  consecutive frames). A seeded random set of blocks, about a fifth of the rows
  and at most `MAX_CALIBRATION`, is the calibration part B; the rest is the
  proper part A.
* The score of an environment y is its dH against A alone,
  ``s(y) = -log sum_{x in A} K_h(y, x)``. Scoring B against A gives the null
  distribution: what environments drawn like the reference's score.
* The p-value of y is ``(1 + #{b in B: s(b) >= s(y)}) / (|B| + 1)``.

Guarantee: when y is drawn like the reference's environments (exchangeable
with those of B), ``P(p(y) <= alpha) <= alpha`` for every alpha, so flagging
``p <= alpha`` raises a false alarm on at most a fraction alpha of
in-distribution atoms, on average over calibrations. Test and calibration
environments are scored against the same set A, of the same size, so no
correction for the size of the set is needed (dH grows as the set shrinks).
Whole blocks go to B because an atom of B would otherwise be scored against
near-copies of itself (its frame's neighbours, the next frame) that a new
frame does not have in A: calibration scores would be too small and the
realised false-alarm rate too high. Scores within `TIE_NATS` of each other
count as equal (the kernel sums' accuracy), so rounding alone never makes an
environment novel. The guarantee holds for exchangeable environments; a test
trajectory run under other conditions than the reference is not "in
distribution", and flagging it is the point.
"""

from __future__ import annotations

import numpy as np

from atominfo import params
from atominfo.engine import log_kernel_sums
from atominfo.engine.options import EngineOptions
from atominfo.errors import InputError

# Share of the reference's rows held out for calibration, and their largest number:
# p-values resolve 1/(n_cal + 1), and the calibration costs n_cal x |A| kernel terms.
CALIBRATION_FRACTION = 0.2
MAX_CALIBRATION = 20_000
# Rows per block (a few frames of a typical MD cell), and at least this many blocks.
BLOCK_ROWS = 256
MIN_BLOCKS = 20
# Scores this close (nats) are ties: the stated accuracy of the exact kernel sums.
TIE_NATS = 1e-9


class NoveltyCalibration:
    """Conformal calibration of dH on a reference: the proper part A and B's null scores.

    Built by `calibrate` (``Reference.calibration()`` builds it once and keeps it).

    Attributes
    ----------
    bandwidths : array (n_h,), 1/Å.
    scores : array (n_h, n_calibration), sorted: dH of the calibration part
        against the proper part, nats (+inf beyond float64's range).
    proper_rows : int array, the reference rows of the proper part A.
    calibration_rows : int array, the reference rows of the calibration part B.
    block_rows : rows per block of the split.
    seed : seed of the choice of calibration blocks.
    """

    def __init__(
        self, X_proper, bandwidths, engine, scores, proper_rows, calibration_rows, block_rows, seed
    ):
        self.proper_X, self.bandwidths, self.engine = X_proper, bandwidths, engine
        self.scores = np.sort(scores, axis=1)
        self.proper_rows, self.calibration_rows = proper_rows, calibration_rows
        self.block_rows, self.seed = block_rows, seed

    @property
    def n_calibration(self) -> int:
        """Number of calibration environments (|B|)."""
        return int(self.scores.shape[1])

    @property
    def smallest_rate(self) -> float:
        """The smallest false-alarm rate these scores resolve, ``1 / (|B| + 1)``."""
        return 1.0 / (self.n_calibration + 1)

    def check_rate(self, false_alarm) -> float:
        """`false_alarm` validated, and resolvable: InputError when no p-value can be so small."""
        rate = params.check("false_alarm", false_alarm)
        if rate < self.smallest_rate:
            n_ref = len(self.proper_rows) + len(self.calibration_rows)
            raise InputError(
                f"a false-alarm rate of {rate:g} is below the smallest p-value the reference "
                "can give: "
                f"its {n_ref} environments hold {self.n_calibration} out for calibration, "
                f"so p >= 1/{self.n_calibration + 1} = {self.smallest_rate:.3g}; give a larger "
                f"reference or a rate of at least {self.smallest_rate:.3g}"
            )
        return rate

    def score(self, Y, progress=None) -> np.ndarray:
        """dH of each row of Y against the proper part A: (n_h, m), nats (+inf beyond float64)."""
        engine = self.engine.with_progress(progress)
        return -log_kernel_sums(Y, self.proper_X, self.bandwidths, engine)

    def p_values(self, Y, progress=None) -> np.ndarray:
        """Conformal p-value of each row of Y (validated descriptors): (n_h, m), in (0, 1]."""
        return self.p_values_of_scores(self.score(Y, progress))

    def p_values_of_scores(self, scores) -> np.ndarray:
        """p-values of scores against A (as `score` gives them): (n_h, m)."""
        scores = np.atleast_2d(scores)
        return np.stack([p_values(cal, s) for cal, s in zip(self.scores, scores)])

    def to_dict(self) -> dict:
        """What the calibration used, JSON-safe (not the scores)."""
        return {
            "calibration_environments": self.n_calibration,
            "proper_environments": len(self.proper_rows),
            "block_rows": self.block_rows,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (
            f"NoveltyCalibration({self.n_calibration} calibration environments scored against "
            f"{len(self.proper_rows)}, blocks of {self.block_rows} rows, seed {self.seed})"
        )


def p_values(calibration: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Conformal p-values ``(1 + #{c >= s}) / (n + 1)`` of `scores` against `calibration`.

    calibration : sorted 1-D array of n null scores (higher = more novel; +inf allowed).
    scores : array of scores of the same kind. Scores within `TIE_NATS` (plus a
        relative 1e-12) of a calibration score count as equal to it.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(calibration)
    with np.errstate(invalid="ignore"):  # +inf - inf: an infinite score stays infinite
        edge = np.where(np.isinf(scores), scores, scores - TIE_NATS - 1e-12 * np.abs(scores))
    below = np.searchsorted(calibration, edge, side="left")
    return (1.0 + (n - below)) / (n + 1.0)


def flag(p, false_alarm: float) -> np.ndarray:
    """Novel at false-alarm rate `false_alarm`: ``p <= false_alarm`` (the conformal rule,
    whose rate on in-distribution environments is at most `false_alarm`)."""
    return np.asarray(p) <= false_alarm


def calibration_size(n: int, seed: int) -> int:
    """How many of a reference's n environments `calibrate` holds out (for a progress bar)."""
    return len(split_rows(n, seed)[1])


def split_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(proper rows, calibration rows, rows per block): whole blocks of consecutive rows,
    a seeded random share `CALIBRATION_FRACTION` (at most `MAX_CALIBRATION` rows) to
    calibration, at least one block to each part. InputError for fewer than 2 rows."""
    if n < 2:
        raise InputError(
            f"a conformal calibration needs at least 2 reference environments, got {n}"
        )
    block = max(1, min(BLOCK_ROWS, n // MIN_BLOCKS))
    starts = np.arange(0, n, block)
    target = min(MAX_CALIBRATION, max(1, round(CALIBRATION_FRACTION * n)))
    order = np.random.default_rng(seed).permutation(len(starts))
    chosen: list[int] = []
    rows = 0
    for b in order[:-1]:  # the last block of the order always stays proper
        if rows >= target:
            break
        size = min(block, n - starts[b])
        if chosen and rows + size > MAX_CALIBRATION:
            break
        chosen.append(b)
        rows += size
    in_cal = np.zeros(n, dtype=bool)
    for b in chosen:
        in_cal[starts[b] : starts[b] + block] = True
    return np.flatnonzero(~in_cal), np.flatnonzero(in_cal), block


def calibrate(
    X: np.ndarray,
    hs: np.ndarray,
    engine: EngineOptions,
    *,
    seed: int = 0,
    progress=None,
) -> NoveltyCalibration:
    """Split conformal calibration of dH on reference descriptors X (see the module).

    Parameters
    ----------
    X : array (n, d), the reference's descriptors in file order (validated), 1/Å.
    hs : array (n_h,), bandwidths, 1/Å.
    engine : `EngineOptions` of the reference (the proper part is prepared on it).
    seed : which blocks are held out.
    progress : callable or None, called with the number of calibration rows scored.

    Returns
    -------
    NoveltyCalibration
    """
    seed = params.check("seed", seed)
    proper, held_out, block = split_rows(len(X), seed)
    X_proper = np.ascontiguousarray(X[proper])
    engine = engine.prepare(X_proper)  # its own handle on the device / workers: A, not X
    scores = -log_kernel_sums(X[held_out], X_proper, hs, engine.with_progress(progress))
    return NoveltyCalibration(X_proper, hs, engine, scores, proper, held_out, block, seed)
