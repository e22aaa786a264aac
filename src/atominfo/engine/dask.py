"""Kernel sums on a Dask cluster: query chunks on workers, the reference sent once.

The queries Y are cut into chunks of rows; each chunk is a task that runs the
CPU engine (`atominfo.engine.cpu.log_kernel_sums`) on a worker, so workers inherit
every speed-up of that engine and its arithmetic (or the torch engine, with
``worker_backend="torch"``, for one GPU per worker). The reference X is
broadcast to every worker once per call (or once per `Reference` object, see
`prepare_reference`), never per task. A row's result depends only on that row
and X: it is the CPU engine's, bit for bit, where a chunk coincides with one
of that engine's query blocks, and otherwise differs only by the rounding of
the BLAS distance product (measured up to 2e-14 nats; tested to 1e-10).

Fault tolerance comes from Dask: the tasks of a worker that dies are rerun
on the others (the reference is replicated on all of them), and results are
still collected in order.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from atominfo.errors import InputError

# Chunks per worker when the caller does not choose: enough to balance load
# and to lose little work to a dead worker, few enough to keep overhead small.
CHUNKS_PER_WORKER = 4
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 64, 8192
# One chunk at a time per worker process: each already uses all the worker's
# threads, and numba's fallback "workqueue" threading layer is not thread-safe.
_ENGINE_LOCK = threading.Lock()
# If every worker holding the reference dies at once, Dask cannot recompute
# scattered data: send it again and resubmit, at most this many times a call.
MAX_REFERENCE_RESENDS = 2
WORKER_WAIT_S = 120
WORKER_BACKENDS = ("cpu", "torch")


class Broadcast:
    """A value held in the memory of every worker of a client.

    Parameters
    ----------
    value : any picklable object (e.g. reference descriptors).
    client : distributed.Client
    """

    def __init__(self, value, client):
        self.value = value
        self.client = client
        self.resend()

    def resend(self) -> None:
        """Broadcast the value (again): after every worker that held it was lost.

        Raises InputError, naming the scheduler, when it has no worker to hold it.
        """
        try:
            self.future = self.client.scatter(self.value, broadcast=True, hash=False)
        except TimeoutError as exc:  # Dask gave up waiting for a worker
            raise _no_workers(self.client, exc) from None


class ScatteredReference(Broadcast):
    """Reference descriptors X (array (n, d), float64, 1/Å) broadcast to the workers."""

    @property
    def X(self) -> np.ndarray:
        return self.value

    def matches(self, X: np.ndarray, client) -> bool:
        if client is not self.client:
            return False
        return X is self.X or (X.shape == self.X.shape and np.array_equal(X, self.X))


def iter_in_order(items, submit, broadcast: Broadcast, window: int):
    """Yield ``(item, result)`` in the order of `items`, with `window` tasks in flight.

    ``submit(item)`` returns the future of one task that reads
    ``broadcast.future``. A task whose worker dies is rerun by Dask (submit
    with ``retries``); if the broadcast value itself is lost (every worker
    holding it died), it is sent again and the pending tasks resubmitted, at
    most MAX_REFERENCE_RESENDS times. Memory: `window` items and results.
    """
    from collections import deque

    source = iter(items)
    pending: deque = deque()
    resends = 0

    def fill():
        while len(pending) < window:
            item = next(source, _END)
            if item is _END:
                return
            pending.append([item, submit(item)])

    fill()
    while pending:
        item, future = pending[0]
        try:
            result = future.result()
        except _lost_errors():
            if resends >= MAX_REFERENCE_RESENDS:
                raise
            resends += 1
            try:
                broadcast.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError as exc:
                raise _no_workers(broadcast.client, exc) from None
            broadcast.resend()
            for entry in pending:
                entry[1] = submit(entry[0])
            continue
        pending.popleft()
        fill()
        yield item, result


_END = object()


def _no_workers(client, exc: BaseException) -> InputError:
    """The error of a cluster left without workers (none started, or every one died)."""
    scheduler = getattr(getattr(client, "scheduler", None), "address", None) or "?"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(f"the Dask scheduler at {scheduler} has no worker ({reason})")


def with_worker_threads(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with as many numba and BLAS threads as the worker has, one call at a time."""
    import numba
    from threadpoolctl import threadpool_limits

    threads = _worker_threads()
    with _ENGINE_LOCK, threadpool_limits(threads):
        # numba.config sets its options at import time, out of the type checker's sight
        # (getattr with a constant name instead is ruff's B009)
        most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(min(threads, most))
        return fn(*args)


def client_of(client):
    """A Client object, or the default one; strings are refused (each call would leak a cluster)."""
    if isinstance(client, str):
        raise InputError(
            "backend 'dask' takes client=<distributed.Client>; make one with "
            f"atominfo.engine.dask_client.get_client({client!r}) and reuse it"
        )
    from atominfo.engine.dask_client import get_client

    return get_client(client)


