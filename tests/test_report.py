"""The dataset report (workflow, HTML page, chemiscope export) and its commands.

The page is also opened in a real browser (headless Chromium) where one is
installed: it must render something, log nothing to the console, load every
image and request nothing outside the file.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.descriptor import load_frames
from atominfo.information import delta_entropy, entropy, novelty
from atominfo.structures.datasets import rattled_fcc_cu, varied_fcc_cu

H = 0.015


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A dataset of 14 varied FCC Cu cells grouped by config_type (weak/strong), in two
    files, and a reference of three rattled cells."""
    import ase.io

    d = tmp_path_factory.mktemp("report")
    frames = varied_fcc_cu(14, seed=3)
    ase.io.write(d / "a.extxyz", frames[:7])
    ase.io.write(d / "b.extxyz", frames[7:])
    ase.io.write(d / "ref.extxyz", [rattled_fcc_cu(2, 0.02, seed=s) for s in range(3)])
    return d


@pytest.fixture(scope="module")
def data(files):
    return load_frames([str(files / "a.extxyz"), str(files / "b.extxyz")])


@pytest.fixture(scope="module")
def ref_X(files):
    return atominfo.descriptors(str(files / "ref.extxyz"))


@pytest.fixture(scope="module")
def report(data, ref_X):
    from atominfo.workflows.report import dataset_report

    return dataset_report(data, H, group_by="config_type", reference=ref_X, n_sizes=9, n_seeds=2)


# -- the workflow -------------------------------------------------------------------------


def test_information_per_group_matches_entropy(report, data):
    for g in report.information:
        frames = report.groups[g.name] if g.name != "all" else np.arange(len(data))
        X = data.environments(frames)
        assert g.environments == len(X) and g.structures == len(frames)
        assert g.entropy == pytest.approx(float(entropy(X, H)), rel=1e-10)
        assert g.log_n == pytest.approx(np.log(len(X)))
        assert g.efficiency == pytest.approx(g.entropy / g.log_n)
    assert [g.name for g in report.information][-1] == "all"


def test_structure_contributions_add_up_to_the_entropy(report):
    assert report.contribution.sum() == pytest.approx(report.total.entropy, rel=1e-10)
    assert report.surprise.mean() == pytest.approx(report.total.entropy, rel=1e-10)
    assert len(report.contribution) == len(report.data)


def test_novelty_and_most_novel_match_delta_entropy(report, data, ref_X):
    dH = delta_entropy(data.X, ref_X, H)
    np.testing.assert_allclose(report.dH, dH)
    assert report.novelty["all"] == pytest.approx(float(novelty(data.X, ref_X, H)))
    for name, frames in report.groups.items():
        assert report.novelty[name] == pytest.approx(float(np.mean(dH[data.rows(frames)] > 0)))
    atoms = report.most_novel_atoms(5)
    assert [a["dH"] for a in atoms] == pytest.approx(np.sort(dH)[::-1][:5])
    top = report.most_novel_structures(3)
    f = top[0]["frame"]
    assert top[0]["max_dH"] == pytest.approx(dH[data.rows([f])].max())
    assert top[0]["max_dH"] >= top[1]["max_dH"] >= top[2]["max_dH"]


def test_curves_overlap_and_compression(report):
    assert set(report.curves) == {*report.groups, "all"}
    for curve in report.curves.values():
        text = " ".join(curve.summary_lines())
        # the class and its rule; a gap only where extrapolated, else why not
        assert curve.status in text and curve.test.rule in text
        assert ("information gap at" in text) == (curve.fit is not None)
        assert (curve.fit is not None) or "no asymptote" in text
    assert report.overlap.labels == list(report.groups)
    np.testing.assert_allclose(np.diag(report.overlap.values), 1.0)
    methods = {(r["method"], r["structures"]) for r in report.compression}
    sizes = sorted(report.selected)
    assert methods == {(m, s) for m in ("msc", "random") for s in sizes}
    for m, flags in report.selected.items():
        assert flags.sum() == m
    json.dumps(report.to_dict(), allow_nan=False)


def test_report_without_reference_or_groups(data):
    from atominfo.workflows.report import dataset_report

    r = dataset_report(
        data, H, groups={"all": np.arange(len(data))}, n_sizes=4, n_seeds=1, keep=(0.5,)
    )
    assert r.dH is None and r.overlap is None and r.novelty == {}
    assert list(r.curves) == ["all"] and r.most_novel_atoms() == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"h": [0.01, 0.02]}, "one bandwidth"),
        ({"keep": (1.5,)}, "fractions"),
        ({"group_by": "no_such_key"}, "no_such_key"),
    ],
)
def test_report_refuses_bad_arguments(data, kwargs, message):
    from atominfo.errors import InputError
    from atominfo.workflows.report import dataset_report

    h = kwargs.pop("h", H)
    with pytest.raises(InputError, match=message):
        dataset_report(data, h, n_sizes=2, n_seeds=1, **kwargs)


