"""`atominfo dh --species`: each atom's dH against the reference atoms of its own species,
streamed to the same outputs as plain `dh`; the same numbers as the in-memory API and
as plain dH against the same-species subset of the reference, computed by hand."""

from __future__ import annotations

import json
import warnings

import ase.io
import numpy as np
import pytest

from atominfo import InputError, delta_entropy, descriptors
from atominfo.cli import main
from atominfo.structures.datasets import cu3au
from atominfo.workflows.species import ABSENT, AbsentSpeciesWarning
from atominfo.workflows.species_run import species_novelty

H = 0.015


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Cu3Au EMT MD: a reference at 300 K; a test at 900 K whose last frame holds one Ag
    atom (a species the reference lacks)."""
    from atominfo.structures.datasets import md_frames

    d = tmp_path_factory.mktemp("species_dh")
    ref = md_frames(cu3au(), 300, 3, interval=5, equilibration=10)
    test = md_frames(cu3au(), 900, 3, interval=5, equilibration=10, seed=1)
    symbols = test[2].get_chemical_symbols()
    symbols[5] = "Ag"
    test[2].set_chemical_symbols(symbols)
    paths = {"ref": d / "ref.extxyz", "test": d / "test.extxyz", "clean": d / "clean.extxyz"}
    ase.io.write(paths["ref"], ref)
    ase.io.write(paths["test"], test)
    ase.io.write(paths["clean"], test[:2])
    return {k: str(v) for k, v in paths.items()}


def per_atom(path) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in json.loads(open(path).read())["dH"]])


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_per_atom_dh_equals_the_api(files, tmp_path, capsys):
    out = tmp_path / "dh.json"
    argv = ["dh", "--species", files["test"], "--ref", files["ref"], "-o", str(out), "--json"]
    rc, stdout, err = run([*argv, "-q"], capsys)
    assert rc == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AbsentSpeciesWarning)
        api = species_novelty(files["test"], files["ref"], H)
    got = per_atom(out)
    assert np.array_equal(np.isnan(got), np.isnan(api.dH)) and np.isnan(got).sum() == 1
    assert np.nanmax(np.abs(got - api.dH)) < 1e-10
    # the per-species breakdown is the API's table
    summary = json.loads(stdout)
    cols = api.columns()
    rows = {b["species"]: b for b in summary["species"]}
    assert sorted(rows) == cols["species"] == ["Ag", "Au", "Cu"]
    for i, s in enumerate(cols["species"]):
        assert rows[s]["atoms"] == cols["n"][i]
        assert rows[s]["n_reference"] == cols["n_reference"][i]
        assert rows[s]["novelty"] == pytest.approx(cols["novelty"][i], abs=1e-12)
        for key in ("max_dH", "mean_dH"):
            if cols[key][i] is None:
                assert rows[s][key] is None
            else:
                assert rows[s][key] == pytest.approx(cols[key][i], abs=1e-10)
    assert summary["novelty"] == pytest.approx(api.total_novelty, abs=1e-12)
    assert summary["species_descriptor"] == "multicomponent"


@pytest.mark.parametrize("mode", ["multicomponent", "plain"])
def test_dh_is_plain_dh_against_the_same_species_by_hand(files, tmp_path, capsys, mode):
    """Each atom's dH is the ordinary dH against the reference rows of its species alone."""
    out = tmp_path / "dh.json"
    argv = ["dh", "--species", "--species-descriptor", mode, files["test"], "-o", str(out)]
    assert run([*argv, "--ref", files["ref"], "-q"], capsys)[0] == 0
    test, ref = ase.io.read(files["test"], ":"), ase.io.read(files["ref"], ":")
    species = ["Ag", "Au", "Cu"] if mode == "multicomponent" else False
    Y, X = descriptors(test, multicomponent=species), descriptors(ref, multicomponent=species)
    zy = np.concatenate([a.get_chemical_symbols() for a in test])
    zx = np.concatenate([a.get_chemical_symbols() for a in ref])
    got = per_atom(out)
    for s in ("Au", "Cu"):
        expected = delta_entropy(Y[zy == s], X[zx == s], H)
        assert np.max(np.abs(got[zy == s] - expected)) < 1e-10
    assert np.isnan(got[zy == "Ag"]).all()


