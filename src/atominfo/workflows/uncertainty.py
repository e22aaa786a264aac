"""dH as a model-free uncertainty: error vs dH, correlations, conformal error intervals.

See docs/method.md, section 5. Errors are any per-environment model errors (e.g.
the norm of the force error, eV/Å); dH is in nats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result

N_BINS = 20
FLOAT_MAX = float(np.finfo(np.float64).max)
WINDOW = 0.75  # half-width of the running-average window, in bin widths


def _paired(dH, errors):
    dH = np.asarray(dH, dtype=float).ravel()
    errors = np.asarray(errors, dtype=float).ravel()
    if dH.shape != errors.shape:
        raise InputError(f"dH and errors differ in length: {dH.size} vs {errors.size}")
    if dH.size < 2:
        raise InputError("need at least two (dH, error) pairs")
    for name, v in (("dH", dH), ("errors", errors)):
        if not np.isfinite(v).all():
            raise InputError(f"{name} value {int(np.argmax(~np.isfinite(v)))} is NaN or infinite")
        largest = float(np.max(np.abs(v)))
        if largest * v.size > FLOAT_MAX:  # the running sums would overflow to inf
            raise InputError(
                f"{name} up to {largest:.3g}: a sum of {v.size} of them overflows "
                "float64 (express them in a larger unit)"
            )
    return dH, errors


@dataclass
class RunningAverage(Result):
    """The running average of the error against dH (`running_average`).

    Attributes
    ----------
    centre : (n_bins,) bin centres, nats.
    mean_error : (n_bins,) mean error within the window of each centre, in the
        errors' unit; NaN where no point is within the window.
    count : (n_bins,) points within the window of each centre.
    bin_width : nats.
    """

    _fields_shown = ("centre", "mean_error", "count")
    centre: np.ndarray
    mean_error: np.ndarray
    count: np.ndarray
    bin_width: float

    def to_pandas(self):
        """One row per bin: centre, mean_error, count."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self._bins(), "RunningAverage")

    def _bins(self) -> dict:
        return {"centre": self.centre, "mean_error": self.mean_error, "count": self.count}

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = f"RunningAverage: {len(self.centre)} bins of {self.bin_width:.4g} nats"
        return html_table(self._bins(), caption)


@dataclass
class Correlations(Result):
    """Pearson and Spearman correlation of the error with dH, their p-values, and n."""

    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float
    n: int


def running_average(dH, errors, n_bins: int = N_BINS, window: float = WINDOW) -> RunningAverage:
    """Running average of the error against dH (docs/method.md, section 5.1).

    The dH range is cut into `n_bins` bins of equal width l; at each bin
    centre the errors of all points with |dH - centre| <= window * l are averaged.

    Returns
    -------
    RunningAverage
    """
    dH, errors = _paired(dH, errors)
    n_bins = params.check("n_bins", n_bins)
    window = params.check("window", window)
    lo, hi = float(dH.min()), float(dH.max())
    width = (hi - lo) / n_bins if hi > lo else 1.0
    centres = lo + width * (np.arange(n_bins) + 0.5)
    order = np.argsort(dH)
    sorted_dH, cumulative = dH[order], np.concatenate([[0.0], np.cumsum(errors[order])])
    # Points within the window of each centre form a contiguous run of the sorted dH.
    left = np.searchsorted(sorted_dH, centres - window * width, side="left")
    right = np.searchsorted(sorted_dH, centres + window * width, side="right")
    count = right - left
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cumulative[right] - cumulative[left]) / count
    mean[count == 0] = np.nan
    return RunningAverage(centre=centres, mean_error=mean, count=count, bin_width=width)


def correlations(dH, errors) -> Correlations:
    """Pearson and Spearman correlation of error with dH (and their p-values)."""
    from scipy import stats  # imported here: scipy.stats costs ~1 s of CLI start-up

    dH, errors = _paired(dH, errors)
    pearson = stats.pearsonr(dH, errors)
    spearman = stats.spearmanr(dH, errors)
    return Correlations(
        pearson=float(pearson[0]),
        pearson_p=float(pearson[1]),
        spearman=float(spearman[0]),
        spearman_p=float(spearman[1]),
        n=int(dH.size),
    )


def _curve_function(curve: RunningAverage):
    """Piecewise-linear interpolation of a running-average curve, flat beyond its ends."""
    ok = curve.count > 0
    x, y = curve.centre[ok], curve.mean_error[ok]
    return lambda v: np.interp(np.asarray(v, dtype=float), x, y)


