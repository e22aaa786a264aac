"""The asymptote of a learning curve: ``H(N) = a - b exp(-c (ln N)^2)`` and its uncertainty.

`fit_asymptote` fits a, b, c >= 0 by least squares on the mean H per size
(the first and last `DROP` sizes discarded), gives bootstrap intervals of
`a` and of the saturation size, and says whether the data determine the
asymptote: a curve still rising in ln N, an asymptote above ln of the
number of environments, an unbounded or too wide interval, or an asymptote
below what the largest subset already shows has status ``"not determined"``
and reports no asymptote, gap or saturation size (None), with the reason.
The sampling of the curve itself is `atominfo.workflows.curves`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable

DROP = 3  # sizes discarded at each end before the fit
FIT_SIZES = 2 * DROP + 3  # the fewest sizes a learning curve's fit takes
LEVEL = 0.95  # probability content of the reported intervals
N_BOOT = 200  # bootstrap refits
TOLERANCE = 0.05  # nats: a gap below this counts as saturated (and a rise below it as flat)
# The fitted slope dH/d(ln N) at the largest fitted size must have fallen to at most this
# share of its value at the smallest: a straight line in ln N (ratio 1) has no asymptote,
# and a curve that has barely started to bend extrapolates further than the data reach.
MAX_SLOPE_RATIO = 0.5
# A saturation size further than this factor beyond the largest sampled size is not reported.
EXTRAPOLATION = 100.0
GRID = 400  # values of ln c in the profile least squares
# nats: a curve whose rise over the fitted sizes is at most this (upper bound: straight line
# in ln N plus two standard errors) is flat, saturated before the fitted sizes.
FLAT_RISE = 0.1

STATUSES = ("determined", "flat", "not determined")


def asymptote_model(N, a, b, c):
    """``a - b exp(-c (ln N)^2)``, nats."""
    return a - b * np.exp(-c * np.log(np.asarray(N, dtype=float)) ** 2)


@dataclass(repr=False)
class AsymptoteFit(Result):
    """The fit ``H(N) = a - b exp(-c (ln N)^2)`` and how well the data determine it.

    Attributes
    ----------
    a, b : float, nats; c : float, dimensionless. The least-squares parameters;
        NaN when not determined (a rejected fit's parameters are not kept, so
        that no output can show them).
    sizes : array (n_fit,) of int, the sizes the fit used.
    rms : float, root-mean-square residual of the mean H on those sizes, nats
        (NaN when not determined).
    status : "determined" (the curve bends and the interval is bounded),
        "flat" (no significant rise over the fitted sizes: saturated before
        them; ``b = 0`` and `a` is the mean H) or "not determined".
    reason : str, one line: why the status (empty when determined).
    slope_ratio : float >= 0, the fitted slope dH/d(ln N) at the largest
        fitted size over that at the smallest (1 for a straight line in ln N,
        0 once saturated); NaN for a flat curve or when not determined.
    a_interval : (low, high) in nats, the central `level` bootstrap interval
        of `a`; high is inf when more than ``(1 - level) / 2`` of the refits
        find no asymptote. None without a bootstrap, or when not determined.
    saturation_interval : (low, high), the same for the saturation size.
    level : float, probability content of the intervals.
    n_boot : int, bootstrap refits; ``method`` says what was resampled.
    tolerance : float, nats, the gap that counts as saturated.
    largest_size : float, the largest sampled size (fitted or not).
    """

    a: float
    b: float
    c: float
    sizes: np.ndarray
    rms: float
    status: str = "determined"
    reason: str = ""
    slope_ratio: float = float("nan")
    a_interval: tuple[float, float] | None = None
    saturation_interval: tuple[float, float] | None = None
    level: float = LEVEL
    n_boot: int = 0
    method: str = "none"
    tolerance: float = TOLERANCE
    largest_size: float = float("nan")

    def __call__(self, N):
        """The fitted curve at sizes N (array), nats."""
        return asymptote_model(N, self.a, self.b, self.c)

    def __repr__(self) -> str:
        if not self.determined:
            return f"AsymptoteFit(status={self.status!r}, reason={self.reason!r})"
        return (
            f"AsymptoteFit(status={self.status!r}, a={self.a:.4g}, b={self.b:.4g}, "
            f"c={self.c:.4g}, a_interval={self.a_interval}, reason={self.reason!r})"
        )

    @property
    def determined(self) -> bool:
        """True when the data determine the asymptote (status "determined" or "flat")."""
        return self.status != "not determined"

    @property
    def asymptote(self) -> float | None:
        """`a` in nats when determined, else None."""
        return self.a if self.determined else None

    def saturation_size(self, tolerance: float | None = None) -> float | None:
        """Smallest N at which the fitted gap ``b exp(-c (ln N)^2)`` is below `tolerance` nats.

        None when the asymptote is not determined, or when that N lies more
        than `EXTRAPOLATION` times beyond the largest sampled size. For a flat
        curve, the smallest fitted size (saturated at or before it).
        """
        if not self.determined:
            return None
        if self.status == "flat":
            return float(self.sizes[0])
        n = _saturation(self.b, self.c, self.tolerance if tolerance is None else tolerance)
        if not n <= EXTRAPOLATION * self.largest_size:
            return None
        return n

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers as None)."""
        return jsonable(
            {
                "a": self.a,
                "b": self.b,
                "c": self.c,
                "sizes": self.sizes,
                "rms_residual": self.rms,
                "status": self.status,
                "reason": self.reason,
                "slope_ratio": self.slope_ratio,
                "asymptote": self.asymptote,
                "a_interval": self.a_interval,
                "saturation_size": self.saturation_size(),
                "saturation_interval": self.saturation_interval,
                "tolerance": self.tolerance,
                "level": self.level,
                "n_boot": self.n_boot,
                "bootstrap": self.method,
            }
        )


