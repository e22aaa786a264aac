"""--threads: more threads than the CPUs this process may use only wait on each other."""

import os

from threadpoolctl import threadpool_info

from atominfo.cli import main

from .conftest import DATA


def test_threads_beyond_the_cpus_start_no_more_threads_than_cpus(capsys):
    """--threads 4096 on 2 cores started 4096 OpenMP threads (seconds of spinning)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert main(["entropy", str(DATA / "cu_hot_32.extxyz"), "--threads=4096"]) == 0
    assert "cu_hot_32.extxyz  32" in capsys.readouterr().out
    counts = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
    assert max(counts.values()) <= cpus, counts
