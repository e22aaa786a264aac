"""Is my system inside this dataset? A compact, saved reference of a large dataset.

`CompactReference.build` describes a dataset species by species (each centre
species against the same species, as `atominfo.workflows.species`), and keeps
per species at most `per_species_size` weighted cluster centres with their
members' distance shells (`atominfo.reference.compact`). A query's dH against
the species' environments is then estimated from the centres, with a rigorous
interval ``dH_lower <= dH <= dH_upper`` per atom and, per species, the error of
the estimate measured at build time:

* a fraction of each species' environments (`held_out`, at most
  `MAX_HELD_OUT`) is held out and the rest summarised at the same compression
  ratio; on one half of the held-out environments the estimate is calibrated
  against their exact dH against that rest, on the other half its error is
  measured: mean, 95 % quantile and maximum of |error|, the mean error (bias),
  the rate at which the novel flag (dH > 0) disagrees, and the fraction of
  exact values inside the rigorous interval (1 by construction);
* the saved reference then summarises every environment.

The held-out figures describe queries like the dataset's own environments;
the interval holds for every query. A species absent from the reference is
novel by construction (`AbsentSpeciesWarning`), with dH not determined.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atominfo import params
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.multicomponent import to_species_layout
from atominfo.engine import log_kernel_sums
from atominfo.errors import InputError
from atominfo.information import as_descriptor_matrix
from atominfo.reference.compact import (
    IDENTITY,
    Summary,
    calibrated,
    fit_calibration,
    log_sum_bounds,
    summarise,
)
from atominfo.settings import DescriptorSpec, Reading
from atominfo.structures import saved
from atominfo.workflows.compact_reference_results import (
    ERROR_FIELDS,
    EXACT,
    NOT_MEASURED,
    CompactNovelty,
    SavedCompact,
    StatedError,
)
from atominfo.workflows.species import ABSENT, as_symbols, warn_absent
from atominfo.workflows.species_run import data_species, describe_with_species

DEFAULT_SIZE = 1000  # centres per species
MAX_HELD_OUT = 2000  # environments per species held out to measure the error
MIN_HELD_OUT = 10  # fewer: the error is not measured ("not determined")
MIN_FIT = 20  # fewer held-out environments to fit on: the raw estimate is used
_ARRAY_KEYS = (
    "bandwidth",
    "descriptor",
    "centre_species",
    "offsets",
    "centres",
    "shell_counts",
    "shell_radius",
    "shell_mean_sq",
    "calibration",
    *(f"error_{f}" for f in ERROR_FIELDS),
)


def measure_error(
    X: np.ndarray, size: int, h: float, *, held_out: float, seed: int, engine=None
) -> tuple[StatedError, np.ndarray]:
    """The error of the estimated dH of rows like X's, and the estimate's calibration.

    A fraction of the rows is held out and the rest summarised at the same
    compression ratio. With at least 2 `MIN_FIT` held out, the calibration
    (`atominfo.reference.compact.fit_calibration`) is fitted on one half and the
    error measured on the other; else the raw estimate is used and measured on all.
    """
    n = len(X)
    if size >= n:
        return EXACT, IDENTITY.copy()
    n_held = min(int(held_out * n), MAX_HELD_OUT)
    if n_held < MIN_HELD_OUT or n - n_held < 1:
        return NOT_MEASURED, IDENTITY.copy()
    order = np.random.default_rng(seed).permutation(n)
    held, rest = X[order[:n_held]], X[order[n_held:]]
    m = max(1, round(min(size, n) * len(rest) / n))
    bounds = log_sum_bounds(held, summarise(rest, m, seed), h)
    with np.errstate(divide="ignore"):
        exact = log_kernel_sums(held, rest, np.array([h]), engine)[0]
    coef, test = IDENTITY.copy(), np.arange(n_held)
    if n_held // 2 >= MIN_FIT:
        fit, test = test[: n_held // 2], test[n_held // 2 :]
        coef = fit_calibration(bounds[:, fit], exact[fit])
    exact, bounds = exact[test], bounds[:, test]
    ok = np.isfinite(exact)  # an environment beyond every kernel's range: no finite error
    if not ok.any():
        return NOT_MEASURED, coef
    estimate, lower, upper = calibrated(bounds, coef)[ok], bounds[1, ok], bounds[2, ok]
    exact = exact[ok]
    e = exact - estimate  # dH_estimate - dH_exact
    return StatedError(
        n=int(ok.sum()),
        mean=float(np.abs(e).mean()),
        q95=float(np.quantile(np.abs(e), 0.95)),
        max=float(np.abs(e).max()),
        bias=float(e.mean()),
        flag_disagreement=float(np.mean((estimate < 0) != (exact < 0))),
        bounds_held=float(np.mean((lower <= exact) & (exact <= upper))),
    ), coef


class CompactReference:
    """Per species, weighted centres standing in for a dataset's environments.

    Build with `build` (structures) or `from_descriptors` (rows and their
    species); `save` and `load` a .npz; `dh` and `dh_descriptors` query it.

    Attributes
    ----------
    summaries : dict species -> `atominfo.reference.compact.Summary`.
    errors : dict species -> `StatedError` measured at build time.
    parameters : `atominfo.structures.saved.DescriptorParameters` of the descriptors.
    h : bandwidth, 1/Å. descriptor : "multicomponent" or "plain".
    """

    def __init__(self, summaries, errors, parameters, h: float, descriptor: str, calibration=None):
        self.summaries: dict[str, Summary] = dict(sorted(summaries.items()))
        self.errors: dict[str, StatedError] = dict(errors)
        # per species, the coefficients of the calibrated estimate (identity: the raw one)
        self.calibration: dict[str, np.ndarray] = {
            s: np.asarray((calibration or {}).get(s, IDENTITY), dtype=np.float64)
            for s in self.summaries
        }
        self.parameters: saved.DescriptorParameters = parameters
        self.h = float(h)
        self.descriptor = descriptor

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}: {len(v)}/{v.n}" for s, v in self.summaries.items())
        return f"CompactReference(centres/environments {sizes}; h={self.h:g})"

    @property
    def species(self) -> list[str]:
        return list(self.summaries)

    @classmethod
    def from_descriptors(
        cls,
        X,
        species,
        parameters: saved.DescriptorParameters,
        *,
        per_species_size: int = DEFAULT_SIZE,
        h: float = DEFAULT_BANDWIDTH,
        held_out: float = 0.1,
        seed: int = 0,
        descriptor: str = "multicomponent",
        engine=None,
        progress=None,
    ) -> CompactReference:
        """Summarise descriptor rows X (n, d) of centre `species` (n symbols), computed
        with `parameters`; the error is measured on a `held_out` fraction per species.
        `progress` is called with the number of environments of each species summarised."""
        X = as_descriptor_matrix(X)
        if X.shape[1] != parameters.width:
            raise InputError(
                f"descriptors have {X.shape[1]} columns, parameters give {parameters.width}"
            )
        z = as_symbols(species, len(X))
        size = params.check("min_size", per_species_size, label="per_species_size")
        h = params.check("bandwidth", h, label="bandwidth h")
        held_out = float(held_out)
        if not 0.0 <= held_out < 1.0:
            raise InputError(f"held_out must be a fraction in [0, 1), got {held_out}")
        summaries, errors, coefs = {}, {}, {}
        for s in sorted(set(z.tolist())):
            Xs = X[z == s]
            errors[s], coefs[s] = measure_error(
                Xs, size, h, held_out=held_out, seed=seed, engine=engine
            )
            summaries[s] = summarise(Xs, size, seed)
            if progress is not None:
                progress(len(Xs))  # environments summarised
        return cls(summaries, errors, parameters, h, descriptor, coefs)

    @classmethod
    def build(
        cls,
        structures,
        per_species_size: int = DEFAULT_SIZE,
        h: float = DEFAULT_BANDWIDTH,
        *,
        spec: DescriptorSpec | None = None,
        reading: Reading | None = None,
        descriptor: str = "multicomponent",
        held_out: float = 0.1,
        seed: int = 0,
        engine=None,
        progress=None,
    ) -> CompactReference:
        """Describe `structures` (Atoms, lists, paths) species by species and summarise them.

        `spec` gives k, cutoff and rescale volume (its species are the data's);
        `progress` counts atoms described, then environments summarised. See
        `from_descriptors` for the rest.
        """
        spec = spec or DescriptorSpec()
        spec = DescriptorSpec(
            spec.k or DEFAULT_K, spec.cutoff or DEFAULT_CUTOFF, spec.rescale_volume
        )
        species = data_species(structures, reading=reading)
        X, z = describe_with_species(
            structures,
            species,
            spec=spec,
            reading=reading,
            descriptor=descriptor,
            progress=progress,
        )
        parameters = saved.DescriptorParameters(
            k=int(spec.k or DEFAULT_K),
            cutoff=float(spec.cutoff or DEFAULT_CUTOFF),
            rescale_volume=spec.rescale_volume,
            species=saved.DescriptorParameters.blocks(species)
            if descriptor == "multicomponent"
            else (),
            elements=tuple(species),
        )
        return cls.from_descriptors(
            X,
            z,
            parameters,
            per_species_size=per_species_size,
            h=h,
            held_out=held_out,
            seed=seed,
            descriptor=descriptor,
            engine=engine,
            progress=progress,
        )

    # -- saving and loading ---------------------------------------------------------------

    def arrays(self) -> dict:
        """The reference as the arrays of its .npz (besides the descriptor parameters)."""
        s = list(self.summaries.values())
        sizes = [len(v) for v in s]
        errors = [self.errors.get(sp, NOT_MEASURED) for sp in self.summaries]
        out = {
            "bandwidth": np.float64(self.h),
            "descriptor": np.array(self.descriptor),
            "centre_species": np.array(self.species, dtype=str),
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "centres": np.concatenate([v.centres for v in s]),
            "shell_counts": np.concatenate([v.counts for v in s]),
            "shell_radius": np.concatenate([v.radius for v in s]),
            "shell_mean_sq": np.concatenate([v.mean_sq for v in s]),
            "calibration": np.array([self.calibration[sp] for sp in self.summaries]),
        }
        for f in ERROR_FIELDS:
            out[f"error_{f}"] = np.array([getattr(e, f) for e in errors])
        return out

    def save(self, path) -> SavedCompact:
        """Write the reference to `path` (.npz) all-or-none; what was written and its size."""
        from atominfo.runs.atomic import atomic_output

        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise InputError("a compact reference is saved as .npz", source=str(path))
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as fh:
                saved.save_compact(fh, self.arrays(), self.parameters)
            size = tmp.stat().st_size
        n = sum(v.n for v in self.summaries.values())
        full = n * self.parameters.width * 8
        return SavedCompact(
            output=str(path),
            bytes=int(size),
            full_bytes=int(full),
            ratio=size / full,
            species=self.species,
            n=[v.n for v in self.summaries.values()],
            centres=[len(v) for v in self.summaries.values()],
            error=[self.errors.get(s, NOT_MEASURED) for s in self.summaries],
            bandwidth=self.h,
        )

    @classmethod
    def load(cls, path, *, spec: DescriptorSpec | None = None) -> CompactReference:
        """Read a reference saved by `save`; with `spec`, a k, cutoff or rescale volume
        other than the reference's is refused (InputError naming the file and both)."""
        name = str(path)
        a, parameters = saved.read_compact(path, _ARRAY_KEYS)
        if spec is not None:
            run = saved.DescriptorParameters(
                k=spec.k or parameters.k,
                cutoff=spec.cutoff or parameters.cutoff,
                rescale_volume=spec.rescale_volume or parameters.rescale_volume,
            )
            saved.check_same_parameters(parameters, run, name)
        return cls._from_arrays(a, parameters, name)

    @classmethod
    def _from_arrays(cls, a: dict, parameters, name: str) -> CompactReference:
        try:
            names = [str(s) for s in np.atleast_1d(a["centre_species"])]
            offsets = np.asarray(a["offsets"], dtype=np.int64)
            centres = np.asarray(a["centres"])
            shells = [np.asarray(a[k]) for k in ("shell_counts", "shell_radius", "shell_mean_sq")]
            h, descriptor = float(a["bandwidth"]), str(a["descriptor"])
            errors = [np.atleast_1d(a[f"error_{f}"]) for f in ERROR_FIELDS]
            coefs = np.asarray(a["calibration"], dtype=np.float64)
            consistent = (
                centres.dtype == np.float32
                and centres.ndim == 2
                and centres.shape[1] == parameters.width
                and len(offsets) == len(names) + 1
                and offsets[0] == 0
                and offsets[-1] == len(centres)
                and bool(np.all(np.diff(offsets) > 0))
                and all(v.shape == shells[0].shape and len(v) == len(centres) for v in shells)
                and all(len(e) == len(names) for e in errors)
                and coefs.shape == (len(names), len(IDENTITY))
                and bool(np.isfinite(coefs).all())
                and bool(np.isfinite(centres).all() and np.isfinite(shells[1]).all())
                and bool((shells[0] >= 0).all() and (shells[0].sum(axis=1) > 0).all())
                and descriptor in ("multicomponent", "plain")
                and h > 0
            )
        except (KeyError, TypeError, ValueError):
            consistent = False
        if not consistent:
            raise InputError("compact reference arrays are inconsistent (damaged?)", source=name)
        summaries, stated = {}, {}
        calibration = dict(zip(names, coefs))
        for i, s in enumerate(names):
            rows = slice(offsets[i], offsets[i + 1])
            summaries[s] = Summary(centres[rows], *(v[rows] for v in shells))
            stated[s] = StatedError(int(errors[0][i]), *(float(e[i]) for e in errors[1:]))
        return cls(summaries, stated, parameters, h, descriptor, calibration)

    # -- queries ----------------------------------------------------------------------------

    def dh(self, structures, *, reading: Reading | None = None, progress=None) -> CompactNovelty:
        """dH of every atom of `structures` against the reference's atoms of its species,
        described with the reference's descriptor settings."""
        p = self.parameters
        species = data_species(structures, reading=reading)
        if self.descriptor == "multicomponent":
            species = sorted(set(species) | set(p.species) | set(p.elements or ()))
        spec = DescriptorSpec(p.k, p.cutoff, p.rescale_volume)
        Y, z = describe_with_species(
            structures,
            species,
            spec=spec,
            reading=reading,
            descriptor=self.descriptor,
            progress=progress,
        )
        return self.dh_descriptors(Y, z, species=species if self.descriptor != "plain" else None)

    def dh_descriptors(self, Y, y_species, *, species=None) -> CompactNovelty:
        """dH of descriptor rows Y (m, d) with centre species `y_species`, nats.

        `species`: the species blocks of Y's layout when it differs from the
        reference's (the reference's centres are moved to it).
        """
        Y = as_descriptor_matrix(Y, "Y")
        zy = as_symbols(y_species, len(Y), "y_species")
        names = sorted(set(zy.tolist()))
        bounds = np.full((3, len(Y)), np.nan)
        rows: dict[str, list] = {
            k: [] for k in ("n", "ref", "nov", "dec", "status", "error", "stated")
        }
        for s in names:
            mine = zy == s
            rows["n"].append(int(mine.sum()))
            summary = self.summaries.get(s)
            if summary is None:
                for key, v in (("ref", 0), ("nov", 1.0), ("dec", 1.0), ("status", ABSENT)):
                    rows[key].append(v)
                rows["error"].append("no error: dH not determined (species absent)")
                rows["stated"].append(None)
                continue
            centres = self._layout(summary, species)
            if centres.shape[1] != Y.shape[1]:
                raise InputError(
                    f"query descriptors have {Y.shape[1]} columns, the reference's "
                    f"{centres.shape[1]}: describe them with the reference's settings"
                )
            b = log_sum_bounds(Y[mine], Summary(centres, *_shells(summary)), self.h)
            b = -np.stack([calibrated(b, self.calibration[s]), b[1], b[2]])
            bounds[:, mine] = b[[0, 2, 1]]  # estimate, lower, upper of dH
            rows["ref"].append(summary.n)
            rows["nov"].append(float(np.mean(b[0] > 0)))
            rows["dec"].append(float(np.mean((b[2] > 0) | (b[1] <= 0))))
            rows["status"].append("scored")
            rows["error"].append(self.errors.get(s, NOT_MEASURED).line())
            rows["stated"].append(self.errors.get(s, NOT_MEASURED))
        absent = ~np.isin(zy, list(self.summaries))
        warn_absent(absent, names, rows["status"])
        novel = absent | (np.nan_to_num(bounds[0], nan=0.0) > 0)
        return CompactNovelty(
            species=names,
            n=np.array(rows["n"]),
            n_reference=np.array(rows["ref"]),
            novelty=np.array(rows["nov"]),
            decided=np.array(rows["dec"]),
            status=rows["status"],
            error=rows["error"],
            stated=rows["stated"],
            dH=bounds[0],
            dH_lower=bounds[1],
            dH_upper=bounds[2],
            novel=novel,
            absent=absent,
            total_novelty=float(novel.mean()),
            bandwidth=self.h,
        )

    def _layout(self, summary: Summary, species) -> np.ndarray:
        """The centres in the column layout of the query's species list."""
        if species is None or self.descriptor == "plain":
            return summary.centres
        p = self.parameters
        # float64: the shells describe the stored centres, which the layout moves exactly
        return to_species_layout(
            summary.centres.astype(np.float64), p.k, p.species, p.elements, species
        )


def _shells(summary: Summary) -> tuple:
    return summary.counts, summary.radius, summary.mean_sq


def query_files(
    structures, reference, *, spec=None, reading: Reading | None = None, progress=None
) -> CompactNovelty:
    """dH of every atom of `structures` against the compact reference saved at `reference`.

    `spec`: descriptor settings the caller expects (None fields: the reference's);
    any other than the reference's is refused, naming the file and both values.
    """
    result = CompactReference.load(reference, spec=spec).dh(
        structures, reading=reading, progress=progress
    )
    result.source = str(reference)
    return result
