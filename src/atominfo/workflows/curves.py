"""Learning curves of information: entropy of random subsets at increasing sizes.

The entropy H(N) of random subsets of N structures (or N environments) at
log-spaced sizes, several seeds each (see ``docs/method.md``); the class of
the curve by the rise of H per doubling of N at the full size and its
interval (`atominfo.workflows.curves_rise`: "saturated", "still rising" or
"not determined"); and, only for a curve still rising, the fit of its
asymptote (`atominfo.workflows.curves_asymptote`: the asymptote `a`, the
information gap ``a - H(N)`` and the saturation size, each with a bootstrap
interval) when that fit passes its checks.
`CurveOptions` holds how a curve is sampled and fitted; `learning_curve`
also takes its fields as keywords (``learning_curve(data, h, n_seeds=5)``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    entropy,
    sampled_entropy,
)
from atominfo.results import Result, jsonable
from atominfo.settings import with_keywords
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.curves_asymptote import (
    EXTRAPOLATION,
    FIT_SIZES,
    LEVEL,
    N_BOOT,
    AsymptoteFit,
)
from atominfo.workflows.curves_rise import RiseTest, extrapolation, rise_test


def subset_sizes(total: int, n_sizes: int = 12, minimum: int = 1) -> np.ndarray:
    """About `n_sizes` distinct integers log-spaced from `minimum` to `total` (both
    included; `total` alone when `n_sizes` is 1)."""
    n_sizes = params.check("n_sizes", n_sizes, label="number of sizes")
    if total < 1:
        raise InputError("the dataset is empty")
    minimum = max(1, min(minimum, total))
    if n_sizes == 1:  # the one size is the full set, whose H every result quotes
        return np.array([total], dtype=np.int64)
    sizes = np.unique(np.round(np.geomspace(minimum, total, int(n_sizes))).astype(np.int64))
    # Rounding merges small sizes; fill in with the smallest unused integers.
    extra = [n for n in range(minimum, total + 1) if n not in set(sizes)]
    while len(sizes) < min(n_sizes, total - minimum + 1):
        sizes = np.unique(np.append(sizes, extra.pop(0)))
    return sizes


def _fmt_size(n) -> str:
    return f"{n:.0f}" if n < 1e6 else f"{n:.3g}"


@dataclass(repr=False)
class LearningCurve(Result):
    """Entropy of random subsets at increasing sizes, its class and (when allowed) its asymptote.

    Attributes
    ----------
    sizes : array (n_sizes,) of subset sizes, in `unit`.
    entropies : array (n_sizes, n_seeds) of H, nats.
    environments : array (n_sizes, n_seeds), environments in each subset.
    seeds : list of int, one random generator seed per column.
    unit : "structures" or "environments".
    bandwidth : h, 1/Å.
    test : RiseTest, the rise of H per doubling of N at the full size and the
        class it gives: "saturated", "still rising" or "not determined"
        (`atominfo.workflows.curves_rise`).
    fit : AsymptoteFit or None: the asymptote fit, only for a "still rising"
        curve whose fit passes its checks (`curves_rise.extrapolation`);
        `fit_reason` says why there is none.
    total : the full size, in `unit`.
    extra : {N: [H per seed]} at requested sizes outside the grid.
    fit_reason : one line, why there is no fit ("" when there is one).

    The asymptote, gaps and saturation size are None unless `fit` is given:
    nothing is extrapolated from a curve the test does not show rising.
    """

    _fields_shown = ("unit", "total", "sizes", "seeds", "bandwidth", "test", "fit", "fit_reason")

    sizes: np.ndarray
    entropies: np.ndarray
    environments: np.ndarray
    seeds: list[int]
    unit: str
    bandwidth: float
    test: RiseTest
    fit: AsymptoteFit | None
    total: int
    extra: dict = field(default_factory=dict)
    fit_reason: str = ""

    def __repr__(self) -> str:
        return (
            f"LearningCurve({len(self.sizes)} sizes of {self.unit} up to {self.total}, "
            f"{len(self.seeds)} seeds, h={self.bandwidth:g}, status={self.status!r}, "
            f"asymptote={self.asymptote})"
        )

    @property
    def mean(self) -> np.ndarray:
        """Mean entropy over seeds per size, array (n_sizes,), nats."""
        return self.entropies.mean(axis=1)

    @property
    def sd(self) -> np.ndarray:
        """Standard deviation over seeds per size, array (n_sizes,), nats."""
        return self.entropies.std(axis=1)

    @property
    def status(self) -> str:
        """ "saturated", "still rising" or "not determined" (the rule: `test.rule`)."""
        return self.test.status

    @property
    def reason(self) -> str:
        """One line: why the status."""
        return self.test.reason

    @property
    def extrapolated(self) -> bool:
        """True when the asymptote, gap and saturation size are given (`fit` is not None)."""
        return self.fit is not None

    @property
    def asymptote(self) -> float | None:
        """Fitted asymptote `a` in nats, None unless extrapolated."""
        return None if self.fit is None else self.fit.a

    @property
    def asymptote_interval(self) -> tuple[float, float] | None:
        """Bootstrap interval (low, high) of the asymptote, nats; None unless extrapolated."""
        return None if self.fit is None else self.fit.a_interval

    @property
    def saturation_size(self) -> float | None:
        """Size (in `unit`) from which the fitted gap is below the tolerance, beyond the full
        size; None unless extrapolated and within `EXTRAPOLATION` times the full size."""
        return None if self.fit is None else self.fit.saturation_size()

    @property
    def saturation_interval(self) -> tuple[float, float] | None:
        """Bootstrap interval of `saturation_size` (high may be inf); None when that is None."""
        if self.fit is None or self.saturation_size is None:
            return None
        return self.fit.saturation_interval

    def entropy_at(self, N: int) -> float:
        """Mean measured entropy at size N (a grid size or a requested one), nats."""
        hits = np.flatnonzero(self.sizes == N)
        if hits.size:
            return float(self.mean[hits[0]])
        if N in self.extra:
            return float(np.mean(self.extra[N]))
        raise InputError(
            f"size {N} was not sampled (sampled: {', '.join(map(str, self.sizes))} "
            f"{self.unit}); ask for it with at=[{N}] (--at {N} on the command line)"
        )

    def gap(self, N: int | None = None) -> float | None:
        """Information gap ``a - H(N)`` in nats (N defaults to the full size); None unless
        extrapolated."""
        if self.fit is None:
            return None
        return self.fit.a - self.entropy_at(self.total if N is None else N)

    def gap_interval(self, N: int | None = None) -> tuple[float, float] | None:
        """Bootstrap interval of ``gap(N)``, nats; None unless extrapolated."""
        interval = self.asymptote_interval
        if interval is None:
            return None
        H = self.entropy_at(self.total if N is None else N)
        return interval[0] - H, interval[1] - H

    def rows(self) -> list[dict]:
        """One row per sampled size: ``N``, ``environments`` (mean over seeds), ``H_mean``
        and ``H_sd`` over seeds (nats), and ``fit``, the fitted H where extrapolated
        (else None)."""
        return [
            {
                "N": int(n),
                "environments": int(self.environments[i].mean()),
                "H_mean": float(self.mean[i]),
                "H_sd": float(self.sd[i]),
                "fit": None if self.fit is None else float(self.fit(n)),
            }
            for i, n in enumerate(self.sizes)
        ]

    def to_pandas(self):
        """`rows` as a `pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def headline(self) -> str:
        """One line: the status and, where extrapolated, the information gap (the report's
        headline of a curve)."""
        if self.fit is None:
            head = f"learning curve {self.test.describe()}"
            return (
                head
                if self.status != "still rising"
                else f"{head}; no asymptote: {self.fit_reason}"
            )
        gap, gi = self.gap(), self.gap_interval()
        interval = f" ({self.fit.level:.0%}: {gi[0]:.4f} to {gi[1]:.4f})" if gi else ""
        return (
            f"learning curve still rising: information gap at the full size "
            f"{gap:.4f} nats{interval}"
        )

    def summary_lines(self) -> list[str]:
        """The classification and any extrapolation as text lines (what the command line
        prints after the table)."""
        lines = [f"rule: {self.test.rule}", self.test.describe()]
        f = self.fit
        if f is None:
            lines.append(f"no asymptote, information gap or saturation size: {self.fit_reason}")
            lines += [f"at N = {N}: H = {self.entropy_at(N):.4f} nats" for N in self.extra]
            return lines
        pct, unit = f"{f.level:.0%}", self.unit
        lines.append(
            f"fit H(N) = a - b exp(-c (ln N)^2) on N = {f.sizes[0]}..{f.sizes[-1]} {unit}: "
            f"a = {f.a:.4g} nats, b = {f.b:.4g} nats, c = {f.c:.4g}, rms residual "
            f"{f.rms:.3g} nats"
        )
        if f.a_interval:
            lines.append(
                f"asymptote a = {f.a:.4g} nats ({pct} interval {f.a_interval[0]:.4g} to "
                f"{f.a_interval[1]:.4g} nats, {f.n_boot} bootstrap refits, {f.method})"
            )
        gi = self.gap_interval()
        lines.append(
            f"information gap at the full size ({self.total} {unit}): {self.gap():.4f} nats"
            + (f" ({pct}: {gi[0]:.4f} to {gi[1]:.4f})" if gi else "")
        )
        n, si = self.saturation_size, self.saturation_interval
        if n is None:
            lines.append(
                f"fitted gap below {f.tolerance:g} nats only beyond {EXTRAPOLATION:g} x "
                "the full size: saturation size not determined"
            )
        else:
            high = (
                ""
                if si is None
                else ("unbounded" if not math.isfinite(si[1]) else _fmt_size(si[1]))
            )
            interval = f" ({pct}: {_fmt_size(si[0])} to {high})" if si else ""
            lines.append(
                f"fitted gap below {f.tolerance:g} nats from N = {_fmt_size(n)} {unit}{interval}"
            )
        for N in self.extra:
            lines.append(
                f"at N = {N}: H = {self.entropy_at(N):.4f} nats, gap = {self.gap(N):.4f} nats"
            )
        return lines

    def to_dict(self) -> dict:
        """JSON-ready summary (non-finite numbers as None). ``fit`` is null, with
        ``fit_reason``, unless the curve is extrapolated."""
        return jsonable(
            {
                "unit": self.unit,
                "bandwidth": self.bandwidth,
                "total": self.total,
                "seeds": list(self.seeds),
                "sizes": self.sizes.tolist(),
                "entropy": self.entropies.tolist(),
                "entropy_mean": self.mean.tolist(),
                "entropy_std": self.sd.tolist(),
                "environments": self.environments.tolist(),
                "status": self.status,
                "reason": self.reason,
                "rule": self.test.rule,
                "test": self.test.to_dict(),
                "fit": None if self.fit is None else self.fit.to_dict(),
                "fit_reason": self.fit_reason or None,
                "asymptote": self.asymptote,
                "asymptote_interval": self.asymptote_interval,
                "gap_full": self.gap(),
                "gap_interval": self.gap_interval(),
                "saturation_size": self.saturation_size,
                "saturation_interval": self.saturation_interval,
                "gap_at": {str(n): self.gap(n) for n in self.extra},
                "entropy_at": {str(n): float(np.mean(v)) for n, v in self.extra.items()},
            }
        )


def _too_few_sizes(got: int, total: int, by: str, explicit: bool) -> str:
    """Why a learning curve has no fit for lack of sizes, and what to pass instead."""
    head = f"the asymptote fit needs at least {FIT_SIZES} sizes, got {got}"
    if explicit:
        return f"{head}: pass at least {FIT_SIZES} distinct sizes"
    available = total - (1 if by == "structures" else min(10, total)) + 1
    if available < FIT_SIZES:
        fix = "add structures"
        if by == "structures":
            fix += " or sample environments (`atominfo curve --by environments`)"
        return f"{head}: {total} {by} offer at most {available}; {fix}"
    return f"{head}: pass --sizes {FIT_SIZES} or more (n_sizes={FIT_SIZES} in Python)"


def subset_frames(data: FrameSet, frames) -> FrameSet:
    """The frames `frames` of `data` as a FrameSet of their descriptors (structures not kept)."""
    frames = np.asarray(frames, dtype=np.int64)
    return FrameSet(
        data.X[data.rows(frames)],
        np.concatenate([[0], np.cumsum(data.sizes[frames])]),
        [data.sources[f] for f in frames],
        [data.source_frames[f] for f in frames],
    )


@dataclass(frozen=True)
class CurveOptions:
    """How a learning curve samples its subsets and fits its asymptote (validated when made).

    Parameters
    ----------
    by : "structures" (subsets of whole frames) or "environments" (of atoms).
    sizes : subset sizes; default `n_sizes` log-spaced from 1 (structures) or
        10 (environments) to the full size.
    n_sizes : number of sizes when `sizes` is not given, the full size included.
    n_seeds : random subsets per size; seeds are ``seed, seed+1, ...``. The full
        size has a single subset (all of it), repeated in every column.
    seed : the first seed.
    at : further sizes at which to report H and the information gap.
    fit : fit the asymptote of a curve the test finds still rising (needs at least
        FIT_SIZES = 9 sizes), with `n_boot` bootstrap refits over the seeds (see
        `fit_asymptote` and `curves_rise.extrapolation`).
    level : probability content of the interval of the rise per doubling (the
        test, `curves_rise.rise_test`) and of the fit's intervals.
    sample : None (exact H), or M >= 2: the H of each subset of more than M
        environments (the full set too, a new draw per seed) is estimated from M
        queries (`atominfo.sampled_entropy`, a draw of its own per seed and size); the
        rise test then takes each size's own spread over seeds (it holds the
        sampling error; 2 or more seeds) and no asymptote is fitted.
    """

    by: str = "structures"
    sizes: Sequence[int] | None = field(default=None, hash=False)
    n_sizes: int = 12
    n_seeds: int = 3
    seed: int = 0
    at: Sequence[int] = field(default=(), hash=False)
    fit: bool = True
    n_boot: int = N_BOOT
    level: float = LEVEL
    sample: int | None = None

    def __post_init__(self) -> None:
        checked = {
            "sample": params.check_optional("n_samples", self.sample, label="sample"),
            "by": params.check("by", self.by, label="sampling unit (by)"),
            "n_seeds": params.check("n_seeds", self.n_seeds, label="number of seeds"),
            "seed": params.check("seed", self.seed),
            "n_boot": params.check("n_boot", self.n_boot),
            "level": params.check("coverage", self.level, label="interval level"),
        }
        if self.sizes is None:  # only log-spaced sizes use their number
            checked["n_sizes"] = params.check("n_sizes", self.n_sizes, label="number of sizes")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def merged(
        cls, options: CurveOptions | None, keywords: Mapping[str, Any]
    ) -> tuple[CurveOptions, dict[str, Any]]:
        """`options` (default: the defaults) with the fields named in `keywords` replaced,
        and the other keywords (the engine's options)."""
        names = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in keywords.items() if k in names}
        rest = {k: v for k, v in keywords.items() if k not in names}
        return with_keywords(chosen, options or cls())[0], rest


def _as_frames(data, by: str) -> FrameSet:
    """`data` as a FrameSet; a descriptor matrix only for sampling by environments."""
    if isinstance(data, FrameSet):
        return data
    if by == "structures":
        raise InputError("sampling by structures needs a FrameSet (structures, not a matrix)")
    X = as_descriptor_matrix(data)
    return FrameSet(X, np.array([0, len(X)]), ["<memory>"], [0])


def size_grid(options: CurveOptions, total: int) -> tuple[np.ndarray, list[int]]:
    """The sampled sizes and the further requested ones, each checked against `total`."""
    minimum = 1 if options.by == "structures" else 10
    chosen = (
        subset_sizes(total, options.n_sizes, minimum) if options.sizes is None else options.sizes
    )
    grid = np.unique(np.asarray(chosen, dtype=np.int64))
    requested = sorted({int(n) for n in options.at})
    for n in list(grid) + requested:
        if not 1 <= n <= total:
            raise InputError(f"subset size {n} is outside 1..{total} {options.by}")
    return grid, requested


def subset_rows(data: FrameSet, unit: str, N: int, seed: int) -> np.ndarray:
    """The rows of the random subset of N structures (or environments) drawn with `seed`.

    One generator per (seed, size): the subset of size N does not depend on the
    grid, and every curve of the same data (element-blind or per species) draws it.
    """
    rng = np.random.default_rng([seed, N])
    if unit == "structures":
        frames = np.sort(rng.choice(len(data), size=N, replace=False))
        return data.rows(frames)
    return np.sort(rng.choice(len(data.X), size=N, replace=False))


def _sample(data: FrameSet, h, N: int, seeds, options: CurveOptions, progress, engine):
    """H and the environments of one random subset of size N per seed (the whole set once
    when N is its full size, unless its H is sampled: then a new draw per seed)."""
    by, M = options.by, options.sample
    total = len(data) if by == "structures" else len(data.X)
    if N == total and (M is None or len(data.X) <= M):  # one subset: the whole set
        value = float(entropy(data.X, h, **engine))
        if progress is not None:
            progress(len(seeds))
        return [value] * len(seeds), [len(data.X)] * len(seeds)
    values, counts = [], []
    for s in seeds:
        rows = subset_rows(data, by, N, s) if N < total else np.arange(len(data.X))
        if M is not None and len(rows) > M:
            # queries drawn independently of the subset and of the other sizes' queries
            draw = int(np.random.SeedSequence([s, N, 1]).generate_state(1)[0])
            values.append(float(sampled_entropy(data.X[rows], h, M, draw, **engine).entropy))
        else:
            values.append(float(entropy(data.X[rows], h, **engine)))
        counts.append(len(rows))
        if progress is not None:
            progress(1)
    return values, counts


def _judge(grid, H, options: CurveOptions, total: int, environments: int):
    """The rise test of the sampled curve, and its fit when the test allows one (or why not)."""
    test = rise_test(grid, H, level=options.level, sampled=options.sample is not None)
    if options.sample is not None:
        return (
            test,
            None,
            (
                "no asymptote is fitted to sampled H (the fit's bootstrap does not model the "
                "sampling error)"
            ),
        )
    if not options.fit:
        return test, None, "no fit requested"
    if test.status == "still rising" and len(grid) < FIT_SIZES:
        return test, None, _too_few_sizes(len(grid), total, options.by, options.sizes is not None)
    # H <= ln(environments) for any subset: an asymptote above ln of the whole
    # dataset's environments cannot be measured on it.
    fit, why = extrapolation(
        test,
        grid,
        H,
        max_entropy=float(np.log(environments)),
        n_boot=options.n_boot,
        seed=options.seed,
    )
    return test, fit, why


def learning_curve(
    data,
    h: float = DEFAULT_BANDWIDTH,
    options: CurveOptions | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> LearningCurve:
    """Entropy of random subsets of increasing size, with the asymptote fit.

    Parameters
    ----------
    data : FrameSet, or array (n, d) of descriptors (then ``by="environments"``).
    h : float, bandwidth in 1/Å.
    options : CurveOptions: by, sizes, n_sizes, n_seeds, seed, at, fit, n_boot, level.
        Its fields may also be given as keywords (``by="environments", n_seeds=5``),
        which replace those of `options`.
    progress : called with 1 after each subset's entropy.
    keywords : the fields of `options`, and the options of the kernel engine.
    """
    options, engine = CurveOptions.merged(options, keywords)
    if np.ndim(h) != 0:
        raise InputError("a learning curve takes one bandwidth")
    data = _as_frames(data, options.by)
    total = len(data) if options.by == "structures" else len(data.X)
    grid, requested = size_grid(options, total)
    seeds = [options.seed + i for i in range(options.n_seeds)]
    H = np.empty((len(grid), len(seeds)))
    counts = np.empty((len(grid), len(seeds)), dtype=np.int64)
    for i, N in enumerate(grid):
        H[i], counts[i] = _sample(data, h, int(N), seeds, options, progress, engine)
    extra = {}
    for N in requested:
        hits = np.flatnonzero(grid == N)
        extra[N] = (
            list(H[hits[0]])
            if hits.size
            else _sample(data, h, N, seeds, options, progress, engine)[0]
        )
    return judged_curve(grid, H, counts, seeds, options, h, total, len(data.X), extra)


def judged_curve(
    grid,
    H,
    counts,
    seeds,
    options: CurveOptions,
    h: float,
    total: int,
    environments: int,
    extra=None,
) -> LearningCurve:
    """The LearningCurve of sampled entropies `H` (sizes x seeds) at the sizes `grid`, with
    its rise test and, where the test allows, its asymptote fit (`environments`: those of
    the whole set, whose log bounds the asymptote)."""
    test, curve_fit, why = _judge(grid, H, options, total, environments)
    return LearningCurve(
        grid, H, counts, seeds, options.by, float(h), test, curve_fit, total, extra or {}, why
    )
