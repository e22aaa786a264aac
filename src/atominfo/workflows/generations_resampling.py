"""What re-sampling alone gives a generation: the null of the campaign verdict.

Generation g adds information when its novelty (fraction of its environments
with dH > 0 against generations 1..g-1) or its gain in cumulative H is larger
than if its structures were just more draws of what came before. Under that
hypothesis the structures of generations 1..g are exchangeable, so every
split of them into an "earlier" and a "new" set of the observed sizes is as
likely as the observed one (a permutation test): the observed value exceeds
the (1 - alpha) quantile of random splits with probability at most alpha,
for any data size. Consecutive MD frames are closer to each other than
independent draws, which narrows random splits; the runs of consecutive
structures are a second re-sampling that keeps that correlation, and the
larger quantile of the two is used.

The unit moved between the sets is a structure (its environments are
correlated), or, without structure sizes, an environment; at most
`MAX_UNITS`, consecutive ones merged beyond that. Each environment's log
kernel sum against each unit is computed once (the cost of one entropy of
all generations) and every split sums them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from atominfo.engine import log_kernel_sums
from atominfo.engine.options import as_engine
from atominfo.errors import InputError

DEFAULT_RESAMPLES = 199
CONFIDENCE = 0.95
MAX_UNITS = 256
BATCH = 4096  # random splits drawn at a time
CHUNK_ENTRIES = 2**22  # environments x splits per block of the split sums (bounds memory)


def minimum_resamples(confidence: float = CONFIDENCE) -> int:
    """Fewest random splits whose `confidence` quantile is one of them (19 for 0.95)."""
    return math.ceil(confidence / (1.0 - confidence) - 1e-9)


def structure_counts(counts, n: int, what: str) -> np.ndarray:
    """`counts` (environments per structure) as int64, checked to split `n` environments."""
    raw = np.asarray(counts)
    ok = raw.ndim == 1 and raw.size > 0 and raw.dtype.kind in "iuf"
    ok = ok and bool(np.all(raw == np.round(raw))) and bool(np.all(raw >= 1))
    if not ok or int(raw.sum()) != n:
        raise InputError(
            f"{what}: structure sizes {raw.ravel()[:5].tolist()} do not split its "
            f"{n} environments (one whole number >= 1 per structure)"
        )
    return raw.astype(np.int64)


def units_of(counts: Sequence[np.ndarray], max_units: int = MAX_UNITS) -> list[np.ndarray]:
    """Per generation, the environments of each unit: its structures, merged in runs
    of equal length where there are more than `max_units` in all."""
    total = sum(len(c) for c in counts)
    run = max(1, math.ceil(total / max_units))
    return [
        np.add.reduceat(np.asarray(c, dtype=np.int64), np.arange(0, len(c), run)) for c in counts
    ]


def resampling_null(
    blocks: Sequence[np.ndarray],
    counts: Sequence[Sequence[int]],
    h: float,
    resamples: int,
    seed: int,
    engine=None,
) -> list[tuple[float, float] | None]:
    """Per generation (None for the first): what re-sampling gives at `CONFIDENCE`,
    (novelty, a fraction; gain in cumulative H, nats).

    Each is the larger of two quantiles over splits of the structures of
    generations 1..g into an "earlier" and a "new" set: `resamples` random
    splits, or every other split where there are fewer (`other_splits`;
    structures drawn independently), and every run of as many
    consecutive structures as the new generation, taken cyclically
    (structures correlated in order, as MD frames are; with few structures
    this is the largest of the runs).

    Parameters
    ----------
    blocks : descriptors of each generation, arrays (n_g, d), in order (validated).
    counts : environments per structure of each generation (each sums to n_g).
    h : bandwidth, 1/Å. resamples : random splits per generation. seed : their draw.
    engine : EngineOptions or None.
    """
    checked = [
        structure_counts(c, len(b), f"generation {g + 1}")
        for g, (b, c) in enumerate(zip(blocks, counts))
    ]
    sizes = units_of(checked)
    X = np.concatenate(blocks)
    unit_sizes = np.concatenate(sizes)
    starts = np.concatenate([[0], np.cumsum(unit_sizes)])
    unit_of_row = np.repeat(np.arange(len(unit_sizes)), unit_sizes)
    engine, hs = as_engine(engine), np.array([float(h)])
    # log sum_{j in unit u} K(x_i, x_j): one column per unit, one pass over the data
    L = np.empty((len(X), len(unit_sizes)))
    for u in range(len(unit_sizes)):
        L[:, u] = log_kernel_sums(X, X[starts[u] : starts[u + 1]], hs, engine)[0]
    rng = np.random.default_rng(seed)
    first_unit = np.concatenate([[0], np.cumsum([len(s) for s in sizes])])
    out: list[tuple[float, float] | None] = [None]
    for g in range(1, len(blocks)):
        n_units, n_earlier = int(first_unit[g + 1]), int(first_unit[g])
        new = n_units - n_earlier
        drawn = other_splits(n_units, new, resamples, rng)
        # columns: the observed split, the other splits, the other cyclic runs
        masks = np.ones((n_units, 1 + len(drawn) + n_units - 1), dtype=bool)
        masks[n_earlier:, 0] = False
        np.put_along_axis(masks[:, 1 : 1 + len(drawn)].T, drawn, False, axis=1)
        for i, s in enumerate(range(n_earlier + 1, n_earlier + n_units)):
            masks[(s + np.arange(new)) % n_units, 1 + len(drawn) + i] = False
        rows = int(starts[n_units])
        novelty, gain = _split_values(L[:rows, :n_units], unit_of_row[:rows], masks)
        pick = (slice(1, len(drawn) + 1), slice(len(drawn) + 1, None))
        out.append(
            (
                max(_quantile(novelty[pick[0]]), _quantile(novelty[pick[1]])),
                max(_quantile(gain[pick[0]]), _quantile(gain[pick[1]])),
            )
        )
    return out


def other_splits(n_units: int, new: int, resamples: int, rng) -> np.ndarray:
    """The "new" units of the splits to compare with the observed one (the last `new`
    units), array (m, new): every other split when there are at most `resamples`
    of them (exact; with fewer than 1 / (1 - CONFIDENCE) splits in all, the
    quantile is their largest, and the observed split exceeds it with probability
    1 / splits), else `resamples` uniform random splits."""
    if math.comb(n_units, new) - 1 <= resamples:
        observed = tuple(range(n_units - new, n_units))
        others = [c for c in itertools.combinations(range(n_units), new) if c != observed]
        return np.array(others, dtype=np.int64).reshape(len(others), new)
    out = np.empty((resamples, new), dtype=np.int64)
    for lo in range(0, resamples, BATCH):  # `new` units drawn without replacement
        k = min(BATCH, resamples - lo)
        out[lo : lo + k] = np.argsort(rng.random((k, n_units)), axis=1)[:, :new]
    return out


def _split_values(L, unit_of_row, masks) -> tuple[np.ndarray, np.ndarray]:
    """Novelty of the "new" set against the "earlier" one, and the gain H(all) - H(earlier),
    for each split (a column of `masks`: True for the earlier units)."""
    n_splits = masks.shape[1]
    top = L.max(axis=1, keepdims=True)  # each row's largest unit sum, for a stable exp
    in_earlier = masks[unit_of_row]  # (rows, splits)
    weights = masks.astype(float)
    n_earlier = in_earlier.sum(axis=0)
    n_new = len(L) - n_earlier
    log_n, log_all = np.log(n_earlier), np.log(len(L))
    novel = np.zeros(n_splits)
    earlier_terms = np.zeros(n_splits)
    all_terms = 0.0
    step = max(1, CHUNK_ENTRIES // n_splits)
    for lo in range(0, len(L), step):
        hi = min(lo + step, len(L))
        W = np.exp(L[lo:hi] - top[lo:hi])
        with np.errstate(divide="ignore"):
            # a member's own unit is summed: its sum is >= exp(-top) > 0
            log_sums = top[lo:hi] + np.log(W @ weights)
        member = in_earlier[lo:hi]
        terms = np.clip(log_n - log_sums, 0.0, log_n)  # as `information.surprisals`
        earlier_terms += np.where(member, terms, 0.0).sum(axis=0)
        novel += (~member & (log_sums < 0.0)).sum(axis=0)  # dH > 0 against the earlier set
        whole = top[lo:hi, 0] + np.log(W.sum(axis=1))
        all_terms += float(np.clip(log_all - whole, 0.0, log_all).sum())
    return novel / np.maximum(n_new, 1), all_terms / len(L) - earlier_terms / n_earlier


def _quantile(values: np.ndarray) -> float:
    """The ceil(CONFIDENCE (B + 1))-th smallest of B split values (the largest when B is
    smaller): pure re-sampling exceeds it with probability at most 1 - CONFIDENCE."""
    k = math.ceil(CONFIDENCE * (len(values) + 1) - 1e-9)
    return float(np.sort(values)[min(k, len(values)) - 1])
