"""Simulation-analysis workflows called from Python: the same files and numbers as their
commands (`clusters`, `calibrate`, `smooth`), value objects instead of keyword bundles,
and result objects that display in Jupyter."""

import inspect
import json
import warnings
from pathlib import Path

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.settings import DescriptorSpec, Reading
from atominfo.workflows.trajectory import (
    TrajectoryDH,
    iter_self_dh,
    iter_trajectory_dh,
    trajectory_dh,
)

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")
HOT = str(DATA / "cu_hot_32.extxyz")


@pytest.fixture(scope="module")
def reference():
    return atominfo.Reference.from_structures(FCC, h=0.015)


@pytest.fixture(scope="module")
def traj(tmp_path_factory):
    """Hot, crystal, hot: 32 + 108 + 32 atoms."""
    path = tmp_path_factory.mktemp("traj") / "traj.extxyz"
    hot, fcc = ase.io.read(HOT), ase.io.read(FCC)
    ase.io.write(path, [hot, fcc, hot], format="extxyz")
    return str(path)


def html_rows(html: str) -> int:
    return html.count("<tr>")


def assert_pandas(result, rows: int) -> None:
    """`to_pandas` gives one row per item, or says that it needs pandas."""
    try:
        import pandas as pd
    except ImportError:
        with pytest.raises(InputError, match="needs pandas: pip install pandas"):
            result.to_pandas()
        return
    table = result.to_pandas()
    assert isinstance(table, pd.DataFrame) and len(table) == rows


# -- trajectory: Reading / DescriptorSpec, TrajectoryDH -------------------------------------


def test_trajectory_dh_is_a_result_with_columns(traj, reference):
    table = trajectory_dh(traj, reference)
    assert isinstance(table, TrajectoryDH) and len(table) == 3
    assert table["atoms"].tolist() == [32, 108, 32]  # columns read as before
    assert table["novelty"][1] == 0.0 and table["novelty"][0] > 0.5
    assert table.to_dict()["source"] == [traj] * 3
    assert list(table.columns())[-3:] == ["novelty", "max_dH", "mean_dH"]
    assert len(repr(table)) < 200 and "array(" not in repr(table)
    assert html_rows(table._repr_html_()) == 1 + 3  # header, one row per frame
    with pytest.raises(KeyError, match="columns are"):
        table["nonsense"]


def test_trajectory_html_of_many_frames_and_bandwidths(tmp_path):
    path = tmp_path / "long.extxyz"
    ase.io.write(path, [ase.io.read(HOT)] * 30, format="extxyz")
    two = atominfo.Reference.from_structures(FCC, h=[0.01, 0.02])
    table = trajectory_dh(str(path), two)
    assert table["novelty"].shape == (30, 2)
    assert "novelty_h0.01" in table.columns() and "max_dH_h0.02" in table.columns()
    html = table._repr_html_()
    assert html_rows(html) == 1 + 20 + 1 and "10 more rows" in html and "[" not in html
    assert_pandas(table, 30)


def test_value_objects_equal_the_separate_keywords(traj):
    small = atominfo.Reference.from_structures(FCC, h=0.015, k=16, cutoff=4.0)
    loose = list(iter_trajectory_dh(traj, small, index="0:2", k=16, cutoff=4.0))
    bundled = list(
        iter_trajectory_dh(traj, small, reading=Reading("0:2"), spec=DescriptorSpec(16, 4.0))
    )
    assert [f.number for f in bundled] == [0, 1]
    for a, b in zip(loose, bundled):
        np.testing.assert_array_equal(a.dH, b.dH)
    own = list(iter_self_dh(traj, 0.015, spec=DescriptorSpec(k=16)))
    assert [f.number for f in own] == [1, 2]
    np.testing.assert_array_equal(own[1].dH, list(iter_self_dh(traj, 0.015, k=16))[1].dH)