def _saturation(b, c, tolerance) -> float:
    """exp(sqrt(ln(b / tolerance) / c)), the N where the model gap reaches `tolerance`; inf
    when it never does (c = 0) or beyond float range."""
    if b <= tolerance:
        return 1.0
    if c <= 0:
        return float("inf")
    log_n = math.sqrt(math.log(b / tolerance) / c)
    return math.exp(log_n) if log_n < 700 else float("inf")


def _log_c_grid(x2_fit) -> np.ndarray:
    """Grid of ln c spanning decays from negligible over the fitted sizes (c (ln N_max)^2 =
    1e-6, a straight line in (ln N)^2) to complete before the smallest one
    (c (ln N_min)^2 = 30, a step)."""
    positive = x2_fit[x2_fit > 0]
    if positive.size == 0:
        return np.zeros(1)
    return np.linspace(np.log(1e-6 / positive.max()), np.log(30.0 / positive.min()), GRID)


def _profile(x2, H, log_c):
    """Least squares in (a, b >= 0) at fixed c: the model is linear in a and b.

    x2 : (n,) squared ln N; H : (m, n) curves; log_c : (k,) values of ln c.
    Returns a, b, rss, each (m, k).
    """
    g = np.exp(-np.exp(log_c)[:, None] * x2[None, :])  # (k, n)
    gc = g - g.mean(axis=1, keepdims=True)
    sgg = np.sum(gc**2, axis=1)  # (k,)
    Hc = H - H.mean(axis=1, keepdims=True)
    sgh = Hc @ gc.T  # (m, k)
    ok = sgg > 1e-300  # g constant over the sizes: b is not identifiable, use b = 0
    safe = np.where(ok, sgg, 1.0)
    # b >= 0: H = a - b g with g decreasing in N needs H increasing (negative covariance).
    b = np.where(ok, np.maximum(-sgh / safe, 0.0), 0.0)
    explained = np.where(b > 0, sgh**2 / safe, 0.0)
    rss = np.maximum(np.sum(Hc**2, axis=1, keepdims=True) - explained, 0.0)
    a = H.mean(axis=1, keepdims=True) + b * g.mean(axis=1)[None, :]
    return a, b, rss


