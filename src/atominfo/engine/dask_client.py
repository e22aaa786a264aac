"""Dask clients from one string: a scheduler address or ``local:N``.

The command line's ``--dask`` option and any API user share this parser, so
``--dask local:4`` and ``get_client("local:4")`` start the same cluster: N
worker processes on this machine, bound to loopback (127.0.0.1) so that no
other machine can reach the scheduler unless the user asks for it.

On a batch system (SLURM, PBS, ...) start the cluster with dask-jobqueue and
pass the client (or its ``scheduler.address``) instead; see README.md.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from atominfo.errors import InputError

LOOPBACK = "127.0.0.1"
# Every wait has a bound: connecting to a scheduler, or waiting for its
# scheduler file to appear, gives up after this many seconds (a live scheduler
# answers in milliseconds).
CONNECT_S = 5.0
CONNECT_TIMEOUT = f"{CONNECT_S:g}s"
# How often a scheduler file that does not exist yet is looked for.
FILE_POLL_S = 0.1


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
    timeout: float | None = None,
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
    timeout : float, optional
        Seconds to wait for a scheduler file to appear and, separately, for
        the scheduler to answer (default `CONNECT_S`, 5 s).

    Raises
    ------
    InputError
        Within about `timeout` seconds, naming the address or scheduler
        file: a scheduler that does not answer, a scheduler file that does
        not appear, is not JSON or names no address.

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
    if not isinstance(value, str):  # parse_spec gives an int only for "local"
        raise InputError(f"--dask must be an address or local:N, got {spec!r}")
    from atominfo import params

    # > 0, at most a day
    timeout = params.check("poll", CONNECT_S if timeout is None else timeout, label="timeout")
    address, named = value, ""
    if value.startswith("file:"):
        path = value[len("file:") :]
        address, named = scheduler_file_address(path, timeout), f" (named by {path})"
    try:
        _probe(address, timeout)
        return Client(address, timeout=f"{timeout:g}s")
    except Exception as exc:  # distributed raises OSError, TimeoutError, ValueError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot reach the Dask scheduler at {address}{named} within {timeout:g} s: {reason}"
        ) from None


def _probe(address: str, timeout: float) -> None:
    """Raise OSError unless a Dask scheduler answers at a plain TCP `address` within
    `timeout` seconds. A scheduler writes its handshake as soon as it accepts a
    connection; a port held by anything else (a web server, a stalled process)
    accepted the TCP connection and then kept `Client` waiting for minutes,
    beyond its own timeout. Other protocols (tls://, ucx://) are left to Dask."""
    import socket

    rest = address[len("tcp://") :] if address.startswith("tcp://") else address
    if "://" in rest:
        return
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        return  # Dask names what is wrong with the address
    deadline = time.monotonic() + timeout
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as probe:
        probe.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            answered = probe.recv(1)
        except TimeoutError:
            raise OSError("the port accepted a connection but no Dask scheduler answered") from None
    if not answered:
        raise OSError("the port closed the connection without a Dask handshake")


def scheduler_file_address(path, timeout: float | None = None) -> str:
    """The scheduler address in a Dask scheduler file (``{"address": "tcp://..."}``).

    A scheduler starting at the same time writes the file a moment later: a
    missing or empty file is waited for, at most `timeout` seconds.

    Raises
    ------
    InputError
        Naming the file: still missing or empty after `timeout`, unreadable,
        not JSON, or without a text ``address``.
    """
    path = Path(path)
    timeout = CONNECT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        except IsADirectoryError:
            raise InputError(f"scheduler file {path} is a directory") from None
        except UnicodeDecodeError:
            raise InputError(
                f"scheduler file {path} is not text: not a Dask scheduler file"
            ) from None
        except OSError as exc:
            raise InputError(f"cannot read scheduler file {path} ({exc.strerror})") from None
        if text.strip() or time.monotonic() >= deadline:
            break
        time.sleep(min(FILE_POLL_S, max(0.0, deadline - time.monotonic())))
    if not text.strip():
        state = "is empty" if path.exists() else "not found"
        raise InputError(
            f"scheduler file {path} {state} (waited {timeout:g} s for a scheduler to write it)"
        )
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise InputError(
            f"scheduler file {path} is not JSON ({getattr(exc, 'msg', exc)} at line "
            f"{getattr(exc, 'lineno', '?')}): not a Dask scheduler file"
        ) from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str) or not address.strip():
        raise InputError(
            f"scheduler file {path} names no scheduler address (a Dask scheduler file holds "
            '{"address": "tcp://host:port", ...})'
        )
    return address.strip()


def close_client(client) -> None:
    """Close a client and, if `get_client` started it, its local cluster."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
