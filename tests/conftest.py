import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
STRUCTURES = [
    "cu_fcc_108",
    "ta_bcc_primitive_1",
    "mg_hcp_triclinic_16",
    "cu_hot_32",
    "benzene_12",
    "c60_60",
    "cu_slab_pbc_TTF_36",
]


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def expected():
    return np.load(DATA / "expected.npz")


@pytest.fixture(scope="session")
def expected_json():
    return json.loads((DATA / "expected.json").read_text())


@pytest.fixture(scope="session")
def crystals():
    """Descriptors of the three crystal fixtures together (the 156 environments of
    expected.json), k=32, rc=5."""
    import atominfo

    return atominfo.descriptors(
        [DATA / "cu_fcc_108.extxyz", DATA / "mg_hcp_triclinic_16.extxyz", DATA / "cu_hot_32.extxyz"]
    )


@pytest.fixture(scope="session")
def molecules():
    """Descriptors of C60 and benzene together, k=32, rc=5."""
    import atominfo

    return atominfo.descriptors([DATA / "c60_60.extxyz", DATA / "benzene_12.extxyz"])


@pytest.fixture(scope="session")
def _thread_counts():
    """numba's thread count and BLAS's and OpenMP's as this process started: the
    libraries then loaded, watched, and each kind's count."""
    import faiss  # noqa: F401  its BLAS and OpenMP runtimes, loaded to be watched
    import numba
    from threadpoolctl import ThreadpoolController

    numba_threads = numba.get_num_threads()  # starts numba's layer (its OpenMP, if that)
    watched = [(lib, lib.num_threads) for lib in ThreadpoolController().lib_controllers]
    by_kind: dict[str, int] = {}
    for lib, threads in watched:
        by_kind.setdefault(lib.user_api, threads)
    return numba_threads, watched, by_kind


@pytest.fixture(autouse=True)
def restore_thread_counts(_thread_counts):
    """`--threads N` in an in-process `atominfo.cli.main` run sets these for the whole
    process, as a command should; the next tests here would inherit them (`--threads=1`
    made them single-threaded; before the counts were capped at the CPUs,
    `--threads=4096` made every later faiss call start 4096 threads). Put them back,
    in libraries loaded since too (found again only when a watched one changed)."""
    yield
    import numba
    from threadpoolctl import ThreadpoolController

    numba_threads, watched, by_kind = _thread_counts
    if numba.get_num_threads() != numba_threads:
        numba.set_num_threads(numba_threads)
    if any(lib.get_num_threads() != threads for lib, threads in watched):
        ThreadpoolController().limit(limits=by_kind)


def _shared_fixtures(item) -> set[str]:
    """Fixtures of a wider scope than the module's tests that `item` asks for, directly
    or through other fixtures (autouse ones excepted: they are every test's)."""
    info = item._fixtureinfo  # pytest's record of the item's fixtures
    shared, todo, seen = set(), list(info.argnames), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in info.name2fixturedefs:
            continue
        seen.add(name)
        fixturedef = info.name2fixturedefs[name][-1]
        if fixturedef.scope in ("module", "class", "package"):
            shared.add(name)
        todo.extend(fixturedef.argnames)
    return shared


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`), the tests of a module that share a
    module-scoped fixture (often seconds of MD, descriptors or a reference) run in one
    process, so it is computed once: an xdist_group named after the module. A test's
    own xdist_group mark (e.g. "dask": one LocalCluster at a time) wins."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _shared_fixtures(item):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
