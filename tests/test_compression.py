import ase.io
import numpy as np
import pytest
from scipy.special import logsumexp

import atominfo
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.workflows.compression import select, selection_size, write_selection
from atominfo.workflows.compression_methods import own_entropies, update_log_sums

H = 0.015


@pytest.fixture(scope="module")
def varied():
    return load_frames(varied_fcc_cu(40, seed=2))


@pytest.fixture(scope="module")
def redundant():
    """30 near-identical crystals (rattle 0.005 Å) and 6 strongly rattled cells (0.25 Å)."""
    weak = varied_fcc_cu(30, seed=8, sigma=(0.005, 0.005), strain=0.0, vacancy_probability=0)
    strong = varied_fcc_cu(6, seed=9, sigma=(0.25, 0.25), strain=0.0, vacancy_probability=0)
    frames = weak[:15] + strong[:3] + weak[15:] + strong[3:]
    return load_frames(frames)


def brute_log_sums(Y, X, h=H):
    d2 = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    return logsumexp(-d2 / (2 * h * h), axis=1)


def eager_msc(data, m, h=H, reference=None):
    """The greedy of docs/method.md, section 4.4, every score recomputed from scratch (public API)."""
    own = np.array([atominfo.entropy(data.environments([f]), h) for f in range(len(data))])
    picks = []
    for step in range(m):
        if step == 0 and reference is None:
            picks.append(int(np.argmax(own)))
            continue
        known = [data.environments(picks)] + ([reference] if reference is not None else [])
        dH = atominfo.delta_entropy(data.X, np.concatenate(known), h)
        score = np.maximum.reduceat(dH, data.offsets[:-1]) + own
        score[picks] = -np.inf
        picks.append(int(np.argmax(score)))
    return picks


def test_selection_size():
    assert selection_size("0.5", 200) == 100
    assert selection_size(0.25, 200) == 50
    assert selection_size("200", 200) == 200
    assert selection_size("1.0", 7) == 7
    assert selection_size("0.01", 7) == 1
    for bad in ("0", "-3", "abc", "2.5", "201", "1.5e3"):
        with pytest.raises(InputError):
            selection_size(bad, 200)


def test_update_log_sums_exact_and_incremental():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=0.02, size=(300, 9))
    Y1, Y2 = rng.normal(scale=0.02, size=(40, 9)), rng.normal(scale=0.02, size=(25, 9))
    x_sq = (X * X).sum(1)
    sums = np.full(len(X), -np.inf)
    update_log_sums(sums, X, x_sq, Y1, H)
    update_log_sums(sums, X, x_sq, Y2, H)
    np.testing.assert_allclose(sums, brute_log_sums(X, np.concatenate([Y1, Y2])), atol=1e-10)
    far = np.full((1, 9), 1.0)  # log sums of -1000s of nats stay finite
    out = np.full(1, -np.inf)
    update_log_sums(out, far, (far * far).sum(1), Y1, H)
    np.testing.assert_allclose(out, brute_log_sums(far, Y1), rtol=1e-12)
    assert np.isfinite(out).all() and out[0] < -1000


def test_own_entropies_match_public_entropy(varied):
    got = own_entropies(varied, H)
    ref = [atominfo.entropy(varied.environments([f]), H) for f in range(len(varied))]
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_msc_equals_brute_force_greedy(varied):
    sel = select(varied, 6, "msc", H, summary=False)
    assert sel.indices == eager_msc(varied, 6)
    assert sel.indices[0] == int(np.argmax(own_entropies(varied, H)))


def test_conditional_msc_equals_brute_force_and_complements(varied):
    reference = varied.environments(range(0, 40, 5))
    sel = select(varied, 5, "msc", H, reference=reference)
    assert sel.indices == eager_msc(varied, 5, reference=reference)
    assert not set(sel.indices) & set(range(0, 40, 5))  # already known: not picked
    known = np.concatenate([varied.environments(sel.indices), reference])
    assert sel.overlap == pytest.approx(atominfo.overlap(varied.X, known, H))
    assert sel.reference_environments == len(reference)