def prepare_reference(X, *, client=None, **options) -> dict:
    """Engine options for a reference reused across calls: X broadcast to the workers once."""
    client = client_of(client)
    X = np.ascontiguousarray(X, dtype=np.float64)
    return {**options, "client": client, "scattered": ScatteredReference(X, client)}


def _worker_threads() -> int:
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except Exception:  # not on a worker (e.g. a synchronous test scheduler)
        return 1


def chunk_log_sums(
    Y: np.ndarray, X: np.ndarray, h: np.ndarray, options: dict, worker_backend: str = "cpu"
) -> np.ndarray:
    """One task: the worker's engine on a query chunk, with as many threads as the worker has.

    `worker_backend` is "cpu" (numba) or "torch" (e.g. one GPU per worker,
    with ``device`` in `options`).
    """
    from atominfo.engine import BACKENDS

    return with_worker_threads(lambda: BACKENDS[worker_backend](Y, X, h, **options))


def default_chunk_rows(n_rows: int, n_workers: int) -> int:
    rows = math.ceil(n_rows / max(1, CHUNKS_PER_WORKER * n_workers))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, rows)))


def iter_log_kernel_sums(
    Y,
    X,
    h,
    *,
    client=None,
    scattered: ScatteredReference | None = None,
    chunk_rows: int | None = None,
    max_in_flight: int | None = None,
    worker_backend: str = "cpu",
    **options,
):
    """Yield ``(start, block)`` in query order, block = log kernel sums of rows start:start+len.

    At most `max_in_flight` chunks (default 4 per worker thread) are queued at
    once, so memory stays bounded for any number of queries; chunks are
    submitted ahead while earlier ones are collected. A chunk whose worker
    dies is rerun by Dask; if the reference itself is lost (every worker
    holding it died), it is sent again and the pending chunks resubmitted.
    """
    if worker_backend not in WORKER_BACKENDS:
        raise InputError(f"worker_backend must be one of {WORKER_BACKENDS}, got {worker_backend!r}")
    client = client_of(client)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    X = np.ascontiguousarray(X, dtype=np.float64)
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    if scattered is None or not scattered.matches(X, client):
        scattered = ScatteredReference(X, client)
    n_threads = max(1, sum(client.nthreads().values()))
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(len(Y), n_threads)
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be >= 1, got {chunk_rows}")
    window = max_in_flight or 4 * n_threads

    def submit(start):
        return client.submit(
            chunk_log_sums,
            Y[start : start + chunk_rows],
            scattered.future,
            h,
            options,
            worker_backend,
            pure=False,
            retries=2,
        )

    yield from iter_in_order(range(0, len(Y), chunk_rows), submit, scattered, window)


def _lost_errors() -> tuple:
    """Exceptions a result raises when its inputs were lost (not task errors)."""
    from concurrent.futures import CancelledError

    try:
        from distributed.client import FutureCancelledError
    except ImportError:  # older distributed: plain CancelledError
        return (CancelledError,)
    return (CancelledError, FutureCancelledError)


def log_kernel_sums(
    Y,
    X,
    h,
    *,
    client=None,
    scattered: ScatteredReference | None = None,
    chunk_rows: int | None = None,
    progress=None,
    worker_backend: str = "cpu",
    **options,
) -> np.ndarray:
    """``log sum_j K_h(Y_i, X_j)`` computed on a Dask cluster: array (len(h), len(Y)).

    Parameters
    ----------
    Y : array (m, d), queries, 1/Å.
    X : array (n, d), reference, 1/Å.
    h : array (b,), bandwidths, 1/Å.
    client : distributed.Client or None (the current default client); see
        `atominfo.engine.dask_client.get_client` to make one from an address or ``"local:N"``.
    scattered : ScatteredReference, optional
        X already on the workers (from `prepare_reference`); used when it holds X.
    chunk_rows : int, optional
        Query rows per task (default: about 4 tasks per worker thread, 64 to 8192 rows).
    progress : callable, optional
        Called with the number of queries finished, in query order.
    worker_backend : "cpu" (default) or "torch"
        Engine the workers run on their chunks; "torch" with ``device="cuda"``
        puts one GPU behind each worker (start one worker per GPU).
    options : passed to that engine on the workers (e.g. ``memory_bytes``, ``device``).
    """
    h = np.atleast_1d(np.asarray(h, dtype=np.float64))
    out = np.empty((len(h), len(Y)))
    for start, block in iter_log_kernel_sums(
        Y,
        X,
        h,
        client=client,
        scattered=scattered,
        chunk_rows=chunk_rows,
        worker_backend=worker_backend,
        **options,
    ):
        out[:, start : start + block.shape[1]] = block
        if progress is not None:
            progress(block.shape[1])
    return out
