"""Issue 19, silently wrong numbers: every number printed is one the data determine.

calibrate without dH, an FCC calibration the cutoff does not reach, the
sampled-entropy interval's coverage, rounding below H = 0, dH of far rows, and
approximate dH with more neighbours than reference rows.
"""

import ase.io
import numpy as np
import pytest
from scipy.special import logsumexp

import atominfo
from atominfo.cli import main
from atominfo.engine.index import neighbours
from atominfo.errors import InputError

from .conftest import DATA


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("atominfo: error: "), err
    return err[0]


# 1. calibrate needs dH from somewhere: errors are never taken as dH


def test_calibrate_refuses_errors_without_dh(tmp_path, capsys):
    errors = np.random.default_rng(0).random(200)
    np.save(tmp_path / "e.npy", errors)
    assert main(["calibrate", "--errors", str(tmp_path / "e.npy")]) == 2
    assert "dH values are needed: --dh FILE" in one_error_line(capsys)


def test_calibrate_extxyz_without_dh_array_is_refused(tmp_path, capsys):
    frames = ase.io.read(DATA / "cu_hot_32.extxyz", ":") * 4
    for f in frames:
        f.arrays["error"] = np.linspace(0.0, 1.0, len(f))
    path = tmp_path / "errors.extxyz"
    ase.io.write(path, frames, format="extxyz")
    assert main(["calibrate", "--errors", str(path)]) == 2
    assert "dH values are needed: --dh FILE" in one_error_line(capsys)
    # the documented other source: a per-atom 'dH' array next to the errors
    for f in frames:
        f.arrays["dH"] = np.random.default_rng(1).normal(size=len(f))
    ase.io.write(path, frames, format="extxyz")
    assert main(["calibrate", "--errors", str(path), "--json"]) == 0


def test_calibrate_with_dh_file_correlates_the_two(tmp_path, capsys):
    rng = np.random.default_rng(2)
    dH = rng.normal(size=300)
    np.save(tmp_path / "dh.npy", dH)
    np.save(tmp_path / "e.npy", rng.random(300))  # independent of dH
    assert (
        main(["calibrate", "--dh", str(tmp_path / "dh.npy"), "--errors", str(tmp_path / "e.npy")])
        == 0
    )
    out = capsys.readouterr().out
    assert "Pearson 1.000" not in out and "300 environments" in out


# 2. FCC calibration: a cutoff below the nearest neighbour gives no descriptor distance


def test_fcc_calibration_refuses_cutoff_below_nearest_neighbour():
    nearest = 3.58 / np.sqrt(2)
    for cutoff in (1.0, 2.0, nearest):
        with pytest.raises(InputError, match="below the FCC nearest-neighbour distance") as info:
            atominfo.fcc_calibration(cutoff=cutoff)
        assert f"{nearest:.4f}" in str(info.value)
    with pytest.raises(InputError, match="leaves the descriptors unchanged"):
        atominfo.fcc_calibration(strain=1e-300)
    cal = atominfo.fcc_calibration(cutoff=3.0)
    assert cal["h"] > 0 and cal["distance"] == 2 * cal["h"]
    assert atominfo.fcc_calibration()["h"] == pytest.approx(0.01526, abs=5e-5)


def test_cli_bandwidth_refuses_cutoff_below_nearest_neighbour(capsys):
    assert main(["bandwidth", "-c", "2"]) == 2
    line = one_error_line(capsys)
    assert "below the FCC nearest-neighbour distance 2.5314 Å" in line and "h = 0.0" not in line
    assert main(["bandwidth", "--lattice", "2.5", "-c", "2"]) == 0  # nearest neighbour 1.77 Å


# 3. the sampled-entropy interval holds the full-data H at its stated rate


def interval_misses(X, h, M, seeds):
    exact = atominfo.entropy(X, h)
    log_n = np.log(len(X))
    misses = 0
    for seed in seeds:
        est = atominfo.sampled_entropy(X, h, n_samples=M, seed=seed)
        assert 0.0 <= est.low <= est.high <= log_n
        misses += not est.low <= exact <= est.high
    return misses


@pytest.mark.parametrize("M", [2, 5, 10])
def test_sampled_entropy_interval_covers_on_skewed_data(M):
    """95 identical environments and 5 isolated ones: most small samples see only the
    crowd (zero spread), where a t interval has zero width and misses H."""
    rng = np.random.default_rng(0)
    X = np.concatenate([np.zeros((95, 3)), rng.normal(scale=10.0, size=(5, 3))])
    assert interval_misses(X, 0.015, M, range(60)) <= 3  # 5% of 60, with margin


def test_sampled_entropy_interval_covers_on_crystals():
    X = atominfo.descriptors([DATA / "cu_hot_32.extxyz", DATA / "cu_fcc_108.extxyz"])
    for M in (2, 5, 10):
        assert interval_misses(X, 0.015, M, range(25)) <= 2


