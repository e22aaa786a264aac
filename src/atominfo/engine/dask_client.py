"""Dask clients from one string: a scheduler address or ``local:N``.

The command line's ``--dask`` option and any API user share this parser, so
``--dask local:4`` and ``get_client("local:4")`` start the same cluster: N
worker processes on this machine, bound to loopback (127.0.0.1) so that no
other machine can reach the scheduler unless the user asks for it.

On a batch system (SLURM, PBS, ...) start the cluster with dask-jobqueue and
pass the client (or its ``scheduler.address``) instead; see README.md.
"""

from __future__ import annotations

import logging

from atominfo.errors import InputError

LOOPBACK = "127.0.0.1"
# Every wait has a bound: connecting to a scheduler gives up after this.
CONNECT_TIMEOUT = "20s"


def parse_spec(spec: str) -> tuple[str, int | str]:
    """Split a ``--dask`` value into ("local", n_workers) or ("address", address).

    ``local`` alone means one worker per core. An address is anything Dask
    accepts (``tcp://host:8786``, ``host:8786``, a scheduler file path with
    ``file:`` prefix).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"--dask must be an address or local:N, got {spec!r}")
    spec = spec.strip()
    if spec == "local" or spec.startswith("local:"):
        text = spec.partition(":")[2] or "0"
        try:
            n = int(text)
        except ValueError:
            raise InputError(f"--dask local:N needs an integer N, got {spec!r}") from None
        if n < 0:
            raise InputError(f"--dask local:N needs N >= 1, got {spec!r}")
        if n == 0:
            import os

            n = (
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1
            )
        return "local", int(n)
    return "address", spec


def get_client(
    spec,
    *,
    host: str = LOOPBACK,
    threads_per_worker: int = 1,
    dashboard: bool = False,
    log_level: int = logging.WARNING,
):
    """A `distributed.Client` for a ``--dask`` value, an existing client, or None.

    Parameters
    ----------
    spec : str, Client or None
        ``"local:N"``: start a LocalCluster of N worker processes (each with
        `threads_per_worker` threads) on `host`; ``"local"``: one per core;
        an address (``tcp://10.0.0.5:8786``) or ``"file:/path/scheduler.json"``:
        connect to a running scheduler; a Client: returned as it is;
        None: the current default client, or InputError if there is none.
    host : str
        Interface the local scheduler and workers bind to; loopback by default.
    threads_per_worker : int
        Threads of each local worker (numba and BLAS inside a task use as many).
    dashboard : bool
        Serve the Dask dashboard of a local cluster (off by default).
    log_level : int
        Least level of the log lines a local cluster's scheduler and workers
        print (`logging.WARNING` by default; the command line passes
        `logging.CRITICAL`: its own error line says what went wrong).

    Notes
    -----
    The caller owns the client: ``client.close()`` (and for local clusters
    ``client.cluster.close()``) or use it as a context manager.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the [dask] extra is missing
        raise InputError(
            "the Dask backend needs dask[distributed]: pip install 'atominfo[dask]'"
        ) from None
    if spec is None:
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            raise InputError(
                "backend 'dask' needs a client: pass client=get_client('local:2') "
                "or a scheduler address"
            ) from None
    if isinstance(spec, Client):
        return spec
    kind, value = parse_spec(spec)
    if kind == "local":
        # The HTTP server (and dashboard, if asked) on `host` at a free port:
        # ":0" alone would mean every interface.
        cluster = LocalCluster(
            n_workers=value,
            threads_per_worker=threads_per_worker,
            processes=True,
            host=host,
            dashboard_address=f"{host}:0",
            scheduler_kwargs={"dashboard": dashboard},
            silence_logs=log_level,
        )
        return Client(cluster)
    assert isinstance(value, str)  # parse_spec gives an int only for "local"
    try:
        if value.startswith("file:"):
            return Client(scheduler_file=value[len("file:") :], timeout=CONNECT_TIMEOUT)
        return Client(value, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # distributed raises OSError, TimeoutError, ValueError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot reach the Dask scheduler at {value} within {CONNECT_TIMEOUT}: {reason}"
        ) from None


def close_client(client) -> None:
    """Close a client and, if `get_client` started it, its local cluster."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
