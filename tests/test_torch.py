"""The PyTorch backend against the numba CPU engine (runs on the CPU build of torch)."""

import numpy as np
import pytest

import atominfo
from atominfo import InputError, Reference
from atominfo.engine import EngineOptions, log_kernel_sums

torch = pytest.importorskip("torch")
from atominfo.engine import torch as torch_engine  # noqa: E402

H = np.array([0.015, 0.05])
# float64 engines differ only by summation order and BLAS blocking of |y|^2 +
# |x|^2 - 2 y.x: a few eps of (|y|^2 + |x|^2) / (2 h^2) per term.
F64_ATOL = 1e-10
TORCH = EngineOptions(backend="torch", device="cpu")


def test_float64_matches_cpu_engine(crystals, molecules):
    for Y in (crystals, molecules):
        expected = log_kernel_sums(Y, crystals, H)
        got = log_kernel_sums(Y, crystals, H, TORCH)
        assert got.shape == (len(H), len(Y))
        np.testing.assert_allclose(got, expected, rtol=0, atol=F64_ATOL)


def test_own_term_is_exactly_one(crystals):
    # Snapping makes each point's own distance exactly 0, so dH(x | X) <= 0 for x in X.
    dH = -log_kernel_sums(crystals, crystals, H, TORCH)
    assert (dH <= 0).all()


def test_far_outlier_is_finite(crystals):
    far = crystals[:3] + 5.0
    got = log_kernel_sums(far, crystals, H, TORCH)
    expected = log_kernel_sums(far, crystals, H)
    assert np.isfinite(got).all() and got.max() < -1e4
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_small_memory_budget_gives_same_answer(crystals, molecules):
    whole = log_kernel_sums(molecules, crystals, H, TORCH)
    # below EngineOptions' 1 MiB floor: the backend function itself, to force many blocks
    tiny = torch_engine.log_kernel_sums(molecules, crystals, H, device="cpu", memory_bytes=4096)
    np.testing.assert_allclose(tiny, whole, rtol=0, atol=1e-12)


def test_float32_within_stated_bound(crystals, molecules):
    for Y in (crystals, molecules):
        exact = log_kernel_sums(Y, crystals, H)
        fast = log_kernel_sums(
            Y, crystals, H, EngineOptions(backend="torch", device="cpu", precision="float32")
        )
        bound = torch_engine.float32_error_bound(Y, crystals, H)
        error = np.abs(fast - exact).max(axis=1)
        assert (error <= bound).all(), (error, bound)
        assert (error > 0).any()  # it really ran in float32


def test_information_functions_accept_torch(crystals, molecules):
    opts = dict(engine=TORCH)
    np.testing.assert_allclose(
        atominfo.entropy(crystals, H, **opts), atominfo.entropy(crystals, H), atol=1e-12
    )
    np.testing.assert_allclose(
        atominfo.diversity(crystals, H, **opts), atominfo.diversity(crystals, H), atol=1e-12
    )
    np.testing.assert_allclose(
        atominfo.delta_entropy(molecules, crystals, H, **opts),
        atominfo.delta_entropy(molecules, crystals, H),
        atol=F64_ATOL,
    )
    assert atominfo.novelty(molecules, crystals, 0.05, **opts) == atominfo.novelty(
        molecules, crystals, 0.05
    )


def test_reference_keeps_descriptors_on_device(crystals, molecules):
    ref = Reference(crystals, H, engine=TORCH)
    held = ref.engine.prepared["device_reference"]
    assert isinstance(held.X, torch.Tensor) and held.X.shape == crystals.shape
    first = ref.delta_entropy(molecules)
    assert ref.engine.prepared["device_reference"] is held
    np.testing.assert_array_equal(ref.delta_entropy(molecules), first)
    np.testing.assert_allclose(first, atominfo.delta_entropy(molecules, crystals, H), atol=F64_ATOL)


def test_progress_counts_every_query(crystals):
    seen = []
    torch_engine.log_kernel_sums(
        crystals, crystals, H, device="cpu", memory_bytes=4096, progress=seen.append
    )
    assert sum(seen) == len(crystals) and len(seen) > 1


def test_bad_options(crystals):
    with pytest.raises(InputError, match="precision"):
        log_kernel_sums(
            crystals, crystals, H, EngineOptions(backend="torch", device="cpu", precision="float16")
        )
    with pytest.raises(InputError, match="device"):
        EngineOptions(backend="torch", device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            EngineOptions(backend="torch", device="cuda")
