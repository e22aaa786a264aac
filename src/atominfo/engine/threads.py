"""The thread runner shared by the CPU engine and the cluster index."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

# One controller, remade only after new imports (which may load a library): making
# one scans every loaded library, about 2 ms, which was a third of a novelty
# check of 108 atoms (`atominfo.NoveltyCalculator`, every MD step).
_controller: tuple[int, ThreadpoolController] | None = None


def one_blas_thread():
    """``threadpool_limits(1, user_api="blas")`` (a context manager), without its start-up cost.

    The limits in force on entry are restored on exit, as with threadpool_limits.
    """
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1].limit(limits=1, user_api="blas")


def run_blocks(work, starts, n_threads: int) -> None:
    """Call ``work(start)`` for every block start, on `n_threads` threads.

    BLAS is held to one thread meanwhile: each of our threads runs its own
    single-threaded product (work must release the GIL: BLAS and nogil numba
    do), since two thread pools on the same cores were about 10x slower.
    """
    with one_blas_thread():
        if n_threads == 1 or len(starts) == 1:
            for start in starts:
                work(start)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                for _ in pool.map(work, starts):
                    pass
