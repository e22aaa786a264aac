"""`EngineOptions`: how kernel sums are computed (backend, threads, memory, device).

One frozen, validated object replaces loose keyword arguments: a typo such as
``memroy_bytes`` is an InputError naming the valid options, values are checked
once against `atominfo.params`, and the combination is checked too (a device
needs the torch or dask backend, float32 needs torch, a client needs dask).
Options change how fast a result comes, never its value beyond rounding
(float32 on torch excepted, see `atominfo.engine.torch`).

>>> from atominfo import EngineOptions, entropy
>>> fast = EngineOptions(threads=2, memory_bytes=2**28)
>>> entropy(X, 0.015, engine=fast)                          # doctest: +SKIP
>>> EngineOptions.from_kwargs(memroy_bytes=1)                # doctest: +SKIP
InputError: unknown engine option 'memroy_bytes'; valid options: backend, ...
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atominfo import params
from atominfo.errors import InputError


@dataclass(frozen=True)
class EngineOptions:
    """Options of the kernel-sum engine.

    Parameters
    ----------
    backend : "cpu" (numba, default), "dask" (query chunks on a Dask cluster)
        or "torch" (PyTorch, GPU or CPU).
    threads : int or None
        CPU threads of the cpu backend (default: numba's thread count).
    memory_bytes : int or None
        Bound on the working blocks, bytes (default: 256 MiB on the CPU,
        half the free GPU memory with torch). At least 1 MiB.
    device : str, torch.device or None
        torch device ("cuda", "cuda:1", "cpu"; default CUDA when available);
        with ``backend="dask"`` the device of each worker, which then runs
        the torch engine.
    precision : "float64" (default) or "float32" (torch only: faster on
        GPUs, error bounded by `atominfo.engine.torch.float32_error_bound`).
    client : distributed.Client or None
        Dask client (default: the current one); see
        `atominfo.engine.dask_client.get_client` to make one.
    chunk_rows : int or None
        Query rows per Dask task (default: about 4 tasks per worker thread).
    worker_backend : "cpu" (default) or "torch": the engine each Dask worker
        runs on its chunks; a `device` with ``backend="dask"`` implies "torch".
    progress : callable or None
        Called with the number of queries finished, as they finish.
    """

    backend: str = "cpu"
    threads: int | None = None
    memory_bytes: int | None = None
    device: Any = None
    precision: str = "float64"
    client: Any = None
    chunk_rows: int | None = None
    worker_backend: str = "cpu"
    progress: Callable[[int], None] | None = None
    # Backend handle of a reference prepared once (`prepare`): the scattered
    # Dask future or the tensor on the device. Internal.
    prepared: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        def set_(name, value):  # frozen: validated values are set once, here
            object.__setattr__(self, name, value)

        set_("backend", params.check("backend", self.backend))
        set_("threads", params.check_optional("threads", self.threads))
        set_("memory_bytes", params.check_optional("memory_bytes", self.memory_bytes))
        set_("precision", params.check("precision", self.precision))
        set_("chunk_rows", params.check_optional("chunk_rows", self.chunk_rows))
        set_("worker_backend", params.check("worker_backend", self.worker_backend))
        if self.backend == "dask" and self.device is not None:
            set_("worker_backend", "torch")
        if self.progress is not None and not callable(self.progress):
            raise InputError(f"progress must be a callable or None, got {self.progress!r}")
        if self.device is not None and self.backend == "cpu":
            raise InputError("engine option device needs backend 'torch' or 'dask'")
        if self.threads is not None and self.backend != "cpu":
            raise InputError(
                "engine option threads needs backend 'cpu' (Dask workers and "
                "torch choose their own)"
            )
        torch_runs = self.backend == "torch" or self.worker_backend == "torch"
        if self.precision != "float64" and not torch_runs:
            raise InputError("precision 'float32' needs backend 'torch' (or 'dask' with a device)")
        if self.backend != "dask":
            for name in ("client", "chunk_rows"):
                if getattr(self, name) is not None:
                    raise InputError(f"engine option {name} needs backend 'dask'")
            if self.worker_backend != "cpu":
                raise InputError("engine option worker_backend needs backend 'dask'")
        elif isinstance(self.client, str):
            raise InputError(
                "backend 'dask' takes client=<distributed.Client>; make one with "
                f"atominfo.engine.dask_client.get_client({self.client!r}) "
                "and reuse it"
            )
        if self.backend == "torch":
            from atominfo.engine.torch import resolve_device

            set_("device", resolve_device(self.device))

    @classmethod
    def from_kwargs(cls, **options) -> EngineOptions:
        """Options from keyword arguments; an unknown name is an InputError listing valid ones."""
        valid = option_names()
        for name in options:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise InputError(
                    f"unknown engine option {name!r}; valid options: {', '.join(valid)}{hint}"
                )
        return cls(**options)

    def replace(self, **changes) -> EngineOptions:
        """A copy with `changes` applied (validated like `from_kwargs`); drops a prepared reference
        unless only `progress` changes."""
        current = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "prepared"
        }
        options = EngineOptions.from_kwargs(**{**current, **changes})
        if set(changes) <= {"progress"}:
            object.__setattr__(options, "prepared", self.prepared)
        return options

    def with_progress(self, progress) -> EngineOptions:
        """These options reporting to `progress` (unchanged when it is None)."""
        return self if progress is None else self.replace(progress=progress)

    def prepare(self, X) -> EngineOptions:
        """These options holding reference X where the backend keeps it: broadcast to the
        Dask workers, or copied to the torch device, once; later calls with the same X
        reuse it. The cpu backend needs nothing."""
        if self.backend == "dask":
            from atominfo.engine import dask as dask_engine

            handle = dask_engine.prepare_reference(X, client=self.client)
        elif self.backend == "torch":
            from atominfo.engine import torch as torch_engine

            handle = torch_engine.prepare_reference(X, device=self.device, precision=self.precision)
        else:
            return self
        prepared = dataclasses.replace(self)
        object.__setattr__(prepared, "prepared", handle)
        return prepared

    def backend_kwargs(self) -> dict:
        """Keyword arguments of the backend's ``log_kernel_sums``."""
        if self.backend == "cpu":
            kw: dict[str, Any] = {"threads": self.threads, "progress": self.progress}
            if self.memory_bytes is not None:
                kw["memory_bytes"] = self.memory_bytes
            return kw
        if self.backend == "torch":
            kw = {
                "device": self.device,
                "precision": self.precision,
                "memory_bytes": self.memory_bytes,
                "progress": self.progress,
            }
            if self.prepared is not None:
                kw["device_reference"] = self.prepared["device_reference"]
            return kw
        kw = {
            "client": self.prepared["client"] if self.prepared else self.client,
            "chunk_rows": self.chunk_rows,
            "progress": self.progress,
        }
        if self.prepared is not None:
            kw["scattered"] = self.prepared["scattered"]
        if self.worker_backend == "torch":  # each worker runs the torch engine on `device`
            kw.update(worker_backend="torch", device=self.device, precision=self.precision)
        if self.memory_bytes is not None:
            kw["memory_bytes"] = self.memory_bytes
        return kw


def option_names() -> list[str]:
    """Names accepted by `EngineOptions.from_kwargs`, sorted."""
    return sorted(f.name for f in dataclasses.fields(EngineOptions) if f.name != "prepared")


def as_engine(engine) -> EngineOptions:
    """`engine` as EngineOptions: None -> defaults; a mapping -> `EngineOptions.from_kwargs`."""
    if engine is None:
        return DEFAULT
    if isinstance(engine, EngineOptions):
        return engine
    if isinstance(engine, Mapping):
        return EngineOptions.from_kwargs(**engine)
    raise InputError(
        f"engine must be an atominfo.EngineOptions (or None), got {type(engine).__name__}"
    )


DEFAULT = EngineOptions()
