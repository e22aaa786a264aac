"""Information quantities: entropy, diversity, differential entropy dH, overlap, novelty.

All are computed from exact kernel sums in log space
(`atominfo.engine.log_kernel_sums`), in nats; `docs/method.md` states the
definitions.

Shape rule (every function here follows it)
-------------------------------------------
* a scalar bandwidth h gives a float (entropy, diversity, overlap,
  novelty) or an array of shape (n,) (dH and inside-domain labels, one per
  query);
* a sequence of bandwidths gives the same with a leading axis of length
  n_h: shape (n_h,) or (n_h, n).

Inputs: descriptor arrays of shape (n, d) with n >= 1 and d >= 1, real
numbers (int and float32 are converted to float64; bool, complex, object
and 1-D arrays are refused: pass ``X[None, :]`` for one row), finite.
Inputs are never modified. Bad input raises `atominfo.InputError`.
Kernel engine: ``engine=EngineOptions(...)`` (backend, threads, memory,
device); ``progress`` is called with the number of queries finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atominfo import params
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.engine import log_kernel_sums
from atominfo.engine.fold import log_sum_exp
from atominfo.engine.options import EngineOptions, as_engine
from atominfo.errors import InputError
from atominfo.results import Result


def as_descriptor_matrix(X, name: str = "X", *, copy: bool = False) -> np.ndarray:
    """`X` validated as a float64 descriptor matrix (n, d): n >= 1, d >= 1, real, finite.

    Integer and float32 input are converted; bool, complex, object, text and
    1-D arrays are an InputError. With `copy` the result never shares memory
    with `X`.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise InputError(
            f"{name} is not a descriptor array ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if arr.dtype.kind not in "iuf":
        kind = {"b": "boolean", "c": "complex", "O": "object"}.get(arr.dtype.kind, str(arr.dtype))
        raise InputError(f"{name} must hold real numbers, got a {kind} array")
    if arr.ndim == 1:
        raise InputError(
            f"{name} is 1-D (shape {arr.shape}), which is ambiguous: pass "
            f"{name}[None, :] for one environment or {name}[:, None] for "
            "one-number descriptors"
        )
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D descriptor array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(f"{name} has no environments (shape {arr.shape})")
    if arr.shape[1] == 0:
        raise InputError(f"{name} has descriptors of width 0 (shape {arr.shape})")
    out = np.array(arr, dtype=np.float64, copy=True) if copy else np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise InputError(f"{name} row {row} is NaN or infinite")
    return out


def check_widths(Y: np.ndarray, X: np.ndarray) -> None:
    """InputError unless Y and X have descriptors of the same width."""
    if Y.shape[1] != X.shape[1]:
        raise InputError(
            f"descriptor widths differ: {Y.shape[1]} vs {X.shape[1]} "
            "(were they computed with the same k and multicomponent setting?)"
        )


def bandwidths(h) -> tuple[np.ndarray, bool]:
    """Bandwidths as a 1-D float64 array, and whether the caller passed a single value.

    Each value must be a finite number > 0 (`atominfo.params`, "bandwidth").
    """
    if isinstance(h, np.ndarray) and h.ndim == 0:
        h = h[()]
    if isinstance(h, (str, bytes)) or np.ndim(h) == 0:
        return np.array([params.check("bandwidth", h, label="bandwidth h")]), True
    if np.ndim(h) != 1 or len(h) == 0:
        raise InputError(f"bandwidth h must be a number or a non-empty 1-D sequence, got {h!r}")
    return np.array([params.check("bandwidth", v, label="bandwidth h") for v in h]), False


def per_bandwidth(values, scalar: bool):
    """The shape rule: drop the bandwidth axis for a scalar h (a float for 0-D values)."""
    if not scalar:
        return values
    first = values[0]
    return float(first) if np.ndim(first) == 0 else first


def _engine(engine, progress) -> EngineOptions:
    return as_engine(engine).with_progress(progress)


def finite_log_sums(log_sums: np.ndarray, hs: np.ndarray, what: str = "query") -> np.ndarray:
    """InputError where a log-sum is -inf: the true dH exceeds float64's range."""
    bad = np.isneginf(log_sums)
    if bad.any():
        t, i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise InputError(
            f"{what} row {i} is so far from every reference environment that "
            f"dH exceeds the float64 range (> 1.8e308 nats) at bandwidth h = {hs[t]:g}"
        )
    return log_sums


def entropy(
    X, h=DEFAULT_BANDWIDTH, *, engine: EngineOptions | None = None, progress=None
) -> float | np.ndarray:
    """Information entropy H of a set of environments, nats.

    ``H = -(1/n) sum_i log[(1/n) sum_j K_h(X_i, X_j)]``; ``0 <= H <= log n``.

    Parameters
    ----------
    X : array (n, d) of descriptors, 1/Å.
    h : float or sequence of floats, bandwidth(s), 1/Å.
    engine : EngineOptions or None, the kernel engine (default: cpu).
    progress : callable or None, called with the number of environments done.

    Returns
    -------
    float, or array (n_h,) for a sequence of bandwidths.

    Examples
    --------
    Identical environments hold no information; far-apart ones hold log n:

    >>> import numpy as np
    >>> from atominfo import entropy
    >>> float(entropy(np.zeros((4, 3)), h=0.015))
    0.0
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> bool(np.isclose(entropy(X, h=0.015), np.log(3)))
    True
    >>> entropy(X, h=[0.015, 10.0]).shape     # one value per bandwidth
    (2,)
    """
    return entropy_and_diversity(X, h, engine=engine, progress=progress)[0]


def diversity(
    X, h=DEFAULT_BANDWIDTH, *, engine: EngineOptions | None = None, progress=None
) -> float | np.ndarray:
    """Diversity D = log sum_i 1 / sum_j K_h(X_i, X_j), nats (log of the effective support size).

    ``0 <= D <= log n``. Parameters and shapes as `entropy`.
    """
    return entropy_and_diversity(X, h, engine=engine, progress=progress)[1]


def entropy_and_diversity(
    X, h=DEFAULT_BANDWIDTH, *, engine: EngineOptions | None = None, progress=None
):
    """(H, D) from one pass over the kernel sums, nats; each as `entropy` returns it."""
    X = as_descriptor_matrix(X)
    hs, scalar = bandwidths(h)
    log_sums = log_kernel_sums(X, X, hs, _engine(engine, progress))
    H = surprisals(log_sums, len(X)).mean(axis=1)
    log_n = np.log(len(X))
    # D = log sum_i 1/S_i lies in [0, log n]; clip the last ulps of rounding
    D = np.clip(log_sum_exp(-log_sums, axis=1), 0.0, log_n)
    return per_bandwidth(H, scalar), per_bandwidth(D, scalar)


def surprisals(log_sums: np.ndarray, n: int) -> np.ndarray:
    """Each environment's term of H, ``-log(S_i / n)`` with ``S_i = sum_j K_h(X_i, X_j)``, nats.

    The one place entropies are formed from kernel sums: H is the mean of these
    terms (`entropy`, `sampled_entropy`). Each lies in [0, log n] (S_i counts the
    environment itself, 1, and at most n): the difference is taken before any
    averaging (identical environments give exactly 0) and the last ulps of
    rounding are clipped, so H is never a tiny negative number.
    """
    log_n = np.log(n)
    return np.clip(log_n - log_sums, 0.0, log_n)


def delta_entropy(
    Y,
    X,
    h=DEFAULT_BANDWIDTH,
    *,
    method: str = "exact",
    n_neighbors: int = 32,
    seed: int = 0,
    engine: EngineOptions | None = None,
    progress=None,
) -> np.ndarray:
    """Differential entropy dH(Y_i | X) = -log sum_j K_h(Y_i, X_j), per row of Y, nats.

    dH > 0 marks an environment outside the reference's domain. Computed in
    log space: finite for far outliers (an InputError only where the value
    exceeds float64's range).

    Parameters
    ----------
    Y : array (m, d), query descriptors, 1/Å.
    X : array (n, d), reference descriptors, 1/Å.
    h : float or sequence of floats, bandwidth(s), 1/Å.
    method : "exact" (default; error bound in `atominfo.engine.fold`) or
        "approximate": the sum over the `n_neighbors` nearest reference points
        only (faiss IVF index built with `seed`; at most all n of them, in
        bounded memory); never below the exact dH.
    engine, progress : as `entropy`.

    Returns
    -------
    array (m,), or (n_h, m) for a sequence of bandwidths.

    Examples
    --------
    A point of the reference is inside its domain (dH <= 0); a far one is not,
    and its dH stays finite:

    >>> import numpy as np
    >>> from atominfo import delta_entropy
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> dH = delta_entropy(np.array([[0.0, 0.0], [1e3, 0.0]]), X, h=0.015)
    >>> bool(dH[0] <= 0), bool(dH[1] > 0), bool(np.isfinite(dH[1]))
    (True, True, True)
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    hs, scalar = bandwidths(h)
    method = params.check("method_exact", method, label="method")
    seed = params.check("seed", seed)
    n_neighbors = params.check("n_neighbors", n_neighbors)
    engine = _engine(engine, progress)
    if method == "approximate":
        from atominfo.engine.index.neighbours import NeighbourIndex

        index = NeighbourIndex(X, seed=seed)
        log_sums = index.log_kernel_sums(Y, hs, n_neighbors, progress=engine.progress)
    else:
        log_sums = log_kernel_sums(Y, X, hs, engine)
    return per_bandwidth(-finite_log_sums(log_sums, hs), scalar)


# Below this many query x reference pairs, exact dH beats building a cluster index.
CLASSIFY_MIN_PAIRS = 4_000_000


def inside_labels(Y, X, hs, method, seed, engine) -> np.ndarray:
    """Labels dH <= 0: bool (n_h, len(Y)); inputs validated."""
    if method == "auto":
        large = len(X) * len(Y) >= CLASSIFY_MIN_PAIRS
        method = "classify" if engine.backend == "cpu" and large else "exact"
    if method == "classify":
        from atominfo.engine.index.clusters import ClusterIndex, classify_clusters

        index = ClusterIndex(X, n_clusters=classify_clusters(len(X)), seed=seed)
        return index.classify(Y, hs, progress=engine.progress, threads=engine.threads)
    # -inf (beyond float64) is a certain "outside": no error needed for a label
    return -log_kernel_sums(Y, X, hs, engine) <= 0


def inside_domain(
    Y,
    X,
    h=DEFAULT_BANDWIDTH,
    *,
    method: str = "auto",
    seed: int = 0,
    engine: EngineOptions | None = None,
    progress=None,
) -> np.ndarray:
    """Whether dH(Y_i | X) <= 0 (inside the reference's domain), per row of Y.

    Parameters
    ----------
    Y, X, h, engine, progress : as `delta_entropy`.
    method : "classify" decides the sign exactly from cluster bounds
        (`atominfo.engine.index.clusters.ClusterIndex.classify`; equal to the
        exact dH label for every point with |dH| > 1e-9 nats), "exact"
        computes dH, "auto" (default) picks "classify" for large CPU problems.
    seed : seed of the k-means behind the cluster index (speed only).

    Returns
    -------
    bool array (m,), or (n_h, m) for a sequence of bandwidths.
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    hs, scalar = bandwidths(h)
    method = params.check("method_inside", method, label="method")
    seed = params.check("seed", seed)
    return per_bandwidth(inside_labels(Y, X, hs, method, seed, _engine(engine, progress)), scalar)


def overlap(
    Y,
    X,
    h=DEFAULT_BANDWIDTH,
    *,
    method: str = "auto",
    seed: int = 0,
    engine: EngineOptions | None = None,
    progress=None,
) -> float | np.ndarray:
    """Fraction of Y inside the domain of X (dH(Y|X) <= 0): float, or (n_h,) for several h.

    Exact labels, see `inside_domain` (same parameters).
    """
    hs, scalar = bandwidths(h)
    inside = inside_domain(Y, X, hs, method=method, seed=seed, engine=engine, progress=progress)
    return per_bandwidth(inside.mean(axis=1), scalar)


def novelty(
    Y,
    X,
    h=DEFAULT_BANDWIDTH,
    *,
    method: str = "auto",
    seed: int = 0,
    engine: EngineOptions | None = None,
    progress=None,
) -> float | np.ndarray:
    """Fraction of Y outside the domain of X (dH(Y|X) > 0): 1 - `overlap`; same shapes."""
    hs, scalar = bandwidths(h)
    inside = inside_domain(Y, X, hs, method=method, seed=seed, engine=engine, progress=progress)
    return per_bandwidth(1.0 - inside.mean(axis=1), scalar)


@dataclass(frozen=True)
class SampledEntropy(Result):
    """Entropy estimated from sampled queries, nats; arrays (n_h,) for several bandwidths.

    Attributes
    ----------
    entropy : unbiased estimate of the H of all n environments, nats.
    low, high : confidence interval for that H, nats, with coverage at least
        95% whatever the data (see `sampled_entropy`); inside [0, log n].
    half_width : (high - low) / 2, nats (the interval need not be centred on
        the estimate).
    n_samples : M queries drawn without replacement.
    n : environments in the set.
    seed : seed of the draw.
    """

    entropy: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    half_width: float | np.ndarray
    n_samples: int
    n: int
    seed: int


# Miscoverage of the sampled-entropy interval (a 95% interval).
SAMPLED_ALPHA = 0.05
# Largest bet: each factor 1 + lam (x - mu) stays >= 1/4 for x, mu in [0, 1].
MAX_BET = 0.75
# Bisection steps for each end of the interval: 2^-56 of [0, log n].
BISECTION_STEPS = 56


def sampled_entropy(
    X,
    h=DEFAULT_BANDWIDTH,
    n_samples: int = 10_000,
    seed: int = 0,
    *,
    engine: EngineOptions | None = None,
    progress=None,
    alpha: float = SAMPLED_ALPHA,
) -> SampledEntropy:
    """Entropy H of a large set from `n_samples` random queries against all n points.

    ``H = mean_i a_i`` with ``a_i = -log(S_i / n)``, ``S_i = sum_j K_h(X_i, X_j)``:
    the mean of a_i over a uniform sample of M queries (without replacement,
    `seed`) is an unbiased estimate of H, the entropy of all n environments;
    each sampled a_i is exact (a kernel sum over all n points).

    The interval is a confidence interval for that full-data H with coverage
    at least 95% for any data set and any M, not only asymptotically. The a_i
    are bounded, ``0 <= a_i <= log n``, but often far from normal (a few
    isolated environments at log n among many alike): there a Student-t
    interval on small samples covers H far less often than 95% (75-78% at
    M = 2, 82% at M = 5 on the crystals of the benchmark). The interval here
    comes from testing each candidate H with a betting martingale for sampling
    without replacement (Waudby-Smith and Ramdas, 2020): the H values not
    rejected at level 2.5% from above and from below (widened, if need be, to
    hold the estimate). Its width follows the data: 1.2 to 1.4 times the t
    interval's for M = 100 to 1000, but for a handful of samples it spans
    most of [0, log n], which is all such a sample can tell about H
    (benchmarks/bench_sampled_entropy_coverage.py). With M >= n the value is
    exact (zero width). Cost: M x n kernel terms instead of n x n.

    Parameters
    ----------
    X : array (n, d), descriptors, 1/Å.
    h : float or sequence of floats, bandwidth(s), 1/Å.
    n_samples : int >= 2, queries drawn.
    seed : int, seed of the draw.
    engine, progress : as `entropy` (progress counts sampled queries).
    alpha : miscoverage of the interval, in (0, 1): coverage at least 1 - alpha
        (0.05 by default; smaller for several intervals that must hold together).

    Returns
    -------
    SampledEntropy (floats for a scalar h, arrays (n_h,) otherwise).
    """
    X = as_descriptor_matrix(X)
    hs, scalar = bandwidths(h)
    n_samples = params.check("n_samples", n_samples)
    seed = params.check("seed", seed)
    alpha = params.check("false_alarm", alpha, label="alpha")
    n = len(X)
    m = min(n_samples, n)
    rng = np.random.default_rng(seed)
    # the draw order matters to the interval (its bets are made one draw at a time)
    drawn = rng.choice(n, size=m, replace=False) if m < n else np.arange(n)
    rows = np.sort(drawn)
    log_sums = log_kernel_sums(X[rows], X, hs, _engine(engine, progress))
    terms = surprisals(log_sums, n)[:, np.searchsorted(rows, drawn)]
    estimate = terms.mean(axis=1)
    if m == n:  # every environment: exact
        low, high = estimate, estimate.copy()
    else:
        log_n = np.log(n)
        bounds = np.array([_betting_interval(a / log_n, n, alpha) for a in terms])
        # widening to hold the estimate can only raise the coverage
        low = np.minimum(bounds[:, 0] * log_n, estimate)
        high = np.maximum(bounds[:, 1] * log_n, estimate)
    return SampledEntropy(
        per_bandwidth(estimate, scalar),
        per_bandwidth(low, scalar),
        per_bandwidth(high, scalar),
        per_bandwidth((high - low) / 2.0, scalar),
        m,
        n,
        seed,
    )


def _betting_interval(x: np.ndarray, n: int, alpha: float) -> tuple[float, float]:
    """Confidence interval, coverage >= 1 - alpha, for the mean of a population of n values
    in [0, 1], from `x`, a uniform sample drawn without replacement, in draw order.

    A candidate mean mu0 fixes the mean of the values not yet drawn before draw t,
    ``mu_t = (n mu0 - x_1 - ... - x_{t-1}) / (n - t + 1)``. Betting a fraction
    lam_t (chosen from draws before t only) that x_t exceeds mu_t turns one unit
    of capital into ``K_t = prod_{s <= t} (1 + lam_s (x_s - mu_s))``; when mu0 is
    the true mean, K is a nonnegative martingale, so by Ville's inequality it
    ever reaches 2 / alpha with probability <= alpha / 2. The lower end is the
    smallest mu0 whose capital never reaches 2 / alpha; betting on x_t < mu_t
    gives the upper end. K is monotone in mu0 (each mu_t grows with it), so
    each end is found by bisection.

    The bet is the predictable plug-in of Waudby-Smith and Ramdas (sized for a
    fixed sample of M draws from a running variance), capped at MAX_BET.
    """
    size = len(x)
    before = np.concatenate([[0.0], np.cumsum(x)[:-1]])  # x_1 + ... + x_{t-1}
    draw = np.arange(1, size + 1)
    mean_before = (0.5 + before) / draw  # running mean, a prior 1/2 worth one draw
    spread = np.concatenate([[0.0], np.cumsum((x - mean_before) ** 2)[:-1]])
    var_before = (0.25 + spread) / draw
    threshold = np.log(2.0 / alpha)
    bet = np.minimum(np.sqrt(2.0 * threshold / (size * var_before)), MAX_BET)
    remaining = n - draw + 1.0
    total = before[-1] + x[-1]
    # Means the sample allows at all: the n - M values not drawn lie in [0, 1].
    lowest, highest = total / n, (total + n - size) / n

    def rejected(mu0: float, side: float) -> bool:
        mu = np.clip((n * mu0 - before) / remaining, 0.0, 1.0)
        log_capital = np.cumsum(np.log1p(side * bet * (x - mu)))
        return bool(log_capital.max() >= threshold)

    def end(side: float) -> float:
        # side +1: rejected means (too small) lie below the lower end; -1: above the upper.
        inside, outside = (highest, lowest) if side > 0 else (lowest, highest)
        if not rejected(outside, side):
            return outside
        for _ in range(BISECTION_STEPS):
            middle = 0.5 * (inside + outside)
            if rejected(middle, side):
                outside = middle
            else:
                inside = middle
        return outside  # the rejected side of the boundary: rounds the interval wider

    low, high = end(+1.0), end(-1.0)
    # Both ends reject the truth only with probability <= alpha: an empty interval
    # (low > high) is one of those events; report its ends in order.
    return min(low, high), max(low, high)
