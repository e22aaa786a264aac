"""Streaming per-frame dH, the per-frame table, resumable outputs and `atominfo dh`."""

import csv
import json

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.runs.stream import DHStreamWriter, partial_path, state_path
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.structures.scan import count_atoms
from atominfo.workflows.trajectory import frame_statistics, iter_trajectory_dh, trajectory_dh

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")


@pytest.fixture(scope="module")
def traj(tmp_path_factory):
    """Six frames of 32 atoms, increasingly disordered (the last ones leave the reference)."""
    frames = [
        rattled_fcc_cu(2, sigma=s, seed=i) for i, s in enumerate([0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    ]
    path = tmp_path_factory.mktemp("traj") / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return path, frames


@pytest.fixture(scope="module")
def reference():
    return atominfo.Reference.from_structures(FCC + "", h=0.015)


def test_streamed_dh_equals_whole_dataset(traj, reference):
    path, frames = traj
    X = reference.X
    expected = atominfo.delta_entropy(atominfo.descriptors(str(path)), X, 0.015)
    got = list(iter_trajectory_dh(str(path), reference))
    assert [f.number for f in got] == list(range(6))
    np.testing.assert_allclose(np.concatenate([f.dH for f in got]), expected, atol=1e-10)
    table = trajectory_dh(str(path), reference)
    for i, f in enumerate(got):
        assert table["atoms"][i] == 32
        assert table["novelty"][i] == pytest.approx(np.mean(f.dH > 0))
        assert table["max_dH"][i] == pytest.approx(f.dH.max())
    assert table["novelty"][-1] > table["novelty"][0]


def test_skip_and_progress(traj, reference):
    done = []
    got = list(iter_trajectory_dh(str(traj[0]), reference, skip=4, progress=done.append))
    assert [f.number for f in got] == [4, 5] and done == [32, 32]


def test_count_atoms(traj):
    assert count_atoms([traj[0]]) == 192
    assert count_atoms([traj[0]], index="::2") == 96
    assert count_atoms([FCC], format="vasp") is None


def run_json(args, capsys):
    assert main(args + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_table_and_plot(traj, tmp_path, capsys):
    table, plot, out = tmp_path / "frames.csv", tmp_path / "frames.png", tmp_path / "dh.extxyz"
    summary = run_json(
        [
            "dh",
            str(traj[0]),
            "--ref",
            FCC,
            "-o",
            str(out),
            "--table",
            str(table),
            "--plot",
            str(plot),
            "-q",
        ],
        capsys,
    )
    assert summary["frames"] == 6 and summary["environments"] == 192
    with open(table) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["atoms"]) for r in rows] == [32] * 6
    frames = ase.io.read(out, ":")
    for row, atoms in zip(rows, frames):
        assert float(row["novelty"]) == pytest.approx(np.mean(atoms.arrays["dH"] > 0))
        assert float(row["max_dH"]) == pytest.approx(atoms.arrays["dH"].max())
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dh.extxyz", "frames.csv", "frames.png"]


def test_cli_json_table_several_bandwidths(traj, tmp_path, capsys):
    table = tmp_path / "frames.json"
    run_json(["dh", str(traj[0]), "--ref", FCC, "-b", "0.015,0.05", "--table", str(table)], capsys)
    data = json.loads(table.read_text())
    assert data["bandwidth"] == [0.015, 0.05] and len(data["novelty_h0.05"]) == 6
    assert all(a >= b for a, b in zip(data["novelty_h0.015"], data["novelty_h0.05"]))


def test_reference_from_saved_descriptors(traj, tmp_path, capsys):
    X = tmp_path / "ref.npy"
    assert main(["descriptors", FCC, "-o", str(X), "-q"]) == 0
    capsys.readouterr()
    a = run_json(["dh", str(traj[0]), "--ref", str(X)], capsys)
    b = run_json(["dh", str(traj[0]), "--ref", FCC], capsys)
    assert a["novelty"] == b["novelty"] and a["max_dH"] == pytest.approx(b["max_dH"])


@pytest.mark.parametrize("suffix", [".extxyz", ".npy", ".json"])
def test_interrupt_then_resume(traj, tmp_path, capsys, monkeypatch, suffix):
    """Stopped after 3 frames (with a half-written 4th), --resume gives the uninterrupted result."""
    import atominfo.workflows.trajectory as cli_traj

    full, out, table = tmp_path / f"full{suffix}", tmp_path / f"dh{suffix}", tmp_path / "t.csv"
    run_json(["dh", str(traj[0]), "--ref", FCC, "-o", str(full)], capsys)
    original = cli_traj.iter_trajectory_dh

    def stops_after_three(*args, **kwargs):
        for i, frame in enumerate(original(*args, **kwargs)):
            if i == 3:
                with open(partial_path(out), "ab") as fh:  # a frame cut in the middle
                    fh.write(b"32\nLattice=")
                raise KeyboardInterrupt  # Ctrl-C
            yield frame

    monkeypatch.setattr(cli_traj, "iter_trajectory_dh", stops_after_three)
    assert main(["dh", str(traj[0]), "--ref", FCC, "-o", str(out), "--table", str(table)]) == 130
    assert not out.exists() and not table.exists()  # never a truncated output
    assert json.loads(state_path(out).read_text())["state"]["frames_done"] == 3
    monkeypatch.setattr(cli_traj, "iter_trajectory_dh", original)
    summary = run_json(
        ["dh", str(traj[0]), "--ref", FCC, "-o", str(out), "--table", str(table), "--resume"],
        capsys,
    )
    assert summary["frames"] == 6 and summary["environments"] == 192
    if suffix == ".extxyz":
        a = np.concatenate([f.arrays["dH"] for f in ase.io.read(out, ":")])
        b = np.concatenate([f.arrays["dH"] for f in ase.io.read(full, ":")])
    elif suffix == ".npy":
        a, b = np.load(out), np.load(full)
    else:
        a, b = json.loads(out.read_text()), json.loads(full.read_text())
        assert a["frame"] == b["frame"] and a["atom"] == b["atom"]
        a, b = np.array(a["dH"]), np.array(b["dH"])
    np.testing.assert_allclose(a, b, atol=1e-12)
    with open(table) as fh:
        assert [int(r["frame"]) for r in csv.DictReader(fh)] == list(range(6))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([full.name, out.name, "t.csv"])


def test_resume_with_other_options_is_refused(traj, tmp_path, capsys):
    out = tmp_path / "dh.npy"
    writer = DHStreamWriter(out, None, 0.015, {"k": 32})
    writer.close()
    with pytest.raises(InputError, match="k: 32 in the interrupted run, 16 now"):
        DHStreamWriter(out, None, 0.015, {"k": 16}, resume=True)
    assert state_path(out).exists()  # a refused resume deletes nothing
    # nothing to resume (killed before its first checkpoint): it starts again, and says so
    assert (
        main(["dh", str(traj[0]), "--ref", FCC, "-o", str(tmp_path / "x.npy"), "--resume", "-q"])
        == 0
    )
    assert (
        "no interrupted run to resume (no checkpoint); starting from the beginning"
        in capsys.readouterr().err
    )
    assert (tmp_path / "x.npy").exists()


def test_bad_frame_leaves_nothing(tmp_path, capsys):
    from ase import Atoms

    good = rattled_fcc_cu(2, 0.05)
    bad = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]])
    path = tmp_path / "t.extxyz"
    ase.io.write(path, [good, bad], format="extxyz")
    rc = main(
        [
            "dh",
            str(path),
            "--ref",
            FCC,
            "-o",
            str(tmp_path / "dh.npy"),
            "--table",
            str(tmp_path / "t.csv"),
        ]
    )
    assert rc == 2
    assert "frame 1" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.extxyz"]


