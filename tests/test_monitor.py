"""The ASE MD observer and following a file that is still being written (`atominfo watch`)."""

import contextlib
import io
import json
import subprocess
import sys
import threading
import time

import ase.io
import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet

import atominfo
from atominfo.errors import InputError
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.structures.follow import follow_frames
from atominfo.structures.lammps import UntypedDumpWarning
from atominfo.workflows.monitor import ExtrapolationDetected, NoveltyMonitor

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")


@pytest.fixture(scope="module")
def reference():
    return atominfo.Reference.from_structures(
        [rattled_fcc_cu(3, 0.05, seed=s) for s in range(4)], h=0.015
    )


def md(temperature, seed=0):
    atoms = rattled_fcc_cu(3, 0.02, seed=seed)
    atoms.calc = EMT()
    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution for this name
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    return atoms, VelocityVerlet(atoms, 2 * units.fs)


def test_monitor_records_every_n_steps(reference):
    atoms, dyn = md(100)
    monitor = NoveltyMonitor(atoms, reference).attach(dyn, interval=5)
    dyn.run(20)
    assert [r.step for r in monitor.history] == [0, 5, 10, 15, 20]
    last = monitor.history[-1]
    dH = reference.delta_entropy(atominfo.descriptors(atoms))
    assert last.novelty == pytest.approx(np.mean(dH > 0))
    assert last.max_dH == pytest.approx(dH.max())
    np.testing.assert_allclose(monitor.last_dH, dH)
    assert monitor.seconds > 0 and last.atoms == 108


def test_monitor_stops_a_hot_run(reference):
    """A crystal heated far beyond the reference leaves its domain; the run stops."""
    atoms, dyn = md(3000, seed=1)
    monitor = NoveltyMonitor(atoms, reference, max_novelty=0.5, dyn=dyn)
    dyn.attach(monitor, interval=5)
    with pytest.raises(ExtrapolationDetected) as info:
        dyn.run(200)
    record = info.value.record
    assert record.novelty > 0.5 and dyn.nsteps == record.step < 200
    assert "dH > 0" in str(info.value) and len(info.value.dH) == 108


def test_monitor_callback_instead_of_exception(reference):
    atoms, dyn = md(3000, seed=2)
    alarms = []
    monitor = NoveltyMonitor(
        atoms, reference, max_dH=0.0, on_alarm=lambda record, dH: alarms.append(record.step)
    )
    monitor.attach(dyn, interval=10)
    dyn.run(30)
    assert alarms and alarms == [r.step for r in monitor.history if r.max_dH > 0]


def test_monitor_reports_exploded_structure(reference):
    atoms = rattled_fcc_cu(2, 0.05)
    atoms.positions[3, 0] = np.nan
    with pytest.raises(InputError, match="atom 3"):
        NoveltyMonitor(atoms, reference).check(step=7)


def test_monitor_bad_options(reference):
    with pytest.raises(InputError):
        NoveltyMonitor(rattled_fcc_cu(2), reference, on_alarm="ignore")
    with pytest.raises(InputError):
        NoveltyMonitor(rattled_fcc_cu(2), atominfo.Reference(reference.X, h=[0.01, 0.02]))
    atoms = rattled_fcc_cu(2)
    for options, match in [
        ({"max_novelty": float("nan")}, "max_novelty"),
        ({"max_novelty": 1.5}, "max_novelty"),
        ({"max_dH": float("inf")}, "max_dH"),
        ({"max_dH": "high"}, "max_dH"),
        ({"k": 0}, "k must be"),
        ({"cutoff": -1.0}, "cutoff"),
        ({"log": "stdout"}, "log"),
    ]:
        with pytest.raises(InputError, match=match):
            NoveltyMonitor(atoms, reference, **options)
    with pytest.raises(InputError, match="ase.Atoms"):
        NoveltyMonitor([atoms], reference)
    monitor = NoveltyMonitor(atoms, reference)
    with pytest.raises(InputError, match="interval"):
        monitor.attach(VelocityVerlet(atoms, 1 * units.fs), interval=0)
    with pytest.raises(InputError, match="step"):
        monitor.check(step=-1)


