"""CLI paths of the kernel engine: `entropy --sample`, `overlap --method`."""

import json

import numpy as np
import pytest

import atominfo
from atominfo.cli import main

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")
HOT = str(DATA / "cu_hot_32.extxyz")


def run_json(args, capsys):
    assert main(args + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_entropy_sample_reports_interval_and_seed(capsys):
    out = run_json(["entropy", FCC, "--sample", "40", "--seed", "7", "-q"], capsys)
    row = out["results"][0]
    assert out["seed"] == 7 and row["seed"] == 7 and row["n_samples"] == 40
    assert row["ci95_low"] < row["entropy"] < row["ci95_high"]
    expected = atominfo.sampled_entropy(atominfo.descriptors(FCC), 0.015, 40, seed=7)
    assert row["entropy"] == pytest.approx(expected.entropy, abs=1e-12)
    assert row["diversity"] is None
    again = run_json(["entropy", FCC, "--sample", "40", "--seed", "7", "-q"], capsys)
    assert again == out  # reproducible from the recorded seed


def test_entropy_sample_bad_count(capsys):
    assert main(["entropy", FCC, "--sample", "1"]) == 2
    assert "--sample must be an integer >= 2" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["classify", "exact", "auto"])
def test_overlap_methods_agree(capsys, method):
    out = run_json(["overlap", HOT, "--ref", FCC, "-b", "0.015,0.05", "--method", method], capsys)
    dH = atominfo.delta_entropy(atominfo.descriptors(HOT), atominfo.descriptors(FCC), [0.015, 0.05])
    np.testing.assert_allclose(out["overlap"], (dH <= 0).mean(axis=1))
    assert out["method"] == method


def test_overlap_bad_method(capsys):
    assert main(["overlap", HOT, "--ref", FCC, "--method", "guess"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
