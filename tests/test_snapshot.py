"""Chunked analysis of one snapshot equals the whole-frame analysis, and resumes exactly."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from atominfo import Reference, descriptors
from atominfo.errors import InputError
from atominfo.workflows.snapshot import analyse_snapshot

K, RC, H = 8, 4.0, 0.06


def write_dump(path, atoms: Atoms, ids=None, timestep=0) -> None:
    """A LAMMPS text dump (id type x y z) of `atoms`, whose cell is LAMMPS-shaped."""
    c = atoms.cell[:].tolist()
    n = len(atoms)
    ids = np.arange(1, n + 1) if ids is None else ids
    flags = " ".join("pp" if p else "ff" for p in atoms.pbc)
    xy, xz, yz = c[1][0], c[2][0], c[2][1]
    lo = [0.0, 0.0, 0.0]
    with open(path, "w") as fh:
        fh.write(f"ITEM: TIMESTEP\n{timestep}\nITEM: NUMBER OF ATOMS\n{n}\n")
        if xy == xz == yz == 0:
            fh.write(f"ITEM: BOX BOUNDS {flags}\n")
            for d in range(3):
                fh.write(f"{lo[d]!r} {lo[d] + c[d][d]!r}\n")
        else:
            fh.write(f"ITEM: BOX BOUNDS xy xz yz {flags}\n")
            fh.write(f"{min(0, xy, xz, xy + xz)!r} {c[0][0] + max(0, xy, xz, xy + xz)!r} {xy!r}\n")
            fh.write(f"{min(0, yz)!r} {c[1][1] + max(0, yz)!r} {xz!r}\n")
            fh.write(f"0.0 {c[2][2]!r} {yz!r}\n")
        fh.write("ITEM: ATOMS id type x y z\n")
        for i in range(n):
            x, y, z = atoms.positions[i].tolist()
            fh.write(f"{ids[i]} {atoms.numbers[i]} {x!r} {y!r} {z!r}\n")


def ta_frame(seed=0, repeat=(4, 4, 3), triclinic=False, pbc=True):
    rng = np.random.default_rng(seed)
    atoms = bulk("Ta", "bcc", a=3.3, cubic=True).repeat(repeat)
    if triclinic:
        cell = atoms.cell[:].copy()
        cell[1, 0] = 1.1
        cell[2, 0] = -0.7
        cell[2, 1] = 0.9
        atoms.set_cell(cell, scale_atoms=True)
    atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
    # a disordered patch: some atoms randomised within a sphere
    centre = atoms.cell.sum(axis=0) / 2
    near = np.linalg.norm(atoms.positions - centre, axis=1) < 4.0
    atoms.positions[near] = centre + rng.uniform(-3.0, 3.0, size=(near.sum(), 3))
    atoms.pbc = pbc
    return atoms


@pytest.fixture(scope="module")
def ref():
    train = bulk("Ta", "bcc", a=3.3, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(3):
        a = train.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        frames.append(a)
    return Reference(descriptors(frames, K, RC), H, k=K, cutoff=RC)


def exact(atoms, ref):
    Y = descriptors(atoms, K, RC)
    return ref.delta_entropy(Y), ref.inside(Y)


@pytest.mark.parametrize(
    "triclinic,pbc", [(False, True), (True, True), (True, False), (False, (True, False, True))]
)
def test_chunked_equals_whole_frame(tmp_path, ref, triclinic, pbc):
    atoms = ta_frame(triclinic=triclinic, pbc=pbc)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    dh, inside = exact(atoms, ref)
    assert inside.any() and (~inside).any()  # both labels are exercised
    res = analyse_snapshot(
        path, ref, tmp_path / "out.npy", dump=tmp_path / "out.dump", chunk_atoms=12, dh="all"
    )
    assert res.chunks >= 8
    out = np.load(tmp_path / "out.npy")
    assert np.array_equal(out["id"], np.arange(1, len(atoms) + 1))
    assert np.array_equal(out["novel"], ~inside)
    # exact dH: equal to the whole frame's to rounding
    np.testing.assert_allclose(out["dH"], dh, rtol=1e-9, atol=1e-9)
    assert res.novel == int((~inside).sum())
    assert res.max_dH == pytest.approx(out["dH"].max())
    # the per-atom dump has every atom once, with its dH and label
    from atominfo.structures.fastread import lammps_atoms

    back = lammps_atoms((tmp_path / "out.dump").read_bytes())
    assert np.array_equal(back.arrays["type"], atoms.numbers)
    np.testing.assert_allclose(back.positions, atoms.positions, atol=1e-6)
    np.testing.assert_allclose(
        back.arrays["c_dH"] if "c_dH" in back.arrays else _column(tmp_path / "out.dump", 5),
        out["dH"],
        rtol=1e-5,
        atol=1e-6,
    )


def _column(path, c):
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("ITEM: ATOMS")) + 1
    rows = np.array([ln.split() for ln in lines[start:]], dtype=float)
    return rows[np.argsort(rows[:, 0]), c]


def test_atoms_near_box_faces(tmp_path, ref):
    # atoms exactly on the grid's faces and on the periodic boundary
    atoms = ta_frame(seed=3, repeat=(4, 4, 4))
    frac = atoms.get_scaled_positions(wrap=True)
    frac[:8, 0] = [0.0, 0.25, 0.5, 0.75, 1 - 1e-12, 0.5 + 1e-13, 0.25 - 1e-13, 1e-15]
    atoms.set_scaled_positions(frac)
    path = tmp_path / "faces.dump"
    write_dump(path, atoms)
    dh, inside = exact(atoms, ref)
    res = analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=16)
    out = np.load(tmp_path / "o.npy")
    assert np.array_equal(out["novel"], ~inside)
    # dh="novel": dH of the novel atoms, NaN for the others
    np.testing.assert_allclose(out["dH"][~inside], dh[~inside], rtol=1e-9, atol=1e-9)
    assert np.isnan(out["dH"][inside]).all()
    assert res.max_dH == pytest.approx(dh.max())


def test_resume_after_kill_gives_identical_output(tmp_path, ref):
    atoms = ta_frame(seed=1, triclinic=True)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    whole = tmp_path / "whole"
    whole.mkdir()
    analyse_snapshot(path, ref, whole / "o.npy", dump=whole / "o.dump", chunk_atoms=12)

    calls = []

    def killer(n):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(KeyboardInterrupt):
        analyse_snapshot(
            path, ref, run / "o.npy", dump=run / "o.dump", chunk_atoms=12, progress=killer
        )
    assert not (run / "o.npy").exists() and not (run / "o.dump").exists()
    # a box half-written after the last checkpoint: resume must drop it
    with open(run / ".o.dump.partial", "ab") as fh:
        fh.write(b"999 1 0.0 0.0")
    done = []
    analyse_snapshot(
        path,
        ref,
        run / "o.npy",
        dump=run / "o.dump",
        chunk_atoms=12,
        resume=True,
        progress=done.append,
    )
    assert sum(done) == len(atoms)  # atoms already done are counted first, then the rest
    assert (run / "o.npy").read_bytes() == (whole / "o.npy").read_bytes()
    assert (run / "o.dump").read_bytes() == (whole / "o.dump").read_bytes()
    assert sorted(p.name for p in run.iterdir()) == ["o.dump", "o.npy"]  # nothing hidden left


@pytest.mark.filterwarnings("ignore:nothing to resume:UserWarning")  # expected: the run finished
def test_resume_refuses_changed_options(tmp_path, ref):
    atoms = ta_frame(seed=2)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)

    def killer(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=12, progress=killer)
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    with pytest.raises(InputError, match="chunk_atoms: 12 in the interrupted run, 20 now"):
        analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=20, resume=True)
    # the refusal deleted nothing; a run that neither resumes nor restarts is refused too
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == hidden
    with pytest.raises(InputError, match="add --resume to continue it, or --restart"):
        analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=12)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == hidden
    resumed = analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=12, resume=True)
    whole = analyse_snapshot(path, ref, tmp_path / "whole.npy", chunk_atoms=12)
    assert (tmp_path / "o.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    assert resumed.novel == whole.novel
    # finished: --resume reads the result back; a changed input is refused
    again = analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=12, resume=True)
    assert (again.atoms, again.novel) == (whole.atoms, whole.novel)
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    with pytest.raises(InputError, match="changed after its outputs were written"):
        analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=12, resume=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_snapshot_inputs(tmp_path, ref):
    atoms = ta_frame(seed=4)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    text = path.read_text().splitlines()
    text[20] = text[20].rsplit(" ", 1)[0] + " nan"
    bad = tmp_path / "nan.dump"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match="atom 11: coordinate is NaN"):
        analyse_snapshot(bad, ref, tmp_path / "o.npy")
    cut = tmp_path / "cut.dump"
    cut.write_text("\n".join(path.read_text().splitlines()[:40]) + "\n")
    with pytest.raises(InputError, match="frame 0.*ends after 31 of its"):
        analyse_snapshot(cut, ref, tmp_path / "o.npy")
    with pytest.raises(InputError, match="same file as the input"):
        analyse_snapshot(path, ref, path.with_suffix(".npy"), dump=path)
    assert not list(p for p in tmp_path.iterdir() if p.name.startswith("."))


def test_dh_tolerance_is_within_its_bound(tmp_path, ref):
    atoms = ta_frame(seed=6, repeat=(5, 5, 4))
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    dh, inside = exact(atoms, ref)
    tol = 0.05
    analyse_snapshot(path, ref, tmp_path / "o.npy", chunk_atoms=40, dh="all", dh_tol=tol)
    out = np.load(tmp_path / "o.npy")
    assert np.array_equal(out["novel"], ~inside)  # labels stay exact
    above = out["dH"] - dh  # at most log(1 + tol) above exact, never below
    assert (above <= np.log1p(tol) + 1e-9).all() and (above >= -1e-9).all()
    with pytest.raises(InputError, match="dh_tol"):
        analyse_snapshot(path, ref, tmp_path / "p.npy", dh_tol=0.0)


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from atominfo.engine.dask_client import close_client, get_client

    client = get_client("local:2")
    yield client
    close_client(client)


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_dask_equals_local_and_survives_a_killed_worker(tmp_path, ref, client):
    """Workers get positions, compute descriptors, labels and dH: the same bytes."""
    import os
    import signal

    atoms = ta_frame(seed=7, repeat=(5, 5, 4), triclinic=True)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    local, remote, killed_run = (tmp_path / d for d in ("local", "remote", "killed"))
    for d in (local, remote, killed_run):
        d.mkdir()
    analyse_snapshot(path, ref, local / "o.npy", dump=local / "o.dump", chunk_atoms=15)
    res = analyse_snapshot(
        path, ref, remote / "o.npy", dump=remote / "o.dump", chunk_atoms=15, client=client
    )
    assert res.chunks >= 8
    for name in ("o.npy", "o.dump"):
        assert (remote / name).read_bytes() == (local / name).read_bytes()
    # SIGKILL a worker after the first box: its boxes are rerun elsewhere
    victim = sorted(client.run(os.getpid).values())[0]
    killed = []

    def kill_once(n):
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(n)

    analyse_snapshot(
        path,
        ref,
        killed_run / "o.npy",
        dump=killed_run / "o.dump",
        chunk_atoms=15,
        client=client,
        progress=kill_once,
    )
    assert killed
    for name in ("o.npy", "o.dump"):
        assert (killed_run / name).read_bytes() == (local / name).read_bytes()
    client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_a_dask_reference_runs_its_boxes_on_dask(tmp_path, ref, client, monkeypatch):
    from atominfo.engine import EngineOptions
    from atominfo.workflows import snapshot_dask

    atoms = ta_frame(seed=8)
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    analyse_snapshot(path, ref, tmp_path / "local.npy", chunk_atoms=20)
    used = []
    original = snapshot_dask.map_boxes

    def spy(analyser, jobs, client_):
        used.append(client_)
        yield from original(analyser, jobs, client_)

    monkeypatch.setattr(snapshot_dask, "map_boxes", spy)
    dask_ref = Reference(
        ref.X, H, k=K, cutoff=RC, engine=EngineOptions(backend="dask", client=client)
    )
    analyse_snapshot(path, dask_ref, tmp_path / "dask.npy", chunk_atoms=20)
    assert used == [client]
    assert (tmp_path / "dask.npy").read_bytes() == (tmp_path / "local.npy").read_bytes()


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_interrupted_dask_run_prints_one_line_and_resumes(tmp_path, ref):
    """SIGTERM mid-run with --dask: exit 130, one line (no cluster teardown logs), resumable."""
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("distributed")
    atoms = ta_frame(seed=10, repeat=(10, 10, 10))
    path = tmp_path / "snap.dump"
    write_dump(path, atoms)
    from atominfo.structures.saved import DescriptorParameters, save_descriptors

    with open(tmp_path / "ref.npz", "wb") as fh:  # with its parameters: no warning line
        save_descriptors(fh, ref.X, DescriptorParameters(k=K, cutoff=RC))
    out = tmp_path / "o.npy"
    command = [sys.executable, "-m", "atominfo", "snapshot", str(path), "--ref"]
    command += [str(tmp_path / "ref.npz"), "-o", str(out), "-k", str(K), "-c", str(RC)]
    command += ["-b", str(H), "--chunk-atoms", "20", "--dask", "local:2", "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = tmp_path / ".o.npy.resume.json"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "atominfo: interrupted; completed work is kept: run the same command "
        "with --resume to continue"
    ]
    assert not out.exists()
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    local = tmp_path / "local.npy"
    analyse_snapshot(path, ref, local, chunk_atoms=20)
    assert out.read_bytes() == local.read_bytes()