class ConformalErrorEstimator:
    """Error estimate from dH, with split-conformal prediction intervals.

    The estimate is the running average of error against dH on one part of
    the calibration data; the spread (running average of the absolute
    residual) makes the score `|error - estimate| / spread` comparable across
    dH. Split-conformal calibration on the other part gives the quantile q of
    that score, so that the interval ``estimate +- q * spread`` holds a new
    error with probability at least `coverage` (for exchangeable data).

    Parameters
    ----------
    coverage : float
        Nominal coverage of the intervals, in (0, 1).
    n_bins, window : running-average settings (see `running_average`).
    calibration_fraction : float
        Share of the data used for the conformal quantile; the rest fits the curves.
    seed : int
        Seed of the random split.
    """

    def __init__(
        self,
        coverage: float = 0.9,
        *,
        n_bins: int = N_BINS,
        window: float = WINDOW,
        calibration_fraction: float = 0.5,
        seed: int = 0,
    ):
        coverage = params.check("coverage", coverage)
        n_bins = params.check("n_bins", n_bins)
        window = params.check("window", window)
        calibration_fraction = params.check("calibration_fraction", calibration_fraction)
        seed = params.check("seed", seed)
        self.coverage, self.n_bins, self.window = coverage, n_bins, window
        self.calibration_fraction, self.seed = calibration_fraction, seed

    def fit(self, dH, errors) -> ConformalErrorEstimator:
        """Fit the curves and the conformal quantile on (dH, error) pairs."""
        dH, errors = _paired(dH, errors)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(dH.size)
        n_cal = int(round(self.calibration_fraction * dH.size))
        if n_cal < 1 or n_cal >= dH.size:
            raise InputError("too few points to split into fit and calibration parts")
        cal, fit = order[:n_cal], order[n_cal:]
        self.curve_ = running_average(dH[fit], errors[fit], self.n_bins, self.window)
        self._mean = _curve_function(self.curve_)
        residual = np.abs(errors[fit] - self._mean(dH[fit]))
        self.spread_curve_ = running_average(dH[fit], residual, self.n_bins, self.window)
        self._spread_raw = _curve_function(self.spread_curve_)
        # Floor: a bin whose errors are all equal would give a zero spread.
        self.spread_floor_ = max(float(np.mean(residual)) * 1e-3, 1e-12)
        # The spread is floored far below the largest residuals, so a residual near
        # float64's limit has a score beyond it: +inf, which still sorts last.
        with np.errstate(over="ignore"):
            scores = np.abs(errors[cal] - self._mean(dH[cal])) / self._spread(dH[cal])
        rank = int(np.ceil((n_cal + 1) * self.coverage))
        if rank > n_cal:  # the interval would be unbounded: no information
            need = int(np.ceil(self.coverage / (1 - self.coverage)))
            raise InputError(
                f"too few calibration points ({n_cal}) for coverage "
                f"{self.coverage:g}: need at least {need}"
            )
        self.quantile_ = float(np.sort(scores)[rank - 1])
        if not np.isfinite(self.quantile_):
            raise InputError(
                f"the conformal quantile at coverage {self.coverage:g} is beyond float64: "
                f"the calibration errors (up to {np.max(np.abs(errors[cal])):.3g}) are too "
                "far from the curve fitted on the rest for any finite interval"
            )
        self.nonnegative_ = bool((errors >= 0).all())
        self.n_fit_, self.n_calibration_ = fit.size, n_cal
        return self

    def _spread(self, dH):
        return np.maximum(self._spread_raw(dH), self.spread_floor_)

    def _check_fitted(self):
        if not hasattr(self, "quantile_"):
            raise InputError("the estimator is not fitted; call fit(dH, errors) first")

    def predict(self, dH) -> np.ndarray:
        """Estimated error at each dH (the error's unit)."""
        self._check_fitted()
        return self._mean(dH)

    def interval(self, dH) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the conformal interval at each dH."""
        self._check_fitted()
        centre, half = self._mean(dH), self.quantile_ * self._spread(dH)
        lower = centre - half
        if self.nonnegative_:  # errors are norms: a negative bound carries no information
            lower = np.maximum(lower, 0.0)
        return lower, centre + half

    def empirical_coverage(self, dH, errors) -> float:
        """Fraction of (dH, error) pairs whose error lies in its interval."""
        dH, errors = _paired(dH, errors)
        lower, upper = self.interval(dH)
        return float(np.mean((errors >= lower) & (errors <= upper)))


@dataclass
class Calibration(Result):
    """What `calibrate` measured.

    Attributes
    ----------
    running_average : RunningAverage on all points. correlations : Correlations.
    estimator : the fitted ConformalErrorEstimator (left out of `to_dict`).
    coverage : nominal. held_out_coverage : measured on the held-out points.
    mean_interval_width : in the errors' unit. conformal_quantile : of the score.
    n_train, n_test : points fitted and held out. seed : of the random split.
    """

    _fields_shown = ("coverage", "held_out_coverage", "mean_interval_width", "n_test")
    running_average: RunningAverage
    correlations: Correlations
    estimator: ConformalErrorEstimator
    coverage: float
    held_out_coverage: float
    mean_interval_width: float
    conformal_quantile: float
    n_train: int
    n_test: int
    seed: int

    def to_dict(self) -> dict:
        """Every field but the estimator object, as plain JSON types."""
        found = super().to_dict()
        found.pop("estimator")
        return found


def calibrate(
    dH,
    errors,
    *,
    coverage: float = 0.9,
    test_fraction: float = 0.25,
    seed: int = 0,
    n_bins: int = N_BINS,
    window: float = WINDOW,
) -> Calibration:
    """Error vs dH analysis in one call.

    Running average and correlations on all points; a `ConformalErrorEstimator`
    fitted on a random (1 - test_fraction) share and its empirical coverage and
    mean interval width measured on the held-out rest.

    Returns
    -------
    Calibration
    """
    dH, errors = _paired(dH, errors)
    coverage = params.check("coverage", coverage)
    test_fraction = params.check("test_fraction", test_fraction)
    seed = params.check("seed", seed)
    n_bins = params.check("n_bins", n_bins)
    window = params.check("window", window)
    order = np.random.default_rng(seed).permutation(dH.size)
    n_test = int(round(test_fraction * dH.size))
    if n_test < 1 or dH.size - n_test < 4:
        raise InputError(f"too few points ({dH.size}) for a held-out test set")
    test, train = order[:n_test], order[n_test:]
    estimator = ConformalErrorEstimator(
        coverage, n_bins=n_bins, window=window, seed=(seed + 1) % 2**32
    ).fit(dH[train], errors[train])
    lower, upper = estimator.interval(dH[test])
    return Calibration(
        running_average=running_average(dH, errors, n_bins, window),
        correlations=correlations(dH, errors),
        estimator=estimator,
        coverage=coverage,
        held_out_coverage=estimator.empirical_coverage(dH[test], errors[test]),
        mean_interval_width=float(np.mean(upper - lower)),
        conformal_quantile=estimator.quantile_,
        n_train=int(train.size),
        n_test=int(n_test),
        seed=seed,
    )


def force_errors(frames, reference: str = "forces", predicted: str = "predicted_forces"):
    """Per-atom force error norms |F_reference - F_predicted| (the forces' unit, e.g. eV/Å).

    `frames` are ASE Atoms (e.g. read from extxyz); each name is looked up in
    the per-atom arrays, then in the calculator results.
    """
    out = []
    for number, atoms in enumerate(frames):
        pair = [_per_atom_vectors(atoms, name, number) for name in (reference, predicted)]
        out.append(np.linalg.norm(pair[0] - pair[1], axis=1))
    if not out:
        raise InputError("no frames")
    return np.concatenate(out)


def _per_atom_vectors(atoms, name, frame):
    if name in atoms.arrays:
        values = atoms.arrays[name]
    elif atoms.calc is not None and name in getattr(atoms.calc, "results", {}):
        values = atoms.calc.results[name]
    else:
        found = sorted(set(atoms.arrays) | set(getattr(atoms.calc, "results", {}) or {}))
        raise InputError(f"no per-atom array {name!r} (found: {', '.join(found)})", frame=frame)
    values = np.asarray(values, dtype=float)
    if values.shape != (len(atoms), 3):
        raise InputError(
            f"array {name!r} has shape {values.shape}, expected ({len(atoms)}, 3)", frame=frame
        )
    return values


@dataclass
class CalibrationRun(Result):
    """What `run_calibration` computed (the JSON that ``atominfo calibrate -o`` writes).

    Attributes
    ----------
    running_average : RunningAverage. correlations : Correlations.
    coverage : nominal coverage. held_out_coverage : measured on the held-out points.
    mean_interval_width : in the errors' unit. conformal_quantile : of the score.
    n_train, n_test : points fitted and held out. seed : of the random splits.
    estimator : dict with the fitted 'curve' and 'spread_curve', 'conformal_quantile',
        'n_fit', 'n_calibration' (`ConformalErrorEstimator`).
    inputs : dict with the 'dh' and 'errors' files read.
    """

    _fields_shown = ("coverage", "held_out_coverage", "mean_interval_width", "n_test")
    running_average: RunningAverage
    correlations: Correlations
    coverage: float
    held_out_coverage: float
    mean_interval_width: float
    conformal_quantile: float
    n_train: int
    n_test: int
    seed: int
    estimator: dict
    inputs: dict

    def to_pandas(self):
        """The running average as a `pandas.DataFrame`, one row per bin."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.running_average._bins(), "CalibrationRun")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        c = self.correlations
        caption = (
            f"CalibrationRun: {c.n} environments, Pearson {c.pearson:.3f}, Spearman "
            f"{c.spearman:.3f}; held-out coverage {self.held_out_coverage:.1%} at "
            f"{self.coverage:.0%} nominal, mean width {self.mean_interval_width:.4g}"
        )
        return html_table(self.running_average._bins(), caption)


def run_calibration(
    errors,
    dh=None,
    *,
    forces: str = "forces",
    predicted: str = "predicted_forces",
    coverage: float = 0.9,
    test_fraction: float = 0.25,
    seed: int = 0,
    output=None,
    plot=None,
    unit: str = "eV/Å",
) -> CalibrationRun:
    """``atominfo calibrate`` as one function: read errors and dH, `calibrate`, write.

    Parameters
    ----------
    errors : per-environment errors: .npy, or a structure file (extxyz) with an
        'error' array or with reference and predicted forces (error: the norm
        of their difference).
    dh : per-environment dH (nats): .npy, or a structure file with a 'dH' array.
        Default: the 'dH' array of a structure file `errors` (a .npy holds the
        errors only).
    forces, predicted : names of the reference and predicted per-atom forces.
    coverage, test_fraction, seed : as in `calibrate`.
    output : the result as JSON (.json). plot : error density against dH with
        the running average (.png, .pdf or .svg).
    unit : of the errors, for the plot.

    Returns
    -------
    CalibrationRun

    Raises
    ------
    InputError
        Bad input, no dH, a refused output (then nothing is written).
    """
    from atominfo.outputs.plots import PLOT_SUFFIXES
    from atominfo.runs.guard import OutputGuard
    from atominfo.workflows.environment_values import read_environment_values

    errors = Path(errors)
    dh = Path(dh) if dh is not None else None
    output, plot = (Path(p) if p is not None else None for p in (output, plot))
    inputs = [errors] + ([dh] if dh is not None else [])
    with OutputGuard(inputs=inputs, outputs=[(output, (".json",)), (plot, PLOT_SUFFIXES)]):
        err = read_environment_values(errors, "errors", "error", forces=(forces, predicted))
        dH = read_environment_values(dh, "dH", "dH") if dh is not None else _dh_beside(errors)
        if dH.shape != err.shape:
            raise InputError(f"dH has {dH.size} values but errors have {err.size}")
        found = calibrate(dH, err, coverage=coverage, test_fraction=test_fraction, seed=seed)
        estimator = found.estimator
        result = CalibrationRun(
            # what `calibrate` measured, but the estimator object (kept as its values)
            **{n: getattr(found, n) for n in _taken_over()},
            estimator={
                "curve": estimator.curve_,
                "spread_curve": estimator.spread_curve_,
                "conformal_quantile": estimator.quantile_,
                "n_fit": estimator.n_fit_,
                "n_calibration": estimator.n_calibration_,
            },
            inputs={"dh": dh or errors, "errors": errors},
        )
        if output is not None:
            from atominfo.outputs.tables import write_json

            write_json(output, result)
        if plot is not None:
            from atominfo.outputs.plots import plot_calibration, save_figure

            ax = plot_calibration(dH, err, result.running_average, unit)
            save_figure(ax.figure, plot)
    return result


def _taken_over() -> list[str]:
    """The fields of a CalibrationRun that hold a Calibration's values as they are."""
    from dataclasses import fields

    return [f.name for f in fields(Calibration) if f.name != "estimator"]


def _dh_beside(errors: Path) -> np.ndarray:
    """The per-atom 'dH' array of a structure file of errors: the one source of dH
    besides `dh` (a .npy holds one array only, the errors: it never doubles as dH)."""
    from atominfo.workflows.environment_values import read_environment_values

    needed = "dH values are needed: --dh FILE (or a per-atom 'dH' array in an extxyz --errors)"
    if errors.suffix == ".npy":
        raise InputError(needed, source=str(errors))
    return read_environment_values(errors, "dH", "dH", missing=needed)
