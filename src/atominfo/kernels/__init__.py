"""Kernel-sum engine: every information quantity is built on `log_kernel_sums`.

``log_kernel_sums(Y, X, h, backend="cpu", **options)`` returns, for each
bandwidth in `h` (1-D array), ``log sum_j exp(-|Y_i - X_j|^2 / (2 h^2))`` as an
array of shape (len(h), len(Y)). Backends share this signature; `options`
are backend-specific (e.g. ``memory_bytes``, ``progress``).
"""

from __future__ import annotations

from . import cpu

BACKENDS = {"cpu": cpu.log_kernel_sums}


def log_kernel_sums(Y, X, h, *, backend: str = "cpu", **options):
    try:
        engine = BACKENDS[backend]
    except KeyError:
        from ..errors import InputError

        raise InputError(f"unknown backend {backend!r}; choose from {sorted(BACKENDS)}") from None
    return engine(Y, X, h, **options)


__all__ = ["log_kernel_sums", "BACKENDS"]
