"""The dataset workflows own their runs: Python gives the bytes of the command line.

`run_curves`, `compress` and `run_report` open the output guard, compute and
write every output; `atominfo curve`, `compress` and `report` only parse,
call them and print. Their value objects (`CurveOptions`, `Constraints`,
`ReportOptions`) are validated when made and also accept their fields as
keywords of the functions that take them.
"""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from atominfo.cli import main
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu

H = 0.015


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dataset_runs")
    frames = varied_fcc_cu(8, seed=1, sigma=(0.01, 0.2))
    for i, atoms in enumerate(frames):
        atoms.info["kind"] = "a" if i % 2 else "b"
        atoms.info["hours"] = 1.0 + i
    ase.io.write(d / "all.extxyz", frames)
    ase.io.write(d / "ref.extxyz", varied_fcc_cu(2, seed=3))
    return d


@pytest.fixture(scope="module")
def data(files):
    return load_frames([str(files / "all.extxyz")])


def cli_json(args, capsys):
    assert main([*args, "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


# -- learning curves ------------------------------------------------------------------------


def test_run_curves_writes_the_commands_figure_and_numbers(files, data, tmp_path, capsys):
    from atominfo.workflows.curves import CurveOptions
    from atominfo.workflows.curves_run import run_curves

    cli_plot, api_plot = tmp_path / "cli.svg", tmp_path / "api.svg"
    args = ["curve", str(files / "all.extxyz"), "--group-by", "kind", "--seeds", "2"]
    printed = cli_json([*args, "--plot", str(cli_plot)], capsys)
    run = run_curves(data, H, CurveOptions(n_seeds=2), group_by="kind", plot=api_plot)
    assert api_plot.read_bytes() == cli_plot.read_bytes()
    assert run.to_dict()["curves"] == printed["curves"]
    assert list(printed) == ["bandwidth", "k", "cutoff", "plot", "curves"]
    rows = run.rows()
    assert {r["curve"] for r in rows} == {"a", "b"}
    assert len(rows) == sum(len(c.sizes) for c in run.curves.values())
    assert "<table>" in run._repr_html_() and run._repr_html_().count("<tr>") == 3


def test_run_curves_refuses_a_bad_figure_before_any_work(data, tmp_path):
    from atominfo.workflows.curves_run import run_curves

    calls = []
    with pytest.raises(InputError, match=r"must end in \.png, \.pdf, \.svg"):
        run_curves(data, H, plot=tmp_path / "x.txt", progress=lambda *a: calls.append(a))
    assert calls == [] and not list(tmp_path.iterdir())


def test_learning_curve_keywords_fold_into_curve_options(data):
    from atominfo.workflows.curves import CurveOptions, learning_curve

    X = data.X[:300]
    by_keywords = learning_curve(X, H, by="environments", n_seeds=2, n_sizes=5, n_boot=0)
    options = CurveOptions(by="environments", n_seeds=2, n_sizes=5, n_boot=0)
    by_options = learning_curve(X, H, options)
    assert by_keywords.to_dict() == by_options.to_dict()
    # a keyword replaces the field of the options it comes with
    assert learning_curve(X, H, options, n_seeds=1).seeds == [0]
    rows = by_options.rows()
    assert [r["N"] for r in rows] == by_options.sizes.tolist()
    assert all(r["fit"] is None for r in rows)  # five sizes: no fit


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"by": "atoms"}, "sampling unit"),
        ({"n_seeds": 0}, "number of seeds"),
        ({"level": 1.5}, "interval level"),
        ({"n_sizes": 0}, "number of sizes"),
    ],
)
def test_curve_options_are_validated_when_made(fields, message):
    from atominfo.workflows.curves import CurveOptions

    with pytest.raises(InputError, match=message):
        CurveOptions(**fields)
    CurveOptions(sizes=[1, 2, 3], n_sizes=0)  # the number of sizes is unused with sizes


def test_curve_run_to_pandas(data):
    pd = pytest.importorskip("pandas")
    from atominfo.workflows.curves_run import run_curves

    run = run_curves(data, H, n_seeds=1, n_boot=0)
    table = run.to_pandas()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["curve", "N", "environments", "H_mean", "H_sd", "fit"]
    assert np.allclose(table["H_mean"], run.curves["all"].mean)


# -- compression -------------------------------------------------------------------------------


def _without_time(path):
    summary = json.loads(path.read_text())
    summary.pop("selection_seconds")
    return summary


