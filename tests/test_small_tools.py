"""Duplicates (`atominfo dedupe`), kernel regression (`atominfo smooth`) and dataset
metrics (`atominfo metrics`) on small cases with known answers."""

import json

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.workflows.duplicates import duplicate_environments, duplicate_structures
from atominfo.workflows.metrics import dataset_metrics
from atominfo.workflows.regression import UNDERFLOW_DH, kernel_regression

from .conftest import DATA

HOT = DATA / "cu_hot_32.extxyz"
FCC = DATA / "cu_fcc_108.extxyz"


# -- duplicates ---------------------------------------------------------------------------


def test_duplicate_environments_greedy_first_kept():
    # 1-D positions: 1 is within tol of 0; 2 is within tol of 1 (a duplicate) but not of
    # 0, so 2 is kept; 3 equals 2; 4 is far
    X = np.array([[0.0], [0.0008], [0.0016], [0.0016], [1.0]])
    d = duplicate_environments(X, tol=1e-3)
    assert d.duplicate_of.tolist() == [-1, 0, -1, 2, -1]
    assert d.keep.tolist() == [True, False, True, False, True]
    assert d.n_unique == 3
    exact = duplicate_environments(X, tol=0.0)
    assert exact.duplicate_of.tolist() == [-1, -1, -1, 2, -1]


def test_duplicate_structures_ignore_atom_order_and_translation():
    base = ase.io.read(HOT)
    permuted = base[np.random.default_rng(0).permutation(len(base))]
    permuted.translate([0.3, -0.2, 0.1])
    moved = base.copy()
    moved.positions[0] += [0.05, 0.0, 0.0]
    other = base.copy()
    other.symbols[0] = "Ag"
    data = load_frames([base, permuted, moved, other, base.copy()])
    d = duplicate_structures(data, tol=1e-6)
    assert d.duplicate_of.tolist() == [-1, 0, -1, -1, 0]
    # a loose tolerance absorbs the 0.05 Å displacement, never the change of species
    assert duplicate_structures(data, tol=1.0).duplicate_of.tolist() == [-1, 0, 0, -1, 0]


