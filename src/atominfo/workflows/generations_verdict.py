"""Can I stop? The campaign verdict: "converged", "not converged" or "undetermined".

Three checks, each with its confidence stated in the rule:

* the last `window` generations, each against what re-sampling gives
  (`generations_resampling`): novelty beyond re-sampling's 95% quantile by
  more than the tolerance means the generation added information (and, when
  asked, the same for the gain in H: off by default, since an MD run still
  equilibrating raises H beyond re-sampling with no novel environment);
* with the gap: the information gap of the whole set, by its 95% interval;
* with production runs (`generations_production`): their novel fraction
  against the whole training set, by its 95% confidence bounds.

A value confidently beyond its threshold gives "not converged"; a check the
data cannot decide (too few generations, a gap not determined, a bound
straddling the threshold) gives "undetermined", never a permanent "not
converged". Without production runs, "converged" covers only the data's own
self-consistency: that the last generations re-sampled what was there, not
that production runs stay inside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.workflows.generations_production import ProductionNovelty
from atominfo.workflows.generations_resampling import CONFIDENCE, DEFAULT_RESAMPLES

DEFAULT_WINDOW = 2
DEFAULT_MAX_NOVELTY = 0.01  # fraction of environments with dH > 0
DEFAULT_MAX_GAP = 0.05  # nats, information gap of the cumulative set
# Novelty that re-sampling alone gives when the data do not cover their own
# distribution (each new draw mostly novel, as for a melt sampled by a few
# frames): a generation this novel adds information even if re-sampling does too.
UNCOVERED = 0.5
SELF_ONLY = "the data's own self-consistency only: no production runs were checked"
WITH_PRODUCTION = "the data's self-consistency and the production runs"


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of `campaign_verdict` (validated when made).

    Parameters
    ----------
    window : how many of the last generations the rule looks at (>= 1).
    max_novelty : fraction in [0, 1]: tolerated novelty beyond re-sampling, and
        the largest novel fraction of production structures.
    max_gain : nats or None, tolerated gain in H beyond re-sampling (None: the
        gain is reported, not required).
    max_gap : nats; applied only when the gaps are computed.
    resamples : random re-splits per generation (>= 19).
    """

    window: int = DEFAULT_WINDOW
    max_novelty: float = DEFAULT_MAX_NOVELTY
    max_gain: float | None = None
    max_gap: float = DEFAULT_MAX_GAP
    resamples: int = DEFAULT_RESAMPLES

    def __post_init__(self) -> None:
        checked = {
            "window": params.check("verdict_window", self.window, label="verdict window"),
            "max_novelty": params.check("max_novelty", self.max_novelty),
            "max_gain": None if self.max_gain is None else params.check("max_gain", self.max_gain),
            "max_gap": params.check("max_gap", self.max_gap),
            "resamples": params.check("verdict_resamples", self.resamples),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclass(repr=False)
class Verdict(Result):
    """Whether an active-learning campaign can stop.

    Attributes
    ----------
    converged : bool, True only for "converged".
    verdict : "converged", "not converged" or "undetermined".
    rule : str, the rule with its thresholds and confidence, in words.
    scope : str, what "converged" covers (with or without production runs).
    window : int. max_novelty : fraction. max_gain : nats or None (not required).
    max_gap : nats or None (None: the gap was not part of the rule).
    confidence : float, of every quantile and bound the rule uses.
    resamples : int or None, random re-splits per generation.
    values : list of dicts, the generations that decided (the last `window`):
        label, novelty and novelty_resampled (re-sampling's quantile),
        entropy_gain and gain_resampled (nats), gap, gap_low, gap_high, gap_status.
    production : dict or None, the `ProductionNovelty` of the production runs.
    reason : str, one line: what decided, or what the data cannot decide.
    """

    _fields_shown = ("verdict", "reason", "scope", "rule")

    converged: bool
    verdict: str
    rule: str
    scope: str
    window: int
    max_novelty: float
    max_gain: float | None
    max_gap: float | None
    confidence: float
    resamples: int | None
    values: list = field(default_factory=list)
    production: dict | None = None
    reason: str = ""

    def __repr__(self) -> str:
        return f"Verdict({self.verdict!r}, reason={self.reason!r})"

    def line(self) -> str:
        """The verdict and its reason, one line."""
        return f"verdict: {self.verdict}: {self.reason}"

    def text(self) -> str:
        """The rule, the scope and the verdict: what the command line prints."""
        return "\n".join([f"rule: {self.rule}", f"scope: {self.scope}", self.line()])

    def to_json(self) -> str:
        """`to_dict` as JSON text (no NaN or infinity)."""
        return json.dumps(jsonable(self.to_dict()), allow_nan=False)


def verdict_rule(
    window: int,
    max_novelty: float,
    max_gain: float | None,
    max_gap: float | None,
    resamples: int | None = DEFAULT_RESAMPLES,
    production: bool = False,
) -> str:
    """The stopping rule in words (what `campaign_verdict` applies)."""
    c = f"{CONFIDENCE:.0%}"
    gain = (
        ""
        if max_gain is None
        else f", and its gain in cumulative H exceeds re-sampling's by less than {max_gain:g} nats"
    )
    rule = (
        f"converged when each of the last {window} generation(s) is explained by "
        f"re-sampling: its novelty (fraction of its environments with dH > 0 against all "
        f"earlier ones) exceeds by less than {max_novelty:.4g} what re-sampling the "
        f"structures up to it gives at {c} (the larger {c} quantile of {resamples or 'the'} random "
        "re-splits into earlier and new sets of the same sizes, or of every other split "
        "where there are fewer, their largest where fewer than 20, and of the runs of "
        f"consecutive structures), and is below {UNCOVERED:.0%} where re-sampling gives "
        f"that much too{gain}"
    )
    if max_gap is not None:
        rule += (
            "; the learning curve of the whole set is saturated or its information gap is "
            f"below {max_gap:g} nats ({c} interval)"
        )
    if production:
        rule += (
            f"; the novel fraction of the production structures against the whole training "
            f"set is below {max_novelty:.4g} ({c} upper confidence bound, structures "
            "independent)"
        )
    return rule + (
        f". Not converged when a value is beyond its threshold at {c}; undetermined "
        "when the data cannot decide"
    )


def campaign_verdict(
    rows,
    *,
    window: int = DEFAULT_WINDOW,
    max_novelty: float = DEFAULT_MAX_NOVELTY,
    max_gain: float | None = None,
    max_gap: float | None = None,
    production: ProductionNovelty | None = None,
) -> Verdict:
    """The verdict of the last `window` generations (and of `production`).

    Parameters
    ----------
    rows : what `generation_report` returned (with ``gap=True`` when `max_gap` is given).
    window : int >= 1. max_novelty : fraction in [0, 1]. max_gain, max_gap : nats >= 0,
        or None: not part of the rule.
    production : `production_novelty` of the production runs, or None (then
        "converged" covers only the data's own self-consistency).
    """
    window = params.check("verdict_window", window, label="verdict window")
    max_novelty = params.check("max_novelty", max_novelty)
    if max_gain is not None:
        max_gain = params.check("max_gain", max_gain)
    if max_gap is not None:
        max_gap = params.check("max_gap", max_gap)
    resamples = getattr(rows, "resamples", None)
    rows = list(rows)
    if not rows:
        raise InputError("no generations given")
    if max_gap is not None and rows[-1].gap_status == "not computed":
        raise InputError("the gap criterion needs the gaps: generation_report(..., gap=True)")
    if len(rows) > 1 and rows[-1].novelty_resampled is None:
        raise InputError("the verdict needs generation_report's re-sampling (resamples >= 19)")
    last = rows[-window:]
    failures, unknown = _generation_checks(rows, window, max_novelty, max_gain)
    if max_gap is not None:
        _gap_check(rows[-1], max_gap, failures, unknown)
    if production is not None:
        _production_check(production, max_novelty, failures, unknown)
    verdict = "not converged" if failures else "undetermined" if unknown else "converged"
    if failures or unknown:
        reason = "; ".join(failures or unknown)
    else:
        reason = "generations " + ", ".join(r.label for r in last) + " explained by re-sampling"
        if max_gap is not None:
            final = rows[-1]
            reason += (
                "; learning curve saturated"
                if final.gap is None
                else (f"; gap {final.gap:.4f} nats")
            )
        if production is not None:
            reason += f"; production novel fraction at most {production.high:.2%}"
    return Verdict(
        verdict == "converged",
        verdict,
        verdict_rule(window, max_novelty, max_gain, max_gap, resamples, production is not None),
        SELF_ONLY if production is None else WITH_PRODUCTION,
        window,
        max_novelty,
        max_gain,
        max_gap,
        CONFIDENCE,
        resamples,
        [_values(r) for r in last],
        None if production is None else production.to_dict(),
        reason,
    )


def _values(r) -> dict:
    names = [
        *("label", "novelty", "novelty_resampled", "entropy_gain", "gain_resampled"),
        *("gap", "gap_low", "gap_high", "gap_status"),
    ]
    return {name: getattr(r, name) for name in names}


def _generation_checks(rows: Sequence, window, max_novelty, max_gain):
    failures: list[str] = []
    unknown: list[str] = []
    for r in rows[-window:]:
        if r.novelty is None:  # the first generation: nothing before it
            continue
        excess = r.novelty - r.novelty_resampled
        if not excess < max_novelty:
            failures.append(
                f"generation {r.label} novelty {r.novelty:.2%} exceeds re-sampling's "
                f"{r.novelty_resampled:.2%} by {excess:.2%} >= {max_novelty:.2%}"
            )
        elif r.novelty >= UNCOVERED and r.novelty_resampled >= UNCOVERED:
            failures.append(
                f"generation {r.label} novelty {r.novelty:.2%}, and re-sampling the "
                f"structures up to it gives {r.novelty_resampled:.2%}: the data do not "
                "cover their own distribution yet"
            )
        excess = r.entropy_gain - r.gain_resampled
        if max_gain is not None and not excess < max_gain:
            failures.append(
                f"generation {r.label} raises H by {r.entropy_gain:.4f} nats, "
                f"{excess:.4f} >= {max_gain:g} beyond re-sampling's {r.gain_resampled:.4f}"
            )
    if len(rows) < window + 1:
        unknown.append(
            f"{len(rows)} generation(s): the rule needs {window + 1} (the first has no novelty)"
        )
    return failures, unknown


def _gap_check(final, max_gap: float, failures: list, unknown: list) -> None:
    where = f"information gap after generation {final.label}"
    if final.gap_status == "saturated":
        return  # no gap is extrapolated from a saturated learning curve, nor needed
    if final.gap is None:
        reason = final.gap_reason
        if not reason.startswith(final.gap_status):  # a curve's reason may start with it
            reason = final.gap_status + (f" ({reason})" if reason else "")
        unknown.append(f"{where} {reason}")
        return
    low = final.gap if final.gap_low is None else final.gap_low
    high = final.gap if final.gap_high is None else final.gap_high
    if low >= max_gap:
        failures.append(f"{where} {final.gap:.4f} (at least {low:.4f}) >= {max_gap:g} nats")
    elif not high < max_gap:
        unknown.append(
            f"{where} {final.gap:.4f}: its interval [{low:.4f}, {high:.4f}] straddles "
            f"{max_gap:g} nats"
        )


def _production_check(p: ProductionNovelty, max_novelty: float, failures, unknown) -> None:
    c = f"{p.confidence:.0%}"
    if p.low >= max_novelty:
        failures.append(
            f"production novel fraction {p.novelty:.2%} (at least {p.low:.2%}, {c}) "
            f">= {max_novelty:.2%}"
        )
    elif not p.high < max_novelty:
        if 0 < max_novelty < 1:
            need = math.ceil(math.log(1.0 / (1.0 - p.confidence)) / -math.log1p(-max_novelty))
            more = f"; with no novel environment, about {need} structures would show it"
        else:
            more = ""
        unknown.append(
            f"production novel fraction {p.novelty:.2%}: its {c} upper bound "
            f"{p.high:.2%} from {p.structures} structures is not below {max_novelty:.2%}{more}"
        )
