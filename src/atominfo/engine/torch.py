"""Kernel sums with PyTorch, on a GPU (``device="cuda"``) or the CPU.

The same arithmetic as the CPU engine, in tensor form: squared distances
from a matrix product block by block, snapped to zero below their rounding
bound, folded into a running log-sum-exp per query, so far outliers stay
finite. Blocks are sized from the device's free memory.

Precision:

* ``precision="float64"`` (default): exact to rounding, like the CPU engine
  (differences of order 1e-12 nats from summation order).
* ``precision="float32"``: distances and exponentials in float32 (much faster
  on most GPUs), running sums in float64. Both sets are first centred on the
  reference mean (computed in float64), which shrinks the norms and so the
  cancellation error of |y|^2 + |x|^2 - 2 y.x. The error in nats grows like
  eps32 * (|y - c|^2 + |x - c|^2) / (2 h^2) (c: the reference mean), over a
  floor of a few eps32 that stays at every h (the exponentials, the float32
  sum and its logarithm); `float32_error_bound` states both, each about 4x
  the largest error we measured. Measured figures: benchmarks/README.md.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from atominfo.engine.fold import centre, inverse_two_h2
from atominfo.errors import InputError

if TYPE_CHECKING:
    import torch
else:
    try:
        import torch
    except ImportError:  # pragma: no cover - the [gpu] extra is missing
        torch = None  # _require_torch() reports it

PRECISIONS = ("float64", "float32")
# Same meaning as cpu.SNAP, per dtype: below SNAP_ULPS rounding units of
# |y|^2 + |x|^2 a squared distance is taken as an exact zero.
SNAP_ULPS = 64
# Fraction of the free device memory a call may use, and block-sized
# temporaries alive at once (norm sums, distances, scaled distances, the
# exponentials inside logsumexp) plus one for margin.
FREE_MEMORY_FRACTION = 0.5
TEMPORARIES = 5
CPU_MEMORY_BYTES = 256 * 2**20
MAX_REFERENCE_BLOCK = 65536


def _require_torch():
    if torch is None:
        raise InputError("backend 'torch' needs PyTorch: pip install 'atominfo[gpu]'")


def resolve_device(device=None):
    """A torch.device: the one asked for, else CUDA when available, else the CPU."""
    _require_torch()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown torch device {device!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but PyTorch sees no CUDA GPU")
    return device


def _dtype(precision):
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.float64 if precision == "float64" else torch.float32


def free_memory_bytes(device) -> int:
    """Bytes a call may use on `device`: half the free GPU memory, or a fixed CPU budget."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * FREE_MEMORY_FRACTION)
    return CPU_MEMORY_BYTES


# Measured float32 errors reached 2.1 eps32 S / (2 h^2) on the test fixtures
# (S: largest |y - c|^2 + largest |x - c|^2); the stated bound is 4x that.
FLOAT32_BOUND_FACTOR = 8.0


