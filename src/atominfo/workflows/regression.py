"""Kernel regression: a kernel-weighted average of per-environment values (Nadaraya-Watson).

For a query environment y and reference environments x_j with values v_j,

    v(y) = sum_j K_h(y, x_j) v_j / sum_j K_h(y, x_j),

with the Gaussian kernel of docs/method.md, section 2.1. The weights are
computed in log space, ``w_j = exp(log K_j - log sum_l K_l)`` (a softmax of
``-|y - x_j|^2 / 2h^2``), so no weight underflows to a 0/0 however far y is.

Far from every reference environment the average is not determined by the
data: the plain kernel sum ``sum_j K_h(y, x_j) = exp(-dH(y))`` underflows
(dH > 708.4 nats in float64) and the softmax degenerates into the value of
the single nearest environment, whatever the bandwidth. The estimate is then
NaN, with the reason; `max_dh` sets a stricter limit (e.g. ``max_dh=0``:
estimate only inside the reference's domain, dH <= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atominfo import params
from atominfo.errors import InputError
from atominfo.information import DEFAULT_BANDWIDTH, as_descriptor_matrix, check_widths
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading

# -log of the smallest normal float64: beyond this dH the kernel sum underflows.
UNDERFLOW_DH = float(-np.log(np.finfo(np.float64).tiny))  # 708.396 nats
ROWS_PER_BLOCK_ELEMENTS = 4_000_000  # query rows x reference rows of one block


@dataclass
class KernelRegression(Result):
    """Kernel-weighted averages, one per query environment.

    Attributes
    ----------
    estimate : array (m,), the weighted average (units of the values); NaN
        where undetermined.
    dH : array (m,), dH of each query against the reference, nats.
    n_eff : array (m,), effective number of reference environments averaged,
        ``1 / sum_j w_j^2`` (1: one environment dominates).
    determined : bool array (m,), dH <= max_dh.
    max_dh : the limit used, nats.
    reason : why some estimates are NaN ('' when all are determined).
    """

    _fields_shown = ("estimate", "dH", "n_eff", "max_dh", "reason")
    estimate: np.ndarray
    dH: np.ndarray
    n_eff: np.ndarray
    determined: np.ndarray
    max_dh: float
    reason: str


def kernel_regression(
    Y, X, values, h: float = DEFAULT_BANDWIDTH, *, max_dh: float = UNDERFLOW_DH
) -> KernelRegression:
    """Nadaraya-Watson average of `values` (one per row of X) at each row of Y.

    Parameters
    ----------
    Y : array (m, d), query descriptors, 1/Å.
    X : array (n, d), reference descriptors, 1/Å.
    values : array (n,), a real value per reference environment (e.g. a
        force error, eV/Å); finite.
    h : float, bandwidth, 1/Å.
    max_dh : float, nats: queries with dH(y | X) above it get NaN (default:
        where the kernel sum underflows float64, 708.4 nats).

    Returns
    -------
    KernelRegression.
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    h = params.check("bandwidth", h, label="bandwidth h")
    max_dh = params.check("max_dh", max_dh)
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("values must be real numbers") from None
    if v.ndim != 1 or len(v) != len(X):
        raise InputError(
            f"values must be one number per reference environment: {len(X)} "
            f"expected, got shape {v.shape}"
        )
    if not np.isfinite(v).all():
        raise InputError(f"value {int(np.argmin(np.isfinite(v)))} is NaN or infinite")
    from scipy.spatial.distance import cdist

    m = len(Y)
    estimate = np.empty(m)
    log_sum = np.empty(m)
    n_eff = np.empty(m)
    block = max(1, ROWS_PER_BLOCK_ELEMENTS // len(X))
    inv = 0.5 / h / h  # not h * h, which underflows to 0 (ZeroDivisionError) for a tiny h
    if inv == np.inf:
        raise InputError(f"bandwidth h = {h:g} 1/Å is too small: 1/h^2 overflows float64")
    for s in range(0, m, block):
        logk = -cdist(Y[s : s + block], X, "sqeuclidean") * inv
        top = logk.max(axis=1, keepdims=True)
        w = np.exp(logk - top)
        total = w.sum(axis=1)
        log_sum[s : s + block] = top[:, 0] + np.log(total)
        w /= total[:, None]
        estimate[s : s + block] = w @ v
        n_eff[s : s + block] = 1.0 / (w * w).sum(axis=1)
    dH = -log_sum
    determined = dH <= max_dh
    reason = ""
    if not determined.all():
        reason = (
            f"{int((~determined).sum())} of {m} queries have dH > {max_dh:g} nats: "
            + (
                "the kernel weights underflow (far from every reference environment), "
                if max_dh >= UNDERFLOW_DH
                else "beyond the limit set, "
            )
            + "so the data do not determine the average there"
        )
        estimate = np.where(determined, estimate, np.nan)
    return KernelRegression(estimate, dH, n_eff, determined, float(max_dh), reason)


@dataclass
class SmoothingRun(Result):
    """What `run_smoothing` estimated and wrote (``atominfo smooth``).

    Attributes
    ----------
    environments : test environments. determined, undetermined : how many got an
        estimate, and how many NaN (`reason` says why; '' when none).
    mean_estimate, max_estimate : over the determined estimates (None when none).
    max_dh : the dH limit used, nats. bandwidth : 1/Å.
    output : the file written (None where not asked).
    regression : the per-environment `KernelRegression` (estimate, dH, n_eff).
    """

    _fields_shown = ("environments", "determined", "mean_estimate", "max_estimate", "reason")
    environments: int
    determined: int
    undetermined: int
    reason: str
    mean_estimate: float | None
    max_estimate: float | None
    max_dh: float
    bandwidth: float
    output: Path | None
    regression: KernelRegression = field(repr=False)


def run_smoothing(
    test,
    reference,
    values,
    *,
    forces: str = "forces",
    predicted: str = "predicted_forces",
    max_dh: float | None = None,
    output=None,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    progress: Callable[[int], None] | None = None,
) -> SmoothingRun:
    """``atominfo smooth`` as one function: `kernel_regression` of the reference's values
    at every environment of `test`, written to a file.

    Parameters
    ----------
    test : structure file path or list of paths: where to estimate.
    reference : `atominfo.Reference` (one bandwidth).
    values : the reference's values, one per reference environment in order: .npy,
        or a structure file (extxyz) with an 'error' array or with reference and
        predicted forces (value: the norm of their difference).
    forces, predicted : names of the reference and predicted per-atom forces.
    max_dh : leave test environments with dH above it undetermined, nats
        (default: where the kernel weights underflow, `UNDERFLOW_DH`).
    output : per-environment estimates, .npy, or .json with dH and n_eff.
    reading : which frames of `test` are read (`Reading`).
    spec : descriptor settings of `test` (`DescriptorSpec`; default: the reference's).
    progress : called with the number of atoms of each test frame described.

    Returns
    -------
    SmoothingRun

    Raises
    ------
    InputError
        Bad input, values not one per reference environment, a refused output.
    """
    import warnings

    from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, descriptors, padding_note
    from atominfo.runs.guard import OutputGuard
    from atominfo.workflows.environment_values import read_environment_values

    reading = reading or Reading()
    spec = spec or DescriptorSpec()
    test = [str(t) for t in ([test] if isinstance(test, (str, Path)) else test)]
    values, output = Path(values), Path(output) if output is not None else None
    sources = list(getattr(reference, "sources", ()))
    outputs = [(output, (".npy", ".json"))]
    with OutputGuard(inputs=[*test, *sources, values], outputs=outputs):
        known = read_environment_values(values, "values", "error", forces=(forces, predicted))
        if len(known) != len(reference):
            raise InputError(
                f"{len(known)} values for {len(reference)} reference environments "
                "(one value per reference environment, in order)",
                source=str(values),
            )
        k = spec.k if spec.k is not None else (reference.k or DEFAULT_K)
        cutoff = spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF)
        Y = descriptors(
            test,
            k,
            cutoff,
            multicomponent=list(spec.species) if spec.species else False,
            rescale_volume=spec.rescale_volume,
            progress=progress,
            **reading.kwargs(),
        )
        note = padding_note(Y, k, cutoff)
        if note is not None:
            warnings.warn(f"{', '.join(test)}: {note}", stacklevel=2)
        max_dh = UNDERFLOW_DH if max_dh is None else max_dh
        reg = kernel_regression(Y, reference.X, known, reference.h, max_dh=max_dh)
        if output is not None:
            _write_estimates(output, reg)
    estimates = reg.estimate[reg.determined]
    return SmoothingRun(
        environments=len(Y),
        determined=int(reg.determined.sum()),
        undetermined=int((~reg.determined).sum()),
        reason=reg.reason,
        mean_estimate=float(estimates.mean()) if estimates.size else None,
        max_estimate=float(estimates.max()) if estimates.size else None,
        max_dh=max_dh,
        bandwidth=reference.h,
        output=output,
        regression=reg,
    )


def _write_estimates(path: Path, reg: KernelRegression) -> None:
    """The estimates as .npy (NaN where undetermined), or the whole regression as .json."""
    from atominfo.outputs.tables import write_json
    from atominfo.runs.atomic import atomic_output

    if path.suffix == ".npy":
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, reg.estimate)
    else:
        write_json(path, reg)
