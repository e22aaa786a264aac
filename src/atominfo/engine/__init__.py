"""Kernel-sum engine: every information quantity is built on `log_kernel_sums`.

``log_kernel_sums(Y, X, h, backend="cpu", **options)`` returns, for each
bandwidth in `h` (1-D array), ``log sum_j exp(-|Y_i - X_j|^2 / (2 h^2))`` as an
array of shape (len(h), len(Y)). Backends share this signature; `options`
are backend-specific (e.g. ``memory_bytes``, ``progress``).

Backends: ``"cpu"`` (numba, `cpu.py`), ``"dask"`` (query chunks on a Dask
cluster, `dask.py`; option ``client``) and ``"torch"`` (PyTorch on a GPU or
CPU, `torch.py`; options ``device``, ``precision``). The last two import
their optional dependencies only when used.
"""

from __future__ import annotations

from atominfo.engine import cpu

BACKENDS = {"cpu": cpu.log_kernel_sums}


def log_kernel_sums(Y, X, h, *, backend: str = "cpu", **options):
    try:
        engine = BACKENDS[backend]
    except KeyError:
        from atominfo.errors import InputError

        raise InputError(f"unknown backend {backend!r}; choose from {sorted(BACKENDS)}") from None
    return engine(Y, X, h, **options)


def _dask_log_kernel_sums(Y, X, h, **options):
    from atominfo.engine import dask as dask_engine

    return dask_engine.log_kernel_sums(Y, X, h, **options)


def _torch_log_kernel_sums(Y, X, h, **options):
    from atominfo.engine import torch as torch_engine

    return torch_engine.log_kernel_sums(Y, X, h, **options)


BACKENDS["dask"] = _dask_log_kernel_sums
BACKENDS["torch"] = _torch_log_kernel_sums


def prepare_reference(X, *, backend: str = "cpu", **options) -> dict:
    """Engine options for querying the same reference X many times.

    The Dask backend broadcasts X to its workers once and the torch backend
    copies it to the device once; the returned options carry that handle, so
    later ``log_kernel_sums(Y, X, h, **options)`` calls reuse it.
    """
    if backend == "dask":
        from atominfo.engine import dask as dask_engine

        return {"backend": backend, **dask_engine.prepare_reference(X, **options)}
    if backend == "torch":
        from atominfo.engine import torch as torch_engine

        return {"backend": backend, **torch_engine.prepare_reference(X, **options)}
    return {"backend": backend, **options}


__all__ = ["log_kernel_sums", "prepare_reference", "BACKENDS"]
