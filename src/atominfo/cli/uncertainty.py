"""`atominfo calibrate`: model errors against dH, correlations and conformal intervals."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output
from atominfo.workflows.uncertainty import calibrate, force_errors
from atominfo.cli.common import JsonOpt, print_json, stdout, to_jsonable


def _read_frames(path: Path):
    from atominfo.structures.frames import read_frames

    return [f.atoms for f in read_frames(str(path))]


def _load_values(path: Path, what: str, array: str, forces: tuple[str, str] | None = None):
    """A 1-D array from .npy, or per-atom values from an extxyz file."""
    if not path.exists():
        raise InputError("file not found", source=str(path))
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"cannot read ({type(exc).__name__})", source=str(path)) from None
        values = np.asarray(values, dtype=float)
        if values.ndim == 2 and values.shape[0] == 1:
            values = values[0]
        if values.ndim != 1:
            raise InputError(f"{what} must be one value per environment, got shape "
                             f"{values.shape} (one bandwidth only)", source=str(path))
        return values
    frames = _read_frames(path)
    if forces is not None and array not in frames[0].arrays:
        try:
            return force_errors(frames, *forces)
        except InputError as exc:
            raise exc.located(str(path)) from None
    missing = [i for i, f in enumerate(frames) if array not in f.arrays]
    if missing:
        raise InputError(f"no per-atom array {array!r}", source=str(path), frame=missing[0])
    return np.concatenate([np.asarray(f.arrays[array], dtype=float).ravel() for f in frames])


def cmd_calibrate(
    errors: Annotated[Path, typer.Option(
        "--errors", help="Per-environment errors: .npy, or an extxyz with per-atom "
        "reference and predicted forces (error = norm of the difference), or an 'error' array.")],
    dh: Annotated[Optional[Path], typer.Option(
        "--dh", help="Per-environment dH (nats): .npy or extxyz with a 'dH' array "
        "(e.g. from `atominfo dh`). Default: the 'dH' array of the --errors extxyz.")] = None,
    forces: Annotated[str, typer.Option(
        "--forces", help="Name of the reference forces in the extxyz.")] = "forces",
    predicted: Annotated[str, typer.Option(
        "--predicted", help="Name of the predicted forces in the extxyz.")] = "predicted_forces",
    coverage: Annotated[float, typer.Option(
        "--coverage", help="Nominal coverage of the conformal intervals.")] = 0.9,
    test_fraction: Annotated[float, typer.Option(
        "--test-fraction", help="Share held out to measure the intervals' coverage.")] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random splits.")] = 0,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Results as JSON.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Error density against dH with the running average "
        "(.png, .pdf, .svg).")] = None,
    unit: Annotated[str, typer.Option("--unit", help="Unit of the errors, for the plot.")]
    = "eV/Å",
    json: JsonOpt = False,
):
    """Errors against dH: running average (20 bins), Pearson/Spearman, conformal intervals."""
    if output is not None and output.suffix != ".json":
        raise InputError("output must end in .json", source=str(output))
    err = _load_values(errors, "errors", "error", forces=(forces, predicted))
    dH = _load_values(dh if dh is not None else errors, "dH", "dH")
    if dH.shape != err.shape:
        raise InputError(f"dH has {dH.size} values but errors have {err.size}")
    result = calibrate(dH, err, coverage=coverage, test_fraction=test_fraction, seed=seed)
    estimator = result.pop("estimator")
    result["estimator"] = {"curve": estimator.curve_, "spread_curve": estimator.spread_curve_,
                           "conformal_quantile": estimator.quantile_,
                           "n_fit": estimator.n_fit_,
                           "n_calibration": estimator.n_calibration_}
    result["inputs"] = {"dh": str(dh) if dh else str(errors), "errors": str(errors)}
    payload = to_jsonable(result)
    if output is not None:
        with atomic_output(output) as tmp:
            # NaN (empty running-average bins) as null, so any JSON reader accepts it.
            tmp.write_text(_json.dumps(_nan_to_none(payload), indent=1))
    if plot is not None:
        from atominfo.outputs.simulation_plots import plot_calibration

        plot_calibration(dH, err, result["running_average"], plot, unit)
    if json:
        print_json(_nan_to_none(payload))
        return
    c = result["correlations"]
    stdout.print(f"{c['n']} environments: Pearson {c['pearson']:.3f}, Spearman "
                 f"{c['spearman']:.3f} (error vs dH)")
    stdout.print(f"conformal intervals, nominal coverage {coverage:.0%}: held-out coverage "
                 f"{result['held_out_coverage']:.1%} on {result['n_test']} points, mean "
                 f"width {result['mean_interval_width']:.4g} {unit} (seed {seed})")
    ra = result["running_average"]
    stdout.print("running average (dH centre in nats -> mean error):")
    for centre, mean, count in zip(ra["centre"], ra["mean_error"], ra["count"]):
        if count:
            stdout.print(f"  {centre:9.3f}  {mean:.4g}  (n={count})")
    for name, path in (("results", output), ("plot", plot)):
        if path:
            stdout.print(f"{name} written to {path}")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