def float32_error_bound(Y, X, h) -> np.ndarray:
    """Stated bound on |log-sum(float32) - log-sum(float64)| per bandwidth, nats: array (len(h),).

    ``8 eps32 (max_i |Y_i - c|^2 + max_j |X_j - c|^2) / (2 h^2) + eps32 (2 + log2 B + ln B)``
    with c the centre of X (`atominfo.engine.fold.centre`) and B = min(len(X),
    MAX_REFERENCE_BLOCK) the terms of one float32 log-sum-exp. The first term is
    the rounding of the squared distances (it vanishes as h grows); the second,
    the floor that stays at every h: each exponential (2 eps32), the float32
    cascade sum of B terms (log2 B) and the logarithm of a sum up to B (ln B).
    Measured: at most 8.7 eps32 at h >= 1 (B = 65,536), a third of the floor.
    E.g. about 1.5e-3 nats for bulk-metal descriptors at h = 0.015, 2e-6 to 4e-6 at h >= 1.
    """
    Y = np.asarray(Y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    eps = float(np.finfo(np.float32).eps)
    c = centre(X)
    spread = ((Y - c) ** 2).sum(axis=1).max() + ((X - c) ** 2).sum(axis=1).max()
    terms = max(2, min(len(X), MAX_REFERENCE_BLOCK))
    floor = eps * (2.0 + np.log2(terms) + np.log(terms))
    return FLOAT32_BOUND_FACTOR * eps * spread * inverse_two_h2(h) + floor


class DeviceReference:
    """Reference descriptors on the device, centred, with their squared norms.

    Parameters
    ----------
    X : array (n, d), float64, 1/Å.
    device : torch.device
    precision : "float64" or "float32"
    """

    def __init__(self, X: np.ndarray, device, precision: str = "float64"):
        self.X_host = X
        self.device, self.precision = device, precision
        self.dtype = _dtype(precision)
        # Centring in float64 keeps float32 cancellation small; it leaves
        # distances unchanged in exact arithmetic.
        self.centre = centre(X)
        Xc = torch.from_numpy(X - self.centre).to(device=device, dtype=self.dtype)
        self.X = Xc
        self.x_sq = (Xc * Xc).sum(dim=1)

    def matches(self, X, device, precision) -> bool:
        return (
            self.device == device
            and self.precision == precision
            and (
                X is self.X_host
                or (X.shape == self.X_host.shape and np.array_equal(X, self.X_host))
            )
        )


def prepare_reference(X, *, device=None, precision: str = "float64", **options) -> dict:
    """Engine options holding X on the device, for repeated queries against it."""
    device = resolve_device(device)
    X = np.ascontiguousarray(X, dtype=np.float64)
    ref = DeviceReference(X, device, precision)
    return {**options, "device": device, "precision": precision, "device_reference": ref}


def log_kernel_sums(
    Y,
    X,
    h,
    *,
    device=None,
    precision: str = "float64",
    memory_bytes: int | None = None,
    progress=None,
    device_reference: DeviceReference | None = None,
) -> np.ndarray:
    """``log sum_j K_h(Y_i, X_j)`` with PyTorch: array (len(h), len(Y)), float64.

    Parameters
    ----------
    Y : array (m, d), queries, 1/Å.
    X : array (n, d), reference, 1/Å.
    h : array (b,), bandwidths, 1/Å.
    device : "cuda", "cuda:1", "cpu", a torch.device, or None (CUDA if available).
    precision : "float64" (default, exact to rounding) or "float32" (faster on GPUs).
    memory_bytes : int, optional
        Budget for temporaries; default half the free GPU memory, 256 MiB on CPU.
    progress : callable, optional, called with the number of queries finished.
    device_reference : DeviceReference, optional
        X already on the device (from `prepare_reference`); used when it holds X.
    """
    _require_torch()
    device = resolve_device(device)
    dtype = _dtype(precision)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    if device_reference is None or not device_reference.matches(X, device, precision):
        device_reference = DeviceReference(X, device, precision)
    ref = device_reference
    budget = memory_bytes or free_memory_bytes(device)
    itemsize = 8 if dtype == torch.float64 else 4
    bx = min(len(X), MAX_REFERENCE_BLOCK)
    by = int(max(16, min(len(Y), budget // (TEMPORARIES * itemsize * bx))))
    snap = SNAP_ULPS * torch.finfo(dtype).eps
    inv_host = inverse_two_h2(h)
    inv_two_h2 = torch.as_tensor(inv_host, device=device, dtype=dtype)
    # 1/(2h^2) overflowed (tiny h, or float32): 0 * inf would be nan where d2 = 0
    overflow = [
        not np.isfinite(v) or not torch.isfinite(inv_two_h2[t]).item()
        for t, v in enumerate(inv_host)
    ]
    out = np.empty((len(h), len(Y)))
    with torch.no_grad(), _full_float32_matmul():
        for y0 in range(0, len(Y), by):
            Yb = torch.from_numpy(Y[y0 : y0 + by] - ref.centre).to(device=device, dtype=dtype)
            y_sq = (Yb * Yb).sum(dim=1)
            run = torch.full((len(h), len(Yb)), -torch.inf, device=device, dtype=torch.float64)
            for x0 in range(0, len(X), bx):
                Xb, x_sq = ref.X[x0 : x0 + bx], ref.x_sq[x0 : x0 + bx]
                scale = y_sq[:, None] + x_sq[None, :]
                d2 = torch.addmm(scale, Yb, Xb.T, beta=1.0, alpha=-2.0)
                # Below the rounding bound (and never negative): an exact zero,
                # so a point's own term is exactly 1, as in the CPU engine.
                d2.masked_fill_(d2 < scale.mul_(snap), 0.0)
                del scale
                for t in range(len(h)):
                    exponent = d2 * (-inv_two_h2[t])
                    if overflow[t]:  # only exact duplicates count, as in the CPU fold
                        exponent = torch.nan_to_num(exponent, nan=0.0, neginf=-torch.inf)
                    block = torch.logsumexp(exponent, dim=1)
                    run[t] = torch.logaddexp(run[t], block.to(torch.float64))
                del d2
            out[:, y0 : y0 + len(Yb)] = run.cpu().numpy()
            if progress is not None:
                progress(len(Yb))
    return out


@contextmanager
def _full_float32_matmul():
    """Keep float32 products in full float32: TF32 (if a user enabled it) would void the bound."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