def test_compress_writes_the_commands_files(files, data, tmp_path, capsys):
    from atominfo.workflows.compression_limits import Constraints
    from atominfo.workflows.compression_run import CompressOutputs, compress

    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir(), api.mkdir()
    args = ["compress", str(files / "all.extxyz"), "-s", "4", "--stratify", "kind"]
    args += ["--budget", "60%", "-o", str(cli / "sel.extxyz"), "--chemiscope", str(cli / "c.json")]
    printed = cli_json(args, capsys)
    run = compress(
        data,
        4,
        "msc",
        H,
        outputs=CompressOutputs(api / "sel.extxyz", chemiscope=api / "c.json"),
        constraints=Constraints(budget="60%", stratify="kind"),
        record={"input": [str(files / "all.extxyz")], "output": str(cli / "sel.extxyz")},
    )
    assert (api / "sel.extxyz").read_bytes() == (cli / "sel.extxyz").read_bytes()
    assert (api / "c.json").read_bytes() == (cli / "c.json").read_bytes()
    ours, theirs = _without_time(api / "sel.json"), _without_time(cli / "sel.json")
    assert list(ours) == list(theirs)[: len(ours)]  # the command adds k, cutoff, rescale_volume
    assert ours == {k: theirs[k] for k in ours}
    assert run.to_dict()["indices"] == printed["indices"] == sorted(run.selection.indices)


def test_compress_leaves_nothing_when_nothing_fits(data, tmp_path):
    from atominfo.workflows.compression_limits import Constraints
    from atominfo.workflows.compression_run import CompressOutputs, compress

    outputs = CompressOutputs(tmp_path / "sel.extxyz", chemiscope=tmp_path / "c.json.gz")
    with pytest.raises(InputError, match="nothing fits"):
        compress(data, None, "fps", H, outputs=outputs, constraints=Constraints(budget=1.0))
    assert not list(tmp_path.iterdir())


def test_select_keywords_fold_into_constraints(data):
    from atominfo.workflows.compression import select
    from atominfo.workflows.compression_limits import Constraints

    by_keywords = select(data, 3, "fps", H, budget="50%", cost="hours", summary=False)
    by_object = select(
        data, 3, "fps", H, constraints=Constraints(cost="hours", budget="50%"), summary=False
    )
    assert by_keywords.indices == by_object.indices and by_keywords.cost == by_object.cost
    with pytest.raises(TypeError, match="budgett"):
        select(data, 3, budgett=2)
    with pytest.raises(InputError, match="quotas need groups"):
        Constraints(quotas={"a": 1})


def test_own_entropies_are_formed_by_surprisals():
    """Structures whose environments are all alike have entropy exactly 0 (the mean of
    the clipped surprisals; log n minus the mean log sum was 9e-16 nats for 333 rows)."""
    from atominfo.structures.frameset import from_descriptors
    from atominfo.workflows.compression_methods import own_entropies

    rng = np.random.default_rng(0)
    alike = from_descriptors([np.tile(3 * rng.normal(size=63), (n, 1)) for n in (7, 50, 333)])
    assert own_entropies(alike, H).tolist() == [0.0, 0.0, 0.0]


# -- the report page ---------------------------------------------------------------------------


@pytest.mark.slow
def test_run_report_writes_the_commands_page(files, data, tmp_path, capsys):
    from atominfo.workflows.report import ReportOptions
    from atominfo.workflows.report_run import ReportOutputs, run_report

    # one group, and too few sizes for a fit (no bootstrap): a fast test
    args = ["report", str(files / "all.extxyz"), "--seeds", "1", "--sizes", "4"]
    assert main([*args, "-q", "-o", str(tmp_path / "cli.html")]) == 0
    capsys.readouterr()
    provenance = {
        "files": [str(files / "all.extxyz")],
        "reference_files": [],
        "k": 32,
        "cutoff": 5.0,
        "index": ":",
        "format": None,
        "rescale_volume": None,
        "title": "all.extxyz",
        "command": "",
    }
    report = run_report(
        data,
        H,
        ReportOptions(n_sizes=4, n_seeds=1),
        outputs=ReportOutputs(tmp_path / "api.html", title="all.extxyz"),
        provenance=provenance,
    )
    assert (tmp_path / "api.html").read_bytes() == (tmp_path / "cli.html").read_bytes()
    assert [g.name for g in report.information] == ["all"] and report.overlap is None