def test_msc_keeps_at_least_the_entropy_of_random_on_redundant_data(redundant):
    msc = select(redundant, 6, "msc", H)
    randoms = [select(redundant, 6, "random", H, seed=s).entropy for s in range(5)]
    assert msc.entropy >= max(randoms)
    assert msc.entropy >= np.mean(randoms) + 0.5  # by a wide margin here
    strong = {15, 16, 17, 33, 34, 35}
    assert len(strong & set(msc.indices)) >= 5  # the diverse cells, not the copies


@pytest.mark.parametrize("method", ["msc", "fps", "kmeans", "random"])
def test_methods_summary_and_reproducibility(varied, method):
    a = select(varied, "0.25", method, H, seed=3)
    b = select(varied, 10, method, H, seed=3)
    assert a.indices == b.indices and len(set(a.indices)) == 10
    kept = varied.environments(a.indices)
    assert a.n_environments == len(kept) and a.total_structures == 40
    assert a.entropy == pytest.approx(atominfo.entropy(kept, H), abs=1e-10)
    assert a.diversity == pytest.approx(atominfo.diversity(kept, H), abs=1e-10)
    assert a.overlap == pytest.approx(atominfo.overlap(varied.X, kept, H))
    d = a.to_dict()
    assert d["seed"] == 3 and d["indices"] == sorted(a.indices) and d["method"] == method


def test_fps_starts_from_highest_own_entropy_and_spreads(varied):
    sel = select(varied, 5, "fps", H, summary=False)
    assert sel.indices[0] == int(np.argmax(own_entropies(varied, H)))


def test_bad_method_and_reference(varied):
    with pytest.raises(InputError, match="method must be one of"):
        select(varied, 3, "greedy")
    with pytest.raises(InputError, match="msc"):
        select(varied, 3, "fps", reference=varied.X[:10])
    with pytest.raises(InputError, match="widths"):
        select(varied, 3, "msc", reference=np.zeros((4, 5)))


def test_write_selection_keeps_frames_unchanged(tmp_path):
    frames = varied_fcc_cu(6, seed=1)
    for i, atoms in enumerate(frames):
        atoms.info["label"] = f"s{i}"
        atoms.set_array("charge_like", np.full(len(atoms), 0.5 * i))
    path = tmp_path / "in.extxyz"
    ase.io.write(path, frames)
    data = load_frames(path)
    frames = ase.io.read(path, ":")  # as stored (positions rounded by the writer)
    sel = select(data, 3, "msc", H)
    out = tmp_path / "out.extxyz"
    write_selection(data, sel, out)
    got = ase.io.read(out, ":")
    assert [a.info["label"] for a in got] == [f"s{i}" for i in sorted(sel.indices)]
    for atoms, i in zip(got, sorted(sel.indices)):
        np.testing.assert_array_equal(atoms.positions, frames[i].positions)
        np.testing.assert_array_equal(atoms.arrays["charge_like"], 0.5 * i)
        assert atoms.info["sigma"] == pytest.approx(frames[i].info["sigma"])
    assert not list(tmp_path.glob("*.part*"))


# -- budget, costs and strata -------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    """Weakly and strongly rattled cells (config_type weak/strong) and a Cu melt group."""
    from atominfo.structures.datasets import cu_melt

    melt = cu_melt(2, n_frames=10, melt_steps=200, interval=10)
    for atoms in melt:
        atoms.info["config_type"] = "melt"
    frames = varied_fcc_cu(30, seed=4) + melt
    for i, atoms in enumerate(frames):
        atoms.info["cpu_hours"] = 1.0 + i % 4
    return load_frames(frames)


@pytest.mark.slow
def test_costs_and_budget_values(mixed):
    from atominfo.workflows.compression_limits import budget_value, structure_costs

    np.testing.assert_array_equal(structure_costs(mixed), mixed.sizes.astype(float) ** 3)
    np.testing.assert_array_equal(
        structure_costs(mixed, "cpu_hours"), 1.0 + np.arange(len(mixed)) % 4
    )
    assert budget_value("10%", 250.0) == 25.0 and budget_value(7, 1.0) == 7.0
    for bad in ("0", "-1", "abc", "150%", "nan"):
        with pytest.raises(InputError, match="budget"):
            budget_value(bad, 10.0)
    with pytest.raises(InputError, match="info key 'nothing' is missing"):
        structure_costs(mixed, "nothing")
    with pytest.raises(InputError, match="frame 0: cost 'config_type' must be a finite"):
        structure_costs(mixed, "config_type")