def test_dedupe_cli(tmp_path, capsys):
    data = tmp_path / "data.extxyz"
    data.write_text(HOT.read_text() * 2 + FCC.read_text())
    out = tmp_path / "u.extxyz"
    assert main(["dedupe", str(data), "-o", str(out), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["structures"], result["unique"]) == (3, 2)
    assert len(ase.io.read(out, ":")) == 2
    npy = tmp_path / "u.npy"
    assert main(["dedupe", str(data), "--by", "environments", "-o", str(npy), "-q"]) == 0
    X = atominfo.descriptors(data)
    expected = duplicate_environments(X, 1e-3)
    assert np.array_equal(np.load(npy), X[expected.keep])


# -- kernel regression --------------------------------------------------------------------


def test_kernel_regression_equals_the_plain_formula():
    rng = np.random.default_rng(1)
    X = rng.normal(scale=0.02, size=(40, 3))
    Y = rng.normal(scale=0.02, size=(7, 3))
    v = rng.normal(size=40)
    h = 0.015
    K = np.exp(-((Y[:, None, :] - X[None]) ** 2).sum(-1) / (2 * h * h))
    r = kernel_regression(Y, X, v, h)
    assert np.allclose(r.estimate, K @ v / K.sum(1), rtol=1e-12, atol=1e-12)
    assert np.allclose(r.dH, -np.log(K.sum(1)), atol=1e-9)
    assert np.allclose(r.n_eff, K.sum(1) ** 2 / (K**2).sum(1))
    assert r.determined.all() and r.reason == ""
    assert np.allclose(kernel_regression(Y, X, np.full(40, 2.5), h).estimate, 2.5)


def test_kernel_regression_refuses_where_weights_underflow():
    X = np.zeros((3, 2))
    Y = np.array([[0.0, 0.001], [1.0, 0.0]])  # the second: dH = 1/(2 h^2) = 2222 nats
    r = kernel_regression(Y, X, [1.0, 2.0, 3.0], 0.015)
    assert r.estimate[0] == pytest.approx(2.0)
    assert np.isnan(r.estimate[1]) and not r.determined[1]
    assert r.dH[1] > UNDERFLOW_DH and "underflow" in r.reason
    assert r.to_dict()["estimate"][1] is None
    # dH of the first: -log(3 exp(-0.001^2 / (2 h^2))) = -1.0964 nats, above a limit of -1.5
    strict = kernel_regression(Y, X, [1.0, 2.0, 3.0], 0.015, max_dh=-1.5)
    assert strict.dH[0] == pytest.approx(-np.log(3) + 0.001**2 / (2 * 0.015**2))
    assert np.isnan(strict.estimate).all() and "beyond the limit" in strict.reason


@pytest.mark.parametrize(
    "values, match",
    [
        ([1.0, 2.0], "one number per reference"),
        ([1.0, np.nan, 3.0], "NaN"),
        (["a", "b", "c"], "real numbers"),
    ],
)
def test_kernel_regression_bad_values(values, match):
    with pytest.raises(InputError, match=match):
        kernel_regression(np.zeros((1, 2)), np.zeros((3, 2)), values)


def test_smooth_cli(tmp_path, capsys):
    values = tmp_path / "v.npy"
    np.save(values, np.arange(108, dtype=float))
    out = tmp_path / "e.npy"
    assert (
        main(["smooth", str(HOT), "--ref", str(FCC), "--errors", str(values), "-o", str(out), "-q"])
        == 0
    )
    expected = kernel_regression(
        atominfo.descriptors(HOT), atominfo.descriptors(FCC), np.arange(108.0)
    )
    assert np.array_equal(np.load(out), expected.estimate, equal_nan=True)
    np.save(values, np.arange(10, dtype=float))
    assert main(["smooth", str(HOT), "--ref", str(FCC), "--errors", str(values), "-q"]) == 2
    assert "10 values for 108" in capsys.readouterr().err


# -- metrics ------------------------------------------------------------------------------


def test_metrics_per_group_and_total():
    frames = ase.io.read(HOT, ":") + ase.io.read(FCC, ":") + ase.io.read(FCC, ":")
    for f, label in zip(frames, ["hot", "fcc", "fcc"]):
        f.info["config_type"] = label
    data = load_frames(frames)
    m = dataset_metrics(data, 0.015, "config_type")
    rows = {r["label"]: r for r in m.rows}
    assert list(rows) == ["hot", "fcc", "total"]
    for label, X in (
        ("hot", data.environments([0])),
        ("fcc", data.environments([1, 2])),
        ("total", data.X),
    ):
        H, D = atominfo.entropy_and_diversity(X, 0.015)
        r = rows[label]
        assert (r["n"], r["H"], r["D"]) == (len(X), pytest.approx(H), pytest.approx(D))
        assert r["log_n"] == pytest.approx(np.log(len(X)))
        assert r["efficiency"] == pytest.approx(H / np.log(len(X)))
    assert rows["fcc"]["structures"] == 2


def test_metrics_of_one_environment_has_no_efficiency():
    m = dataset_metrics(load_frames(DATA / "ta_bcc_primitive_1.extxyz"))
    assert m.rows[0]["n"] == 1 and np.isnan(m.rows[0]["efficiency"])
    assert m.to_dict()["rows"][0]["efficiency"] is None


def test_metrics_cli(tmp_path, capsys):
    assert main(["metrics", str(HOT), str(FCC), "-q"]) == 0
    text = capsys.readouterr().out
    assert "H/log n" in text and "total" in text and "cu_hot_32.extxyz" in text
    out = tmp_path / "m.csv"
    assert main(["metrics", str(HOT), str(FCC), "-q", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in result["rows"]][-1] == "total"
    assert out.read_text().splitlines()[0] == "label,structures,n,H,D,log_n,efficiency"
    assert main(["metrics", str(HOT), "--group-by", "no_such_key", "-q"]) == 2
    assert "no_such_key" in capsys.readouterr().err
