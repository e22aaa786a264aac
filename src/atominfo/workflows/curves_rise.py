"""Is a learning curve saturated? The rise of H per doubling of N at the full size.

`rise_test` classifies a sampled learning curve by one stated test: the
least-squares slope of H against log2 N over the sizes of the last
`DOUBLINGS` doublings (N_max / 8 to N_max), and its Student-t interval
from the spread over seeds, pooled over those sizes with the variance of H
over subsets of N taken to fall like ``1/N - 1/N_max`` (measured on EMT Cu:
the scaled spread stays within about 30% over the last doublings); with one
seed, from the residuals of the slope. The curve is

* "saturated" when the whole interval lies below `TOLERANCE` nats per doubling,
* "still rising" when it lies above it,
* "not determined" otherwise (the interval holds the tolerance, or there are
  too few sizes or seeds to form it).

Every subset is drawn independently of the others (and the full size is the
whole dataset, exact), so the interval says how much the choice of subsets
moves the slope of this dataset's curve (not how a new draw of the whole
dataset would). Only a "still rising" curve is extrapolated
(`atominfo.workflows.curves.learning_curve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.workflows.curves_asymptote import AsymptoteFit, fit_asymptote

TOLERANCE = 0.05  # nats per doubling of N: a smaller rise counts as saturated
LEVEL = 0.95  # probability content of the interval of the rise
DOUBLINGS = 3  # the test uses the sizes from N_max / 2**DOUBLINGS to N_max
STATUSES = ("saturated", "still rising", "not determined")
SAMPLED_RULE = (
    " (H sampled: the interval is from each size's own spread over seeds, so it holds "
    "the sampling error of H)"
)


def rule_text(tolerance: float = TOLERANCE, level: float = LEVEL) -> str:
    """The classification rule in one line (printed with every curve)."""
    return (
        f"saturated when the {level:.0%} interval of the rise of H per doubling of N, "
        f"fitted over the last {DOUBLINGS} doublings up to the full size, lies below "
        f"{tolerance:g} nats; still rising when it lies above; not determined otherwise"
    )


@dataclass(repr=False)
class RiseTest(Result):
    """The rise of H per doubling of N at the full size and the class it gives.

    Attributes
    ----------
    status : "saturated", "still rising" or "not determined".
    reason : one line: why that status (the interval against the tolerance,
        or what is missing to form it).
    rise : float or None, nats per doubling of N, the least-squares slope of
        the mean H over seeds against log2 N over `sizes`.
    interval : (low, high) in nats per doubling, the `level` Student-t
        interval of `rise`; None when it cannot be formed.
    sizes : array of the sizes the test used (the full size included).
    n_seeds : the number of seeds (subsets per size).
    level : probability content of `interval`.
    tolerance : nats per doubling.
    sampled : whether H was estimated from sampled queries (`interval` then
        from each size's own spread over seeds, which holds the sampling error).
    """

    status: str
    reason: str
    rise: float | None
    interval: tuple[float, float] | None
    sizes: np.ndarray
    n_seeds: int
    level: float = LEVEL
    tolerance: float = TOLERANCE
    sampled: bool = False

    def __repr__(self) -> str:
        return f"RiseTest(status={self.status!r}, rise={self.rise}, interval={self.interval})"

    @property
    def rule(self) -> str:
        """The rule that gave `status`, in one line."""
        rule = rule_text(self.tolerance, self.level)
        return rule + (SAMPLED_RULE if self.sampled else "")

    def describe(self) -> str:
        """The status with the measured rise and its interval, one line."""
        if self.interval is None:
            return f"{self.status}: {self.reason}"
        lo, hi = self.interval
        return (
            f"{self.status}: the rise of H per doubling of N at the full size is "
            f"{self.rise:.4f} nats ({self.level:.0%} interval {lo:.4f} to {hi:.4f}, sizes "
            f"{self.sizes[0]}..{self.sizes[-1]}, {self.n_seeds} seed"
            f"{'s' if self.n_seeds > 1 else ''}): {self.reason}"
        )

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers as None)."""
        return jsonable(
            {
                "status": self.status,
                "reason": self.reason,
                "rule": self.rule,
                "rise_per_doubling": self.rise,
                "interval": self.interval,
                "sizes": self.sizes,
                "n_seeds": self.n_seeds,
                "level": self.level,
                "tolerance": self.tolerance,
                "sampled": self.sampled,
            }
        )


def _window(sizes: np.ndarray) -> np.ndarray:
    """Indices of the sizes in the last `DOUBLINGS` doublings up to the largest."""
    return np.flatnonzero(sizes >= sizes[-1] / 2.0**DOUBLINGS)


def _slopes(x: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column of E (n, seeds) against x (n,)."""
    xc = x - x.mean()
    return xc @ (E - E.mean(axis=0)) / float(xc @ xc)


def _sampled_interval(sizes: np.ndarray, E: np.ndarray, level: float):
    """`_interval` for sampled H: each size's variance over seeds is its own (subsets and
    query draws independent, so it holds both errors; no shape in N is assumed, the full
    size is not exact), combined into the slope's variance with Welch's degrees of
    freedom."""
    x = np.log2(sizes.astype(float))
    seeds = E.shape[1]
    rise = float(_slopes(x, E.mean(axis=1, keepdims=True))[0])
    if seeds < 2:
        return rise, None, "one seed cannot tell the sampling error of H from the rise (--seeds 2)"
    xc = x - x.mean()
    parts = (xc / float(xc @ xc)) ** 2 * E.var(axis=1, ddof=1) / seeds
    variance = float(parts.sum())
    if variance == 0.0:
        return rise, (rise, rise), ""
    dof = variance**2 / float(np.sum(parts**2) / (seeds - 1))
    half = float(stats.t.ppf(0.5 + level / 2.0, dof)) * math.sqrt(variance)
    return rise, (rise - half, rise + half), ""


def _interval(sizes: np.ndarray, E: np.ndarray, level: float):
    """(rise, (low, high) or None, why not) of the curve E (n, seeds) at `sizes`.

    The rise is the least-squares slope of the mean H per size against log2 N.
    Subsets are drawn independently, and the variance of H over subsets of size N
    falls like ``1/N - 1/N_max`` (as for a mean sampled without replacement; zero at
    the full size, the whole dataset), so one scale pooled over the sizes and seeds
    gives the slope's variance, with ``(sizes - 1) (seeds - 1)`` degrees of freedom
    for the Student-t interval. With one seed, the interval of the least-squares slope
    from its residuals.
    """
    x = np.log2(sizes.astype(float))
    n, seeds = E.shape
    tail = 0.5 + level / 2.0
    rise = float(_slopes(x, E.mean(axis=1, keepdims=True))[0])
    xc = x - x.mean()
    if seeds > 1:
        shrink = 1.0 / sizes - 1.0 / sizes[-1]
        sub = shrink > 0
        scale = float(np.mean(E[sub].var(axis=1, ddof=1) / shrink[sub]))
        variance = scale * float(np.sum((xc / float(xc @ xc)) ** 2 * shrink)) / seeds
        half = float(stats.t.ppf(tail, int(sub.sum()) * (seeds - 1))) * math.sqrt(variance)
        return rise, (rise - half, rise + half), ""
    if n < 3:
        return rise, None, "one seed and two sizes give no interval (use --seeds 3)"
    residuals = E[:, 0] - E[:, 0].mean() - rise * xc
    se = math.sqrt(float(residuals @ residuals) / (n - 2) / float(xc @ xc))
    half = float(stats.t.ppf(tail, n - 2)) * se
    return rise, (rise - half, rise + half), ""


def rise_test(
    sizes,
    entropies,
    *,
    level: float = LEVEL,
    tolerance: float = TOLERANCE,
    sampled: bool = False,
) -> RiseTest:
    """Classify a learning curve by the rise of H per doubling of N at the full size.

    Parameters
    ----------
    sizes : array (n,) of increasing subset sizes, the full size last.
    entropies : array (n,) or (n, n_seeds) of H per size and seed, nats.
    level : probability content of the interval of the rise.
    tolerance : nats per doubling; see the module docstring for the rule.
    sampled : the entropies are sampled estimates (`atominfo.sampled_entropy`, a
        new draw per seed, the full size too): the interval is then formed from
        each size's own variance over seeds (Welch), with no model of how it
        falls with N; it needs 2 or more seeds.

    Returns
    -------
    RiseTest.
    """
    level = params.check("coverage", level, label="interval level")
    tolerance = params.check("saturation_tolerance", tolerance, label="saturation tolerance")
    sizes = np.asarray(sizes, dtype=np.int64)
    E = np.asarray(entropies, dtype=float)
    E = E[:, None] if E.ndim == 1 else E
    if sizes.ndim != 1 or E.ndim != 2 or len(E) != len(sizes) or E.shape[1] == 0:
        raise InputError(f"entropies must be (n_sizes,) or (n_sizes, n_seeds), got {E.shape}")
    if not np.all(np.isfinite(E)) or np.any(np.diff(sizes) <= 0) or np.any(sizes < 1):
        raise InputError("sizes must be positive and increasing, entropies finite")
    used = _window(sizes)
    base = dict(
        sizes=sizes[used], n_seeds=E.shape[1], level=level, tolerance=tolerance, sampled=sampled
    )
    if len(used) < 2:
        why = (
            f"no size besides the full one within the last {DOUBLINGS} doublings "
            f"(N >= {sizes[-1] / 2.0**DOUBLINGS:g}): sample more sizes"
        )
        return RiseTest("not determined", why, None, None, **base)
    interval_of = _sampled_interval if sampled else _interval
    rise, interval, why = interval_of(sizes[used], E[used], level)
    if interval is None:
        return RiseTest("not determined", why, rise, None, **base)
    lo, hi = interval
    if hi < tolerance:
        status, why = "saturated", f"the interval lies below {tolerance:g} nats per doubling"
    elif lo > tolerance:
        status, why = "still rising", f"the interval lies above {tolerance:g} nats per doubling"
    else:
        status = "not determined"
        why = (
            f"the interval holds the tolerance {tolerance:g} nats per doubling "
            "(more seeds, or more data)"
        )
    return RiseTest(status, why, rise, (lo, hi), **base)


def _model_rise(fit: AsymptoteFit, sizes: np.ndarray) -> float:
    """The rise per doubling of the fitted curve, measured as the test measures the data's:
    the least-squares slope against log2 N over `sizes`, nats."""
    values = fit(sizes.astype(float))[:, None]
    return float(_slopes(np.log2(sizes.astype(float)), values)[0])


def extrapolation(
    test: RiseTest, sizes, entropies, *, max_entropy: float, n_boot: int, seed: int
) -> tuple[AsymptoteFit | None, str]:
    """The asymptote fit of a learning curve when the test allows it, else None and why.

    Only a "still rising" curve is extrapolated, and only with a fit
    (`fit_asymptote`) that is determined and agrees with the test: its rise
    per doubling at the full size within the measured interval widened by the
    tolerance (the fitted curve measured as the test measures the data), its
    asymptote at least the tolerance above H of the full set,
    and its gap still above the tolerance at the full size. Otherwise no
    asymptote, gap or saturation size exists to print.
    """
    if test.status == "saturated":
        return None, "a saturated curve is not extrapolated"
    if test.status != "still rising":
        return None, "nothing is extrapolated from a curve not shown to be still rising"
    try:
        fit = fit_asymptote(
            sizes,
            entropies,
            max_entropy=max_entropy,
            level=test.level,
            n_boot=n_boot,
            seed=seed,
            tolerance=test.tolerance,
        )
    except InputError as exc:
        return None, str(exc)
    if fit.status == "flat":
        return None, (
            "the fitted sizes show no rise within the noise, unlike the largest ones: "
            "the model does not describe this curve"
        )
    if fit.status != "determined":
        return None, fit.reason
    full, tol = float(sizes[-1]), test.tolerance
    h_full = float(np.mean(np.asarray(entropies, dtype=float)[-1]))
    lo, hi = test.interval or (-math.inf, math.inf)
    if not lo - tol <= _model_rise(fit, test.sizes) <= hi + tol:
        return None, (
            "the fitted curve's rise per doubling over the last sizes lies outside the "
            f"measured interval widened by {tol:g} nats: the model does not describe the "
            "largest sizes"
        )
    saturation = fit.saturation_size()
    if fit.a - h_full < tol or (saturation is not None and saturation <= full):
        return None, (
            f"the fit puts the gap below {tol:g} nats by the full size while H still rises "
            "by more than that per doubling: the model does not describe the largest sizes"
        )
    return fit, ""