def test_keywords_replace_the_fields_of_the_value_objects(traj, reference):
    frames = list(iter_trajectory_dh(traj, reference, reading=Reading("0:2"), index="1"))
    assert [f.number for f in frames] == [0] and len(frames[0].atoms) == 108
    with pytest.raises(InputError, match="k must be"):
        next(iter_self_dh(traj, 0.015, spec=DescriptorSpec(k=16), k=1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        next(iter_trajectory_dh(traj, reference, kk=3))


# -- clusters: run_clusters owns the run --------------------------------------------------


def test_run_clusters_writes_what_the_command_writes(traj, reference, tmp_path, capsys):
    from atominfo.workflows.clusters_run import ClustersRun, run_clusters
    from atominfo.workflows.nucleation import ClusterOptions

    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir(), api.mkdir()
    argv = ["clusters", traj, "--ref", FCC, "--liquid-ref", HOT, "--edge", "3.2", "-q"]
    outputs = ["--table", str(cli / "c.json"), "-o", str(cli / "c.extxyz"), "--json"]
    assert main(argv + outputs) == 0
    printed = json.loads(capsys.readouterr().out)
    liquid = atominfo.Reference.from_structures(HOT, h=0.015)
    run = run_clusters(
        traj,
        reference,
        liquid_reference=liquid,
        # the command names its references by their files (the API, by their sizes)
        options=ClusterOptions(
            edge_length=3.2, references=f"solid reference {FCC}; liquid reference {HOT}"
        ),
        table=api / "c.json",
        output=api / "c.extxyz",
    )
    assert isinstance(run, ClustersRun)
    for name in ("c.json", "c.extxyz"):
        assert (api / name).read_bytes() == (cli / name).read_bytes()
    expected = {**printed, "table": str(api / "c.json"), "output": str(api / "c.extxyz")}
    assert run.to_dict() == expected
    assert (run.frames, run.largest, run.liquid_reference) == (3, 108, True)
    frames = ase.io.read(api / "c.extxyz", ":")
    assert {"dH", "dH_liquid", "cluster"} <= set(frames[1].arrays)
    assert run.columns()["largest"] == [0, 108, 0]
    assert html_rows(run._repr_html_()) == 1 + 3 and "[" not in run._repr_html_()
    assert_pandas(run, 3)


def test_run_clusters_csv_plot_and_refused_output(traj, reference, tmp_path):
    from atominfo.workflows.clusters_run import run_clusters

    table = tmp_path / "c.csv"
    run = run_clusters([traj], reference, table=table, plot=tmp_path / "c.png")
    assert table.read_text().splitlines()[:2] == [
        "frame,source,source_frame,timestep,atoms,solid_like,clusters,largest",
        f"0,{traj},0,,32,0,0,0",
    ]
    assert run.plot.read_bytes()[:4] == b"\x89PNG"
    table.unlink()
    with pytest.raises(InputError, match="output directory does not exist"):
        run_clusters(traj, reference, table=table, plot=tmp_path / "no" / "c.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


def test_cluster_options_are_validated_and_keywords_still_work(traj, reference):
    from atominfo.workflows.nucleation import ClusterOptions, iter_trajectory_clusters

    with pytest.raises(InputError, match="edge_length"):
        ClusterOptions(edge_length=0.0)
    with pytest.raises(InputError, match="n_star"):
        ClusterOptions(n_star=-1.0)
    loose = [f.summary() for f in iter_trajectory_clusters(traj, reference, method="connected")]
    bundled = iter_trajectory_clusters(traj, reference, options=ClusterOptions(method="connected"))
    assert loose == [f.summary() for f in bundled]
    with pytest.raises(InputError, match="method"):
        next(iter_trajectory_clusters(traj, reference, method="louvain", index="0"))


# -- per-environment values, smooth -----------------------------------------------------


@pytest.fixture(scope="module")
def forces_file(tmp_path_factory):
    """Two frames of the hot crystal with reference and predicted forces and a 'dH' array."""
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(5)
    frames = []
    for _ in range(2):
        atoms = ase.io.read(HOT)
        forces = rng.normal(size=(len(atoms), 3))
        atoms.arrays["predicted_forces"] = forces + rng.normal(0, 0.1, forces.shape)
        atoms.arrays["dH"] = rng.normal(size=len(atoms))
        atoms.calc = SinglePointCalculator(atoms, forces=forces)
        frames.append(atoms)
    path = tmp_path_factory.mktemp("forces") / "forces.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def test_environment_values_from_npy_and_structure_files(tmp_path, forces_file):
    from atominfo.workflows.environment_values import read_environment_values
    from atominfo.workflows.uncertainty import force_errors

    row = tmp_path / "row.npy"
    np.save(row, np.arange(4.0)[None, :])
    assert read_environment_values(row, "errors", "error").tolist() == [0.0, 1.0, 2.0, 3.0]
    frames = ase.io.read(forces_file, ":")
    errors = read_environment_values(
        forces_file, "errors", "error", forces=("forces", "predicted_forces")
    )
    np.testing.assert_array_equal(errors, force_errors(frames))
    dH = read_environment_values(forces_file, "dH", "dH")
    np.testing.assert_array_equal(dH, np.concatenate([f.arrays["dH"] for f in frames]))
    with pytest.raises(InputError, match="forces.extxyz: frame 0: no per-atom array 'error'"):
        read_environment_values(forces_file, "errors", "error")
    np.save(row, np.zeros((2, 3)))
    with pytest.raises(InputError, match="row.npy: errors must be one value per environment"):
        read_environment_values(row, "errors", "error")


def test_smooth_does_not_import_private_names():
    import ast

    import atominfo.cli.smooth as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert not [name for name in imported if name.startswith("_")]


def test_run_smoothing_writes_what_the_command_writes(reference, tmp_path, capsys):
    from atominfo.workflows.regression import SmoothingRun, kernel_regression, run_smoothing

    values = tmp_path / "v.npy"
    np.save(values, np.linspace(0.0, 1.0, 108))
    cli, api = tmp_path / "cli.json", tmp_path / "api.json"
    argv = ["smooth", HOT, "--ref", FCC, "--errors", str(values), "--max-dh", "300"]
    assert main(argv + ["-o", str(cli), "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    run = run_smoothing(HOT, reference, values, max_dh=300.0, output=api)
    assert isinstance(run, SmoothingRun) and api.read_bytes() == cli.read_bytes()
    summary = run.to_dict()
    summary.pop("regression")
    assert summary == {**printed, "output": str(api)}
    expected = kernel_regression(
        atominfo.descriptors(HOT), reference.X, np.linspace(0.0, 1.0, 108), 0.015, max_dh=300.0
    )
    np.testing.assert_array_equal(run.regression.estimate, expected.estimate)
    assert 0 < run.determined < run.environments == 32 and "dH > 300" in run.reason
    assert "regression" not in repr(run) and len(repr(run)) < 300
    with pytest.raises(InputError, match="10 values for 108 reference environments"):
        np.save(values, np.zeros(10))
        run_smoothing(HOT, reference, values, output=tmp_path / "none.npy")
    assert not (tmp_path / "none.npy").exists()


# -- calibrate --------------------------------------------------------------------------


@pytest.mark.slow
def test_run_calibration_writes_what_the_command_writes(forces_file, tmp_path, capsys):
    from atominfo.workflows.uncertainty import CalibrationRun, run_calibration

    cli, api = tmp_path / "cli.json", tmp_path / "api.json"
    argv = ["calibrate", "--errors", str(forces_file), "--coverage", "0.8", "--seed", "3"]
    assert main(argv + ["-o", str(cli), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    run = run_calibration(forces_file, coverage=0.8, seed=3, output=api, plot=tmp_path / "c.svg")
    assert isinstance(run, CalibrationRun) and run.to_dict() == printed
    assert api.read_bytes() == cli.read_bytes()
    assert (tmp_path / "c.svg").read_bytes().startswith(b"<?xml")
    assert run.correlations.n == 64 and run.inputs["dh"] == forces_file
    assert html_rows(run._repr_html_()) == 1 + 20 and "[" not in run._repr_html_()
    assert_pandas(run, 20)
    with pytest.raises(InputError, match="dH values are needed"):
        np.save(tmp_path / "e.npy", np.ones(64))
        run_calibration(tmp_path / "e.npy", output=tmp_path / "none.json")
    assert not (tmp_path / "none.json").exists()


def test_calibrate_seed_range_end_prints_no_overflow_warning(tmp_path, capsys):
    """A conformal score beyond float64 (a residual near 1e300 over a spread floored at
    1e-12) is +inf, not an overflow warning; which point is scored depends on --seed."""
    dH = np.random.default_rng(0).normal(size=200)
    errors = np.ones(200)
    errors[2] = 1e300  # scored at the calibration step with seed 2**32 - 1
    np.save(tmp_path / "dh.npy", dH)
    np.save(tmp_path / "err.npy", errors)
    argv = ["calibrate", "--dh", str(tmp_path / "dh.npy"), "--errors", str(tmp_path / "err.npy")]
    assert main(argv + ["--seed", "4294967295", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["conformal_quantile"] == 0.0


def test_calibration_is_refused_where_float64_cannot_hold_it():
    from atominfo.workflows.uncertainty import ConformalErrorEstimator, calibrate

    dH = np.arange(8.0)
    errors = np.array([1.0] * 4 + [1e300] * 4)
    refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for seed in range(200):
            try:
                estimator = ConformalErrorEstimator(0.5, seed=seed).fit(dH, errors)
            except InputError as exc:  # every large error among the calibration points
                assert "beyond float64" in str(exc)
                refused += 1
            else:
                assert np.isfinite(estimator.quantile_)
    assert refused > 0
    with pytest.raises(InputError, match="errors up to 1e\\+307: a sum of 200"):
        calibrate(np.zeros(200), np.full(200, 1e307))


def test_public_workflow_functions_take_at_most_ten_parameters():
    from atominfo.workflows import clusters_run, nucleation, regression, trajectory, uncertainty

    for module in (clusters_run, nucleation, regression, trajectory, uncertainty):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            kinds = [p.kind for p in inspect.signature(function).parameters.values()]
            counted = [k for k in kinds if k not in (k.VAR_POSITIONAL, k.VAR_KEYWORD)]
            assert len(counted) <= 10, f"{module.__name__}.{name}: {len(counted)} parameters"
