"""Learning curves of information: entropy of random subsets, asymptote fit, information gap.

SPEC.md section 4: the entropy H(N) of random subsets of N structures (or N
environments) at log-spaced sizes, several seeds each; the fit
``f(N) = a - b exp(-c (ln N)^2)`` with a, b, c >= 0 by non-linear least
squares on the mean H per size, the first and last three sizes discarded;
the asymptote `a` and the information gap ``a - H(N)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import curve_fit

from atominfo.errors import InputError, check_positive
from atominfo.structures.frameset import FrameSet
from atominfo.information import DEFAULT_BANDWIDTH, as_descriptor_matrix, entropy

DROP = 3  # sizes discarded at each end before the fit (SPEC.md section 4)


def asymptote_model(N, a, b, c):
    """``a - b exp(-c (ln N)^2)``, nats."""
    return a - b * np.exp(-c * np.log(np.asarray(N, dtype=float)) ** 2)


@dataclass
class AsymptoteFit:
    """Parameters of ``H(N) = a - b exp(-c (ln N)^2)`` (a, b in nats, c dimensionless)."""

    a: float
    b: float
    c: float
    sizes: np.ndarray  # the sizes the fit used
    rms: float  # root-mean-square residual on those sizes, nats

    def __call__(self, N):
        return asymptote_model(N, self.a, self.b, self.c)

    def saturation_size(self, tolerance: float = 0.05) -> float:
        """Smallest N at which the fitted gap ``b exp(-c (ln N)^2)`` is below `tolerance` nats.

        1 when the curve is flat (b <= tolerance), inf when it never saturates (c = 0).
        """
        if self.b <= tolerance:
            return 1.0
        log_n = np.sqrt(np.log(self.b / tolerance) / self.c) if self.c > 0 else np.inf
        return float(np.exp(log_n)) if log_n < 700 else float("inf")

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c, "sizes": self.sizes.tolist(),
                "rms_residual": self.rms, "saturation_size": self.saturation_size()}


def fit_asymptote(sizes, entropies, drop: int = DROP) -> AsymptoteFit:
    """Fit ``a - b exp(-c (ln N)^2)`` (a, b, c >= 0) to mean entropies per size.

    Parameters
    ----------
    sizes : array (n,) of subset sizes, increasing.
    entropies : array (n,) of mean entropies, nats.
    drop : sizes discarded at each end (3 in the SPEC).

    Raises InputError if fewer than three sizes remain.
    """
    sizes = np.asarray(sizes, dtype=float)
    H = np.asarray(entropies, dtype=float)
    if drop:
        sizes, H = sizes[drop:-drop], H[drop:-drop]
    if len(sizes) < 3:
        raise InputError(f"the asymptote fit needs at least {2 * drop + 3} sizes, "
                         f"got {len(sizes) + 2 * drop}")
    log2 = np.log(sizes) ** 2
    best = None
    # Several starting decay rates: the least-squares problem is not convex in c.
    for target in np.quantile(log2[log2 > 0] if np.any(log2 > 0) else [1.0], [0.1, 0.5, 0.9]):
        c0 = np.log(2.0) / max(target, 1e-6)
        a0 = H.max() + 0.1
        b0 = max(a0 - H.min(), 1e-3) / max(np.exp(-c0 * log2.min()), 1e-12)
        try:
            params, _ = curve_fit(asymptote_model, sizes, H, p0=[a0, b0, c0],
                                  bounds=([0, 0, 0], [np.inf, np.inf, np.inf]), maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        rms = float(np.sqrt(np.mean((asymptote_model(sizes, *params) - H) ** 2)))
        if best is None or rms < best[1]:
            best = (params, rms)
    # A flat curve (saturated before the fitted sizes) is fitted equally well by
    # b = 0 and by c -> 0 with any a > mean H; only b = 0 makes a the plateau.
    flat = (np.array([H.mean(), 0.0, 0.0]), float(np.sqrt(np.mean((H - H.mean()) ** 2))))
    if best is None or flat[1] <= best[1] * (1 + 1e-6) + 1e-12:
        best = flat
    (a, b, c), rms = best
    return AsymptoteFit(float(a), float(b), float(c), sizes.astype(np.int64), rms)


def subset_sizes(total: int, n_sizes: int = 12, minimum: int = 1) -> np.ndarray:
    """About `n_sizes` distinct integers log-spaced from `minimum` to `total` (both included)."""
    check_positive("number of sizes", n_sizes, minimum=1, integer=True)
    if total < 1:
        raise InputError("the dataset is empty")
    minimum = max(1, min(minimum, total))
    sizes = np.unique(np.round(np.geomspace(minimum, total, int(n_sizes))).astype(np.int64))
    # Rounding merges small sizes; fill in with the smallest unused integers.
    extra = [n for n in range(minimum, total + 1) if n not in set(sizes)]
    while len(sizes) < min(n_sizes, total - minimum + 1):
        sizes = np.unique(np.append(sizes, extra.pop(0)))
    return sizes


@dataclass
class LearningCurve:
    """Entropy of random subsets at increasing sizes.

    Attributes
    ----------
    sizes : array (n_sizes,) of subset sizes, in `unit`.
    entropies : array (n_sizes, n_seeds) of H, nats.
    environments : array (n_sizes, n_seeds), environments in each subset.
    seeds : list of int, one random generator seed per column.
    unit : "structures" or "environments".
    bandwidth : h, 1/Å.
    fit : AsymptoteFit or None (None when there are too few sizes to fit).
    extra : {N: [H per seed]} at requested sizes outside the grid.
    """

    sizes: np.ndarray
    entropies: np.ndarray
    environments: np.ndarray
    seeds: list[int]
    unit: str
    bandwidth: float
    fit: AsymptoteFit | None
    total: int
    extra: dict = field(default_factory=dict)
    fit_error: str | None = None

    @property
    def mean(self) -> np.ndarray:
        """Mean entropy over seeds per size, nats."""
        return self.entropies.mean(axis=1)

    @property
    def asymptote(self) -> float | None:
        return None if self.fit is None else self.fit.a

    def entropy_at(self, N: int) -> float:
        """Mean measured entropy at size N (a grid size or a requested one)."""
        hits = np.flatnonzero(self.sizes == N)
        if hits.size:
            return float(self.mean[hits[0]])
        if N in self.extra:
            return float(np.mean(self.extra[N]))
        raise InputError(f"size {N} was not sampled")

    def gap(self, N: int | None = None) -> float | None:
        """Information gap ``a - H(N)`` in nats (N defaults to the full size)."""
        if self.fit is None:
            return None
        return self.fit.a - self.entropy_at(self.total if N is None else N)

    def to_dict(self) -> dict:
        return {
            "unit": self.unit, "bandwidth": self.bandwidth, "total": self.total,
            "seeds": list(self.seeds), "sizes": self.sizes.tolist(),
            "entropy": self.entropies.tolist(), "entropy_mean": self.mean.tolist(),
            "entropy_std": self.entropies.std(axis=1).tolist(),
            "environments": self.environments.tolist(),
            "fit": None if self.fit is None else self.fit.to_dict(),
            "fit_error": self.fit_error,
            "asymptote": self.asymptote,
            "gap_full": self.gap(),
            "gap_at": {str(n): self.gap(n) for n in self.extra},
            "entropy_at": {str(n): float(np.mean(v)) for n, v in self.extra.items()},
        }


def _subset_rows(data: FrameSet, unit: str, N: int, rng) -> np.ndarray:
    if unit == "structures":
        frames = np.sort(rng.choice(len(data), size=N, replace=False))
        return data.rows(frames)
    return np.sort(rng.choice(len(data.X), size=N, replace=False))


def learning_curve(data, h: float = DEFAULT_BANDWIDTH, *, by: str = "structures",
                   sizes: Sequence[int] | None = None, n_sizes: int = 12, n_seeds: int = 3,
                   seed: int = 0, at: Sequence[int] = (), fit: bool = True,
                   progress: Callable[[int], None] | None = None, **engine) -> LearningCurve:
    """Entropy of random subsets of increasing size, with the asymptote fit.

    Parameters
    ----------
    data : FrameSet, or array (n, d) of descriptors (then ``by="environments"``).
    h : float, bandwidth in 1/Å.
    by : "structures" (subsets of whole frames) or "environments" (of atoms).
    sizes : subset sizes; default `n_sizes` log-spaced from 1 (structures) or
        10 (environments) to the full size.
    n_seeds : random subsets per size; seeds are ``seed, seed+1, ...``. The full
        size has a single subset (all of it), repeated in every column.
    at : further sizes at which to report H and the information gap.
    fit : fit the asymptote (needs at least 9 sizes).
    progress : called with 1 after each subset's entropy.
    engine : options for the kernel engine.
    """
    if by not in ("structures", "environments"):
        raise InputError(f"sampling unit must be 'structures' or 'environments', got {by!r}")
    if np.ndim(h) != 0:
        raise InputError("a learning curve takes one bandwidth")
    check_positive("number of seeds", n_seeds, minimum=1, integer=True)
    if not isinstance(data, FrameSet):
        if by == "structures":
            raise InputError("sampling by structures needs a FrameSet (structures, not a matrix)")
        X = as_descriptor_matrix(data)
        data = FrameSet(X, np.array([0, len(X)]), ["<memory>"], [0])
    total = len(data) if by == "structures" else len(data.X)
    if sizes is None:
        sizes = subset_sizes(total, n_sizes, 1 if by == "structures" else 10)
    sizes = np.unique(np.asarray(sizes, dtype=np.int64))
    requested = sorted({int(n) for n in at})
    for n in list(sizes) + requested:
        if not 1 <= n <= total:
            raise InputError(f"subset size {n} is outside 1..{total} {by}")
    seeds = [int(seed) + i for i in range(int(n_seeds))]

    def sample(N):
        if N == total:  # one subset: the whole set
            value = float(entropy(data.X, h, **engine))
            if progress is not None:
                progress(len(seeds))
            return [value] * len(seeds), [len(data.X)] * len(seeds)
        values, counts = [], []
        for s in seeds:
            # One generator per (seed, size): the subset of size N does not depend on the grid.
            rows = _subset_rows(data, by, int(N), np.random.default_rng([s, int(N)]))
            values.append(float(entropy(data.X[rows], h, **engine)))
            counts.append(len(rows))
            if progress is not None:
                progress(1)
        return values, counts

    H = np.empty((len(sizes), len(seeds)))
    counts = np.empty((len(sizes), len(seeds)), dtype=np.int64)
    for i, N in enumerate(sizes):
        H[i], counts[i] = sample(int(N))
    extra = {}
    for N in requested:
        hits = np.flatnonzero(sizes == N)
        extra[N] = list(H[hits[0]]) if hits.size else sample(N)[0]
    curve_fit_result, error = None, None
    if fit:
        try:
            curve_fit_result = fit_asymptote(sizes, H.mean(axis=1))
        except InputError as exc:
            error = str(exc)
    return LearningCurve(sizes, H, counts, seeds, by, float(h), curve_fit_result, total,
                         extra, error)