def _least_squares(x2, H):
    """Least-squares (a, b, c) >= 0 of each row of H (m, n): the profile over a grid of
    ln c (the problem is not convex in c, the grid finds the global minimum), each
    minimum refined when `refine`. Returns arrays a, b, c, rss of shape (m,)."""
    log_c = _log_c_grid(x2)
    a, b, rss = _profile(x2, H, log_c)
    rows = np.arange(len(H))
    best = np.argmin(rss, axis=1)
    a, b, rss, lc = a[rows, best], b[rows, best], rss[rows, best], log_c[best]
    # The flat line b = 0 (a = mean H) wins ties: only it makes a the plateau.
    flat_rss = np.sum((H - H.mean(axis=1, keepdims=True)) ** 2, axis=1)
    flat = (b == 0) | (flat_rss <= rss * (1 + 1e-6) + 1e-12)
    a = np.where(flat, H.mean(axis=1), a)
    b = np.where(flat, 0.0, b)
    c = np.where(flat, 0.0, np.exp(lc))
    rss = np.where(flat, flat_rss, rss)
    return a, b, c, rss, lc, flat


def _refine(x2, H, log_c):
    """Polish the grid minimum of one curve H (n,) in ln c between the grid neighbours."""
    grid = _log_c_grid(x2)
    step = grid[1] - grid[0] if len(grid) > 1 else 1.0
    result = minimize_scalar(
        lambda t: float(_profile(x2, H[None], np.array([t]))[2][0, 0]),
        bounds=(log_c - step, log_c + step),
        method="bounded",
        options={"xatol": 1e-10},
    )
    a, b, rss = (v[0, 0] for v in _profile(x2, H[None], np.array([result.x])))
    return float(a), float(b), float(np.exp(result.x)), float(rss)


def _flat(x, E, tolerance) -> np.ndarray:
    """Which curves E (m, n, n_seeds) show no rise over the sizes: the mean H spans at most
    `tolerance`, or the upper bound (slope + 2 standard errors) of the straight-line rise
    in ln N over the fitted sizes is at most ``max(tolerance, FLAT_RISE)``.

    The standard error comes from the spread over seeds (pooled over sizes) when there
    are several seeds, else from the residuals of the straight line.
    """
    H = E.mean(axis=2)
    xc = x - x.mean()
    sxx = float(np.sum(xc**2))
    if sxx == 0:
        return np.ones(len(H), dtype=bool)
    slope = (H - H.mean(axis=1, keepdims=True)) @ xc / sxx
    n, seeds = H.shape[1], E.shape[2]
    if seeds > 1:
        sigma = np.sqrt(np.mean(E.var(axis=2, ddof=1), axis=1) / seeds)
    elif n > 2:
        line = H.mean(axis=1, keepdims=True) + slope[:, None] * xc[None, :]
        sigma = np.sqrt(np.sum((H - line) ** 2, axis=1) / (n - 2))
    else:
        sigma = np.zeros(len(H))
    rise_bound = (slope + 2.0 * sigma / math.sqrt(sxx)) * float(x[-1] - x[0])
    return (np.ptp(H, axis=1) <= tolerance) | (rise_bound <= max(tolerance, FLAT_RISE))


def _slope_ratio(c, x2):
    """dH/d(ln N) of the model at the largest fitted size over that at the smallest:
    ``(x_max / x_min) exp(-c (x_max^2 - x_min^2))`` with x = ln N (b cancels)."""
    positive = x2[x2 > 0]
    if positive.size < 2:
        return np.full(np.shape(c), np.inf)
    lo, hi = float(positive[0]), float(x2[-1])
    return math.sqrt(hi / lo) * np.exp(-np.asarray(c) * (hi - lo))


