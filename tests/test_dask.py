"""The Dask backend on a LocalCluster of 2 worker processes bound to loopback."""

import json
import os
import signal

import numpy as np
import pytest

import atominfo
from atominfo import InputError, Reference
from atominfo.engine import EngineOptions, log_kernel_sums
from atominfo.engine.dask_client import close_client, get_client, parse_spec

from .conftest import DATA

distributed = pytest.importorskip("distributed")
from atominfo.engine import dask as dask_engine  # noqa: E402

# One LocalCluster for the module, in one test process (`make test`: pytest-xdist).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]

H = np.array([0.015, 0.05])
# Where query chunks differ from the CPU engine's own blocks, BLAS may round
# |y|^2 + |x|^2 - 2 y.x differently: a few eps of (|y|^2 + |x|^2) / (2 h^2).
ATOL = 1e-10


@pytest.fixture(scope="module")
def client():
    client = get_client("local:2")
    yield client
    close_client(client)


def test_parse_spec():
    assert parse_spec("local:3") == ("local", 3)
    assert parse_spec("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert parse_spec("local")[1] >= 1
    for bad in ("", "local:x", "local:-1"):
        with pytest.raises(InputError):
            parse_spec(bad)


def test_cluster_binds_to_loopback(client):
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)


def test_single_chunk_is_bit_identical(client, crystals, molecules):
    expected = log_kernel_sums(molecules, crystals, H)
    got = log_kernel_sums(
        molecules,
        crystals,
        H,
        EngineOptions(backend="dask", client=client, chunk_rows=len(molecules)),
    )
    np.testing.assert_array_equal(got, expected)


def test_chunked_matches_cpu_engine(client, crystals, molecules):
    Y = np.concatenate([molecules, crystals, crystals[:2] + 5.0])  # last two: far outliers
    expected = log_kernel_sums(Y, crystals, H)
    seen = []
    got = log_kernel_sums(
        Y,
        crystals,
        H,
        EngineOptions(backend="dask", client=client, chunk_rows=17, progress=seen.append),
    )
    assert got.shape == (len(H), len(Y)) and np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=ATOL)
    assert sum(seen) == len(Y)


def test_results_stream_in_order(client, crystals):
    starts = [
        start
        for start, _ in dask_engine.iter_log_kernel_sums(
            crystals, crystals, H, client=client, chunk_rows=10, max_in_flight=3
        )
    ]
    assert starts == list(range(0, len(crystals), 10))


def test_information_functions(client, crystals, molecules):
    opts = dict(engine=EngineOptions(backend="dask", client=client))
    np.testing.assert_allclose(
        atominfo.entropy_and_diversity(crystals, H, **opts),
        atominfo.entropy_and_diversity(crystals, H),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        atominfo.delta_entropy(molecules, crystals, H, **opts),
        atominfo.delta_entropy(molecules, crystals, H),
        atol=ATOL,
    )
    assert atominfo.overlap(crystals[::3], crystals, 0.015, **opts) == atominfo.overlap(
        crystals[::3], crystals, 0.015
    )
    assert atominfo.novelty(molecules, crystals, 0.05, **opts) == atominfo.novelty(
        molecules, crystals, 0.05
    )


def test_reference_is_sent_once(client, crystals, molecules, monkeypatch):
    ref = Reference(crystals, H, engine=EngineOptions(backend="dask", client=client))
    future = ref.engine.prepared["scattered"].future
    holders = client.who_has([future])[future.key]
    assert len(holders) == 2  # broadcast to both workers

    def no_scatter(*args, **kwargs):
        raise AssertionError("the reference was sent again")

    monkeypatch.setattr(client, "scatter", no_scatter)
    dH = ref.delta_entropy(molecules)
    np.testing.assert_allclose(dH, atominfo.delta_entropy(molecules, crystals, H), atol=ATOL)
    assert 0 <= ref.novelty(molecules)[0] <= 1