# -- the page -----------------------------------------------------------------------------


def _external_references(text: str) -> list[str]:
    """src/href values and CSS url() that are neither data: URIs nor in-page anchors."""
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)['"]""", text)
    refs += re.findall(r"url\(([^)]*)\)", text)
    return [r for r in refs if not r.strip("'\" ").startswith(("data:", "#"))]


@pytest.mark.slow
def test_page_is_self_contained_and_answers_the_questions(report, tmp_path):
    from atominfo.outputs.html import write_report_html

    path = tmp_path / "r.html"
    write_report_html(path, report, title="test set")
    text = path.read_text()
    assert _external_references(text) == []
    assert "<script" not in text
    images = re.findall(r"<img src='(data:image/png;base64,[^']+)'", text)
    assert len(images) == 5  # information, curves, overlap, compression, dH histograms
    for sections in (
        "How much information",
        "Is it complete",
        "Where is it redundant",
        "What is new",
        "How to reproduce",
    ):
        assert sections in text
    assert f"{report.total.entropy:.3f}" in text
    assert "numpy" in text and "sha256" in text.lower()
    for f in report.provenance["inputs"]:
        assert f["sha256"] in text


def test_page_refuses_other_suffix(report, tmp_path):
    from atominfo.errors import InputError
    from atominfo.outputs.html import write_report_html

    with pytest.raises(InputError, match="html"):
        write_report_html(tmp_path / "r.txt", report)
    assert list(tmp_path.iterdir()) == []


# -- chemiscope ---------------------------------------------------------------------------


def _load(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return json.load(fh)


def _validate_with_chemiscope(path):
    """Feed the file back through the chemiscope package's own input validation."""
    chemiscope = pytest.importorskip("chemiscope")
    d = _load(path)
    envs = [(e["structure"], e["center"], e["cutoff"]) for e in d.get("environments", [])]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = chemiscope.create_input(
            structures=d["structures"],
            properties=d["properties"],
            environments=envs or None,
            metadata=d["meta"],
            settings=d.get("settings"),
        )
    assert checked["properties"].keys() == d["properties"].keys()
    chemiscope.show_input(str(path))  # the Jupyter widget loads it
    return d


def test_report_chemiscope_file_is_valid(report, tmp_path):
    from atominfo.outputs.chemiscope import write_report_chemiscope

    path = tmp_path / "r.json.gz"
    write_report_chemiscope(path, report)
    d = _validate_with_chemiscope(path)
    n_atoms = report.data.n_rows
    assert len(d["structures"]) == len(report.data)
    assert len(d["environments"]) == n_atoms
    props = d["properties"]
    np.testing.assert_allclose(props["dH"]["values"], report.dH)
    np.testing.assert_allclose(props["H contribution"]["values"], report.contribution)
    assert props["group"]["values"] == report.structure_group
    kept = [k for k in props if k.startswith("kept by msc")]
    assert len(kept) == len(report.selected)
    assert all(props[k]["target"] == "structure" for k in ("novelty", "max dH", *kept))
    assert props["dH"]["target"] == "atom" and props["dH"]["units"] == "nats"


def test_chemiscope_refuses_bad_values(tmp_path):
    from atominfo.errors import InputError
    from atominfo.outputs.chemiscope import write_chemiscope

    atoms = [rattled_fcc_cu(1, 0.05, seed=0)]
    with pytest.raises(InputError, match="non-finite"):
        write_chemiscope(tmp_path / "x.json", atoms, {"a": [np.nan]})
    with pytest.raises(InputError, match="values for"):
        write_chemiscope(tmp_path / "x.json", atoms, None, {"a": [1.0]})
    with pytest.raises(InputError, match="json"):
        write_chemiscope(tmp_path / "x.xyz", atoms, {"a": [1.0]})
    assert list(tmp_path.iterdir()) == []


# -- the commands -------------------------------------------------------------------------


@pytest.mark.slow
def test_report_command(files, tmp_path, capsys):
    page, cs = tmp_path / "r.html", tmp_path / "r.json.gz"
    code = main(
        [
            "report",
            str(files / "a.extxyz"),
            str(files / "b.extxyz"),
            "--group-by",
            "config_type",
            "--ref",
            str(files / "ref.extxyz"),
            "-o",
            str(page),
            "--chemiscope",
            str(cs),
            "--sizes",
            "9",
            "--seeds",
            "2",
            "-q",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["group_key"] == "config_type" and result["novelty"]["all"] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json.gz"]
    text = page.read_text()
    assert "atominfo dh" in text and "--group-by config_type" in text
    _validate_with_chemiscope(cs)


def test_report_command_errors(files, tmp_path, capsys):
    a = str(files / "a.extxyz")
    for argv, message in (
        ([a, "-o", str(tmp_path / "r.txt")], "must end in .html"),
        (
            [a, "-o", str(tmp_path / "r.html"), "--chemiscope", str(tmp_path / "c.xyz")],
            "must end in .json.gz",
        ),
        ([a, "-o", a.replace(".extxyz", ".html"), "--group-by", "nope"], "nope"),
        ([a, "-o", str(tmp_path / "r.html"), "--sizes", "0"], "--sizes"),
    ):
        assert main(["report", *argv, "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("atominfo: error:") and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_dh_chemiscope(files, tmp_path, capsys):
    cs = tmp_path / "dh.json"
    assert (
        main(
            [
                "dh",
                str(files / "a.extxyz"),
                "--ref",
                str(files / "ref.extxyz"),
                "-b",
                "0.015,0.05",
                "--chemiscope",
                str(cs),
                "-q",
            ]
        )
        == 0
    )
    d = _validate_with_chemiscope(cs)
    X = atominfo.descriptors(str(files / "a.extxyz"))
    R = atominfo.descriptors(str(files / "ref.extxyz"))
    np.testing.assert_allclose(d["properties"]["dH (h=0.05)"]["values"], delta_entropy(X, R, 0.05))
    assert d["properties"]["novelty (h=0.015)"]["target"] == "structure"
    assert (
        main(
            [
                "dh",
                str(files / "a.extxyz"),
                "--ref",
                str(files / "ref.extxyz"),
                "--chemiscope",
                str(tmp_path / "x.json"),
                "--resume",
                "-o",
                str(tmp_path / "x.npy"),
                "-q",
            ]
        )
        == 2
    )
    assert "--resume" in capsys.readouterr().err


def test_compress_chemiscope(files, tmp_path):
    cs = tmp_path / "c.json.gz"
    out = tmp_path / "sel.extxyz"
    assert (
        main(
            [
                "compress",
                str(files / "a.extxyz"),
                str(files / "b.extxyz"),
                "-s",
                "4",
                "-o",
                str(out),
                "--chemiscope",
                str(cs),
                "-q",
            ]
        )
        == 0
    )
    d = _validate_with_chemiscope(cs)
    props = d["properties"]
    summary = json.loads(out.with_suffix(".json").read_text())
    kept = [i for i, v in enumerate(props["kept"]["values"]) if v == "yes"]
    assert kept == summary["indices"]
    dH = np.asarray(props["dH vs selection"]["values"])
    assert np.mean(dH <= 0) == pytest.approx(summary["overlap"])


# -- in a browser -------------------------------------------------------------------------

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
# Appended to a copy of the page: after loading, writes into the DOM how many images did not
# load and which resources the page requested (data: URIs are not requests).
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)
                               || !i.src.startsWith('data:'));
  const res = performance.getEntriesByType('resource').map(e => e.name);
  const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = 'PROBE ' + JSON.stringify({images: imgs.length, bad: bad.length,
                                             requests: res});
  document.body.appendChild(p);
});</script>"""


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on this machine (apt-get install "
    "chromium): the page is not opened in a browser",
)
def test_page_in_headless_chromium(report, tmp_path):
    from atominfo.outputs.html import render_html

    text = render_html(report, title="browser test")
    page = tmp_path / "page.html"
    page.write_text(text)
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"))

    def chromium(*args):
        run = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run

    run = chromium("--dump-dom", probed.as_uri())
    assert [line for line in run.stderr.splitlines() if ":CONSOLE" in line] == []
    found = re.search(r"PROBE (\{.*?\})</pre>", run.stdout)
    assert found, "the page did not finish loading"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe == {"images": 5, "bad": 0, "requests": []}

    shot = tmp_path / "shot.png"
    run = chromium(f"--screenshot={shot}", "--window-size=1280,3000", page.as_uri())
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (3000, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page


def test_groups_by_file_keep_distinct_names(files, tmp_path):
    """Two files of the same name in different folders stay two groups."""
    from atominfo.workflows.report import dataset_report

    (tmp_path / "x").mkdir()
    shutil.copy(files / "a.extxyz", tmp_path / "x" / "b.extxyz")
    data = load_frames([str(files / "b.extxyz"), str(tmp_path / "x" / "b.extxyz")])
    r = dataset_report(data, H, n_sizes=2, n_seeds=1, keep=(0.5,))
    assert len(r.groups) == 2 and sum(len(v) for v in r.groups.values()) == len(data)
