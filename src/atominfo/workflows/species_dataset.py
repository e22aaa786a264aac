"""Species-resolved dataset analyses: the learning curve of each species, what a
compression keeps of each species, and the per-species block of the report page.

Each uses `atominfo.workflows.species.species_entropy` (the kernel that never
counts environments of different centre species as alike) on the rows of a
`FrameSet` whose structures are kept (the species of each row are read from
them):

* `species_learning_curve`: on the same random subsets as the element-blind
  learning curve (`atominfo.workflows.curves.subset_rows`), H(X | z) of each
  species, the joint H and the chemical term H(species) at every size; each
  species' curve (and the joint one) classified by the rise test of
  `atominfo.workflows.curves_rise` ("saturated", "still rising", "not
  determined"). A species' curve starts at the first size where every seed's
  subset holds it; by structures, a species all of whose atoms are in one
  structure is "not determined" (every subset holding it holds the same atoms).
  `run_species_curve` adds the figure (``curve --species --plot``).
* `species_retention`: H(X | z) of each species before and after a selection,
  and the fraction of the species' environments inside the kept ones (dH <= 0
  against the kept environments of the same species).
* `species_report`: the per-species table and curve of `atominfo report --species`.
"""

from __future__ import annotations

import dataclasses
import html
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.curves import (
    CurveOptions,
    LearningCurve,
    judged_curve,
    size_grid,
    subset_rows,
)
from atominfo.workflows.species import (
    AbsentSpeciesWarning,
    SpeciesEntropy,
    as_symbols,
    species_delta_entropy,
    species_entropy,
)

JOINT = "joint"  # the name of the curve of the joint entropy H


def row_species(data: FrameSet) -> np.ndarray:
    """The chemical symbol of each descriptor row of `data` (its structures must be kept)."""
    if not data.atoms:
        raise InputError(
            "the species-resolved mode needs the structures (the species of each atom), "
            "not saved descriptors"
        )
    return np.concatenate([np.asarray(a.get_chemical_symbols()) for a in data.atoms])


@dataclass(repr=False)
class SpeciesCurve(Result):
    """Learning curves of each species' H(X | z), of the joint H and of H(species).

    Attributes
    ----------
    species : the data's centre species, sorted.
    curves : dict name -> LearningCurve: each species (its H(X | z); sizes where
        every seed's subset holds it), then ``"joint"`` (the joint H). Each has
        its class (``status``) by the rise test.
    chemical : array (n_sizes, n_seeds), H(species) of each subset, nats.
    sizes : the sampled sizes, in `unit`.
    unit : "structures" or "environments".
    bandwidth : h, 1/Å.
    descriptor : "multicomponent" or "plain" (the CLI's), or None.
    """

    _fields_shown = ("species", "unit", "sizes", "bandwidth")
    species: list
    curves: dict
    chemical: np.ndarray
    sizes: np.ndarray
    unit: str
    bandwidth: float
    descriptor: str | None = None

    def status(self) -> dict[str, str]:
        """{species (and "joint"): "saturated", "still rising" or "not determined"}."""
        return {name: c.status for name, c in self.curves.items()}

    def verdict(self) -> str:
        """One line: the species whose environments are still missing (curve still rising),
        those saturated and those not determined."""
        by: dict[str, list[str]] = {}
        for s in self.species:
            by.setdefault(self.curves[s].status, []).append(s)
        parts = [f"{status}: {', '.join(names)}" for status, names in by.items()]
        return "per species, " + "; ".join(parts)

    def rows(self) -> list[dict]:
        """One row per curve (species, "joint", "chemical") and size: N, environments
        (mean over seeds), H_mean and H_sd over seeds (nats)."""
        out = [{"curve": name, **row} for name, c in self.curves.items() for row in c.rows()]
        for i, n in enumerate(self.sizes):
            values = self.chemical[i]
            out.append(
                {
                    "curve": "chemical",
                    "N": int(n),
                    "environments": None,
                    "H_mean": float(values.mean()),
                    "H_sd": float(values.std()),
                    "fit": None,
                }
            )
        return out

    def to_pandas(self):
        """`rows` as a `pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_dict(self) -> dict:
        """JSON-ready: the sizes, each curve's `to_dict`, H(species) per size and seed,
        and each curve's class."""
        return jsonable(
            {
                "species": list(self.species),
                "unit": self.unit,
                "bandwidth": self.bandwidth,
                "descriptor": self.descriptor,
                "sizes": self.sizes.tolist(),
                "status": self.status(),
                "verdict": self.verdict(),
                "curves": {name: c.to_dict() for name, c in self.curves.items()},
                "chemical": {
                    "entropy": self.chemical.tolist(),
                    "entropy_mean": self.chemical.mean(axis=1).tolist(),
                    "entropy_std": self.chemical.std(axis=1).tolist(),
                },
            }
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("curve", "H at full size (nats)", "class"))
        body = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{c.mean[-1]:.4f}</td>"
            f"<td>{html.escape(c.status)}</td></tr>"
            for name, c in self.curves.items()
        )
        caption = f"SpeciesCurve (h = {self.bandwidth:g} 1/Å, by {self.unit})"
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>"


