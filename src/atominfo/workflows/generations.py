"""Active-learning generations: what each new batch adds (docs/method.md, section 4.3).

For generation g, its size, the novelty of its environments against all
environments of generations before g (fraction with dH > 0), the
entropy H and diversity D of the cumulative set of generations 1..g, its
increase over generation g-1, what re-sampling the structures of generations
1..g gives for both (`generations_resampling`), and optionally the
information gap of the cumulative set (learning-curve asymptote minus H,
`workflows.curves`).

`campaign_verdict` (`generations_verdict`) turns the last generations, and
optionally production runs (`generations_production`), into "converged",
"not converged" or "undetermined" by a stated rule.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
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
from atominfo.workflows.generations_production import ProductionNovelty, production_novelty
from atominfo.workflows.generations_resampling import (
    CONFIDENCE,
    DEFAULT_RESAMPLES,
    resampling_null,
)
from atominfo.workflows.generations_verdict import (
    Verdict,
    VerdictRule,
    campaign_verdict,
    verdict_rule,
)


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
    gap_status : "not computed", or the class of the cumulative set's learning
        curve: "saturated", "still rising" or "not determined" (the gap is given
        only for a curve still rising whose fit passes its checks).
    novelty_resampled, gain_resampled : float or None: what re-sampling the
        structures of generations 1..g gives at 95% (novelty, fraction; gain,
        nats); None for the first generation.
    gap_low, gap_high : float or None, nats: the 95% interval of the gap.
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
    novelty_resampled: float | None = None
    gain_resampled: float | None = None
    gap_low: float | None = None
    gap_high: float | None = None


@dataclass(repr=False)
class Generations(Result, Sequence[Generation]):
    """What `generation_report` measured: one `Generation` per generation, in order.

    A sequence of its rows (``rows[-1]``, ``len(rows)``, ``for row in rows``);
    `columns` and `to_pandas` give the table, one row per generation, which is
    also what Jupyter shows.
    """

    rows: list[Generation]
    bandwidth: float
    resamples: int | None = None  # random re-splits behind the re-sampled values

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
    sizes: Mapping[str, Sequence[int]] | None = None,
    gap: bool = False,
    gap_seeds: int = 3,
    resamples: int = DEFAULT_RESAMPLES,
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
    sizes : {label: environments per structure, in row order}, optional: the
        re-sampling moves whole structures (default: single environments).
    gap : also the information gap of each cumulative set: a learning curve
        (`workflows.curves.learning_curve`) over random subsets of its
        environments, `gap_seeds` subsets per size (seeds from `seed`), and
        the asymptote fit. About 12 x `gap_seeds` entropies per generation.
    resamples : random re-splits per generation (>= 19) for what re-sampling
        gives (`generations_resampling`; drawn with `seed`): about the cost
        of one more entropy of all generations.
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
    h = params.check("bandwidth", h, label="bandwidth h")
    gap_seeds = params.check("n_seeds", gap_seeds, label="number of seeds of the gap curve")
    resamples = params.check("verdict_resamples", resamples)
    seed = params.check("seed", seed)
    labels = [str(k) for k in generations]
    blocks = [as_descriptor_matrix(generations[k], f"generation {k!r}") for k in generations]
    for block in blocks:
        check_widths(block, blocks[0])
    missing = [k for k in generations if sizes is not None and k not in sizes]
    if missing:
        raise InputError(f"sizes has no entry for generation {missing[0]!r}")
    counts = [[1] * len(b) if sizes is None else sizes[k] for k, b in zip(generations, blocks)]
    if structures is None and sizes is not None:
        structures = {str(k): len(sizes[k]) for k in generations}
    null = resampling_null(blocks, counts, h, resamples, seed, engine.get("engine"))
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
        resampled = null[g] or (None, None)
        gap_value, interval, status, reason = None, (None, None), "not computed", ""
        if gap:
            gap_value, interval, status, reason = _gap(cumulative, h, gap_seeds, seed, engine)
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
                novelty_resampled=resampled[0],
                gain_resampled=resampled[1],
                gap_low=interval[0],
                gap_high=interval[1],
            )
        )
        if progress is not None:
            progress(1)
    return Generations(rows, float(h), resamples)


def _gap(X, h, n_seeds, seed, engine) -> tuple[float | None, tuple, str, str]:
    """(gap in nats or None, its interval, fit status, reason) of the cumulative set X."""
    from atominfo.workflows.curves import learning_curve

    if len(X) < 10:
        return None, (None, None), "not fitted", f"{len(X)} environments: too few for a curve"
    curve = learning_curve(X, h, by="environments", n_seeds=n_seeds, seed=seed, **engine)
    # The gap is extrapolated only from a curve still rising (`curve.status`).
    reason = curve.fit_reason if curve.status == "still rising" else curve.test.describe()
    gap = curve.gap()
    interval = curve.gap_interval() if gap is not None else None
    return gap, interval or (None, None), curve.status, reason


@dataclass(repr=False)
class GenerationsRun(Result):
    """What `run_generations` measured and wrote: the generations, the production
    runs' novelty (or None), the verdict, the figure."""

    _fields_shown = ("generations", "production", "verdict", "plot")
    generations: Generations
    verdict: Verdict
    plot: Path | None = None
    production: ProductionNovelty | None = None

    def to_dict(self) -> dict:
        """JSON-ready: the bandwidth, the figure, each generation, production, the verdict."""
        return jsonable(
            {
                "bandwidth": self.generations.bandwidth,
                "plot": self.plot,
                "resamples": self.generations.resamples,
                "generations": self.generations.to_dict()["generations"],
                "production": None if self.production is None else self.production.to_dict(),
                "verdict": self.verdict.to_dict(),
            }
        )

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), allow_nan=False)

    def to_pandas(self):
        """The generations' table (`Generations.to_pandas`)."""
        return self.generations.to_pandas()

    def table(self) -> tuple[list[str], list[list[str]], str]:
        """(headers, rows, title) of the text table, one row per generation."""
        gap = any(r.gap_status != "not computed" for r in self.generations)
        headers = ["gen", "structures", "envs", "novel", "resampled", "mean dH", "H", "gain"]
        headers += ["resampled", "D"] + (["gap"] if gap else [])
        rows = [
            [
                r.label,
                str(r.structures),
                str(r.environments),
                _text(r.novelty, "{:.1%}"),
                _text(r.novelty_resampled, "{:.1%}"),
                _text(r.mean_dH, "{:.3f}"),
                f"{r.cumulative_entropy:.4f}",
                _text(r.entropy_gain, "{:+.4f}"),
                _text(r.gain_resampled, "{:+.4f}"),
                f"{r.cumulative_diversity:.4f}",
            ]
            + ([r.gap_status if r.gap is None else f"{r.gap:.4f}"] if gap else [])
            for r in self.generations
        ]
        title = (
            f"active-learning generations (h = {self.generations.bandwidth:g} 1/Å; novel: "
            "dH > 0 against all earlier generations; H, D of the cumulative set and gain of H "
            "over the previous one, nats; resampled: what re-sampling the structures up to "
            f"that generation gives at {CONFIDENCE:.0%}"
            + ("; gap: asymptote - H of the cumulative set" if gap else "")
            + ")"
        )
        return headers, rows, title

    def text_lines(self) -> list[str]:
        """What follows the table: gaps not determined, production, rule, scope, verdict."""
        lines = [
            f"gap after generation {r.label}: {_status_reason(r.gap_status, r.gap_reason)}"
            for r in self.generations
            if r.gap is None and r.gap_reason
        ]
        if self.production is not None:
            lines.append(self.production.line())
        return lines + self.verdict.text().splitlines()

    def _repr_html_(self) -> str:
        return self.generations._repr_html_() + f"<p>{html.escape(self.verdict.line())}</p>"


