"""Species-resolved information: each centre species against the same species.

The joint distribution of (species z, environment x) is estimated with the
kernel ``K((z, x), (z', x')) = [z = z'] K_h(x, x')``: environments of
different centre species never count as alike. With it

* ``H(X | z)`` is the kernel entropy of the n_z environments of species z;
* ``H(species) = -sum_z p(z) log p(z)``, ``p(z) = n_z / n``, the chemical term;
* the joint entropy ``H = -(1/n) sum_i log[(1/n) sum_{j: z_j = z_i} K_h(x_i, x_j)]``
  splits exactly (term by term, ``log(n/n_z)`` plus the species' own term) as
  ``H = H(species) + sum_z p(z) H(X | z)``;
* ``dH(y | X, z) = -log sum_{j: z_j = z} K_h(y, x_j)``: a test atom of species z
  against the reference atoms of species z only. A species the reference lacks
  has no reference term at all (dH would be +inf): its atoms are novel by
  construction, reported as such with dH "not determined" (NaN), never as a number.

Functions here take descriptor rows and one chemical symbol per row;
`atominfo.workflows.species_run` computes both from structure files.
Definitions in docs/method.md ("Species-resolved information").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from ase.data import chemical_symbols

from atominfo import params
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.engine import log_kernel_sums
from atominfo.engine.fold import log_sum_exp
from atominfo.engine.options import as_engine
from atominfo.errors import InputError
from atominfo.information import (
    SAMPLED_ALPHA,
    as_descriptor_matrix,
    check_widths,
    finite_log_sums,
    sampled_entropy,
    surprisals,
)
from atominfo.results import Result

ABSENT = "absent from the reference: novel by construction"


class AbsentSpeciesWarning(UserWarning):
    """Test atoms of a species the reference lacks: counted novel, dH not determined."""


def warn_absent(absent: np.ndarray, names, status, stacklevel: int = 2) -> None:
    """One `AbsentSpeciesWarning` naming the species (`status` ABSENT) of the test
    rows `absent`, when there are any."""
    if absent.any():
        missing = [s for s, st in zip(names, status) if st == ABSENT]
        warnings.warn(
            f"{int(absent.sum())} test atoms are of species the reference lacks "
            f"({', '.join(missing)}): novel by construction, dH not determined",
            AbsentSpeciesWarning,
            stacklevel=stacklevel + 1,
        )


def as_symbols(species, n: int, name: str = "species") -> np.ndarray:
    """One chemical symbol per descriptor row (str array of length `n`).

    Symbols ("Cu") or atomic numbers (29) are accepted; anything else, or a
    length other than `n`, is an InputError.
    """
    arr = np.asarray(species)
    if arr.ndim != 1 or len(arr) != n:
        raise InputError(f"{name} must hold one chemical symbol per row ({n}), got {arr.shape}")
    if arr.dtype.kind in "iu":
        bad = (arr < 1) | (arr >= len(chemical_symbols))
        if bad.any():
            raise InputError(f"{name} row {int(np.argmax(bad))}: {arr[bad][0]} is no atomic number")
        return np.asarray(chemical_symbols, dtype=object)[arr].astype(str)
    if arr.dtype.kind != "U":
        raise InputError(f"{name} must be chemical symbols or atomic numbers, got {arr.dtype}")
    unknown = ~np.isin(arr, chemical_symbols[1:])
    if unknown.any():
        i = int(np.argmax(unknown))
        raise InputError(f"{name} row {i}: {arr[i]!r} is not a chemical symbol")
    return arr


def _table(columns: dict, what: str, caption: str, frame: bool):
    from atominfo.outputs.tables import data_frame, html_table

    return data_frame(columns, what) if frame else html_table(columns, caption)


@dataclass(repr=False)
class SpeciesEntropy(Result):
    """Species-resolved entropy of one set of environments (nats).

    Attributes
    ----------
    species : the centre species, sorted.
    n : environments of each species.
    p : their fractions p(z) = n_z / n.
    entropy : H(X | z) of each species.
    diversity : D(X | z) of each species.
    log_n : log n_z, the largest H(X | z) possible.
    chemical : H(species) = -sum_z p(z) log p(z).
    conditional : sum_z p(z) H(X | z).
    total : the joint entropy H, equal to ``chemical + conditional`` (to rounding).
    total_diversity : the joint diversity, log sum_z exp D(X | z) (NaN when sampled).
    bandwidth : h, 1/Å.
    descriptor : "multicomponent" or "plain" when made from structures, else None.
    n_samples, seed : queries per species and seed of a sampled run (None: exact).
    sampled : per species, whether H(X | z) was sampled (False: exact, n_z <= M).
    low, high : per species, bounds on H(X | z); with the joint's `total_low`,
        `total_high`, all hold together with probability >= 95% (Bonferroni:
        each sampled species' interval at level 0.05 / k for k sampled species;
        the joint's bounds are chemical + sum_z p(z) bounds). Exact species and
        exact runs: low = high = H.
    """

    _fields_shown = ("species", "entropy", "chemical", "conditional", "total")
    species: list
    n: np.ndarray
    p: np.ndarray
    entropy: np.ndarray
    diversity: np.ndarray
    log_n: np.ndarray
    chemical: float
    conditional: float
    total: float
    total_diversity: float
    bandwidth: float
    descriptor: str | None = None
    n_samples: int | None = None
    seed: int | None = None
    sampled: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    total_low: float | None = None
    total_high: float | None = None

    def columns(self) -> dict[str, list]:
        """One row per species: species, n, p, H, D (None: not computed), log_n; for a
        sampled run also H_low, H_high and sampled."""
        out = {
            "species": list(self.species),
            "n": [int(v) for v in self.n],
            "p": [float(v) for v in self.p],
            "H": [float(v) for v in self.entropy],
            "D": [float(v) if np.isfinite(v) else None for v in self.diversity],
            "log_n": [float(v) for v in self.log_n],
        }
        if self.low is not None and self.high is not None and self.sampled is not None:
            out["H_low"] = [float(v) for v in self.low]
            out["H_high"] = [float(v) for v in self.high]
            out["sampled"] = [bool(v) for v in self.sampled]
        return out

    def to_pandas(self):
        """The per-species table (`columns`) as a `pandas.DataFrame`."""
        return _table(self.columns(), "SpeciesEntropy", "", True)

    def _repr_html_(self) -> str:
        caption = (
            f"SpeciesEntropy (nats; h = {self.bandwidth:g} 1/Å): H = {self.total:.6g} = "
            f"H(species) {self.chemical:.6g} + sum p H(X|z) {self.conditional:.6g}"
        )
        return _table(self.columns(), "SpeciesEntropy", caption, False)


def species_entropy(
    X,
    species,
    h: float = DEFAULT_BANDWIDTH,
    *,
    engine=None,
    progress=None,
    sample: int | None = None,
    seed: int = 0,
) -> SpeciesEntropy:
    """Per-species entropy H(X | z), the chemical term H(species) and the joint H.

    Parameters
    ----------
    X : array (n, d) of descriptors, 1/Å.
    species : n chemical symbols (or atomic numbers), the centre species of the rows.
    h : bandwidth, 1/Å (one value).
    engine : EngineOptions or None.
    progress : called with the number of environments done.
    sample : None (exact), or M >= 2: each species with more than M environments
        has H(X | z) estimated from M queries (`atominfo.sampled_entropy`, seed
        `seed`), the others exact; H(species) stays exact, D is not computed
        (NaN), and `low`/`high`, `total_low`/`total_high` are simultaneous 95%
        bounds (Bonferroni over the sampled species).
    seed : seed of the draw of each sampled species.

    Returns
    -------
    SpeciesEntropy; ``total == chemical + conditional`` to rounding (1e-12).

    Examples
    --------
    Two species, each with identical environments: all information is chemical.

    >>> import numpy as np
    >>> from atominfo.workflows.species import species_entropy
    >>> r = species_entropy(np.zeros((4, 3)), ["Na", "Na", "Cl", "Cl"], h=0.015)
    >>> round(r.total, 6), round(r.chemical, 6), r.species
    (0.693147, 0.693147, ['Cl', 'Na'])
    """
    X = as_descriptor_matrix(X)
    z = as_symbols(species, len(X))
    h = params.check("bandwidth", h, label="bandwidth h")
    engine = as_engine(engine).with_progress(progress)
    names = sorted(set(z.tolist()))
    n = np.array([np.count_nonzero(z == s) for s in names])
    if sample is not None:
        return _sampled_species(X, z, names, n, h, engine, sample, seed)
    H, D, joint = np.zeros(len(names)), np.zeros(len(names)), []
    for t, s in enumerate(names):
        Xs = X[z == s]
        log_sums = log_kernel_sums(Xs, Xs, np.array([h]), engine)[0]
        terms = surprisals(log_sums, len(Xs))
        H[t] = terms.mean()
        D[t] = np.clip(log_sum_exp(-log_sums), 0.0, np.log(len(Xs)))
        # the joint term of each atom: its species' surprise plus its own term
        joint.append(np.log(len(X) / len(Xs)) + terms)
    p = n / len(X)
    return SpeciesEntropy(
        species=names,
        n=n,
        p=p,
        entropy=H,
        diversity=D,
        log_n=np.log(n),
        chemical=float(-np.sum(p * np.log(p))),
        conditional=float(np.sum(p * H)),
        total=float(np.concatenate(joint).mean()),
        total_diversity=float(log_sum_exp(D)),
        bandwidth=float(h),
    )


def _sampled_species(X, z, names, n, h, engine, sample, seed) -> SpeciesEntropy:
    """`species_entropy` with H(X | z) sampled (M = `sample` queries) for each species
    of more than M environments; simultaneous 95% bounds by Bonferroni."""
    sample = params.check("n_samples", sample, label="sample")
    seed = params.check("seed", seed)
    sampled = n > sample
    k = max(int(sampled.sum()), 1)
    H, low, high = np.zeros(len(names)), np.zeros(len(names)), np.zeros(len(names))
    for t, s in enumerate(names):
        Xs = X[z == s]
        if sampled[t]:
            est = sampled_entropy(Xs, h, sample, seed, engine=engine, alpha=SAMPLED_ALPHA / k)
            H[t], low[t], high[t] = est.entropy, est.low, est.high
        else:  # every environment: exact
            log_sums = log_kernel_sums(Xs, Xs, np.array([h]), engine)[0]
            H[t] = low[t] = high[t] = surprisals(log_sums, len(Xs)).mean()
    p = n / len(X)
    chemical = float(-np.sum(p * np.log(p)))
    return SpeciesEntropy(
        species=names,
        n=n,
        p=p,
        entropy=H,
        diversity=np.full(len(names), np.nan),
        log_n=np.log(n),
        chemical=chemical,
        conditional=float(np.sum(p * H)),
        total=chemical + float(np.sum(p * H)),
        total_diversity=float("nan"),
        bandwidth=float(h),
        n_samples=int(sample),
        seed=int(seed),
        sampled=sampled,
        low=low,
        high=high,
        total_low=chemical + float(np.sum(p * low)),
        total_high=chemical + float(np.sum(p * high)),
    )


@dataclass(repr=False)
class SpeciesNovelty(Result):
    """dH of each test environment against the reference environments of its own species.

    Attributes
    ----------
    species : the test's centre species, sorted.
    n : test environments of each species.
    n_reference : reference environments of each species (0: absent).
    novelty : fraction novel of each species (dH > 0; 1 for an absent species).
    mean_dH, max_dH : over the species' environments, nats (None: absent species).
    status : "scored", or `ABSENT` with why.
    dH : per test row, nats; NaN for rows of an absent species (not determined).
    novel : per test row, dH > 0 or species absent from the reference.
    absent : per test row, whether its species is absent from the reference.
    total_novelty : fraction of all test environments novel.
    bandwidth : h, 1/Å.
    descriptor : "multicomponent" or "plain" when made from structures, else None.
    """

    _fields_shown = ("species", "novelty", "status", "total_novelty")
    species: list
    n: np.ndarray
    n_reference: np.ndarray
    novelty: np.ndarray
    mean_dH: list
    max_dH: list
    status: list
    dH: np.ndarray
    novel: np.ndarray
    absent: np.ndarray
    total_novelty: float
    bandwidth: float
    descriptor: str | None = None

    def columns(self) -> dict[str, list]:
        """One row per test species: species, n, n_reference, novelty, mean_dH, max_dH,
        status."""
        return {
            "species": list(self.species),
            "n": [int(v) for v in self.n],
            "n_reference": [int(v) for v in self.n_reference],
            "novelty": [float(v) for v in self.novelty],
            "mean_dH": list(self.mean_dH),
            "max_dH": list(self.max_dH),
            "status": list(self.status),
        }

    def to_dict(self) -> dict:
        """The summary and per-species table; the per-row arrays are left out."""
        out = super().to_dict()
        for name in ("dH", "novel", "absent"):
            out.pop(name)
        return out

    def to_pandas(self):
        """The per-species table (`columns`) as a `pandas.DataFrame`."""
        return _table(self.columns(), "SpeciesNovelty", "", True)

    def _repr_html_(self) -> str:
        caption = (
            f"SpeciesNovelty (nats; h = {self.bandwidth:g} 1/Å): "
            f"{self.total_novelty:.6g} of all test environments novel"
        )
        return _table(self.columns(), "SpeciesNovelty", caption, False)


def species_delta_entropy(
    Y,
    y_species,
    X,
    x_species,
    h: float = DEFAULT_BANDWIDTH,
    *,
    engine=None,
    progress=None,
) -> SpeciesNovelty:
    """dH of each row of Y against the rows of X of the same centre species, nats.

    Parameters
    ----------
    Y, y_species : test descriptors (m, d) and their m chemical symbols.
    X, x_species : reference descriptors (n, d) and their n chemical symbols.
    h, engine, progress : as `species_entropy`.

    Returns
    -------
    SpeciesNovelty. Test atoms of a species the reference lacks are novel by
    construction: their dH is NaN (not determined), they count as novel, and an
    `AbsentSpeciesWarning` names the species.
    """
    Y, X = as_descriptor_matrix(Y, "Y"), as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    zy, zx = as_symbols(y_species, len(Y), "y_species"), as_symbols(x_species, len(X), "x_species")
    h = params.check("bandwidth", h, label="bandwidth h")
    engine = as_engine(engine).with_progress(progress)
    names = sorted(set(zy.tolist()))
    hs = np.array([h])
    log_sums = np.zeros((1, len(Y)))  # 0 (a finite placeholder) for absent species
    absent = ~np.isin(zy, zx)
    rows: dict[str, list] = {k: [] for k in ("n", "n_ref", "nov", "mean", "max", "status")}
    for s in names:
        mine, ref = zy == s, zx == s
        rows["n"].append(int(mine.sum()))
        rows["n_ref"].append(int(ref.sum()))
        if not ref.any():
            for key, value in (("nov", 1.0), ("mean", None), ("max", None), ("status", ABSENT)):
                rows[key].append(value)
            continue
        log_sums[:, mine] = log_kernel_sums(Y[mine], X[ref], hs, engine)
        d = -log_sums[0, mine]
        rows["nov"].append(float(np.mean(d > 0)))
        rows["mean"].append(float(d.mean()))
        rows["max"].append(float(d.max()))
        rows["status"].append("scored")
    # a dH beyond float64's range is an error naming the test row (its global number)
    dH = np.where(absent, np.nan, -finite_log_sums(log_sums, hs, "Y")[0])
    warn_absent(absent, names, rows["status"])
    novel = absent | (np.nan_to_num(dH, nan=0.0) > 0)
    return SpeciesNovelty(
        species=names,
        n=np.array(rows["n"]),
        n_reference=np.array(rows["n_ref"]),
        novelty=np.array(rows["nov"]),
        mean_dH=rows["mean"],
        max_dH=rows["max"],
        status=rows["status"],
        dH=dH,
        novel=novel,
        absent=absent,
        total_novelty=float(novel.mean()),
        bandwidth=float(h),
    )
