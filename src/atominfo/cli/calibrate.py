"""Errors against dH: running average (20 bins), Pearson/Spearman, conformal intervals."""

from __future__ import annotations

from pathlib import Path

from atominfo.cli import options


def add_arguments(parser) -> None:
    t = options.typed
    parser.add_argument(
        "--errors",
        type=Path,
        required=True,
        help="Per-environment errors: .npy, or an extxyz with per-atom "
        "reference and predicted forces (error = norm of the difference), or "
        "an 'error' array.",
    )
    parser.add_argument(
        "--dh",
        type=Path,
        default=None,
        help="Per-environment dH (nats): .npy or extxyz with a 'dH' array "
        "(e.g. from `atominfo dh`). Default: the per-atom 'dH' array of an "
        "extxyz --errors file; without either the command stops.",
    )
    parser.add_argument(
        "--forces", default="forces", help="Name of the reference forces in the extxyz."
    )
    parser.add_argument(
        "--predicted",
        default="predicted_forces",
        help="Name of the predicted forces in the extxyz.",
    )
    parser.add_argument(
        "--coverage",
        type=t("coverage", "--coverage"),
        default=0.9,
        help="Nominal coverage of the conformal intervals.",
    )
    parser.add_argument(
        "--test-fraction",
        type=t("test_fraction", "--test-fraction"),
        default=0.25,
        help="Share held out to measure the intervals' coverage.",
    )
    options.add_seed(parser, "Seed of the random splits.")
    parser.add_argument("-o", "--output", type=Path, default=None, help="Results as JSON.")
    options.add_plot(parser)
    parser.add_argument("--unit", default="eV/Å", help="Unit of the errors, for the plot.")
    options.add_output(parser, quiet=False)


def _values(path: Path, what: str, array: str, forces=None, missing: str | None = None):
    """A 1-D array from .npy, or per-atom values from an extxyz file.

    `missing`: the message where a frame lacks the per-atom `array`.
    """
    import numpy as np

    from atominfo.errors import InputError
    from atominfo.structures.frames import check_input_file, read_frames
    from atominfo.workflows.uncertainty import force_errors

    if path.suffix == ".npy":
        check_input_file(str(path))  # a FIFO would block np.load
        try:
            values = np.load(path, allow_pickle=False)
        except Exception as exc:  # numpy raises many types for a bad file
            raise InputError(
                f"cannot read as .npy ({type(exc).__name__})", source=str(path)
            ) from None
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
            raise InputError(f"{what} must be real numbers", source=str(path))
        values = values.astype(float)
        if values.ndim == 2 and values.shape[0] == 1:
            values = values[0]
        if values.ndim != 1:
            raise InputError(
                f"{what} must be one value per environment, got shape "
                f"{values.shape} (one bandwidth only)",
                source=str(path),
            )
        return values
    frames = [f.atoms for f in read_frames(str(path))]
    if forces is not None and array not in frames[0].arrays:
        try:
            return force_errors(frames, *forces)
        except InputError as exc:
            raise exc.located(str(path)) from None
    absent = [i for i, f in enumerate(frames) if array not in f.arrays]
    if absent:
        raise InputError(
            missing or f"no per-atom array {array!r}", source=str(path), frame=absent[0]
        )
    return np.concatenate([np.asarray(f.arrays[array], dtype=float).ravel() for f in frames])


def _dh_beside(errors: Path):
    """The per-atom 'dH' array of an extxyz errors file: the one source of dH besides --dh.

    A .npy holds one array only, the errors: it never doubles as dH.
    """
    from atominfo.errors import InputError

    needed = "dH values are needed: --dh FILE (or a per-atom 'dH' array in an extxyz --errors)"
    if errors.suffix == ".npy":
        raise InputError(needed, source=str(errors))
    return _values(errors, "dH", "dH", missing=needed)


def run(args) -> None:
    from atominfo.cli.report import print_json, say, write_json
    from atominfo.errors import InputError
    from atominfo.outputs.guard import OutputGuard
    from atominfo.workflows.uncertainty import calibrate

    inputs = [args.errors] + ([args.dh] if args.dh is not None else [])
    outputs = [(args.output, (".json",)), (args.plot, (".png", ".pdf", ".svg"))]
    with OutputGuard(inputs=inputs, outputs=outputs):
        err = _values(args.errors, "errors", "error", forces=(args.forces, args.predicted))
        dH = _values(args.dh, "dH", "dH") if args.dh is not None else _dh_beside(args.errors)
        if dH.shape != err.shape:
            raise InputError(f"dH has {dH.size} values but errors have {err.size}")
        result = calibrate(
            dH, err, coverage=args.coverage, test_fraction=args.test_fraction, seed=args.seed
        )
        estimator = result.pop("estimator")
        result["estimator"] = {
            "curve": estimator.curve_,
            "spread_curve": estimator.spread_curve_,
            "conformal_quantile": estimator.quantile_,
            "n_fit": estimator.n_fit_,
            "n_calibration": estimator.n_calibration_,
        }
        result["inputs"] = {"dh": args.dh or args.errors, "errors": args.errors}
        if args.output is not None:
            write_json(args.output, result)
        if args.plot is not None:
            from atominfo.cli.report import save_plot
            from atominfo.outputs.plots import plot_calibration

            save_plot(plot_calibration(dH, err, result["running_average"], args.unit), args.plot)
    if args.json:
        print_json(result)
        return
    c = result["correlations"]
    say(
        f"{c['n']} environments: Pearson {c['pearson']:.3f}, Spearman {c['spearman']:.3f} "
        "(error vs dH)"
    )
    say(
        f"conformal intervals, nominal coverage {args.coverage:.0%}: held-out coverage "
        f"{result['held_out_coverage']:.1%} on {result['n_test']} points, mean width "
        f"{result['mean_interval_width']:.4g} {args.unit} (seed {args.seed})"
    )
    ra = result["running_average"]
    say("running average (dH centre in nats -> mean error):")
    for centre, mean, count in zip(ra["centre"], ra["mean_error"], ra["count"]):
        if count:
            say(f"  {centre:9.3f}  {mean:.4g}  (n={count})")
    for name, path in (("results", args.output), ("plot", args.plot)):
        if path:
            say(f"{name} written to {path}")