def _estimate(sizes, E, tolerance, max_entropy):
    """Fits of the curves E (m, n, n_seeds): a, b, c, rss, flat (m,) and problem, a list
    of m strings (why the asymptote is not determined, or "")."""
    x = np.log(sizes)
    x2 = x**2
    H = E.mean(axis=2)
    flat = _flat(x, E, tolerance)
    a, b, c, rss, log_c, no_bend = _least_squares(x2, H)
    a = np.where(flat, H.mean(axis=1), a)
    b, c = np.where(flat, 0.0, b), np.where(flat, 0.0, c)
    rss = np.where(flat, np.sum((H - H.mean(axis=1, keepdims=True)) ** 2, axis=1), rss)
    ratio = np.where(flat, np.nan, _slope_ratio(c, x2))
    problem = np.full(len(H), "", dtype=object)
    ceiling = np.inf if max_entropy is None else max_entropy
    problem[~flat & no_bend] = (
        "the mean entropy neither levels off within the noise nor "
        "bends as the model can fit (noisy, or falling)"
    )
    low = ~flat & ~no_bend & ~(ratio <= MAX_SLOPE_RATIO)
    problem[low] = "not bending"
    problem[~flat & ~no_bend & (a > ceiling)] = "above ln(environments)"
    return a, b, c, rss, flat, ratio, problem, log_c