def test_cli_plot_only_leaves_only_the_plot(traj, tmp_path, capsys):
    plot = tmp_path / "frames.svg"
    summary = run_json(["dh", str(traj[0]), "--ref", FCC, "--plot", str(plot)], capsys)
    assert summary["frames"] == 6 and plot.read_text().lstrip().startswith("<?xml")
    assert [p.name for p in tmp_path.iterdir()] == ["frames.svg"]


def test_cli_no_output_streams_summary(traj, capsys):
    summary = run_json(["dh", str(traj[0]), "--ref", FCC, "-b", "0.015,0.05"], capsys)
    assert summary["environments"] == 192 and len(summary["novelty"]) == 2


def test_extxyz_output_keeps_everything_of_the_input_frames(tmp_path, reference):
    """info, per-atom arrays and calculator results (energy, forces, stress) survive."""
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(3)
    frames = []
    for i in range(3):
        atoms = rattled_fcc_cu(2, 0.05, seed=i)
        atoms.info.update({"config_type": "rattled", "temperature": 300.0 + i, "step": i})
        atoms.set_array("charges_q", rng.normal(size=len(atoms)))
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=-3.5 * (i + 1),
            forces=rng.normal(size=(len(atoms), 3)),
            stress=rng.normal(size=6),
        )
        frames.append(atoms)
    path, out = tmp_path / "in.extxyz", tmp_path / "dh.extxyz"
    ase.io.write(path, frames, format="extxyz")
    writer = DHStreamWriter(out, None, [0.015, 0.05], {"k": 32}, inputs=[path])
    ref2 = atominfo.Reference(reference.X, h=[0.015, 0.05], k=reference.k, cutoff=reference.cutoff)
    for frame in iter_trajectory_dh(str(path), ref2):
        writer.add(frame)
    writer.finish()
    written = ase.io.read(out, ":")
    assert len(written) == 3
    for original, got in zip(ase.io.read(path, ":"), written):  # the input as ASE reads it
        assert original.info and got.info == original.info
        assert set(got.arrays) == set(original.arrays) | {"dH_h0.015", "dH_h0.05"}
        for key, value in original.arrays.items():
            np.testing.assert_array_equal(got.arrays[key], value)
        assert set(got.calc.results) == {"energy", "forces", "stress"}
        for key, value in original.calc.results.items():
            np.testing.assert_array_equal(got.calc.results[key], value)
        assert got.arrays["dH_h0.015"].shape == got.arrays["dH_h0.05"].shape == (32,)