def test_cli_sampled_entropy_prints_the_interval_and_says_when_it_is_wide(capsys):
    fcc = str(DATA / "cu_fcc_108.extxyz")
    assert main(["entropy", fcc, "--sample", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert " [" in out and "±" not in out
    assert "note: 3 samples leave H almost anywhere in [0, log n] for cu_fcc_108.extxyz" in out
    assert main(["entropy", fcc, "--sample", "100", "-q"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_sampled_entropy_without_sampling_is_exact():
    X = atominfo.descriptors(DATA / "cu_hot_32.extxyz")
    est = atominfo.sampled_entropy(X, [0.015, 0.05], n_samples=len(X))
    np.testing.assert_allclose(est.low, est.high)
    np.testing.assert_allclose(est.entropy, atominfo.entropy(X, [0.015, 0.05]), atol=1e-12)


# 4. H and D are never below 0 (nor above log n) from rounding


@pytest.mark.parametrize("n", [11, 23, 46])
def test_identical_environments_have_exactly_zero_entropy(n):
    H, D = atominfo.entropy_and_diversity(np.zeros((n, 3)), [0.015, 1.0])
    assert np.all(H == 0.0) and np.all(D == 0.0)
    assert atominfo.sampled_entropy(np.zeros((n, 3)), 0.015, n_samples=5).entropy == 0.0


def test_entropy_stays_within_its_bounds():
    X = np.random.default_rng(3).normal(scale=100.0, size=(37, 4))  # all isolated
    H, D = atominfo.entropy_and_diversity(X, 0.015)
    assert H == np.log(37) and D == np.log(37)


# 5. dH of far rows is finite wherever float64 holds it


@pytest.mark.parametrize("offset", [1e8, 1e9, 1e100, 1e131, 1e140, 1e150])
def test_far_query_has_its_finite_dh(offset):
    """dH(y | X) for X = 3 copies of one point: |y - x|^2 / (2 h^2) - log 3, exactly."""
    X = np.zeros((3, 4))
    Y = np.full((1, 4), offset)
    h = 0.015
    expected = 4 * offset**2 / (2 * h * h) - np.log(3)
    assert atominfo.delta_entropy(Y, X, h)[0] == pytest.approx(expected, rel=1e-12)


def test_far_query_on_a_large_offset():
    """Reference and queries share an offset of 1e131; queries lie 1e121 beyond it.

    Rows within a factor 2 of each other subtract exactly in float64 (Sterbenz), so
    the brute force from the differences is the float64 truth."""
    rng = np.random.default_rng(4)
    X = 1e131 * (1.0 + 1e-12 * rng.normal(size=(20, 5)))
    Y = X[:3] + 1e121
    h = 0.015
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    expected = -logsumexp(-d2 / (2 * h * h), axis=1)
    np.testing.assert_allclose(atominfo.delta_entropy(Y, X, h), expected, rtol=1e-12)


def test_squared_norms_beyond_float64_are_scaled():
    """Rows of 1e200: squared distances overflow, but with a wide bandwidth dH is finite."""
    X = np.zeros((2, 2))
    Y = np.array([[1e200, 0.0]])
    h = 1e60
    expected = (1e200 / h) ** 2 / 2 - np.log(2)
    assert atominfo.delta_entropy(Y, X, h)[0] == pytest.approx(expected, rel=1e-12)
    H = atominfo.entropy(np.array([[0.0], [1e200], [-1e200]]), 0.015)
    assert H == pytest.approx(np.log(3), abs=1e-15)


@pytest.mark.parametrize(
    ("query", "h"), [([[1e20, 1e20]], 0.015), ([[1e200, 0.0]], 1e60), ([[-1e300, 1e300]], 1e150)]
)
def test_far_query_approximate_dh_is_finite(query, h):
    X = np.random.default_rng(6).normal(size=(50, 2))
    exact = atominfo.delta_entropy(np.array(query), X, h)
    approx = atominfo.delta_entropy(np.array(query), X, h, method="approximate")
    assert np.isfinite(exact).all() and approx == pytest.approx(exact, rel=1e-12)


def test_dh_beyond_float64_is_refused():
    with pytest.raises(InputError, match="exceeds the float64 range"):
        atominfo.delta_entropy(np.array([[1e200, 0.0]]), np.zeros((2, 2)), 0.015)


# 6. approximate dH: neighbours capped at the reference size, memory bounded


def test_approximate_dh_with_more_neighbours_than_reference(monkeypatch):
    X = atominfo.descriptors(DATA / "cu_fcc_108.extxyz")
    Y = atominfo.descriptors(DATA / "cu_hot_32.extxyz")
    asked = []
    search = neighbours.NeighbourIndex.search

    def spy(self, Yb, k):
        asked.append((len(Yb), k))
        return search(self, Yb, k)

    monkeypatch.setattr(neighbours.NeighbourIndex, "search", spy)
    dH = atominfo.delta_entropy(Y, X, 0.015, method="approximate", n_neighbors=1_000_000)
    assert all(k <= len(X) for _, k in asked)
    # every reference row within reach: at least the exact value (IVF probes may miss some)
    assert np.all(dH >= atominfo.delta_entropy(Y, X, 0.015) - 1e-9)


def test_approximate_dh_chunks_fit_the_memory_bound(monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 20))
    Y = rng.normal(size=(200, 20))
    asked = []
    search = neighbours.NeighbourIndex.search

    def spy(self, Yb, k):
        asked.append((len(Yb), k))
        return search(self, Yb, k)

    monkeypatch.setattr(neighbours.NeighbourIndex, "search", spy)
    monkeypatch.setattr(neighbours, "MEMORY_BYTES", 2**20)
    index = neighbours.NeighbourIndex(X)
    # one neighbour fewer than the reference holds: searched (every row would be summed
    # without a search), in chunks whose working arrays fit the bound
    out = index.log_kernel_sums(Y, np.array([1.0]), n_neighbors=999)
    assert out.shape == (1, 200) and np.isfinite(out).all()
    assert sum(rows for rows, _ in asked) == 200
    for rows, k in asked:
        assert k == 999 and rows * k * (20 + 6) * 8 <= 2**20