def test_absent_species_null_warned_counted_novel(files, tmp_path, capsys):
    table = tmp_path / "frames.csv"
    argv = ["dh", "--species", files["test"], "--ref", files["ref"], "--table", str(table)]
    rc, stdout, err = run([*argv, "--json", "-q"], capsys)
    assert rc == 0 and "Traceback" not in err
    warned = [line for line in err.splitlines() if "Ag" in line]
    assert len(warned) == 1 and files["test"] in warned[0] and "frame 2" in warned[0]
    assert "novel by construction" in warned[0]
    summary = json.loads(stdout)
    ag = [b for b in summary["species"] if b["species"] == "Ag"][0]
    assert ag == {
        "species": "Ag",
        "atoms": 1,
        "n_reference": 0,
        "novelty": 1.0,
        "max_dH": None,
        "mean_dH": None,
        "status": ABSENT,
    }
    # the per-frame table: per-species columns adding up to the frame's atoms
    import pandas as pd

    df = pd.read_csv(table)
    for s in ("Ag", "Au", "Cu"):
        assert {f"atoms_{s}", f"novelty_{s}", f"max_dH_{s}", f"mean_dH_{s}"} <= set(df)
    assert (df[["atoms_Ag", "atoms_Au", "atoms_Cu"]].sum(axis=1) == df["atoms"]).all()
    assert list(df["atoms_Ag"]) == [0, 0, 1] and np.isnan(df["max_dH_Ag"]).all()
    # the frame's novelty counts the Ag atom novel; its max and mean are over the rest
    last = df.iloc[2]
    novel = sum(last[f"novelty_{s}"] * last[f"atoms_{s}"] for s in ("Ag", "Au", "Cu"))
    assert last["novelty"] == pytest.approx(novel / last["atoms"], abs=1e-12)
    assert last["max_dH"] == max(last["max_dH_Au"], last["max_dH_Cu"])
    total = (df["novelty"] * df["atoms"]).sum() / df["atoms"].sum()
    assert summary["novelty"] == pytest.approx(total, abs=1e-12)


def test_text_output_shows_the_breakdown(files, capsys):
    rc, stdout, _ = run(["dh", "--species", files["clean"], "--ref", files["ref"]], capsys)
    assert rc == 0
    assert "each species against the same species (multicomponent descriptor)" in stdout
    lines = {line.split()[0]: line for line in stdout.splitlines() if line[:2] in ("Au", "Cu")}
    assert sorted(lines) == ["Au", "Cu"] and all("scored" in v for v in lines.values())


def interrupt_after(monkeypatch, n: int) -> None:
    """Ctrl-C in `dh --species` once `n` frames are scored."""
    import atominfo.workflows.species_dh as species_dh

    original = species_dh.iter_species_dh

    def stopping(*args, **kwargs):
        for done, frame in enumerate(original(*args, **kwargs)):
            if done == n:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(species_dh, "iter_species_dh", stopping)


def test_resume_refuses_a_changed_mode_and_continues_the_same(files, tmp_path, monkeypatch, capsys):
    out, table = tmp_path / "dh.extxyz", tmp_path / "t.csv"
    frames = ase.io.read(files["test"], ":")
    early = tmp_path / "early.extxyz"  # the Ag frame first: its NaN is in the checkpoint
    ase.io.write(early, [frames[2], *frames[:2]])
    base = ["dh", str(early), "--ref", files["ref"], "-o", str(out), "--table", str(table)]
    argv = [*base, "--species", "-q"]
    assert run(argv, capsys)[0] == 0
    expected = {p: p.read_bytes() for p in (out, table)}
    for p in expected:
        p.unlink()
    with monkeypatch.context() as m:
        interrupt_after(m, 1)
        assert run(argv, capsys)[0] == 130
    for changed, named in (
        ([*base, "--species", "--species-descriptor", "plain"], "species_mode"),
        (base, "species_mode"),
    ):
        rc, _, err = run([*changed, "--resume", "-q"], capsys)
        assert (
            rc == 2
            and err.count("\n") == 1
            and err.startswith("atominfo: error: ")
            and "--resume:" in err
        )
        assert named in err
    assert run([*argv, "--resume"], capsys)[0] == 0
    assert {p: p.read_bytes() for p in expected} == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--false-alarm", "0.1"], "species Au of the reference: a false-alarm rate of 0.1"),
        (["--multicomponent"], "--species does not take --multicomponent"),
        (["-b", "0.01,0.02"], "one bandwidth"),
        (["--species-descriptor", "blind"], "must be one of"),
    ],
)
def test_cli_refusals(files, capsys, extra, message):
    rc, _, err = run(["dh", files["clean"], "--ref", files["ref"], "--species", *extra], capsys)
    assert rc == 2 and err.count("\n") == 1 and message in err


