"""Species-resolved entropy from sampled queries (`species_entropy(..., sample=M)`,
`atominfo entropy --species --sample M`): each species' H(X|z) sampled, H(species)
exact, simultaneous 95% bounds (Bonferroni over the sampled species) that hold the
exact values on EMT Cu3Au frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atominfo import InputError, descriptors
from atominfo.workflows.species import species_entropy
from atominfo.workflows.species_run import species_entropy_table

H = 0.015
M = 20


@pytest.fixture(scope="module")
def frames():
    """EMT MD of the random alloy at 800 K: 4 frames, 32 Au and 96 Cu environments."""
    from atominfo.structures.datasets import cu3au, md_frames

    return md_frames(cu3au(2, ordered=False, seed=1), 800, 4, seed=1)


@pytest.fixture(scope="module")
def data(frames):
    z = np.concatenate([f.get_chemical_symbols() for f in frames])
    X = descriptors(frames, multicomponent=["Au", "Cu"])
    return X, z, species_entropy(X, z, H)


@pytest.mark.parametrize("seed", range(5))
def test_interval_holds_exact(data, seed):
    X, z, exact = data
    est = species_entropy(X, z, H, sample=M, seed=seed)
    assert est.species == exact.species and est.sampled.all() and est.n_samples == M
    assert est.chemical == pytest.approx(exact.chemical, abs=1e-12)  # exact, not sampled
    assert np.all(est.low <= exact.entropy + 1e-12) and np.all(exact.entropy <= est.high + 1e-12)
    assert est.total_low <= exact.total <= est.total_high
    assert est.total == pytest.approx(est.chemical + est.conditional, abs=1e-12)
    # really sampled: the estimate is not the exact value, nor is its interval a point
    assert np.all(np.abs(est.entropy - exact.entropy) > 0) and np.all(est.high > est.low)
    assert np.isnan(est.diversity).all() and est.columns()["D"] == [None, None]


def test_reproducible_and_exact_when_small(data):
    X, z, exact = data
    a, b = (species_entropy(X, z, H, sample=M, seed=3) for _ in range(2))
    assert np.array_equal(a.entropy, b.entropy) and a.total_low == b.total_low
    c = species_entropy(X, z, H, sample=M, seed=4)
    assert not np.array_equal(a.entropy, c.entropy)
    # M between the Au (32) and Cu (96) counts: Au exact (zero width), Cu sampled
    mid = species_entropy(X, z, H, sample=50, seed=0)
    assert mid.sampled.tolist() == [False, True]
    assert mid.entropy[0] == pytest.approx(exact.entropy[0], abs=1e-12)
    assert mid.low[0] == mid.high[0] == mid.entropy[0]
    # M beyond every species: every value exact
    every = species_entropy(X, z, H, sample=1000, seed=0)
    assert not every.sampled.any()
    assert np.allclose(every.entropy, exact.entropy, atol=1e-12)
    assert every.total == pytest.approx(exact.total, abs=1e-12)
    with pytest.raises(InputError, match="sample"):
        species_entropy(X, z, H, sample=1)


@pytest.fixture(scope="module")
def path(frames, tmp_path_factory):
    from ase.io import write

    out = tmp_path_factory.mktemp("species_sample") / "alloy.extxyz"
    write(out, frames)
    return str(out)


def test_cli_species_sample(path, data, capsys):
    from atominfo.cli import main

    _, _, exact = data
    args = ["entropy", path, "--species", "--sample", str(M), "--seed", "2"]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    r = doc["results"][0]
    assert r["n_samples"] == M and r["seed"] == 2 and r["sampled"] == [True, True]
    assert r["total_low"] <= exact.total <= r["total_high"]
    api = species_entropy_table([path], H, sample=M, seed=2).sets[0][1]
    assert r["total"] == pytest.approx(api.total, abs=1e-12)
    assert main([*args, "--json"]) == 0  # the same seed: the same numbers
    assert json.loads(capsys.readouterr().out) == doc
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Bonferroni" in text and "[" in text and "H(species) exact" in text
    assert main(["entropy", path, "--species", "--sample", "50"]) == 0
    assert "exact (no more than 50 environments): Au" in capsys.readouterr().out


@pytest.mark.parametrize("sample", ["1", "0", "x"])
def test_cli_species_sample_refused(path, capsys, sample):
    from atominfo.cli import main

    assert main(["entropy", path, "--species", "--sample", sample]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atominfo: error:") and "--sample" in err
    assert len(err.strip().splitlines()) == 1


def test_table_sampled_columns(frames, data):
    """Several sets: each with its own bounds; the table's rows, frame and JSON are finite
    where the maths is (D not computed: None)."""
    X, z, exact = data
    table = species_entropy_table([frames[:2], frames[2:]], H, sample=M, seed=0)
    assert [name for name, _ in table.sets] == ["set 0", "set 1", "all"]
    cols = table.columns()
    assert cols["species"][-4:] == ["Au", "Cu", "total", "chemical"]
    assert all(lo <= h <= hi for lo, h, hi in zip(cols["H_low"], cols["H"], cols["H_high"]))
    assert cols["D"][-4:] == [None, None, None, None]
    everything = table.sets[-1][1]
    assert everything.total_low <= exact.total <= everything.total_high
    json.dumps(table.to_dict(), allow_nan=False)
    assert len(table.to_pandas()) == 12 and "H_low" in table._repr_html_()
    exact_table = species_entropy_table([frames], H)
    assert "H_low" not in exact_table.columns()
