"""--false-alarm on the commands that decide novelty: extract (and lammps, the monitor).

Novel atoms are those whose conformal p-value against the reference is at most the
rate (`atominfo.reference.conformal`), instead of those with dH > 0.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.io import read, write

from atominfo import Reference
from atominfo.descriptor import descriptors
from atominfo.errors import InputError
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.labelling import ExtractOptions, extract

RATE = 0.05


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A reference of 40 rattled 32-atom Cu cells (sigma 0.05 Å) and a test of three
    cells rattled by 0.05, 0.07 and 0.1 Å (in distribution, then hotter)."""
    d = tmp_path_factory.mktemp("fa")
    ref = [rattled_fcc_cu((2, 2, 2), sigma=0.05, seed=s) for s in range(40)]
    test = [rattled_fcc_cu((2, 2, 2), sigma=s, seed=101) for s in (0.05, 0.07, 0.1)]
    write(d / "ref.extxyz", ref)
    write(d / "test.extxyz", test)
    return d, ref, test


@pytest.fixture(scope="module")
def reference(data):
    _, ref, _ = data
    return Reference.from_structures(ref, h=0.015)


def _cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "atominfo", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_extract_keeps_exactly_the_atoms_at_the_rate(data, reference):
    _, _, test = data
    result = extract(test, reference, ExtractOptions(false_alarm=RATE))
    p = np.concatenate([reference.p_values(descriptors(a)) for a in test])
    dH = np.concatenate([reference.delta_entropy(descriptors(a)) for a in test])
    flagged = p <= RATE
    assert 0 < flagged.sum() < len(p)  # the test is neither all nor nothing
    cand = result.candidates
    assert len(cand) == flagged.sum()
    assert cand.false_alarm == RATE
    assert np.all(cand.p <= RATE)
    # where each candidate is: the same atoms as the p-values flag
    n = len(test[0])
    assert sorted(cand.frame * n + cand.atom) == list(np.flatnonzero(flagged))
    # ranked by dH, as without a rate
    assert result.structures[0].info["dH"] == pytest.approx(dH[flagged].max())
    for piece in result.structures:
        assert piece.info["p_value"] <= RATE
    # dH > 0 is not the rule any more
    assert flagged.sum() != (dH > 0).sum()
    summary = result.to_dict()
    assert summary["false_alarm"] == RATE and summary["min_dH"] is None


def test_extract_dedupe_at_the_rate(data, reference):
    _, _, test = data
    result = extract(test, reference, ExtractOptions(false_alarm=RATE, dedupe=True))
    assert 0 < len(result.structures) <= len(result.candidates)
    assert all(piece.info["p_value"] <= RATE for piece in result.structures)


def test_extract_api_refusals(data, reference):
    _, _, test = data
    with pytest.raises(InputError, match="min_dh"):
        ExtractOptions(false_alarm=RATE, min_dh=1.0)
    with pytest.raises(InputError):
        ExtractOptions(false_alarm=1.5)
    with pytest.raises(InputError, match="reference"):
        extract(test, None, ExtractOptions(false_alarm=RATE))
    with pytest.raises(InputError, match="smallest p-value"):
        extract(test, reference, ExtractOptions(false_alarm=1e-6))


@pytest.mark.slow
def test_extract_cli_false_alarm(data, tmp_path):
    d, _, _ = data
    out, summary = tmp_path / "picks.extxyz", tmp_path / "picks.json"
    args = ["extract", d / "test.extxyz", "--ref", d / "ref.extxyz", "-o", out]
    done = _cli(*args, "--false-alarm", RATE, "--summary", summary, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "false-alarm" in done.stdout
    picks = read(out, ":")
    assert picks and all(a.info["p_value"] <= RATE for a in picks)
    info = json.loads(summary.read_text())
    assert info["false_alarm"] == RATE and info["candidates"] == len(picks)
    both = _cli(*args[:-1], tmp_path / "x.extxyz", "--false-alarm", RATE, "--min-dh", 1)
    assert both.returncode == 2
    assert both.stderr.strip().count("\n") == 0
    assert both.stderr.startswith("atominfo: error:") and "--min-dh" in both.stderr
    assert not (tmp_path / "x.extxyz").exists()
    bad = _cli(*args[:-1], tmp_path / "y.extxyz", "--false-alarm", 0)
    assert bad.returncode == 2 and bad.stderr.startswith("atominfo: error:")
    tiny = _cli(*args[:-1], tmp_path / "z.extxyz", "--false-alarm", 1e-6)
    assert tiny.returncode == 2 and "smallest p-value" in tiny.stderr
    assert not (tmp_path / "z.extxyz").exists()
