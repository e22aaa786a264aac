"""Kernel-sum engine: every information quantity is built on `log_kernel_sums`.

``log_kernel_sums(Y, X, h, engine)`` returns, for each bandwidth in `h` (1-D
array), ``log sum_j exp(-|Y_i - X_j|^2 / (2 h^2))`` as an array of shape
(len(h), len(Y)). `engine` is an `EngineOptions` (`options.py`): backend,
threads, memory, device, progress; None means the defaults.

Backends: ``"cpu"`` (numba, `cpu.py`), ``"dask"`` (query chunks on a Dask
cluster, `dask.py`) and ``"torch"`` (PyTorch on a GPU or CPU, `torch.py`).
The last two import their optional dependencies only when used. All exact
sums share one log-sum-exp fold and its error bound (`fold.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from atominfo.engine import cpu
from atominfo.engine.options import EngineOptions, as_engine


def _dask_log_kernel_sums(Y, X, h, **options):
    from atominfo.engine import dask as dask_engine

    return dask_engine.log_kernel_sums(Y, X, h, **options)


def _torch_log_kernel_sums(Y, X, h, **options):
    from atominfo.engine import torch as torch_engine

    return torch_engine.log_kernel_sums(Y, X, h, **options)


# backend name -> its log_kernel_sums(Y, X, h, **backend options)
BACKENDS: dict[str, Callable[..., np.ndarray]] = {
    "cpu": cpu.log_kernel_sums,
    "dask": _dask_log_kernel_sums,
    "torch": _torch_log_kernel_sums,
}


def log_kernel_sums(Y, X, h, engine: EngineOptions | None = None) -> np.ndarray:
    """``log sum_j K_h(Y_i, X_j)`` per bandwidth and query: array (len(h), len(Y)), nats.

    Parameters
    ----------
    Y : array (m, d), queries, 1/Å (float64, validated by the caller).
    X : array (n, d), reference, 1/Å.
    h : array (n_h,), bandwidths, 1/Å.
    engine : EngineOptions or None (defaults: cpu backend).

    Returns
    -------
    array (n_h, m). ``-inf`` where every kernel term of a query lies below
    float64's range (a query beyond ~1e154 kernel widths of all of X);
    callers that report values turn that into an InputError.
    """
    engine = as_engine(engine)
    return BACKENDS[engine.backend](Y, X, h, **engine.backend_kwargs())


def prepare_reference(X, engine: EngineOptions | None = None) -> EngineOptions:
    """`engine` holding X where its backend keeps it (see `EngineOptions.prepare`)."""
    return as_engine(engine).prepare(X)


__all__ = ["log_kernel_sums", "prepare_reference", "BACKENDS", "EngineOptions"]