def fit_asymptote(
    sizes,
    entropies,
    drop: int = DROP,
    *,
    max_entropy: float | None = None,
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> AsymptoteFit:
    """Fit ``a - b exp(-c (ln N)^2)`` (a, b, c >= 0), with bootstrap intervals and a status.

    Least squares on the mean entropy per size: at fixed c the model is
    linear in (a, b), so the residual is minimised over a grid of ln c and
    polished (this finds the global minimum, which a local optimiser from one
    start may miss).

    Parameters
    ----------
    sizes : array (n,) of subset sizes, increasing, > 0.
    entropies : array (n,) of mean entropies, or (n, n_seeds) of entropies per
        seed, nats. With several seeds the bootstrap resamples the seeds of
        each size independently (the subsets of different sizes are drawn
        independently); with one, it resamples the fit residuals.
    drop : sizes discarded at each end (3 by default).
    max_entropy : ln of the number of environments of the whole dataset, nats,
        if known: no subset's entropy exceeds it, so an asymptote above it is
        not measured by the data.
    level : probability content of the intervals (0.95: 2.5% to 97.5%).
    n_boot : bootstrap refits (0: no intervals; the status then rests on the
        point fit only).
    seed : seed of the bootstrap's random generator (results are reproducible).
    tolerance : nats; the gap below which the curve counts as saturated, and
        the rise below which it counts as flat.

    Returns
    -------
    AsymptoteFit. Its status is "flat" when the mean H rises by at most
    `FLAT_RISE` over the fitted sizes (upper bound: straight line in ln N plus
    two standard errors; then ``b = 0`` and `a` is the mean), and "not
    determined" when the fitted slope dH/d(ln N) at the largest fitted size
    is more than `MAX_SLOPE_RATIO` of that at the smallest (the curve has not
    bent yet; a straight line in ln N has ratio 1), when
    `a` exceeds `max_entropy`, when the upper end of the interval of `a` is
    unbounded (more than ``(1 - level) / 2`` of the refits are themselves not
    determined), or when the interval is wider than the rise of the mean H
    over the fitted sizes.

    Raises
    ------
    InputError if fewer than three sizes remain, or the inputs are not finite.
    """
    level = params.check("coverage", level, label="interval level")
    n_boot = params.check("n_boot", n_boot)
    seed = params.check("seed", seed)
    drop = params.check("drop", drop)
    tolerance = params.check("saturation_tolerance", tolerance, label="saturation tolerance")
    sizes, E = _curve_arrays(sizes, entropies, drop)
    largest = float(sizes.max())
    h_largest = float(E[-1].mean())  # H measured at the largest N
    if drop:
        sizes, E = sizes[drop:-drop], E[drop:-drop]
    fit = _point_fit(sizes, E, max_entropy, tolerance, level, largest)
    if n_boot:
        _bootstrap(fit, sizes, E, n_boot, seed, max_entropy)
    _refuse_below_measured(fit, h_largest)
    if not fit.determined:
        _forget(fit)
    return fit


def _forget(fit: AsymptoteFit) -> None:
    """Blank a rejected fit's parameters and intervals: only the reason stays."""
    fit.a = fit.b = fit.c = fit.rms = fit.slope_ratio = float("nan")
    fit.a_interval = fit.saturation_interval = None


def _curve_arrays(sizes, entropies, drop: int) -> tuple[np.ndarray, np.ndarray]:
    """`sizes` (n,) and `entropies` as (n, n_seeds), float, checked for the fit."""
    sizes_array = np.asarray(sizes, dtype=float)
    E = np.asarray(entropies, dtype=float)
    if E.ndim == 1:
        E = E[:, None]
    if sizes_array.ndim != 1 or E.ndim != 2 or len(E) != len(sizes_array) or E.shape[1] == 0:
        raise InputError(
            f"entropies must be (n_sizes,) or (n_sizes, n_seeds) with n_sizes = "
            f"{len(sizes_array)}, got shape {np.shape(entropies)}"
        )
    if not (np.all(np.isfinite(sizes_array)) and np.all(np.isfinite(E))):
        raise InputError("sizes and entropies must be finite")
    if np.any(sizes_array <= 0) or np.any(np.diff(sizes_array) <= 0):
        raise InputError("sizes must be positive and increasing")
    if len(sizes_array) < 2 * drop + 3:
        raise InputError(
            f"the asymptote fit needs at least {2 * drop + 3} sizes ({drop} dropped at "
            f"each end, 3 fitted), got {len(sizes_array)}"
        )
    return sizes_array, E


def _point_fit(sizes, E, max_entropy, tolerance, level, largest) -> AsymptoteFit:
    """The least-squares fit of the fitted sizes, with the status its shape gives."""
    x2 = np.log(sizes) ** 2
    a, b, c, rss, flat, ratio, problem, log_c = _estimate(sizes, E[None], tolerance, max_entropy)
    a, b, c, flat, problem = float(a[0]), float(b[0]), float(c[0]), bool(flat[0]), problem[0]
    if not flat and b > 0:
        a, b, c, _ = _refine(x2, E.mean(axis=1), float(log_c[0]))
    H = E.mean(axis=1)
    rms = float(np.sqrt(np.mean((asymptote_model(sizes, a, b, c) - H) ** 2)))
    fit = AsymptoteFit(
        a,
        b,
        c,
        sizes.astype(np.int64),
        rms,
        level=level,
        slope_ratio=float("nan") if flat else float(_slope_ratio(c, x2)),
        tolerance=tolerance,
        largest_size=largest,
    )
    fit.status = "flat" if flat else "determined"
    if problem == "not bending":
        fit.status = "not determined"
        fit.reason = (
            f"the curve is not bending yet: the fitted slope in ln N at N = "
            f"{fit.sizes[-1]} is more than {MAX_SLOPE_RATIO:.0%} of that at N = "
            f"{fit.sizes[0]}"
        )
    elif problem == "above ln(environments)":
        fit.status = "not determined"
        fit.reason = (
            f"the fitted asymptote exceeds ln(environments) = {max_entropy:.4g} nats, "
            "the most any subset of the data can show"
        )
    elif problem:
        fit.status, fit.reason = "not determined", problem
    return fit


def _refuse_below_measured(fit: AsymptoteFit, h_largest: float) -> None:
    """H(N) only grows with N (on average): an asymptote below what the largest subset
    already shows means the model does not describe these data."""
    top = fit.a_interval[1] if fit.a_interval else fit.a
    if fit.status == "determined" and top < h_largest - fit.tolerance:
        fit.status = "not determined"
        fit.reason = (
            f"the fitted asymptote lies below the entropy measured at N = "
            f"{fit.largest_size:g} ({h_largest:.4g} nats): the model does not describe "
            "this curve"
        )


def _bootstrap(fit: AsymptoteFit, sizes, E, n_boot, seed, max_entropy) -> None:
    """Intervals of a and of the saturation size from refits of resampled data; may turn the
    status to "not determined"."""
    sample = _resampled(fit, sizes, E, n_boot, seed)
    if sample is None:
        return
    tail = (1.0 - fit.level) / 2.0
    fit.n_boot = n_boot
    if fit.status == "flat":
        # Flatness was decided with its own two-standard-error bound on the rise; the
        # interval is that of the plateau, the mean over the fitted sizes.
        means = sample.mean(axis=(1, 2))
        fit.a_interval = (
            float(np.quantile(means, tail, method="lower")),
            float(np.quantile(means, 1 - tail, method="higher")),
        )
        return
    failed, interval = _refit_intervals(fit, sizes, sample, max_entropy, tail)
    if fit.status != "not determined":
        _judge_interval(fit, interval, E.mean(axis=1), failed)


def _resampled(fit: AsymptoteFit, sizes, E, n_boot, seed) -> np.ndarray | None:
    """`n_boot` resampled curves, shape (n_boot, n_sizes, n_seeds), and ``fit.method`` set
    to what was resampled; None when nothing can be (one seed, three sizes)."""
    rng = np.random.default_rng(seed)
    n_sizes, n_seeds = E.shape
    H = E.mean(axis=1)
    fitted = np.full(n_sizes, fit.a) if fit.status == "flat" else fit(sizes)
    residuals = H - fitted
    if n_seeds > 1:
        # Deviations from the mean of each size, resampled with replacement and scaled by
        # sqrt(n / (n - 1)) so that their variance is unbiased for few seeds.
        fit.method = "seeds resampled per size"
        picks = rng.integers(0, n_seeds, size=(n_boot, n_sizes, n_seeds))
        deviations = np.take_along_axis(np.broadcast_to(E - H[:, None], picks.shape), picks, axis=2)
        return H[None, :, None] + math.sqrt(n_seeds / (n_seeds - 1)) * deviations
    if n_sizes > 3 and np.any(residuals != 0):
        fit.method = "fit residuals resampled"
        scale = math.sqrt(n_sizes / (n_sizes - 3))  # three parameters fitted
        return (fitted + scale * rng.choice(residuals, size=(n_boot, n_sizes)))[:, :, None]
    fit.method = "none (one seed, three sizes)"
    return None


def _refit_intervals(
    fit: AsymptoteFit, sizes, sample, max_entropy, tail
) -> tuple[np.ndarray, tuple[float, float]]:
    """Refit every resampled curve; set the intervals of `a` and of the saturation size.
    Returns which refits found no asymptote (bool, (n_boot,)) and the interval of `a`."""
    a, b, c, _, flat, _, problem, _ = _estimate(sizes, sample, fit.tolerance, max_entropy)
    failed = problem != ""
    a_values = np.where(failed, np.inf, a)
    saturation = np.array(
        [
            np.inf if bad else sizes[0] if fl else _saturation(bb, cc, fit.tolerance)
            for bad, fl, bb, cc in zip(failed, flat, b, c)
        ]
    )
    # Order statistics, not interpolation: refits without an asymptote count as +inf.
    a_interval = (
        float(np.quantile(a_values, tail, method="lower")),
        float(np.quantile(a_values, 1 - tail, method="higher")),
    )
    fit.a_interval = a_interval
    fit.saturation_interval = (
        float(np.quantile(saturation, tail, method="lower")),
        float(np.quantile(saturation, 1 - tail, method="higher")),
    )
    return failed, a_interval


def _judge_interval(fit: AsymptoteFit, interval: tuple[float, float], H, failed) -> None:
    """An unbounded `interval` of `a`, or one wider than the measured rise, leaves the
    asymptote not determined."""
    lo, hi = interval
    rise = float(H.max() - H.min())
    if not math.isfinite(hi):
        fit.status = "not determined"
        fit.reason = (
            f"the {fit.level:.0%} interval of the asymptote is unbounded: "
            f"{np.mean(failed):.0%} of {fit.n_boot} bootstrap refits find no asymptote"
        )
    elif hi - lo > max(rise, fit.tolerance):
        fit.status = "not determined"
        fit.reason = (
            f"the {fit.level:.0%} interval of the asymptote is wider than the rise "
            f"measured over the fitted sizes ({rise:.3g} nats)"
        )
