import json

import ase.io
import pytest

from atominfo.cli import main
from atominfo.structures.datasets import varied_fcc_cu


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_dataset")
    weak = varied_fcc_cu(8, seed=1, sigma=(0.01, 0.02))
    strong = varied_fcc_cu(6, seed=2, sigma=(0.2, 0.3))
    for i, atoms in enumerate(weak + strong):
        atoms.info["generation"] = 1 + i // 5
        atoms.info["name"] = f"s{i}"
    ase.io.write(d / "weak.extxyz", weak)
    ase.io.write(d / "strong.extxyz", strong)
    ase.io.write(d / "all.extxyz", weak + strong)
    partial = varied_fcc_cu(3, seed=3)
    partial[0].info["generation"] = 1
    ase.io.write(d / "partial.extxyz", partial)
    return d


def run_json(args, capsys):
    assert main(args + ["--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def test_curve_json_and_plot(files, capsys, tmp_path):
    plot = tmp_path / "curve.svg"
    out = run_json(
        [
            "curve",
            str(files / "weak.extxyz"),
            "--by",
            "environments",
            "--seeds",
            "2",
            "--seed",
            "5",
            "--sizes",
            "9",
            "--at",
            "100",
            "--plot",
            str(plot),
        ],
        capsys,
    )
    curve = out["curves"]["all"]
    assert curve["seeds"] == [5, 6] and curve["unit"] == "environments"
    assert len(curve["sizes"]) == 9 and "100" in curve["gap_at"]
    assert curve["status"] in ("saturated", "still rising", "not determined") and curve["rule"]
    if curve["fit"] is None:  # no asymptote is reported (no rejected parameters), and why
        assert curve["asymptote"] is None and curve["fit_reason"]
    else:
        assert curve["status"] == "still rising" and curve["asymptote"] == curve["fit"]["a"]
    assert plot.read_text().lstrip().startswith("<?xml")


def test_curve_table_per_file(files, capsys):
    assert (
        main(
            [
                "curve",
                str(files / "weak.extxyz"),
                str(files / "strong.extxyz"),
                "--per-file",
                "--seeds",
                "1",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "weak.extxyz" in text and "strong.extxyz" in text and "H mean (nats)" in text


def test_overlap_matrix_by_file_and_key(files, capsys, tmp_path):
    out = run_json(
        [
            "overlap-matrix",
            str(files / "weak.extxyz"),
            str(files / "strong.extxyz"),
            "--plot",
            str(tmp_path / "m.png"),
        ],
        capsys,
    )
    assert out["labels"] == [str(files / "weak.extxyz"), str(files / "strong.extxyz")]
    assert out["overlap"][0][0] == 1.0 and out["overlap"][1][0] < 0.05
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    out = run_json(
        ["overlap-matrix", str(files / "all.extxyz"), "--group-by", "generation"], capsys
    )
    assert out["labels"] == ["1", "2", "3"] and out["structures"] == [5, 5, 4]


def test_group_by_missing_key_names_frame(files, capsys):
    assert main(["overlap-matrix", str(files / "partial.extxyz"), "--group-by", "generation"]) == 2
    err = capsys.readouterr().err
    assert "partial.extxyz: frame 1: info key 'generation' is missing" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["overlap-matrix", str(files / "all.extxyz")]) == 2  # one subset only


def test_generations(files, capsys, tmp_path):
    out = run_json(
        [
            "generations",
            str(files / "all.extxyz"),
            "--group-by",
            "generation",
            "--plot",
            str(tmp_path / "g.pdf"),
        ],
        capsys,
    )
    gens = out["generations"]
    assert [g["label"] for g in gens] == ["1", "2", "3"]
    assert gens[0]["novelty"] is None and gens[2]["novelty"] > 0.9
    assert (tmp_path / "g.pdf").read_bytes()[:4] == b"%PDF"
    by_file = run_json(
        ["generations", str(files / "weak.extxyz"), str(files / "strong.extxyz")], capsys
    )
    assert by_file["generations"][1]["structures"] == 6
    assert by_file["verdict"]["verdict"] == "not converged"


@pytest.mark.slow
def test_generations_verdict(tmp_path, capsys):
    from atominfo.structures.datasets import fcc_cu, md_frames

    frames = md_frames(fcc_cu(2), 100.0, 12, seed=0)  # one crystal, re-sampled
    for i, atoms in enumerate(frames):
        atoms.info["generation"] = 1 + i // 3
    path = tmp_path / "campaign.extxyz"
    ase.io.write(path, frames)
    base = ["generations", str(path), "--group-by", "generation"]
    out = run_json(base + ["--gap"], capsys)
    v = out["verdict"]
    assert v["verdict"] == "converged" and v["max_gap"] == 0.05 and v["window"] == 2
    assert [d["label"] for d in v["values"]] == ["3", "4"]
    assert out["generations"][3]["gap_status"] == "saturated"  # a re-sampled crystal
    # Text: the rule and the verdict are printed; a strict threshold turns the verdict.
    assert main(base + ["-q", "--window", "4", "--plot", str(tmp_path / "v.png")]) == 0
    text = capsys.readouterr().out
    assert "rule: converged when each of the last 4 generation(s)" in text
    assert "verdict: undetermined: 4 generation(s): the rule needs 5" in text
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    assert main(base + ["--max-novelty", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atominfo: error:") and "--max-novelty" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["msc", "random"])
def test_compress_writes_frames_and_summary(files, capsys, tmp_path, method):
    out = tmp_path / "sel.extxyz"
    summary = run_json(
        [
            "compress",
            str(files / "all.extxyz"),
            "-s",
            "0.5",
            "-m",
            method,
            "--seed",
            "4",
            "-o",
            str(out),
        ],
        capsys,
    )
    assert summary["structures"] == 7 and summary["seed"] == 4
    assert json.loads(out.with_suffix(".json").read_text())["indices"] == summary["indices"]
    frames = ase.io.read(out, ":")
    assert [a.info["name"] for a in frames] == [f"s{i}" for i in summary["indices"]]
    assert 0 <= summary["overlap"] <= 1 and summary["entropy"] > 0


def test_compress_conditional_and_rescaled(files, capsys, tmp_path):
    out = tmp_path / "sel.extxyz"
    summary = run_json(
        [
            "compress",
            str(files / "all.extxyz"),
            "-s",
            "3",
            "--ref",
            str(files / "strong.extxyz"),
            "--rescale-volume",
            "12.0",
            "-o",
            str(out),
            "--summary",
            str(tmp_path / "s.json"),
        ],
        capsys,
    )
    assert summary["reference_environments"] > 0 and summary["rescale_volume"] == 12.0
    assert (tmp_path / "s.json").exists()


def test_compress_bad_input_leaves_no_output(files, capsys, tmp_path):
    out = tmp_path / "sel.extxyz"
    assert main(["compress", str(files / "all.extxyz"), "-s", "500", "-o", str(out)]) == 2
    assert "cannot select 500 of 14" in capsys.readouterr().err
    assert (
        main(["compress", str(files / "all.extxyz"), "-s", "2", "-o", str(tmp_path / "sel.npy")])
        == 2
    )
    assert main(["curve", str(files / "all.extxyz"), "--plot", str(tmp_path / "c.jpg")]) == 2
    assert not list(tmp_path.iterdir())


def test_compress_budget_cost_and_strata(files, capsys, tmp_path):
    out = tmp_path / "sel.extxyz"
    all_frames = ase.io.read(files / "all.extxyz", ":")
    total = sum(len(a) ** 3 for a in all_frames)
    summary = run_json(
        [
            "compress",
            str(files / "all.extxyz"),
            "--budget",
            "20%",
            "--stratify",
            "config_type",
            "-o",
            str(out),
        ],
        capsys,
    )
    assert summary["cost"] <= 0.2 * total and summary["total_cost"] == total
    assert summary["stratify"] == "config_type"
    assert all(g["picked"] >= 1 for g in summary["groups"].values())
    kept = ase.io.read(out, ":")
    assert sum(len(a) ** 3 for a in kept) == summary["cost"]
    assert sorted(a.info["name"] for a in kept) == sorted(f"s{i}" for i in summary["indices"])
    summary = run_json(
        [
            "compress",
            str(files / "all.extxyz"),
            "-s",
            "4",
            "--stratify",
            "config_type",
            "--quota",
            "strong=3",
            "--cost",
            "generation",
            "--budget",
            "6",
            "-o",
            str(out),
        ],
        capsys,
    )
    assert summary["groups"]["strong"]["picked"] <= 3 and summary["cost"] <= 6
    names = [a.info["name"] for a in ase.io.read(out, ":")]
    assert len(names) == summary["structures"] <= 4
    assert main(["compress", str(files / "all.extxyz"), "-s", "4", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kept 4 of 14" in text


def test_compress_budget_and_strata_bad_options(files, capsys, tmp_path):
    out = tmp_path / "sel.extxyz"
    base = ["compress", str(files / "all.extxyz"), "-o", str(out)]
    for extra, message in (
        (["--budget", "0"], "budget"),
        ([], "--size"),
        (["-s", "3", "--quota", "strong=1"], "--stratify"),
        (["-s", "3", "--stratify", "config_type", "--quota", "x"], "GROUP=COUNT"),
        (["-s", "3", "--stratify", "config_type", "--quota", "liquid=1"], "does not exist"),
        (["-s", "3", "--stratify", "nothing"], "'nothing' is missing"),
        (["--budget", "1", "--cost", "name"], "cost 'name'"),
        (["--budget", "10%", "-m", "kmeans"], "kmeans"),
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("atominfo: error:") and message in err
        assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