@pytest.mark.parametrize("method", ["msc", "fps", "random"])
@pytest.mark.slow
def test_budget_is_respected_and_spent(mixed, method):
    costs = mixed.sizes.astype(float) ** 3
    budget = 0.1 * costs.sum()
    sel = select(mixed, None, method, H, budget="10%", summary=False)
    assert sel.cost == pytest.approx(costs[sel.indices].sum())
    assert sel.cost <= budget * (1 + 1e-12) and sel.budget == pytest.approx(budget)
    rest = np.setdiff1d(np.arange(len(mixed)), sel.indices)
    assert costs[rest].min() > budget - sel.cost  # nothing left that would still fit
    capped = select(mixed, 2, method, H, budget="10%", summary=False)
    assert capped.indices == sel.indices[:2]


@pytest.mark.slow
def test_msc_with_budget_is_msc_skipping_what_does_not_fit(mixed):
    costs = mixed.sizes.astype(float) ** 3
    free = select(mixed, 6, "msc", H, summary=False)
    budget = costs[free.indices[:3]].sum()  # room for the first three picks exactly
    sel = select(mixed, 3, "msc", H, budget=budget, summary=False)
    assert sel.indices == free.indices[:3]
    cost_key = select(mixed, None, "msc", H, cost="cpu_hours", budget=6, summary=False)
    assert cost_key.cost <= 6 and cost_key.total_cost == pytest.approx(100.0)
    with pytest.raises(InputError, match="nothing fits"):
        select(mixed, None, "msc", H, budget=1.0)
    with pytest.raises(InputError, match="size .* or a budget"):
        select(mixed, None, "msc", H)
    with pytest.raises(InputError, match="kmeans"):
        select(mixed, 3, "kmeans", H, budget="10%")


def test_apportion():
    from atominfo.workflows.compression_limits import apportion

    sizes = {"weak": 15, "strong": 15, "melt": 10}
    assert apportion(sizes, 8) == {"weak": 3, "strong": 3, "melt": 2}
    assert apportion(sizes, 4) == {"weak": 2, "strong": 1, "melt": 1}  # largest remainder
    assert apportion({"a": 97, "b": 1, "c": 2}, 10) == {"a": 8, "b": 1, "c": 1}  # one at least
    assert apportion(sizes, 2) == {"weak": 1, "strong": 1, "melt": 0}  # no room for all
    assert apportion(sizes, 8, {"melt": 5}) == {"weak": 2, "strong": 1, "melt": 5}
    assert sum(apportion(sizes, 40).values()) == 40
    with pytest.raises(InputError, match="does not exist"):
        apportion(sizes, 8, {"liquid": 2})
    with pytest.raises(InputError, match="quota 11"):
        apportion(sizes, 20, {"melt": 11})
    with pytest.raises(InputError, match="more than"):
        apportion(sizes, 3, {"melt": 4})


@pytest.mark.slow
def test_stratified_msc_keeps_every_group(mixed):
    labels = mixed.labels("config_type")
    plain = select(mixed, 4, "msc", H, summary=False)
    strat = select(mixed, 4, "msc", H, stratify="config_type", summary=False)
    picked = [labels[i] for i in strat.indices]
    assert list(strat.groups) == ["strong", "weak", "melt"]  # order of first appearance
    expected = {"strong": 2, "weak": 1, "melt": 1}  # 15:15:10, ties to the first group
    assert {g: picked.count(g) for g in expected} == expected
    assert {g: v["picked"] for g, v in strat.groups.items()} == expected
    assert strat.indices[0] == plain.indices[0]  # one greedy over all groups
    quota = select(mixed, 6, "msc", H, stratify="config_type", quotas={"melt": 4}, summary=False)
    assert [labels[i] for i in quota.indices].count("melt") == 4
    budget = select(mixed, None, "msc", H, budget="10%", stratify="config_type", summary=False)
    for g in budget.groups.values():
        assert g["picked"] >= 1 and g["cost"] <= g["budget"] * (1 + 1e-12)
    with pytest.raises(InputError, match="stratify"):
        select(mixed, 4, "msc", H, quotas={"melt": 1})
    with pytest.raises(InputError, match="quota for group 'melt' must be a count"):
        select(mixed, 4, "msc", H, stratify="config_type", quotas={"melt": "x"})