def species_learning_curve(
    data: FrameSet,
    species,
    h: float,
    options: CurveOptions | None = None,
    *,
    engine=None,
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> SpeciesCurve:
    """The learning curve of each species' H(X | z), of the joint H and of H(species).

    Parameters
    ----------
    data : FrameSet.
    species : one chemical symbol per row of ``data.X`` (`row_species`).
    h : bandwidth, 1/Å (one value).
    options : CurveOptions (by, sizes, n_sizes, n_seeds, seed, fit, level); the
        subsets are those of `atominfo.workflows.curves.learning_curve` with the
        same options. `at` is not taken. Its fields may also be given as keywords
        (``n_sizes=9, n_seeds=5``), which replace those of `options`.
    engine : EngineOptions or None.
    progress : called with the number of subsets done.
    """
    options, rest = CurveOptions.merged(options, keywords)
    if rest:
        raise InputError(f"unknown option(s) of a learning curve: {', '.join(rest)}")
    if options.at:
        raise InputError("the species-resolved learning curve takes no further sizes (at)")
    if options.sample is not None:
        raise InputError("the species-resolved learning curve takes no sample (its H is exact)")
    if np.ndim(h) != 0:
        raise InputError("a learning curve takes one bandwidth")
    z = as_symbols(species, len(data.X))
    total = len(data) if options.by == "structures" else len(data.X)
    grid, _ = size_grid(options, total)
    names = sorted(set(z.tolist()))
    seeds = [options.seed + i for i in range(options.n_seeds)]
    shape = (len(names) + 2, len(grid), len(seeds))  # species..., joint, chemical
    H, counts = np.full(shape, np.nan), np.zeros(shape, dtype=np.int64)
    for i, N in enumerate(grid):
        for j, s in enumerate(seeds):
            if N == total and j > 0:  # one subset at the full size: the whole set
                H[:, i, j], counts[:, i, j] = H[:, i, 0], counts[:, i, 0]
                continue
            rows = np.arange(len(data.X)) if N == total else subset_rows(data, options.by, N, s)
            r = species_entropy(data.X[rows], z[rows], h, engine=engine)
            for t, name in enumerate(r.species):
                k = names.index(name)
                H[k, i, j], counts[k, i, j] = r.entropy[t], r.n[t]
            H[-2:, i, j], counts[-2:, i, j] = (r.total, r.chemical), len(rows)
            if progress is not None:
                progress(len(seeds) if N == total else 1)
    curves: dict[str, LearningCurve] = {}
    for k, name in enumerate([*names, JOINT]):
        held = np.all(np.isfinite(H[k]), axis=1)  # sizes where every seed holds the species
        full = int(counts[k, -1, 0])
        curve = judged_curve(
            grid[held], H[k][held], counts[k][held], seeds, options, h, total, full
        )
        if options.by == "structures" and name != JOINT and _in_one_structure(data, z, name):
            curve = _undetermined(curve, f"every {name} environment is in one structure")
        curves[name] = curve
    return SpeciesCurve(names, curves, H[-1] + 0.0, grid, options.by, float(h))


def _in_one_structure(data: FrameSet, z: np.ndarray, name: str) -> bool:
    return len(np.unique(data.frame[z == name])) < 2


def _undetermined(curve: LearningCurve, why: str) -> LearningCurve:
    """`curve` classified "not determined": a curve over structures whose species is held
    by one structure takes the same environments at every size that holds it (its rise
    is 0 whatever more data would add)."""
    why = f"{why}: every subset holding it holds the same environments"
    test = dataclasses.replace(curve.test, status="not determined", reason=why, interval=None)
    return dataclasses.replace(curve, test=test, fit=None, fit_reason=why)


@dataclass(repr=False)
class SpeciesRetention(Result):
    """What a selection keeps of each species.

    Attributes
    ----------
    species : the full set's centre species, sorted.
    n, n_kept : environments of each species in the full set and in the selection.
    entropy, entropy_kept : H(X | z) of each species in the full set and the
        selection, nats (None where the selection lacks the species).
    retained : fraction of the species' environments inside the kept ones
        (dH <= 0 against the kept environments of the same species; 0 for a
        species the selection lacks).
    missing : the species the selection lacks.
    before, after : the `SpeciesEntropy` of the full set and of the selection.
    """

    _fields_shown = ("species", "retained", "missing")
    species: list
    n: list
    n_kept: list
    entropy: list
    entropy_kept: list
    retained: list
    missing: list
    before: SpeciesEntropy
    after: SpeciesEntropy

    def columns(self) -> dict[str, list]:
        """One row per species: species, n, n_kept, H, H_kept, retained."""
        return {
            "species": list(self.species),
            "n": list(self.n),
            "n_kept": list(self.n_kept),
            "H": list(self.entropy),
            "H_kept": list(self.entropy_kept),
            "retained": list(self.retained),
        }

    def to_dict(self) -> dict:
        """The per-species table, the joint and chemical terms before and after."""
        return jsonable(
            {
                **self.columns(),
                "missing": list(self.missing),
                "total": self.before.total,
                "total_kept": self.after.total,
                "chemical": self.before.chemical + 0.0,  # one species: 0, not -0
                "chemical_kept": self.after.chemical + 0.0,
            }
        )

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        return html_table(self.columns(), "SpeciesRetention (nats)")


def species_retention(X, species, kept_rows, h: float, *, engine=None) -> SpeciesRetention:
    """H(X | z) of each species in the full set `X` and in its rows `kept_rows`, and the
    fraction of each species' environments inside the kept ones of the same species."""
    z = as_symbols(species, len(X))
    kept = np.asarray(kept_rows, dtype=np.int64)
    before = species_entropy(X, z, h, engine=engine)
    after = species_entropy(X[kept], z[kept], h, engine=engine)
    with warnings.catch_warnings():  # a species the selection lacks is reported as missing
        warnings.simplefilter("ignore", AbsentSpeciesWarning)
        inside = species_delta_entropy(X, z, X[kept], z[kept], h, engine=engine)
    kept_of = dict(zip(after.species, zip(after.n, after.entropy)))
    missing = [s for s in before.species if s not in kept_of]
    return SpeciesRetention(
        species=list(before.species),
        n=[int(v) for v in before.n],
        n_kept=[int(kept_of[s][0]) if s in kept_of else 0 for s in before.species],
        entropy=[float(v) for v in before.entropy],
        entropy_kept=[float(kept_of[s][1]) if s in kept_of else None for s in before.species],
        retained=[float(1.0 - nov) for nov in inside.novelty],
        missing=missing,
        before=before,
        after=after,
    )


@dataclass(repr=False)
class SpeciesReport(Result):
    """The per-species block of the dataset report: the whole set's `SpeciesEntropy`
    (H(X | z), D, n, share p(z)) and the `SpeciesCurve`."""

    entropy: SpeciesEntropy
    curve: SpeciesCurve

    def to_dict(self) -> dict:
        return jsonable({**self.entropy.to_dict(), "curve": self.curve.to_dict()})


def species_report(
    data: FrameSet, h: float, options: CurveOptions | None = None, *, engine=None
) -> SpeciesReport:
    """The per-species table and learning curve of `data` (its structures kept)."""
    z = row_species(data)
    curve = species_learning_curve(data, z, h, options, engine=engine)
    return SpeciesReport(species_entropy(data.X, z, h, engine=engine), curve)


def run_species_curve(
    data: FrameSet,
    h: float,
    options: CurveOptions | None = None,
    *,
    plot=None,
    engine=None,
    progress: Callable[[int], None] | None = None,
) -> SpeciesCurve:
    """`species_learning_curve` of `data` (its structures kept) and, with `plot`, its
    figure: one line per species and one for the joint H (written only when the run
    succeeds; `atominfo curve --species --plot`)."""
    from atominfo.outputs.plots import PLOT_SUFFIXES, plot_learning_curves, save_figure
    from atominfo.runs.guard import OutputGuard

    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(plot, PLOT_SUFFIXES)]):
        curve = species_learning_curve(
            data, row_species(data), h, options, engine=engine, progress=progress
        )
        if plot is not None:
            ax = plot_learning_curves(list(curve.curves.values()), labels=list(curve.curves))
            ax.set_title(
                f"Learning curve of each species: H(X|z) of random subsets vs size N "
                f"(h = {h:g} 1/Å)",
                fontsize=10,
            )
            save_figure(ax.figure, plot)
    return curve
