"""The thread runner shared by the CPU engine and the cluster index."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits


def run_blocks(work, starts, n_threads: int) -> None:
    """Call ``work(start)`` for every block start, on `n_threads` threads.

    BLAS is held to one thread meanwhile: each of our threads runs its own
    single-threaded product (work must release the GIL: BLAS and nogil numba
    do), since two thread pools on the same cores were about 10x slower.
    """
    with threadpool_limits(1, user_api="blas"):
        if n_threads == 1 or len(starts) == 1:
            for start in starts:
                work(start)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                for _ in pool.map(work, starts):
                    pass
