"""Learning curve with sampled H (`learning_curve(..., sample=M)`, `atominfo curve
--sample M`): each subset's H from M queries (a new draw per seed, the full set too),
the rise test from each size's own spread over seeds (Welch), no asymptote fitted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from atominfo import InputError, descriptors, entropy
from atominfo.workflows.curves import learning_curve
from atominfo.workflows.curves_rise import rise_test

H = 0.015


@pytest.fixture(scope="module")
def frames():
    """8 frames of thermal FCC Cu (EMT MD, 800 K): 256 environments."""
    from atominfo.structures.datasets import md_frames

    return md_frames(bulk("Cu", cubic=True) * (2, 2, 2), 800, 8, interval=10, equilibration=40)


@pytest.fixture(scope="module")
def X(frames):
    return descriptors(frames)


def test_welch_interval_covers_the_rise():
    """Normal noise of a different size at every size, the full one too (as a sampled H has):
    the interval holds the true rise in 95% of 1000 draws (within 4 binomial sd)."""
    rng = np.random.default_rng(0)
    sizes = np.array([16, 32, 64, 128, 256, 512, 1024])
    sd = np.array([0.3, 0.05, 0.05, 0.1, 0.02, 0.08, 0.06])
    hits = 0
    for _ in range(1000):
        E = 3 + 0.1 * np.log2(sizes)[:, None] + sd[:, None] * rng.standard_normal((7, 5))
        test = rise_test(sizes, E, sampled=True)
        assert test.sampled and "sampling error" in test.rule
        hits += test.interval[0] <= 0.1 <= test.interval[1]
    assert 0.92 <= hits / 1000 <= 0.98
    one = rise_test(sizes, E[:, :1], sampled=True)
    assert one.status == "not determined" and one.interval is None


def test_sampled_curve(X):
    M, n = 60, len(X)
    kw = dict(by="environments", sizes=[20, 40, 80, 160, n], n_seeds=3, seed=0)
    sampled = learning_curve(X, H, sample=M, **kw)
    exact = learning_curve(X, H, **kw)
    assert sampled.test.sampled and not exact.test.sampled
    # sizes of at most M: the exact H of the same subsets
    assert np.allclose(sampled.entropies[:2], exact.entropies[:2], atol=1e-12)
    # larger: estimates, and the full set drawn anew per seed (a spread, around exact H)
    assert np.all(np.abs(sampled.entropies[2:] - exact.entropies[2:]) > 0)
    full = sampled.entropies[-1]
    assert np.ptp(full) > 0 and np.ptp(exact.entropies[-1]) == 0
    assert abs(full.mean() - float(entropy(X, H))) < 0.5
    assert sampled.fit is None and "sampled" in sampled.fit_reason
    again = learning_curve(X, H, sample=M, **kw)
    assert np.array_equal(again.entropies, sampled.entropies)
    with pytest.raises(InputError, match="sample"):
        learning_curve(X, H, sample=1, **kw)


@pytest.fixture(scope="module")
def path(frames, tmp_path_factory):
    from ase.io import write

    out = tmp_path_factory.mktemp("curve_sample") / "cu.extxyz"
    write(out, frames)
    return str(out)


def test_cli_curve_sample(path, capsys):
    from atominfo.cli import main

    args = ["curve", path, "--by", "environments", "--sizes", "5", "--sample", "50", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sample"] == 50
    curve = doc["curves"]["all"]
    assert curve["test"]["sampled"] is True and curve["fit"] is None
    assert main(args[:-1]) == 0
    assert "sampling error" in capsys.readouterr().out
    for bad in (["--sample", "1"], ["--species", "--sample", "50"]):
        assert main(["curve", path, *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("atominfo: error:") and "--sample" in err
        assert len(err.strip().splitlines()) == 1