def _status_reason(status: str, reason: str) -> str:
    """ "status: reason", once (a curve's reason may already start with its status)."""
    return reason if reason.startswith(status) else f"{status}: {reason}"


def _text(value, form: str) -> str:
    return "-" if value is None else form.format(value)


def run_generations(
    data: FrameSet,
    h: float = DEFAULT_BANDWIDTH,
    groups: Mapping[str, np.ndarray] | None = None,
    *,
    rule: VerdictRule | None = None,
    gap: bool = False,
    production: FrameSet | None = None,
    seed: int = 0,
    plot=None,
    progress: Callable[[int], None] | None = None,
    **engine,
) -> GenerationsRun:
    """`atominfo generations` as one function: `generation_report` of the `groups` of `data`
    ({label: frame numbers} in generation order; default one per file; re-sampling
    moves whole structures), the novelty of the `production` structures against all
    of `data` when given, the `campaign_verdict` by `rule` (its gap threshold only
    with `gap`) and, with `plot`, the figure, inside the output guard."""
    rule = rule or VerdictRule()
    inputs = list(dict.fromkeys(data.sources))
    if production is not None:
        inputs += [s for s in dict.fromkeys(production.sources) if s not in inputs]
    with OutputGuard(inputs=inputs, outputs=[(plot, PLOT_SUFFIXES)]):
        groups = data.groups(None) if groups is None else groups
        rows = generation_report(
            {name: data.environments(frames) for name, frames in groups.items()},
            h,
            sizes={name: data.sizes[np.asarray(frames)] for name, frames in groups.items()},
            gap=gap,
            resamples=rule.resamples,
            seed=seed,
            progress=progress,
            **engine,
        )
        checked = None
        if production is not None:
            training = np.concatenate([data.environments(f) for f in groups.values()])
            checked = production_novelty(
                production.X, production.sizes, training, h, engine=engine.get("engine")
            )
        verdict = campaign_verdict(
            rows,
            window=rule.window,
            max_novelty=rule.max_novelty,
            max_gain=rule.max_gain,
            max_gap=rule.max_gap if gap else None,
            production=checked,
        )
        if plot is not None:
            top, _ = plot_generations(rows, verdict=verdict)
            save_figure(top.figure, plot)
    return GenerationsRun(rows, verdict, None if plot is None else Path(plot), checked)


__all__ = [
    "Generation",
    "Generations",
    "GenerationsRun",
    "ProductionNovelty",
    "Verdict",
    "VerdictRule",
    "campaign_verdict",
    "generation_report",
    "production_novelty",
    "run_generations",
    "verdict_rule",
]