def test_monitor_records_timestep_and_time_and_json(reference):
    atoms, dyn = md(100)
    monitor = NoveltyMonitor(atoms, reference).attach(dyn, interval=5)
    dyn.run(10)
    assert [r.timestep for r in monitor.history] == [0, 5, 10]
    assert [r.time for r in monitor.history] == pytest.approx([0.0, 10.0, 20.0])  # 2 fs steps
    dumped = rattled_fcc_cu(3, 0.02)
    dumped.info["timestep"] = 4000
    record = monitor.check(dumped, step=3)
    assert record.timestep == 4000 and record.time is None
    record.max_dH = float("nan")
    assert json.dumps(record.as_dict(), allow_nan=False) and record.as_dict()["max_dH"] is None


def lammps_frame(atoms, step):
    """A LAMMPS text dump frame (orthogonal box) of `atoms`."""
    lo, hi = np.zeros(3), np.diag(atoms.cell[:])
    lines = [
        "ITEM: TIMESTEP",
        str(step),
        "ITEM: NUMBER OF ATOMS",
        str(len(atoms)),
        "ITEM: BOX BOUNDS pp pp pp",
    ]
    lines += [f"{a:.6f} {b:.6f}" for a, b in zip(lo, hi)]
    lines.append("ITEM: ATOMS id type x y z")
    lines += [f"{i + 1} 1 {x:.6f} {y:.6f} {z:.6f}" for i, (x, y, z) in enumerate(atoms.positions)]
    return "\n".join(lines) + "\n"


def writer_thread(path, texts, pause=0.15):
    """Append each text in two halves with pauses, as a running simulation would."""

    def run():
        for text in texts:
            half = len(text) // 2
            for piece in (text[:half], text[half:]):
                with open(path, "a") as fh:
                    fh.write(piece)
                time.sleep(pause)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("fmt", ["lammps-dump-text", "extxyz"])
def test_follow_frames_while_written(tmp_path, fmt):
    frames = [rattled_fcc_cu(2, 0.05 * (i + 1), seed=i) for i in range(4)]
    if fmt == "extxyz":
        texts = []
        for a in frames:
            buf = io.StringIO()
            ase.io.write(buf, a, format="extxyz")
            texts.append(buf.getvalue())
        path = tmp_path / "md.extxyz"
    else:
        texts = [lammps_frame(a, 100 * i) for i, a in enumerate(frames)]
        path = tmp_path / "dump.lammpstrj"
    path.write_text(texts[0])
    thread = writer_thread(path, texts[1:])
    # a dump without elements reads type 1 as H: said once, as to any user
    untyped = pytest.warns(UntypedDumpWarning) if fmt != "extxyz" else contextlib.nullcontext()
    with untyped:
        got = list(follow_frames(path, poll=0.02, idle_timeout=1.0))
    thread.join()
    assert [n for n, _ in got] == [0, 1, 2, 3]
    for (_, atoms), original in zip(got, frames):
        np.testing.assert_allclose(atoms.positions, original.positions, atol=1e-5)


def test_follow_skips_existing_and_rejects_other_files(tmp_path):
    path = tmp_path / "dump.lammpstrj"
    path.write_text(lammps_frame(rattled_fcc_cu(2, 0.05), 0))
    thread = writer_thread(path, [lammps_frame(rattled_fcc_cu(2, 0.05, seed=1), 10)], 0.05)
    with pytest.warns(UntypedDumpWarning):
        got = list(follow_frames(path, poll=0.02, idle_timeout=0.6, from_start=False))
    thread.join()
    assert [n for n, _ in got] == [1]
    bad = tmp_path / "x.lammpstrj"
    bad.write_text("hello\n")
    with pytest.raises(InputError, match="LAMMPS"):
        list(follow_frames(bad, poll=0.01, idle_timeout=0.1))


@pytest.mark.slow
def test_cli_watch(tmp_path):
    path = tmp_path / "dump.lammpstrj"
    frames = [rattled_fcc_cu(3, s, seed=i) for i, s in enumerate([0.02, 0.05, 0.4])]
    path.write_text(lammps_frame(frames[0], 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atominfo",
            "watch",
            str(path),
            "--ref",
            FCC,
            "--poll",
            "0.05",
            "--idle-timeout",
            "3",
            "--json",
            "--alarm-novelty",
            "0.5",
            "--stop-on-alarm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    writer_thread(path, [lammps_frame(a, 10 * i) for i, a in enumerate(frames[1:], 1)], 0.1).join()
    out, err = proc.communicate(timeout=60)
    rows = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 3, err
    assert [r["frame"] for r in rows] == [0, 1, 2] and rows[-1]["alarm"]
    assert rows[-1]["novelty"] > 0.5 and rows[-1]["atoms"] == 108