def test_workers_can_run_the_torch_engine(client, crystals, molecules):
    pytest.importorskip("torch")
    # One chunk: only one worker pays for importing torch.
    got = log_kernel_sums(
        molecules,
        crystals,
        H,
        EngineOptions(
            backend="dask",
            client=client,
            chunk_rows=len(molecules),
            worker_backend="torch",
            device="cpu",
        ),
    )
    np.testing.assert_allclose(got, log_kernel_sums(molecules, crystals, H), rtol=0, atol=ATOL)


def test_kernel_option_refuses_spec_strings(crystals):
    with pytest.raises(InputError, match="get_client"):
        EngineOptions(backend="dask", client="local:2")


def test_unknown_worker_backend(client, crystals):
    with pytest.raises(InputError, match="worker_backend"):
        EngineOptions(backend="dask", client=client, worker_backend="dask")


def test_cli_with_scheduler_address(client, capsys):
    from atominfo.cli import main

    args = [
        "dh",
        str(DATA / "cu_hot_32.extxyz"),
        "--ref",
        str(DATA / "cu_fcc_108.extxyz"),
        "-b",
        "0.015,0.05",
        "--json",
        "-q",
    ]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(args + ["--dask", client.scheduler.address]) == 0
    remote = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(remote["mean_dH"], local["mean_dH"], rtol=1e-13)
    assert remote["novelty"] == local["novelty"]
    assert client.status == "running"  # the CLI closed only its own connection
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:  # --dask with --device: the workers run the torch engine
        assert main(args + ["--dask", client.scheduler.address, "--device", "cpu"]) == 0
        on_torch = json.loads(capsys.readouterr().out)
        np.testing.assert_allclose(on_torch["mean_dH"], local["mean_dH"], rtol=1e-12)
    assert main(args + ["--dask", "local:x"]) == 2
    assert main(args + ["--dask", client.scheduler.address, "--precision", "float32"]) == 2
    assert main(args + ["--backend", "gpu"]) == 2


def test_worker_killed_mid_run(client):
    """SIGKILL one worker after the first chunk: the run completes, identical."""
    rng = np.random.default_rng(6)
    X = rng.normal(scale=0.02, size=(1000, 63))
    Y = rng.normal(scale=0.02, size=(6000, 63))
    h = np.array([0.015])
    undisturbed = log_kernel_sums(
        Y, X, h, EngineOptions(backend="dask", client=client, chunk_rows=150)
    )
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = []

    def kill_once(n):
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(n)

    # 40 chunks, at most 8 in flight: most are submitted after the kill.
    got = log_kernel_sums(
        Y, X, h, EngineOptions(backend="dask", client=client, chunk_rows=150, progress=kill_once)
    )
    assert killed
    np.testing.assert_array_equal(got, undisturbed)
    np.testing.assert_allclose(got, log_kernel_sums(Y, X, h), rtol=1e-13, atol=ATOL)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it
    assert victim not in client.run(os.getpid).values()


def test_all_workers_killed_reference_is_sent_again(client, monkeypatch):
    """Both workers SIGKILLed: the scattered reference is lost, re-sent, same answer."""
    sends = []
    original_resend = dask_engine.ScatteredReference.resend

    def counting_resend(self):
        sends.append(1)
        original_resend(self)

    monkeypatch.setattr(dask_engine.ScatteredReference, "resend", counting_resend)
    rng = np.random.default_rng(7)
    X = rng.normal(scale=0.02, size=(500, 63))
    Y = rng.normal(scale=0.02, size=(3000, 63))
    h = np.array([0.015])
    expected = log_kernel_sums(Y, X, h)
    pids = sorted(client.run(os.getpid).values())
    killed = []

    def kill_all_once(n):
        if not killed:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.append(n)

    got = log_kernel_sums(
        Y,
        X,
        h,
        EngineOptions(backend="dask", client=client, chunk_rows=100, progress=kill_all_once),
    )
    assert killed and len(sends) >= 2  # the first send, then at least one re-send
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=ATOL)
    client.wait_for_workers(2, timeout=60)
    assert not set(pids) & set(client.run(os.getpid).values())
