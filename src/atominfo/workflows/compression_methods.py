"""The selection methods of dataset compression: the order in which each picks structures.

Definitions in docs/method.md; `atominfo.workflows.compression.select` runs
them and summarises what they keep.

* ``random``: a seeded permutation (`random_picks`).
* ``fps``: farthest point sampling on the mean environment distance between
  structures, from the structure with the highest own entropy (`fps_picks`).
* ``kmeans``: for each k-means centroid (k = m, seeded k-means++) of the
  structures' mean descriptors, the nearest structure not yet chosen
  (`kmeans_picks`).
* ``msc`` (greedy maximum-surprise compression): from the structure with the
  highest own entropy, repeatedly the structure maximising
  ``max_e dH(e | selected environments) + H(structure)`` (`msc_picks`). The
  log kernel sums of every environment against the selection are updated
  incrementally after each pick (`update_log_sums`: one BLAS block and an
  exact log-space fold, never a recomputation); with a reference set they
  start from the reference.

With `limits` (`atominfo.workflows.compression_limits.Limits`: a budget,
quotas), msc, fps and random skip a structure that does not fit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from atominfo.engine import log_kernel_sums
from atominfo.engine.fold import (
    centre,
    fold_into_log_sums,
    fold_into_log_sums_serial,
    inverse_two_h2,
)
from atominfo.information import surprisals
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.compression_limits import Limits

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


def update_by_species(log_sums, X, x_sq, Y, h: float, codes, y_codes) -> None:
    """`update_log_sums`, each row of X taking only the rows of Y of its own species
    (`codes`, `y_codes`: an integer per row); all of Y when `codes` is None."""
    if codes is None:
        update_log_sums(log_sums, X, x_sq, Y, h)
        return
    for c in np.unique(codes):
        mine, theirs = codes == c, y_codes == c
        if theirs.any():
            part = log_sums[mine]
            update_log_sums(part, X[mine], x_sq[mine], Y[theirs], h)
            log_sums[mine] = part


def own_entropies(data: FrameSet, h: float, codes=None) -> np.ndarray:
    """Entropy of each structure's own environments, shape (n_frames,), nats.

    Same value as `atominfo.entropy` per structure (formed by
    `atominfo.information.surprisals`), with the exact fold above: thousands
    of small structures cost little on one thread each. With `codes` (the
    species of each row, an integer), the species-resolved joint entropy
    (`atominfo.workflows.species.species_entropy`'s ``total``).
    """
    out = np.empty(len(data))
    X = data.X - centre(data.X)  # small norms: small rounding (see engine.fold)
    with threadpool_limits(1, user_api="blas"):
        for f in range(len(data)):
            rows = slice(data.offsets[f], data.offsets[f + 1])
            Xf = np.ascontiguousarray(X[rows])
            zf = None if codes is None else codes[rows]
            log_sums = np.full(len(Xf), -np.inf)
            update_by_species(log_sums, Xf, np.einsum("ij,ij->i", Xf, Xf), Xf, h, zf, zf)
            out[f] = surprisals(log_sums, len(Xf)).mean()
    return out


def msc_picks(
    data: FrameSet, m: int, h: float, reference, own, progress, engine, limits=None, codes=None
) -> list[int]:
    """Structures in msc order (greedy maximum-surprise, lazy evaluation of the scores).

    A structure's score ``max_e dH(e | selected) + H(structure)`` can only fall
    as the selection grows (every kernel sum only gains terms). So a score
    computed a few picks ago is an upper bound of the current one: keep the
    bounds in a heap, and bring only the structure on top up to date, by
    folding into its environments' log sums the environments of the picks it
    has not seen yet. When the structure on top is up to date it is the exact
    maximiser, the same pick as recomputing every score after every pick,
    at a fraction of the cost. No sum is ever recomputed from scratch.

    With `codes` (the species of each row, an integer; no reference), the
    species-resolved kernel: an environment's sums hold only the picked
    environments of its own species, so an atom of a species not yet kept is
    infinitely surprising and its structure is picked next.
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
            X, x_sq, offsets, own, log_sums, m, h, reference is None, progress, limits, codes
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
    limits: Limits | None = None,
    codes: np.ndarray | None = None,
) -> list[int]:
    """The lazy greedy; with `limits` (a `Limits`), a maximiser that does not fit is
    dropped for good (its room only shrinks) and the next one is taken."""
    import heapq

    n = len(offsets) - 1
    picked_blocks: list[np.ndarray] = []  # environments of each pick, in pick order
    picked_codes: list[np.ndarray] = []  # and their species, with `codes`
    seen = np.zeros(n, dtype=np.int64)  # picks already folded into each structure's sums
    picks: list[int] = []

    def take(s):
        picks.append(s)
        picked_blocks.append(X[offsets[s] : offsets[s + 1]])
        if codes is not None:
            picked_codes.append(codes[offsets[s] : offsets[s + 1]])
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
        if codes is None:
            update_log_sums(log_sums[rows], X[rows], x_sq[rows], new, h)
        else:
            new_codes = np.concatenate(picked_codes[seen[s] :])
            update_by_species(log_sums[rows], X[rows], x_sq[rows], new, h, codes[rows], new_codes)
        seen[s] = len(picked_blocks)
        heapq.heappush(heap, (negative_score(s), s))
    return picks


def fps_picks(data: FrameSet, m: int, own, progress, limits=None) -> list[int]:
    """Structures in farthest-point order on the mean environment distance, from the
    highest own entropy; with `limits`, only those that fit."""
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


def kmeans_picks(data: FrameSet, m: int, seed: int, progress) -> list[int]:
    """For each of `m` k-means centroids of the mean descriptors, the nearest structure not
    yet chosen."""
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


def random_picks(n: int, m: int, seed: int, limits: Limits | None, progress) -> list[int]:
    """Up to `m` of `n` structures in a seeded random order; with `limits`, only those that
    fit when their turn comes."""
    order = [int(i) for i in np.random.default_rng(seed).permutation(n)]
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
    return picks


def pick_structures(
    method: str,
    data: FrameSet,
    m: int,
    h: float,
    *,
    seed: int,
    reference,
    engine,
    limits: Limits | None,
    progress: Callable[[int], object] | None,
    codes: np.ndarray | None = None,
) -> list[int]:
    """Up to `m` frame numbers of `data` in the order `method` picks them; `codes` (the
    species of each row, an integer) makes msc species-resolved (`msc_picks`)."""
    if method == "random":
        picks = random_picks(len(data), m, seed, limits, progress)
    elif method == "kmeans":
        picks = kmeans_picks(data, m, seed, progress)
    else:
        own = own_entropies(data, float(h), codes)
        if method == "fps":
            picks = fps_picks(data, m, own, progress, limits)
        else:
            picks = msc_picks(data, m, float(h), reference, own, progress, engine, limits, codes)
    return [int(p) for p in picks]