def test_cli_refuses_self_and_saved_descriptors(files, tmp_path, capsys):
    rc, _, err = run(["dh", files["clean"], "--ref", "self", "--species"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "--ref self" in err
    viewer = ["--chemiscope", str(tmp_path / "v.json.gz")]
    rc, _, err = run(["dh", files["clean"], "--ref", files["ref"], "--species", *viewer], capsys)
    assert rc == 2 and err.count("\n") == 1 and "--chemiscope" in err
    assert not list(tmp_path.iterdir())
    saved = tmp_path / "ref.npy"
    np.save(saved, descriptors(files["ref"]))
    rc, _, err = run(["dh", files["clean"], "--ref", str(saved), "--species"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "needs structure files" in err
    rc, _, err = run(
        ["dh", files["clean"], "--ref", files["ref"], "--species-descriptor", "plain"], capsys
    )
    assert rc == 2 and "needs --species" in err


def test_false_alarm_is_calibrated_per_species(files, tmp_path, capsys):
    """--false-alarm: each atom's p-value is its species' own conformal p-value (the
    species' reference atoms calibrated alone); an absent species' atoms have none and
    count as flagged; a rate a species' calibration cannot resolve is refused, naming it."""
    from atominfo import Reference
    from atominfo.workflows.dh_run import AtFalseAlarm
    from atominfo.workflows.species_dh import SpeciesReference

    rate = 0.2
    out, table = tmp_path / "dh.json", tmp_path / "t.csv"
    argv = ["dh", "--species", files["test"], "--ref", files["ref"], "-o", str(out)]
    rc, stdout, _ = run(
        [*argv, "--table", str(table), "--false-alarm", str(rate), "--json"], capsys
    )
    assert rc == 0
    doc = json.loads(out.read_text())
    p = np.array([np.nan if v is None else v for v in doc["p"]])
    test, ref = ase.io.read(files["test"], ":"), ase.io.read(files["ref"], ":")
    Y = descriptors(test, multicomponent=["Ag", "Au", "Cu"])
    X = descriptors(ref, multicomponent=["Ag", "Au", "Cu"])
    zy = np.concatenate([a.get_chemical_symbols() for a in test])
    zx = np.concatenate([a.get_chemical_symbols() for a in ref])
    for s in ("Au", "Cu"):
        expected = Reference(X[zx == s], H).p_values(Y[zy == s])
        assert np.max(np.abs(p[zy == s] - expected)) < 1e-12
    assert np.isnan(p[zy == "Ag"]).all()
    flagged = np.isnan(p) | (np.nan_to_num(p, nan=1.0) <= rate)
    summary = json.loads(stdout)
    assert summary["flagged"] == pytest.approx(flagged.mean(), abs=1e-12)
    rows = {b["species"]: b for b in summary["species"]}
    assert rows["Ag"]["flagged"] == 1.0
    assert rows["Au"]["flagged"] == pytest.approx(flagged[zy == "Au"].mean(), abs=1e-12)
    import pandas as pd

    df = pd.read_csv(table)
    n = len(test[0])
    per_frame = [flagged[i * n : (i + 1) * n].mean() for i in range(len(test))]
    assert np.allclose(df["flagged"], per_frame, atol=1e-12)
    # the API: the rate checked against every species' calibration
    by_species = SpeciesReference.from_files([files["ref"]], [files["clean"]], H)
    assert len(by_species) == 96 and by_species.species == ["Au", "Cu"]
    with pytest.raises(InputError, match="species Au of the reference"):
        AtFalseAlarm(by_species, 0.1)
    assert AtFalseAlarm(by_species, rate).false_alarm == rate


def test_extract_picks_by_species_resolved_dh(files, tmp_path, capsys):
    """The candidates are the atoms novel against their own species (an absent species'
    atom first: no reference term, novel by construction); each cut-out's dH is the API's."""
    import ase.io as io

    out, summary = tmp_path / "cut.extxyz", tmp_path / "cut.json"
    argv = ["extract", "--species", files["test"], "--ref", files["ref"], "-o", str(out)]
    rc, _, err = run([*argv, "--summary", str(summary), "--no-spread", "-q"], capsys)
    assert rc == 0 and "Ag" in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AbsentSpeciesWarning)
        api = species_novelty(files["test"], files["ref"], H)
    doc = json.loads(summary.read_text())
    assert doc["candidates"] == int(api.novel.sum())
    assert doc["reference"]["species_descriptor"] == "multicomponent"
    assert doc["max_dH"] == pytest.approx(np.nanmax(api.dH), abs=1e-10)
    picks = io.read(out, ":")
    first = picks[0].info
    assert first["species_absent"] and "dH" not in first
    assert picks[0].get_chemical_symbols()[0] == "Ag"
    n = len(ase.io.read(files["test"], 0))
    for piece in picks[1:]:
        row = piece.info["frame"] * n + piece.info["centre_atom"]
        assert piece.info["dH"] == pytest.approx(api.dH[row], abs=1e-10)
    assert [p.info["dH"] for p in picks[1:]] == sorted(
        (p.info["dH"] for p in picks[1:]), reverse=True
    )


def test_extract_at_a_false_alarm_rate_takes_the_flagged_atoms(files, tmp_path, capsys):
    """extract --species --false-alarm: the candidates are the atoms dh --species flags at
    the rate (an absent species' atoms included, with no p_value in their info)."""
    import ase.io as io

    rate = ["--false-alarm", "0.2"]
    rc, stdout, _ = run(
        ["dh", "--species", files["test"], "--ref", files["ref"], "--json", *rate], capsys
    )
    assert rc == 0
    dh = json.loads(stdout)
    out, summary = tmp_path / "cut.extxyz", tmp_path / "cut.json"
    argv = ["extract", "--species", files["test"], "--ref", files["ref"], "-o", str(out)]
    rc, _, _ = run(
        [*argv, "--summary", str(summary), "--no-spread", "--max", "3", *rate, "-q"], capsys
    )
    assert rc == 0
    doc = json.loads(summary.read_text())
    assert doc["candidates"] == round(dh["flagged"] * dh["environments"])
    assert set(doc["calibration"]) == {"Au", "Cu"}
    first, *rest = io.read(out, ":")
    assert first.info["species_absent"] and "p_value" not in first.info
    assert all(0 < p.info["p_value"] <= 0.2 for p in rest)


def test_extract_refuses_what_species_mode_does_not_take(files, tmp_path, capsys):
    base = ["extract", "--species", files["clean"], "-o", str(tmp_path / "c.extxyz")]
    for extra, message in (
        (["--ref", files["ref"], "--dedupe"], "--species does not take --dedupe"),
        ([], "--species needs --ref"),
    ):
        rc, _, err = run([*base, *extra], capsys)
        assert rc == 2 and err.count("\n") == 1 and message in err


def test_watch_species_rows_are_the_dh_table(files, tmp_path, capsys):
    """`watch --species` scores each frame as `dh --species` does (also at a false-alarm
    rate, calibrated per species); an atom of an absent species crosses --alarm-dh (its
    dH has no reference term)."""
    import pandas as pd

    table = tmp_path / "t.csv"
    rate = ["--false-alarm", "0.2"]
    dh = ["dh", "--species", files["test"], "--ref", files["ref"], "--table", str(table), "-q"]
    assert run([*dh, *rate], capsys)[0] == 0
    df = pd.read_csv(table)
    argv = ["watch", "--species", files["test"], "--ref", files["ref"], "--idle-timeout", "0.5"]
    rc, stdout, err = run([*argv, "--json", "--alarm-dh", "1000", *rate], capsys)
    assert rc == 0 and "Ag" in err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["alarm"] for r in rows] == [False, False, True]
    keys = ("novelty", "max_dH", "mean_dH", "novelty_Cu", "atoms_Ag", "max_dH_Au", "flagged")
    for r, (_, expected) in zip(rows, df.iterrows()):
        for key in (*keys, "flagged_Au", "flagged_Cu"):
            assert r[key] == pytest.approx(expected[key], abs=1e-12)
    rc, stdout, _ = run([*argv, "-q"], capsys)
    assert rc == 0 and "[Ag absent, Au" in stdout.splitlines()[2]


def test_ase_monitor_by_species(files):
    """NoveltyMonitor with a SpeciesReference: each check's novelty and max dH are those
    of dh --species on the same frame; an atom of an absent species crosses max_dH."""
    from atominfo.workflows.monitor import ExtrapolationDetected, NoveltyMonitor
    from atominfo.workflows.species_dh import SpeciesReference

    frames = ase.io.read(files["test"], ":")
    ref = SpeciesReference.from_files([files["ref"]], [files["test"]], H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AbsentSpeciesWarning)
        api = species_novelty(files["test"], files["ref"], H)
    monitor = NoveltyMonitor(frames[0], ref, max_dH=1000.0)
    n = len(frames[0])
    for i in (0, 1):
        record = monitor.check(frames[i])
        dH = api.dH[i * n : (i + 1) * n]
        assert record.novelty == pytest.approx(np.mean(dH > 0), abs=1e-12)
        assert record.max_dH == pytest.approx(dH.max(), abs=1e-10) and record.absent == 0
    with pytest.warns(AbsentSpeciesWarning, match="Ag"), pytest.raises(ExtrapolationDetected):
        monitor.check(frames[2])
    record = monitor.history[-1]
    assert record.absent == 1 and record.novelty == pytest.approx(api.novel[2 * n :].mean())
    assert np.isnan(monitor.last_dH).sum() == 1 and record.as_dict()["absent"] == 1
    with pytest.raises(InputError, match="k = 32"):
        NoveltyMonitor(frames[0], ref, k=16)
