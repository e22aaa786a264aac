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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        dots = X[r0:r0 + BLOCK_ROWS] @ Y.T
        fold = fold_into_log_sums if dots.size > SERIAL_ENTRIES else fold_into_log_sums_serial
        fold(dots, x_sq[r0:r0 + BLOCK_ROWS], y_sq, c, log_sums[r0:r0 + BLOCK_ROWS])


def own_entropies(data: FrameSet, h: float) -> np.ndarray:
    """Entropy of each structure's own environments, shape (n_frames,), nats.

    Same value as `atominfo.entropy` per structure, with the exact fold above:
    thousands of small structures cost little on one thread each.
    """
    out = np.empty(len(data))
    X = data.X - centre(data.X)  # small norms: small rounding (see engine.fold)
    with threadpool_limits(1, user_api="blas"):
        for f in range(len(data)):
            Xf = np.ascontiguousarray(X[data.offsets[f]:data.offsets[f + 1]])
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
        raise InputError(f"size must be a fraction such as 0.5 or a count such as 200, "
                         f"got {value!r}") from None
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


def _msc(data: FrameSet, m: int, h: float, reference, own, progress, engine):
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
        return _lazy_greedy(X, x_sq, offsets, own, log_sums, m, h, reference is None, progress)


def _lazy_greedy(X, x_sq, offsets, own, log_sums, m, h, from_empty, progress):
    import heapq

    n = len(offsets) - 1
    picked_blocks: list[np.ndarray] = []  # environments of each pick, in pick order
    seen = np.zeros(n, dtype=np.int64)  # picks already folded into each structure's sums
    picks: list[int] = []

    def take(s):
        picks.append(s)
        picked_blocks.append(X[offsets[s]:offsets[s + 1]])
        if progress is not None:
            progress(1)

    def negative_score(s):  # heap key: the heap pops the smallest, ties by lowest index
        return log_sums[offsets[s]:offsets[s + 1]].min() - own[s]

    if from_empty:
        # Nothing selected: every dH is +inf; the method starts from the highest own entropy.
        # A key of -inf stands for a score not evaluated yet (+inf).
        first = int(np.argmax(own))
        heap = [(-np.inf, s) for s in range(n) if s != first]
        take(first)
    else:
        heap = [(negative_score(s), s) for s in range(n)]
    heapq.heapify(heap)
    while len(picks) < m:
        _, s = heapq.heappop(heap)
        if seen[s] == len(picked_blocks):  # up to date: the exact maximiser
            take(s)
            continue
        rows = slice(offsets[s], offsets[s + 1])
        missing = picked_blocks[seen[s]:]
        new = missing[0] if len(missing) == 1 else np.concatenate(missing)
        update_log_sums(log_sums[rows], X[rows], x_sq[rows], new, h)
        seen[s] = len(picked_blocks)
        heapq.heappush(heap, (negative_score(s), s))
    return picks


def _fps(data: FrameSet, m: int, own, progress):
    X = np.ascontiguousarray(data.X)
    x_sq = np.einsum("ij,ij->i", X, X)
    starts, sizes = data.offsets[:-1], data.sizes
    nearest = np.full(len(data), np.inf)
    chosen = np.zeros(len(data), dtype=bool)
    pick = int(np.argmax(own))
    picks = []
    for step in range(m):
        chosen[pick] = True
        picks.append(pick)
        if progress is not None:
            progress(1)
        if step + 1 == m:
            break
        Y = X[data.offsets[pick]:data.offsets[pick + 1]]
        y_sq = np.einsum("ij,ij->i", Y, Y)
        row_mean = np.empty(len(X))
        for r0 in range(0, len(X), BLOCK_ROWS):
            d2 = X[r0:r0 + BLOCK_ROWS] @ Y.T
            d2 *= -2.0
            d2 += x_sq[r0:r0 + BLOCK_ROWS, None]
            d2 += y_sq[None, :]
            np.maximum(d2, 0.0, out=d2)
            row_mean[r0:r0 + BLOCK_ROWS] = np.sqrt(d2).mean(axis=1)
        distance = np.add.reduceat(row_mean, starts) / sizes
        np.minimum(nearest, distance, out=nearest)
        candidates = np.where(chosen, -np.inf, nearest)
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

    _fields_shown = ("method", "n_structures", "total_structures", "n_environments",
                     "entropy", "diversity", "overlap", "bandwidth", "seconds")

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers, e.g. without a summary, as None)."""
        return jsonable({"method": self.method, "seed": self.seed, "bandwidth": self.bandwidth,
                "structures": self.n_structures, "environments": self.n_environments,
                "total_structures": self.total_structures,
                "total_environments": self.total_environments,
                "entropy": self.entropy, "diversity": self.diversity, "overlap": self.overlap,
                "reference_environments": self.reference_environments,
                "selection_seconds": self.seconds,
                "indices": sorted(self.indices), "pick_order": list(self.indices)})


def select(data: FrameSet, size, method: str = "msc", h: float = DEFAULT_BANDWIDTH, *,
           seed: int = 0, reference=None, summary: bool = True,
           progress: Callable[[int], None] | None = None,
           engine: EngineOptions | None = None) -> Selection:
    """Choose structures of `data` by `method` and summarise what the selection keeps.

    Parameters
    ----------
    data : FrameSet (e.g. from `atominfo.frameset.load_frames`).
    size : fraction of the structures (0.5) or their number (200); see `selection_size`.
    method : "msc", "fps", "kmeans" or "random".
    h : bandwidth, 1/Å (one value).
    seed : random seed (random and kmeans; recorded for every method).
    reference : array (n_ref, d), optional. Environments already in the training set:
        msc then picks what best complements them (conditional selection).
    summary : compute H, D and the overlap of the full set with the selection.
    progress : called with 1 after each pick.
    engine : EngineOptions or None, the kernel engine of the summary and reference sums.
    """
    import time

    method = params.check("compression_method", method, label="method")
    if np.ndim(h) != 0:
        raise InputError("compression takes one bandwidth")
    h = params.check("bandwidth", h, label="bandwidth h")
    seed = params.check("seed", seed)
    engine = as_engine(engine)
    m = selection_size(size, len(data))
    if reference is not None:
        if method != "msc":
            raise InputError("a reference set (conditional selection) needs method 'msc'")
        reference = as_descriptor_matrix(reference, "reference")
        check_widths(data.X, reference)
    t0 = time.perf_counter()
    if method == "random":
        picks = [int(i) for i in np.random.default_rng(seed).choice(len(data), m, replace=False)]
        if progress is not None:
            progress(m)
    elif method == "kmeans":
        picks = _kmeans(data, m, seed, progress)
    else:
        own = own_entropies(data, float(h))
        if method == "fps":
            picks = _fps(data, m, own, progress)
        else:
            picks = _msc(data, m, float(h), reference, own, progress, engine)
    seconds = time.perf_counter() - t0
    kept = data.environments(picks)
    H = D = ov = float("nan")
    if summary:
        H, D = (float(v) for v in entropy_and_diversity(kept, h, engine=engine))
        known = kept if reference is None else np.concatenate([kept, reference])
        ov = float(overlap(data.X, known, h, engine=engine))
    return Selection(picks, method, seed, float(h), m, len(kept), len(data), len(data.X),
                     H, D, ov, 0 if reference is None else len(reference), seconds)


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