def test_report_options_validated_and_folded(data):
    from atominfo.workflows.report import ReportOptions, dataset_report

    with pytest.raises(InputError, match="compression fractions"):
        ReportOptions(keep=(0.5, 1.0))
    with pytest.raises(InputError, match="number of seeds"):
        dataset_report(data, H, n_seeds=0)
    with pytest.raises(TypeError, match="n_sized"):
        dataset_report(data, H, n_sized=3)
    assert ReportOptions(keep=[0.5]).keep == (0.5,)


# -- metrics, overlap matrix, generations, dedupe -------------------------------------------------


@pytest.mark.slow
def test_small_runs_write_the_commands_files(files, data, tmp_path, capsys):
    from atominfo.workflows.duplicates import run_dedupe
    from atominfo.workflows.generations import VerdictRule, run_generations
    from atominfo.workflows.metrics import run_metrics
    from atominfo.workflows.overlap_matrix import run_overlap_matrix

    source = str(files / "all.extxyz")
    cli, api = tmp_path / "cli", tmp_path / "api"
    cli.mkdir(), api.mkdir()
    for args in (
        ["metrics", source, "--group-by", "kind", "-o", str(cli / "m.csv")],
        ["overlap-matrix", source, "--group-by", "kind", "--plot", str(cli / "ov.svg")],
        [
            "generations",
            source,
            "--group-by",
            "kind",
            "--window",
            "1",
            "--plot",
            str(cli / "g.svg"),
        ],
        ["dedupe", source, "--by", "environments", "--tol", "0.05", "-o", str(cli / "d.extxyz")],
    ):
        assert main([*args, "-q"]) == 0
    capsys.readouterr()
    metrics = run_metrics(data, H, "kind", output=api / "m.csv")
    groups = data.groups("kind", sort=True)
    matrix = run_overlap_matrix(data, H, data.groups("kind"), plot=api / "ov.svg")
    run = run_generations(data, H, groups, rule=VerdictRule(window=1), plot=api / "g.svg")
    dups = run_dedupe(data, 0.05, "environments", output=api / "d.extxyz")
    for name in ("m.csv", "ov.svg", "g.svg", "d.extxyz"):
        assert (api / name).read_bytes() == (cli / name).read_bytes(), name
    assert [r["label"] for r in metrics.rows] == ["b", "a", "total"]
    assert matrix.labels == ["b", "a"] and run.verdict.window == 1 and dups.by == "environments"
    assert [g.label for g in run.generations] == ["a", "b"] and len(run.generations) == 2
    assert run.to_dict()["verdict"]["verdict"] == run.verdict.verdict


# -- entropy of each file ---------------------------------------------------------------------


def test_entropy_table_gives_the_commands_rows(files, capsys):
    from atominfo.descriptor import descriptors
    from atominfo.workflows.metrics import entropy_table

    source = str(files / "all.extxyz")
    printed = cli_json(["entropy", source, source, "-b", "0.01,0.02"], capsys)
    X = descriptors(source)
    calls = []
    table = entropy_table(
        [(source, X), (source, X), ("all", np.concatenate([X, X]))],
        [0.01, 0.02],
        progress=lambda name, n: calls.append((name, n)),
    )
    assert json.loads(json.dumps(table.to_dict()["rows"], default=list)) == json.loads(
        json.dumps(printed["results"])
    )
    assert [c for c in calls if c[1] == 0] == [(source, 0), (source, 0), ("all", 0)]
    columns = table.columns()
    assert columns["h"] == [0.01, 0.02] * 3 and len(columns["set"]) == 6
    assert all(np.ndim(v) == 0 for values in columns.values() for v in values)


def test_commands_show_one_progress_bar_per_curve_and_set(files, monkeypatch, capsys):
    """On a terminal each curve (and each set of `entropy`) has its own bar."""
    from contextlib import contextmanager

    import atominfo.cli.report

    bars = []

    @contextmanager
    def progress(description, total, quiet=False, unit="atoms"):
        bars.append([description, total, 0])
        yield lambda n: bars[-1].__setitem__(2, bars[-1][2] + n)

    monkeypatch.setattr(atominfo.cli.report, "progress", progress)
    source = str(files / "all.extxyz")
    assert main(["curve", source, "--group-by", "kind", "--seeds", "2", "--sizes", "4"]) == 0
    assert main(["entropy", source, "--sample", "20"]) == 0
    capsys.readouterr()
    curves = [b for b in bars if b[0].startswith("curve")]
    assert [b[0] for b in curves] == ["curve b", "curve a"]
    assert all(b[1] == 8 and b[2] == 8 for b in curves)  # 4 sizes x 2 seeds
    assert ["sampled entropy all.extxyz", 20, 20] in bars
