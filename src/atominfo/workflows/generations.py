"""Active-learning generations: what each new batch adds (docs/method.md, section 4.3).

For generation g, its size, the novelty of its environments against all
environments of generations before g (fraction with dH > 0), the
entropy H and diversity D of the cumulative set of generations 1..g, its
increase over generation g-1, and optionally the information gap of the
cumulative set (learning-curve asymptote minus H, `workflows.curves`).

`campaign_verdict` turns the last generations into an explicit
"converged" / "not converged" verdict with a stated, configurable rule.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import overload

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    check_widths,
    delta_entropy,
    entropy_and_diversity,
)
from atominfo.outputs.plots import PLOT_SUFFIXES, plot_generations, save_figure
from atominfo.results import Result, jsonable
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet


@dataclass
class Generation(Result):
    """One generation's figures (nats for H, D, dH, gain and gap; novelty is a fraction).

    Attributes
    ----------
    entropy_gain : float or None, nats: cumulative H after this generation minus
        after the previous one (None for the first).
    gap : float or None, nats: information gap of the cumulative set (fitted
        learning-curve asymptote minus its H); None when not computed or when
        the data do not determine the asymptote (`gap_status` and `gap_reason`
        say which).
    gap_status : "not computed", "determined", "flat", "not determined" or
        "not fitted" (too few sizes for a fit).
    """

    label: str
    structures: int | None
    environments: int
    novelty: float | None  # None for the first generation (nothing before it)
    mean_dH: float | None
    cumulative_environments: int
    cumulative_entropy: float
    cumulative_diversity: float
    entropy_gain: float | None = None
    gap: float | None = None
    gap_status: str = "not computed"
    gap_reason: str = ""


@dataclass(repr=False)
class Generations(Result, Sequence[Generation]):
    """What `generation_report` measured: one `Generation` per generation, in order.

    A sequence of its rows (``rows[-1]``, ``len(rows)``, ``for row in rows``);
    `columns` and `to_pandas` give the table, one row per generation, which is
    also what Jupyter shows.
    """

    rows: list[Generation]
    bandwidth: float

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Generation]:
        return iter(self.rows)

    @overload
    def __getitem__(self, index: int) -> Generation: ...
    @overload
    def __getitem__(self, index: slice) -> list[Generation]: ...
    def __getitem__(self, index):
        return self.rows[index]

    def __repr__(self) -> str:
        labels = ", ".join(r.label for r in self.rows)
        plural = "" if len(self) == 1 else "s"
        return f"Generations({len(self)} generation{plural}: {labels}; h={self.bandwidth:g})"

    def columns(self) -> dict[str, list]:
        """One column per `Generation` field, one entry per generation."""
        return {f.name: [getattr(r, f.name) for r in self.rows] for f in fields(Generation)}

    def to_pandas(self):
        """The table (`columns`) as a `pandas.DataFrame`, one row per generation."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "Generations")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = f"Generations (nats; novelty: fraction with dH > 0; h = {self.bandwidth:g} 1/Å)"
        return html_table(self.columns(), caption)

    def to_dict(self) -> dict:
        """JSON-ready: the bandwidth and each generation's `to_dict`."""
        return {"bandwidth": self.bandwidth, "generations": [r.to_dict() for r in self.rows]}


