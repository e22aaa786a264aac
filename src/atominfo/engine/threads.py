"""The thread runner shared by the CPU engine and the cluster index."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

# The BLAS libraries' controllers, found again only after new imports (which may
# load a library): finding them scans every loaded library, about 2 ms, which was
# a third of a novelty check of 108 atoms (`atominfo.NoveltyCalculator`, every MD
# step). Setting their threads directly (not through ``limit``, which builds
# every library's info each time) keeps a call at about 10 microseconds.
_controllers: tuple[int, list] | None = None


@contextmanager
def one_blas_thread():
    """Hold BLAS to one thread within the block, as ``threadpool_limits(1, user_api="blas")``
    does, without its start-up cost; the thread counts in force on entry are restored
    on exit."""
    global _controllers
    if _controllers is None or _controllers[0] != len(sys.modules):
        libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        _controllers = (len(sys.modules), libs)
    libs = _controllers[1]
    before = [lib.get_num_threads() for lib in libs]
    try:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(1)
        yield
    finally:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(n)


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
