"""The kernel engine against float64 brute force: exact sums, pruning, classification,
approximate dH and sampled entropy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import atominfo
from atominfo import Reference
from atominfo.engine import EngineOptions, cpu, log_kernel_sums
from atominfo.engine.index.clusters import ClusterIndex, classify_clusters
from atominfo.engine.index.neighbours import NeighbourIndex

from .conftest import DATA

BOUND = 1e-6  # nats: the guarantee stated in kernels/cpu.py and the README


def brute(Y, X, h):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return logsumexp(-d2 / (2 * h * h), axis=1)


@pytest.fixture(scope="module")
def crystals():
    """Cold crystal (reference) and hot crystal (queries), real descriptors (63 wide)."""
    X = atominfo.descriptors(DATA / "cu_fcc_108.extxyz")
    rng = np.random.default_rng(0)
    cold = np.concatenate([X + rng.normal(scale=0.002, size=X.shape) for _ in range(8)])
    hot = np.concatenate(
        [
            atominfo.descriptors(DATA / "cu_hot_32.extxyz"),
            X[:40] + rng.normal(scale=0.003, size=(40, X.shape[1])),
        ]
    )
    return cold, hot


@pytest.fixture(scope="module")
def phases():
    """A diverse set: three well separated groups of points plus scattered ones."""
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=0.5, size=(3, 10))
    groups = [c + rng.normal(scale=0.02, size=(300, 10)) for c in centres]
    return np.concatenate(groups + [rng.normal(scale=0.5, size=(60, 10))])


@pytest.mark.parametrize("h", [0.005, 0.015, 0.05])
def test_exact_engine_within_bound(crystals, h):
    cold, hot = crystals
    got = cpu.log_kernel_sums(hot, cold, np.array([h]))[0]
    assert np.abs(got - brute(hot, cold, h)).max() < BOUND
    assert np.abs(got - brute(hot, cold, h)).max() < 1e-9  # what we actually get


def test_exact_engine_large_norms_far_outliers():
    rng = np.random.default_rng(2)
    X = 5.0 + rng.normal(scale=0.02, size=(500, 20))  # |x|^2 ~ 500
    Y = np.concatenate([X[:50] + 1e-3, X[:5] + 1.0])
    got = cpu.log_kernel_sums(Y, X, np.array([0.015, 0.05]), threads=2)
    for t, h in enumerate([0.015, 0.05]):
        assert np.abs(got[t] - brute(Y, X, h)).max() < BOUND
    assert np.isfinite(got).all() and got.min() < -1000  # far ones stay finite


def test_engine_threads_blocks_and_progress(crystals):
    cold, hot = crystals
    seen = []
    a = cpu.log_kernel_sums(
        hot, cold, np.array([0.015]), memory_bytes=8 * 16 * 864, progress=seen.append, threads=2
    )
    b = log_kernel_sums(hot, cold, np.array([0.015]), EngineOptions(threads=1))
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert sum(seen) == len(hot)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 80), st.integers(1, 80), st.integers(0, 999))
def test_members_have_nonpositive_dh(n, d, seed):
    X = np.random.default_rng(seed).normal(scale=0.05, size=(n, d)) + 0.3
    assert (cpu.log_kernel_sums(X, X, np.array([0.015])) >= 0).all()
    assert ClusterIndex(X, seed=seed).classify(X, [0.015]).all()


@pytest.mark.parametrize("h", [0.015, 0.05])
def test_classification_equals_exact_labels(crystals, h):
    cold, hot = crystals
    exact = brute(hot, cold, h)  # log-sum; dH = -exact
    index = ClusterIndex(cold, n_clusters=20, seed=0)
    labels = index.classify(hot, [h])[0]
    decided = np.abs(exact) > 1e-9
    assert decided.mean() > 0.99
    assert np.array_equal(labels[decided], exact[decided] >= 0)
    assert 0 < labels.mean() < 1  # both kinds present: the test is not trivial
    assert index.last_pairs < len(hot) * len(cold)


@pytest.mark.parametrize("n_clusters", [None, 3, 8, 60])
def test_classification_any_cluster_count(crystals, n_clusters):
    # shell-wise bounds: labels exact whatever the clusters (few large ones included)
    cold, hot = crystals
    k = classify_clusters(len(cold)) if n_clusters is None else n_clusters
    for h in (0.015, 0.03):
        exact = brute(hot, cold, h)
        labels = ClusterIndex(cold, n_clusters=k, seed=2).classify(hot, [h])[0]
        decided = np.abs(exact) > 1e-9
        assert np.array_equal(labels[decided], exact[decided] >= 0)


def test_classification_threads_chunks_and_bandwidths(crystals, phases):
    # queries outside on their bounds alone, inside after a run of rows, or after
    # several clusters: exact labels for several bandwidths at once, on one thread
    # and on two (chunks of queries across threads)
    from atominfo.engine.index import clusters

    for X, Y in [crystals, (phases[:600], np.concatenate([phases[600:], phases[:100] + 0.01]))]:
        hs = [0.01, 0.015, 0.05]
        index = ClusterIndex(X, n_clusters=9, seed=1)
        one = index.classify(Y, hs, threads=1)
        chunk = clusters.QUERY_CHUNK
        try:
            clusters.QUERY_CHUNK = 16
            two = index.classify(Y, hs, threads=2)
        finally:
            clusters.QUERY_CHUNK = chunk
        for t, h in enumerate(hs):
            exact = brute(Y, X, h)
            decided = np.abs(exact) > 1e-9
            assert np.array_equal(one[t][decided], exact[decided] >= 0)
        assert np.array_equal(one, two)
        assert 0 < one.mean() < 1


def test_shell_bounds_hold(phases):
    # every member of shell k of cluster B is within shell_r[B, k] of the centre,
    # and the shell counts add up to the cluster size
    index = ClusterIndex(phases, n_clusters=7, seed=0)
    for b in range(index.n_clusters):
        lo, hi = index.offsets[b], index.offsets[b + 1]
        r = np.sort(np.linalg.norm(index.sorted_X[lo:hi] - index.centres[b], axis=1))
        counts = np.exp(index.shell_log_n[b]).round().astype(int)
        assert counts.sum() == hi - lo
        edges = np.cumsum(counts)
        for k in range(len(counts)):
            if counts[k]:
                assert r[edges[k] - 1] <= index.shell_r[b, k]
        assert index.shell_r[b].max() <= index.radius[b] * (1 + 1e-9)


def test_float32_exp_within_its_bound():
    # the classification's float32 terms (classify_kernel.exp_neg32): relative
    # error below the 2e-4 its margin (FOLD32_NATS) counts, over [-64, 0]
    import numba

    from atominfo.engine.index.classify_kernel import FOLD32_NATS, exp_neg32

    @numba.njit
    def evaluate(x):
        out = np.empty(x.shape[0], dtype=np.float32)
        for i in range(x.shape[0]):
            out[i] = exp_neg32(x[i])
        return out

    x = np.concatenate([np.linspace(-64, 0, 200_001), -np.geomspace(1e-8, 64, 10_001)])
    x = x.astype(np.float32)
    rel = np.abs(evaluate(x) / np.exp(x.astype(np.float64)) - 1)
    assert rel.max() < 2e-4 < FOLD32_NATS


def test_index_build_groups_rows(phases, crystals):
    # the one-pass build (cluster_build.py) against its definition in numpy: rows
    # of X - mean grouped by cluster in a stable order, their float32 copy
    # zero-padded to 16 columns, squared norms, centres (means) and radii
    for X, k in [(phases, 7), (crystals[0], 13), (phases[:50], None)]:
        index = ClusterIndex(X, n_clusters=k, seed=0)
        Xc = X - index.mean
        assert sorted(index.order) == list(range(len(X)))
        np.testing.assert_array_equal(index.sorted_X, Xc[index.order])
        width = index.sorted_X32.shape[1]
        assert width % 16 == 0 and width >= X.shape[1]
        np.testing.assert_array_equal(
            index.sorted_X32[:, : X.shape[1]], Xc[index.order].astype(np.float32)
        )
        assert not index.sorted_X32[:, X.shape[1] :].any()
        np.testing.assert_allclose(index.x_sq, (Xc[index.order] ** 2).sum(1), rtol=1e-13)
        assert (index.sizes > 0).all() and index.offsets[-1] == len(X)
        for b in range(index.n_clusters):
            lo, hi = index.offsets[b], index.offsets[b + 1]
            assert (np.diff(index.order[lo:hi]) > 0).all()  # stable within a cluster
            members = index.sorted_X[lo:hi]
            np.testing.assert_allclose(index.centres[b], members.mean(0), atol=1e-15)
            assert np.linalg.norm(members - index.centres[b], axis=1).max() <= index.radius[b]


@pytest.mark.parametrize("d", [1, 16, 17])
def test_classification_any_width(d):
    # float32 rows are zero-padded to a multiple of 16 columns (none at 16):
    # exact labels at widths below, at and above a multiple, with one and
    # several clusters
    rng = np.random.default_rng(d)
    X = np.concatenate([rng.normal(scale=0.02, size=(200, d)) + m for m in (0.0, 0.3)])
    near = X[::7] + rng.normal(scale=0.01 / np.sqrt(d), size=(58, d))
    Y = np.concatenate([X[::13], near, rng.normal(size=(30, d))])  # members are inside
    for k in (1, 5):
        index = ClusterIndex(X, n_clusters=k, seed=0)
        assert index.sorted_X32.shape[1] == 16 * -(-d // 16)
        for h in (0.01, 0.03):
            exact = brute(Y, X, h)
            decided = np.abs(exact) > 1e-9
            labels = index.classify(Y, [h])[0]
            assert np.array_equal(labels[decided], exact[decided] >= 0)
            assert labels.any() and not labels.all()  # both kinds of point


def test_classification_mixed_phases(phases):
    X = phases[:600]
    Y = np.concatenate([phases[600:], phases[:100] + 0.01])
    for h in (0.01, 0.05):
        exact = brute(Y, X, h)
        labels = ClusterIndex(X, seed=3).classify(Y, [h])[0]
        decided = np.abs(exact) > 1e-9
        assert np.array_equal(labels[decided], exact[decided] >= 0)


@pytest.mark.parametrize("tol", [1e-9, 1e-3])
def test_pruned_sums_within_tolerance(phases, tol):
    index = ClusterIndex(phases, seed=0)
    hs = [0.02, 0.05]
    got = index.log_kernel_sums(phases, hs, tol=tol)
    for t, h in enumerate(hs):
        err = brute(phases, phases, h) - got[t]
        assert err.max() <= tol + 1e-12 and err.min() > -1e-12  # one-sided: skipped terms only
    assert index.last_pairs < 0.6 * len(hs) * len(phases) ** 2  # pruning happened


def test_approximate_dh_is_an_upper_bound(crystals):
    cold, hot = crystals
    exact = -brute(hot, cold, 0.015)
    approx = atominfo.delta_entropy(hot, cold, 0.015, method="approximate", n_neighbors=8)
    assert (approx >= exact - 1e-12).all()
    # with every point as a neighbour and every list probed it is the exact sum
    index = NeighbourIndex(cold, n_lists=4, n_probe=4)
    full = -index.log_kernel_sums(hot, [0.015], n_neighbors=len(cold))[0]
    np.testing.assert_allclose(full, exact, atol=1e-9)


def test_approximate_with_every_neighbour_is_exact_even_with_few_probes(crystals, capfd):
    """n_neighbors >= n asks for every reference row: the exact sum, whatever the
    index would have found (an IVF search probing few lists returns fewer rows)."""
    cold, hot = crystals
    reference = np.concatenate([cold, cold[:50]])  # duplicated rows too
    exact = -brute(hot, reference, 0.015)
    for n_neighbors in (len(reference), 10 * len(reference)):
        found = atominfo.delta_entropy(
            hot, reference, 0.015, method="approximate", n_neighbors=n_neighbors
        )
        np.testing.assert_allclose(found, exact, rtol=1e-12, atol=1e-9)
    index = NeighbourIndex(reference, n_lists=8, n_probe=1)
    full = -index.log_kernel_sums(hot, [0.015], n_neighbors=len(reference))[0]
    np.testing.assert_allclose(full, exact, rtol=1e-12, atol=1e-9)
    # a reference too small for a k-means of its lists: no faiss warning on stderr
    atominfo.delta_entropy(hot, cold[:20], 0.015, method="approximate", n_neighbors=4)
    assert "WARNING" not in capfd.readouterr().err


def test_reference_methods(crystals):
    cold, hot = crystals
    ref = Reference(cold, 0.015, seed=1)
    exact = -brute(hot, cold, 0.015)
    assert ref.overlap(hot) == pytest.approx((exact <= 0).mean())
    assert ref.novelty(hot) == pytest.approx((exact > 0).mean())
    assert ref.index is ref.index  # built once
    approx = ref.delta_entropy(hot, method="approximate", n_neighbors=4)
    assert (approx >= exact - 1e-12).all()
    assert atominfo.overlap(hot, cold, method="classify") == ref.overlap(hot)
    with pytest.raises(atominfo.InputError):
        ref.delta_entropy(hot, method="approximate", n_neighbors=0)


def test_sampled_entropy_interval_covers_exact(crystals):
    cold, _ = crystals
    exact = atominfo.entropy(cold, 0.015)
    hits = 0
    for seed in range(10):
        est = atominfo.sampled_entropy(cold, 0.015, n_samples=200, seed=seed)
        assert est.low < est.entropy < est.high and est.seed == seed
        hits += est.low <= exact <= est.high
    assert hits >= 8  # 95% intervals: 8 or more of 10 (P > 0.98)
    full = atominfo.sampled_entropy(cold, [0.015, 0.05], n_samples=10**6)
    np.testing.assert_allclose(full.entropy, atominfo.entropy(cold, [0.015, 0.05]), atol=1e-12)
    assert np.all(full.half_width == 0) and full.n_samples == len(cold)


def test_bad_options():
    X = np.zeros((10, 3))
    with pytest.raises(atominfo.InputError):
        atominfo.sampled_entropy(X, 0.015, n_samples=1)
    with pytest.raises(atominfo.InputError):
        atominfo.delta_entropy(X, X, 0.015, method="nearest")
    with pytest.raises(atominfo.InputError):
        atominfo.overlap(X, X, 0.015, method="guess")


def test_classification_at_the_edge_of_the_domain(crystals):
    # The kernel reads a float32 copy of the reference with a rounding margin (about
    # 1e-3 nats); queries whose log-sum lies within it are decided again in float64.
    # Place each query so that its log-sum is 1e-7..1e-4 nats from 0 (by bisecting the
    # bandwidth): every label must still be the exact sign.
    from scipy.optimize import brentq

    cold, hot = crystals
    index = ClusterIndex(cold, n_clusters=20, seed=0)
    checked = 0
    for q in hot[::9]:
        y = q[None, :]
        if brute(y, cold, 0.002)[0] >= 0 or brute(y, cold, 0.5)[0] < 0:
            continue
        h0 = brentq(lambda h: brute(y, cold, h)[0], 0.002, 0.5, xtol=1e-14)
        for rel in (1e-7, 1e-5, 1e-4):
            for h in (h0 * (1 - rel), h0 * (1 + rel)):
                exact = brute(y, cold, h)[0]
                if abs(exact) <= 1e-9:
                    continue
                assert index.classify(y, [h])[0][0] == (exact >= 0), (h, exact)
                checked += 1
    assert checked >= 20