def generation_report(
    generations: Mapping[str, np.ndarray],
    h: float = DEFAULT_BANDWIDTH,
    *,
    structures: Mapping[str, int] | None = None,
    gap: bool = False,
    gap_seeds: int = 3,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> Generations:
    """Novelty of each generation against the earlier ones, and H, D of the cumulative set.

    Parameters
    ----------
    generations : {label: array (n_g, d) of descriptors}, in generation order.
    h : bandwidth, 1/Å (one value).
    structures : {label: number of structures}, optional, only reported.
    gap : also the information gap of each cumulative set: a learning curve
        (`workflows.curves.learning_curve`) over random subsets of its
        environments, `gap_seeds` subsets per size (seeds from `seed`), and
        the asymptote fit. About 12 x `gap_seeds` entropies per generation.
    progress : called with 1 after each generation.
    engine : options for the kernel engine.

    Returns
    -------
    Generations: one `Generation` per generation (a sequence; `to_pandas` gives the table).
    """
    if np.ndim(h) != 0:
        raise InputError("the generation report takes one bandwidth")
    if len(generations) == 0:
        raise InputError("no generations given")
    gap_seeds = params.check("n_seeds", gap_seeds, label="number of seeds of the gap curve")
    seed = params.check("seed", seed)
    labels = [str(k) for k in generations]
    blocks = [as_descriptor_matrix(generations[k], f"generation {k!r}") for k in generations]
    for block in blocks:
        check_widths(block, blocks[0])
    rows: list[Generation] = []
    for g, (label, block) in enumerate(zip(labels, blocks)):
        novelty = mean_dH = None
        if g > 0:
            earlier = np.concatenate(blocks[:g])
            dH = delta_entropy(block, earlier, h, **engine)
            novelty, mean_dH = float((dH > 0).mean()), float(dH.mean())
        cumulative = np.concatenate(blocks[: g + 1])
        H, D = entropy_and_diversity(cumulative, h, **engine)
        gain = None if g == 0 else float(H) - rows[-1].cumulative_entropy
        gap_value, status, reason = None, "not computed", ""
        if gap:
            gap_value, status, reason = _gap(cumulative, h, gap_seeds, seed, engine)
        rows.append(
            Generation(
                label,
                None if structures is None else int(structures[label]),
                len(block),
                novelty,
                mean_dH,
                len(cumulative),
                float(H),
                float(D),
                gain,
                gap_value,
                status,
                reason,
            )
        )
        if progress is not None:
            progress(1)
    return Generations(rows, float(h))


def _gap(X, h, n_seeds, seed, engine) -> tuple[float | None, str, str]:
    """(gap in nats or None, fit status, reason) of the cumulative descriptors X (n, d)."""
    from atominfo.workflows.curves import learning_curve

    if len(X) < 10:
        return None, "not fitted", f"{len(X)} environments: too few for a learning curve"
    curve = learning_curve(X, h, by="environments", n_seeds=n_seeds, seed=seed, **engine)
    gap = curve.gap()
    if gap is None:
        return None, curve.fit_status, curve.fit_reason
    return float(gap), curve.fit_status, curve.fit_reason


DEFAULT_WINDOW = 2
DEFAULT_MAX_NOVELTY = 0.01  # fraction of environments with dH > 0
DEFAULT_MAX_GAIN = 0.05  # nats of cumulative H per generation
DEFAULT_MAX_GAP = 0.05  # nats, information gap of the cumulative set


@dataclass(repr=False)
class Verdict(Result):
    """Whether an active-learning campaign has stopped adding information.

    Attributes
    ----------
    converged : bool.
    verdict : "converged" or "not converged".
    rule : str, the rule with its thresholds, in words.
    window : int, how many of the last generations the rule looks at.
    max_novelty : float, fraction; max_gain : float, nats.
    max_gap : float or None, nats (None: the gap was not part of the rule).
    values : list of {label, novelty, entropy_gain, gap, gap_status}, the
        generations that decided (the last `window`).
    reason : str, one line: which value decided, or why the rule could not
        be applied (too few generations).
    """

    _fields_shown = ("verdict", "reason", "rule")

    converged: bool
    verdict: str
    rule: str
    window: int
    max_novelty: float
    max_gain: float
    max_gap: float | None
    values: list = field(default_factory=list)
    reason: str = ""

    def __repr__(self) -> str:
        return f"Verdict({self.verdict!r}, reason={self.reason!r})"

    def line(self) -> str:
        """The verdict and its reason, one line."""
        return f"verdict: {self.verdict}: {self.reason}"


def verdict_rule(window: int, max_novelty: float, max_gain: float, max_gap: float | None) -> str:
    """The stopping rule in words (what `campaign_verdict` applies)."""
    rule = (
        f"converged when each of the last {window} generation(s) has novelty below "
        f"{max_novelty:.4g} ({max_novelty:.2%} of its environments with dH > 0 against all "
        f"earlier ones) and raises the cumulative H by less than {max_gain:g} nats"
    )
    if max_gap is not None:
        rule += (
            f", and the information gap of the whole cumulative set is determined and "
            f"below {max_gap:g} nats"
        )
    return rule


def campaign_verdict(
    rows: Sequence[Generation],
    *,
    window: int = DEFAULT_WINDOW,
    max_novelty: float = DEFAULT_MAX_NOVELTY,
    max_gain: float = DEFAULT_MAX_GAIN,
    max_gap: float | None = None,
) -> Verdict:
    """The verdict, "converged" or "not converged", from the last `window` generations.

    Converged when each of the last `window` generations has novelty (fraction
    of its environments with dH > 0 against all earlier generations) below
    `max_novelty` and a cumulative-entropy increase below `max_gain` nats,
    and, when `max_gap` is given, the information gap of the final cumulative
    set is determined and below `max_gap` nats (an undetermined gap is not
    converged: the data do not show saturation). The first generation has
    no novelty, so the rule needs at least ``window + 1`` generations.

    Parameters
    ----------
    rows : the `generation_report` rows, in generation order (with
        ``gap=True`` when `max_gap` is given).
    window : int >= 1. max_novelty : fraction in [0, 1]. max_gain, max_gap : nats >= 0.
    """
    window = params.check("verdict_window", window, label="verdict window")
    max_novelty = params.check("max_novelty", max_novelty)
    max_gain = params.check("max_gain", max_gain)
    if max_gap is not None:
        max_gap = params.check("max_gap", max_gap)
    rows = list(rows)
    if not rows:
        raise InputError("no generations given")
    if max_gap is not None and rows[-1].gap_status == "not computed":
        raise InputError("the gap criterion needs the gaps: generation_report(..., gap=True)")
    rule = verdict_rule(window, max_novelty, max_gain, max_gap)
    last = rows[-window:]
    values = [
        {
            "label": r.label,
            "novelty": r.novelty,
            "entropy_gain": r.entropy_gain,
            "gap": r.gap,
            "gap_status": r.gap_status,
        }
        for r in last
    ]

    def verdict(ok: bool, reason: str) -> Verdict:
        return Verdict(
            ok,
            "converged" if ok else "not converged",
            rule,
            window,
            max_novelty,
            max_gain,
            max_gap,
            values,
            reason,
        )

    if len(rows) < window + 1:
        return verdict(
            False,
            f"{len(rows)} generation(s): the rule needs {window + 1} (the first has no novelty)",
        )
    failures = []
    for r in last:
        # past the first generation both are set (checked above: window + 1 generations)
        assert r.novelty is not None and r.entropy_gain is not None
        if not r.novelty < max_novelty:
            failures.append(f"generation {r.label} novelty {r.novelty:.2%} >= {max_novelty:.2%}")
        if not r.entropy_gain < max_gain:
            failures.append(
                f"generation {r.label} raises H by {r.entropy_gain:.4f} >= {max_gain:g} nats"
            )
    if max_gap is not None:
        final = rows[-1]
        if final.gap is None:
            failures.append(
                f"information gap after generation {final.label} {final.gap_status}"
                + (f" ({final.gap_reason})" if final.gap_reason else "")
            )
        elif not final.gap < max_gap:
            failures.append(
                f"information gap after generation {final.label} {final.gap:.4f} >= "
                f"{max_gap:g} nats"
            )
    if failures:
        return verdict(False, "; ".join(failures))
    labels = ", ".join(r.label for r in last)
    detail = ", ".join(
        f"{r.label}: novelty {r.novelty:.2%}, gain {r.entropy_gain:.4f} nats" for r in last
    )
    gap_text = "" if max_gap is None else f"; gap {rows[-1].gap:.4f} nats"
    return verdict(True, f"generations {labels} below every threshold ({detail}{gap_text})")


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of `campaign_verdict` (validated when made).

    Parameters
    ----------
    window : how many of the last generations the rule looks at (>= 1).
    max_novelty : fraction in [0, 1]; max_gain : nats.
    max_gap : nats; applied only when the gaps are computed.
    """

    window: int = DEFAULT_WINDOW
    max_novelty: float = DEFAULT_MAX_NOVELTY
    max_gain: float = DEFAULT_MAX_GAIN
    max_gap: float = DEFAULT_MAX_GAP

    def __post_init__(self) -> None:
        checked = {
            "window": params.check("verdict_window", self.window, label="verdict window"),
            "max_novelty": params.check("max_novelty", self.max_novelty),
            "max_gain": params.check("max_gain", self.max_gain),
            "max_gap": params.check("max_gap", self.max_gap),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclass(repr=False)
class GenerationsRun(Result):
    """What `run_generations` measured and wrote: the generations, the verdict, the figure."""

    _fields_shown = ("generations", "verdict", "plot")
    generations: Generations
    verdict: Verdict
    plot: Path | None = None

    def to_dict(self) -> dict:
        """JSON-ready: the bandwidth, the figure, each generation and the verdict."""
        return jsonable(
            {
                "bandwidth": self.generations.bandwidth,
                "plot": self.plot,
                "generations": self.generations.to_dict()["generations"],
                "verdict": self.verdict.to_dict(),
            }
        )

    def to_pandas(self):
        """The generations' table (`Generations.to_pandas`)."""
        return self.generations.to_pandas()

    def _repr_html_(self) -> str:
        return self.generations._repr_html_() + f"<p>{html.escape(self.verdict.line())}</p>"


def run_generations(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    groups: Mapping[str, np.ndarray] | None = None,
    *,
    rule: VerdictRule | None = None,
    gap: bool = False,
    seed: int = 0,
    plot=None,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> GenerationsRun:
    """`atominfo generations` as one function: `generation_report` of the `groups` of `data`
    ({label: frame numbers} in generation order; default one per file), the
    `campaign_verdict` by `rule` (its gap threshold only with `gap`) and, with
    `plot`, the figure, inside the output guard."""
    rule = rule or VerdictRule()
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(plot, PLOT_SUFFIXES)]):
        groups = data.groups(None) if groups is None else groups
        rows = generation_report(
            {name: data.environments(frames) for name, frames in groups.items()},
            h,
            structures={name: len(frames) for name, frames in groups.items()},
            gap=gap,
            seed=seed,
            progress=progress,
            **engine,
        )
        verdict = campaign_verdict(
            rows,
            window=rule.window,
            max_novelty=rule.max_novelty,
            max_gain=rule.max_gain,
            max_gap=rule.max_gap if gap else None,
        )
        if plot is not None:
            top, _ = plot_generations(rows, verdict=verdict)
            save_figure(top.figure, plot)
    return GenerationsRun(rows, verdict, None if plot is None else Path(plot))
