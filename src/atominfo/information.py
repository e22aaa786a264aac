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


def _per_bandwidth(values, scalar: bool):
    """The shape rule: drop the bandwidth axis for a scalar h (a float for 0-D values)."""
    if not scalar:
        return values
    first = values[0]
    return float(first) if np.ndim(first) == 0 else first


def _engine(engine, progress) -> EngineOptions:
    return as_engine(engine).with_progress(progress)


def _finite_log_sums(log_sums: np.ndarray, hs: np.ndarray, what: str = "query") -> np.ndarray:
    """InputError where a log-sum is -inf: the true dH exceeds float64's range."""
    bad = np.isneginf(log_sums)
    if bad.any():
        t, i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise InputError(
            f"{what} row {i} is so far from every reference environment that "
            f"dH exceeds the float64 range (> 1.8e308 nats) at h = {hs[t]:g}"
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
    # each point's own term is exactly 1 (fold.py): log_sums >= 0, never -inf
    H = np.log(len(X)) - log_sums.mean(axis=1)
    D = log_sum_exp(-log_sums, axis=1)
    return _per_bandwidth(H, scalar), _per_bandwidth(D, scalar)


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
        only (faiss IVF index built with `seed`); never below the exact dH.
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
    return _per_bandwidth(-_finite_log_sums(log_sums, hs), scalar)


def check_neighbors(n_neighbors) -> int:
    """`n_neighbors` validated (`atominfo.params`)."""
    return params.check("n_neighbors", n_neighbors)


# Below this many query x reference pairs, exact dH beats building a cluster index.
CLASSIFY_MIN_PAIRS = 4_000_000


def _inside(Y, X, hs, method, seed, engine) -> np.ndarray:
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
    return _per_bandwidth(_inside(Y, X, hs, method, seed, _engine(engine, progress)), scalar)


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
    return _per_bandwidth(inside.mean(axis=1), scalar)


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
    return _per_bandwidth(1.0 - inside.mean(axis=1), scalar)


@dataclass(frozen=True)
class SampledEntropy(Result):
    """Entropy estimated from sampled queries, nats; arrays (n_h,) for several bandwidths.

    Attributes
    ----------
    entropy : estimate of H, nats.
    low, high : 95% confidence interval, nats.
    half_width : (high - low) / 2, nats.
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


def sampled_entropy(
    X,
    h=DEFAULT_BANDWIDTH,
    n_samples: int = 10_000,
    seed: int = 0,
    *,
    engine: EngineOptions | None = None,
    progress=None,
) -> SampledEntropy:
    """Entropy H of a large set from `n_samples` random queries against all n points.

    ``H = log n - mean_i log sum_j K_h(X_i, X_j)``: the mean over a uniform
    sample of queries (without replacement, `seed`) is an unbiased estimate of
    the mean over all i; each sampled term is an exact kernel sum over all n
    points. The 95% interval uses Student's t with the finite-population
    correction ``sqrt(1 - M/n)``; with M >= n the value is exact (zero width).
    Cost: M x n kernel terms instead of n x n.

    Parameters
    ----------
    X : array (n, d), descriptors, 1/Å.
    h : float or sequence of floats, bandwidth(s), 1/Å.
    n_samples : int >= 2, queries drawn.
    seed : int, seed of the draw.
    engine, progress : as `entropy` (progress counts sampled queries).

    Returns
    -------
    SampledEntropy (floats for a scalar h, arrays (n_h,) otherwise).
    """
    from scipy.stats import t as student_t

    X = as_descriptor_matrix(X)
    hs, scalar = bandwidths(h)
    n_samples = params.check("n_samples", n_samples)
    seed = params.check("seed", seed)
    n = len(X)
    m = min(n_samples, n)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    log_sums = log_kernel_sums(X[rows], X, hs, _engine(engine, progress))
    estimate = np.log(n) - log_sums.mean(axis=1)
    if m > 1:
        std_error = log_sums.std(axis=1, ddof=1) / np.sqrt(m) * np.sqrt(1.0 - m / n)
        half = student_t.ppf(0.975, m - 1) * std_error
    else:  # one environment: its entropy is exactly 0, no interval
        half = np.zeros_like(estimate)
    return SampledEntropy(
        _per_bandwidth(estimate, scalar),
        _per_bandwidth(estimate - half, scalar),
        _per_bandwidth(estimate + half, scalar),
        _per_bandwidth(half, scalar),
        m,
        n,
        seed,
    )