def lammps_dump(frames, steps) -> str:
    lines = []
    for atoms, step in zip(frames, steps):
        lines += [
            "ITEM: TIMESTEP",
            str(step),
            "ITEM: NUMBER OF ATOMS",
            str(len(atoms)),
            "ITEM: BOX BOUNDS pp pp pp",
        ]
        lines += [f"0.0 {x:.6f}" for x in np.diag(atoms.cell[:])]
        lines.append("ITEM: ATOMS id type x y z")
        lines += [
            f"{i + 1} 1 {x:.6f} {y:.6f} {z:.6f}" for i, (x, y, z) in enumerate(atoms.positions)
        ]
    return "\n".join(lines) + "\n"


def test_lammps_timestep_reaches_frames_and_table(traj, tmp_path, reference):
    path = tmp_path / "dump.lammpstrj"
    path.write_text(lammps_dump(traj[1][:3], [0, 500, 1000]))
    got = list(
        iter_trajectory_dh(str(path), reference, format="lammps-dump-text", type_map={1: "Cu"})
    )
    assert [f.timestep for f in got] == [0, 500, 1000] and got[0].time is None
    assert got[1].summary()["timestep"] == 500
    table = tmp_path / "t.csv"
    writer = DHStreamWriter(None, table, 0.015, {"k": 32}, inputs=[path])
    for frame in got:
        writer.add(frame)
    writer.finish()
    with open(table) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["timestep"] for r in rows] == ["0", "500", "1000"]
    assert [r["time"] for r in rows] == ["", "", ""]
    assert trajectory_dh(str(path), reference, format="lammps-dump-text", type_map={1: "Cu"})[
        "timestep"
    ] == [0, 500, 1000]


def test_frame_statistics_never_nan_and_refuses_empty():
    stats = frame_statistics([-1.0, 2.0, np.inf])
    assert stats["novelty"] == pytest.approx(2 / 3) and stats["max_dH"] is None
    assert stats["mean_dH"] is None and json.dumps(stats, allow_nan=False)
    two = frame_statistics([[1.0, -1.0], [np.nan, 0.0]])
    assert two["max_dH"] == [1.0, None] and two["atoms"] == 2
    for empty in ([], np.zeros((2, 0))):
        with pytest.raises(InputError, match="at least one atom"):
            frame_statistics(empty)


def test_summary_of_nothing_is_none_not_zero():
    from atominfo.runs.stream import Totals

    summary = Totals(0.015).summary(0)
    assert summary == {
        "frames": 0,
        "environments": 0,
        "novelty": None,
        "max_dH": None,
        "mean_dH": None,
    }
    assert json.dumps(summary, allow_nan=False)
