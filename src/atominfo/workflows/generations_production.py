"""Novelty of production runs against the whole training set, with confidence bounds.

A campaign can stop when the simulations the potential is for meet nothing
its training set lacks. Each production structure gives the fraction of its
environments with dH > 0 against all training environments; the verdict
needs the mean fraction of structures drawn like these, not just of these.
Structures are the independent unit (their environments are correlated: a
nucleus is many novel atoms at once). For independent values in [0, 1] with
mean mu, the Chernoff-Hoeffding bound ``P(mean <= a) <= exp(-F kl(a, mu))``
(Hoeffding 1963, Theorem 1) holds whatever their distribution, so
``{mu : F kl(mean, mu) <= log(1 / alpha)}`` bounds mu from each side with
confidence 1 - alpha. With F structures and no novel environment the upper
bound is 1 - alpha^(1/F) (about 3/F at 95%): showing a novel fraction below
1% takes about 300 structures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.information import as_descriptor_matrix, check_widths, delta_entropy
from atominfo.results import Result
from atominfo.workflows.generations_resampling import CONFIDENCE, structure_counts

BISECTION_STEPS = 60


@dataclass(repr=False)
class ProductionNovelty(Result):
    """Production structures against the whole training set.

    Attributes
    ----------
    structures, environments : int, in the production runs.
    novelty : float, the mean over structures of the fraction of their
        environments with dH > 0 against all training environments.
    mean_dH : float, nats, over all production environments.
    low, high : floats, one-sided bounds on the novel fraction of a
        structure drawn like these, each holding with probability
        `confidence` (structures independent; any distribution of fractions).
    confidence : float.
    """

    _fields_shown = ("structures", "environments", "novelty", "low", "high", "confidence")

    structures: int
    environments: int
    novelty: float
    mean_dH: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    def __repr__(self) -> str:
        return (
            f"ProductionNovelty({self.structures} structures, novelty {self.novelty:.4g}, "
            f"{self.confidence:.0%} bounds [{self.low:.4g}, {self.high:.4g}])"
        )

    def line(self) -> str:
        """One line: the novelty and its bounds."""
        return (
            f"production: {self.structures} structures, {self.environments} environments: "
            f"novel fraction {self.novelty:.2%} against the whole training set "
            f"({self.confidence:.0%} bounds {self.low:.2%} to {self.high:.2%}), "
            f"mean dH {self.mean_dH:.3f} nats"
        )


def production_novelty(Y, counts, X, h: float, *, engine=None) -> ProductionNovelty:
    """`ProductionNovelty` of production descriptors `Y` (rows of structures of
    `counts` environments each, in order) against the training descriptors `X`."""
    if np.ndim(h) != 0:
        raise InputError("production novelty takes one bandwidth")
    Y = as_descriptor_matrix(Y, "production descriptors")
    X = as_descriptor_matrix(X, "training descriptors")
    check_widths(Y, X)
    counts = structure_counts(counts, len(Y), "production")
    dH = delta_entropy(Y, X, h, engine=engine)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    fractions = np.add.reduceat((dH > 0).astype(float), starts) / counts
    low, high = mean_bounds(fractions, CONFIDENCE)
    return ProductionNovelty(
        len(counts), len(Y), float(fractions.mean()), float(dH.mean()), low, high
    )


def mean_bounds(x, confidence: float) -> tuple[float, float]:
    """One-sided bounds (low, high) on the mean of independent values in [0, 1] from
    the sample `x`, each holding with probability >= `confidence` (Chernoff-Hoeffding)."""
    x = np.asarray(x, dtype=float)
    mean, budget = float(np.clip(x.mean(), 0.0, 1.0)), math.log(1.0 / (1.0 - confidence)) / len(x)

    def beyond(mu: float) -> bool:
        return _kl(mean, mu) > budget

    def end(inside: float, outside: float) -> float:
        if not beyond(outside):
            return outside
        for _ in range(BISECTION_STEPS):  # kl(mean, mu) grows away from the mean
            middle = 0.5 * (inside + outside)
            if beyond(middle):
                outside = middle
            else:
                inside = middle
        return outside  # the side that is ruled out: the bound is never too tight

    return end(mean, 0.0), end(mean, 1.0)


def _kl(p: float, q: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(q) from Bernoulli(p), nats."""

    def term(a: float, b: float) -> float:
        if a == 0.0:
            return 0.0
        return math.inf if b == 0.0 else a * math.log(a / b)

    return term(p, q) + term(1.0 - p, 1.0 - q)
