"""No run loses work and no failed command leaves half its outputs.

* A refused ``--resume`` (other options, other outputs) deletes nothing and
  says what differs; the right ``--resume`` then continues where the run
  stopped. A run without ``--resume`` refuses to start over an interrupted
  run's work; ``--restart`` discards it explicitly.
* A full disk keeps the completed work and says how to continue.
* Every command with several outputs commits them all or none: a failure at
  any output leaves every earlier output as it was (generated over the
  commands and their output options).
* A symlinked output keeps its link.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from atominfo.cli import main

from .contract.cases import BASE, OUTPUT_SUFFIXES, base_argv, make_inputs
from .contract.cli import parser_of
from .contract.run import run_inprocess, snapshot

DATA = Path(__file__).resolve().parent / "data"
FCC = str(DATA / "cu_fcc_108.extxyz")


def hidden(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.name.startswith(".")}


@pytest.fixture
def traj(tmp_path):
    """Eight frames of the hot Cu cell, each displaced a little."""
    import ase.io
    import numpy as np

    base = ase.io.read(DATA / "cu_hot_32.extxyz")
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(8):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        frames.append(atoms)
    path = tmp_path / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def interrupt_after(monkeypatch, n: int) -> list[int]:
    """Ctrl-C in `dh` once `n` frames are scored; the frame numbers scored (a list)."""
    import atominfo.workflows.trajectory as trajectory

    original = trajectory.iter_trajectory_dh
    scored: list[int] = []

    def stopping(*args, **kwargs):
        for frame in original(*args, **kwargs):
            if len(scored) == n:
                raise KeyboardInterrupt
            scored.append(frame.number)
            yield frame

    monkeypatch.setattr(trajectory, "iter_trajectory_dh", stopping)
    return scored


def test_refused_resume_keeps_the_work_and_the_right_one_continues(
    traj, tmp_path, monkeypatch, capsys
):
    d = tmp_path
    out, table = d / "out.extxyz", d / "t.csv"
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(out), "--table", str(table), "-q"]
    assert main([*argv, "-b", "0.05"]) == 0
    expected = {p: p.read_bytes() for p in (out, table)}
    for p in expected:
        p.unlink()

    scored = interrupt_after(monkeypatch, 5)
    assert main([*argv, "-b", "0.05"]) == 130
    kept = hidden(d)
    assert ".out.extxyz.resume.json" in kept
    capsys.readouterr()

    # a typo in an option: refused, naming the difference; nothing deleted
    assert main([*argv, "-b", "0.0500001", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("atominfo: error: ")
    assert "bandwidth: 0.05 in the interrupted run, 0.0500001 now" in err
    assert "--restart" in err
    assert hidden(d) == kept
    # other outputs (the table left out): refused the same way, no new partial file
    assert main(["dh", str(traj), "--ref", FCC, "-o", str(out), "-b", "0.05", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "outputs:" in err and "t.csv" in err and ".partial" not in err
    assert hidden(d) == kept
    # started again without --resume: refused, saying how to continue or discard
    assert main([*argv, "-b", "0.05"]) == 2
    err = capsys.readouterr().err
    assert "5 frames done" in err and "--resume" in err and "--restart" in err
    assert hidden(d) == kept

    # the right --resume continues from frame 5, not from frame 0
    scored.clear()
    monkeypatch.undo()
    scored = interrupt_after(monkeypatch, 100)
    assert main([*argv, "-b", "0.05", "--resume"]) == 0
    assert scored == [5, 6, 7]
    assert {p: p.read_bytes() for p in expected} == expected
    assert hidden(d) == {}


def test_restart_discards_the_interrupted_work(traj, tmp_path, monkeypatch):
    out = tmp_path / "out.npy"
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(out), "-q"]
    interrupt_after(monkeypatch, 3)
    assert main(argv) == 130
    monkeypatch.undo()
    assert hidden(tmp_path)
    assert main([*argv, "--restart", "--resume"]) == 2  # one or the other
    assert hidden(tmp_path)
    scored = interrupt_after(monkeypatch, 100)
    assert main([*argv, "--restart"]) == 0
    assert scored == list(range(8)) and out.exists() and hidden(tmp_path) == {}


def test_restart_with_fewer_outputs_discards_every_partial_file(traj, tmp_path, monkeypatch):
    """The interrupted run wrote -o and --table; a --restart naming -o only left the
    table's hidden partial file behind."""
    out, table = tmp_path / "out.npy", tmp_path / "t.csv"
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(out), "-q"]
    interrupt_after(monkeypatch, 3)
    assert main([*argv, "--table", str(table)]) == 130
    monkeypatch.undo()
    assert any(name.startswith(".t.csv.") for name in hidden(tmp_path))
    assert main([*argv, "--restart"]) == 0
    assert out.exists() and not table.exists() and hidden(tmp_path) == {}


def test_a_full_disk_keeps_the_work_then_resume_finishes(traj, tmp_path, monkeypatch, capsys):
    import atominfo.runs.stream as stream

    out, table = tmp_path / "out.npy", tmp_path / "t.csv"
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(out), "--table", str(table), "-q"]
    assert main(argv) == 0
    expected = {p: p.read_bytes() for p in (out, table)}
    for p in expected:
        p.unlink()
    real_write, writes = os.write, []

    def full_after_four_frames(fd, data):
        writes.append(fd)
        if len(writes) > 12:  # header, then a table row and per-atom rows per frame
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(stream.os, "write", full_after_four_frames)
    assert main(argv) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "disk full" in err and "the completed work is kept" in err and "--resume" in err
    assert ".out.npy.resume.json" in hidden(tmp_path)
    assert main([*argv, "--resume"]) == 0
    assert {p: p.read_bytes() for p in expected} == expected
    assert hidden(tmp_path) == {}


def test_a_symlinked_output_keeps_its_link(traj, tmp_path):
    """Outputs written through links (streamed and staged) replace the targets."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    links = {tmp_path / "out.npy": scratch / "real.npy", tmp_path / "f.png": scratch / "f.png"}
    for link, target in links.items():
        link.symlink_to(target)
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(tmp_path / "out.npy")]
    assert main([*argv, "--plot", str(tmp_path / "f.png"), "-q"]) == 0
    for link, target in links.items():
        assert link.is_symlink() and target.stat().st_size > 0
    assert hidden(tmp_path) == {} and hidden(scratch) == {}


# -- all or none, generated over every command with several outputs ---------------------------


def _output_dests(command: str) -> list[str]:
    parser, _ = parser_of(command)
    return [a.dest for a in parser._actions if (command, a.dest) in OUTPUT_SUFFIXES]


def _with_every_output(command: str, directory: Path, inputs) -> tuple[list[str], list[Path]]:
    """The base command line with every output option given; the output paths."""
    argv = base_argv(command, directory, inputs)
    parser, _ = parser_of(command)
    flags = {a.dest: a.option_strings for a in parser._actions}
    paths = []
    for dest in _output_dests(command):
        suffix = OUTPUT_SUFFIXES[(command, dest)][0]
        path = directory / f"{dest}{suffix}"
        given = [i for i, tok in enumerate(argv) if tok in flags[dest]]
        if given:
            argv[given[0] + 1] = str(path)
        else:
            argv += [flags[dest][-1], str(path)]
        paths.append(path)
    return argv, paths


SEVERAL = [
    c for c in BASE if len(_output_dests(c)) >= 2 and c not in ("lammps", "snapshot", "demo")
]


@pytest.mark.parametrize("command", SEVERAL)
@pytest.mark.slow
def test_outputs_are_committed_all_or_none(command, tmp_path, monkeypatch):
    """The k-th output fails to be written, for every k: every output keeps its old bytes
    and no hidden file is left."""
    import atominfo.runs.atomic as atomic

    inputs = make_inputs(tmp_path)
    argv, paths = _with_every_output(command, tmp_path, inputs)
    first = run_inprocess(argv, tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    written = [p for p in paths if p.exists()]
    assert len(written) >= 2, f"{command}: {written}"
    for p in written:
        p.write_bytes(b"OLD " + p.name.encode())
    before = snapshot(tmp_path)
    real_mkstemp = tempfile.mkstemp
    for k in range(1, len(written) + 1):
        calls = []

        def failing(*args, **kwargs):
            calls.append(kwargs.get("prefix", ""))
            if len(calls) == k:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_mkstemp(*args, **kwargs)

        monkeypatch.setattr(atomic.tempfile, "mkstemp", failing)
        result = run_inprocess(argv, tmp_path, timeout=120)
        monkeypatch.undo()
        if len(calls) < k:  # fewer files go through atomic_output (streamed outputs)
            continue
        assert result.returncode == 2, (k, result.stderr)
        assert "disk full" in result.stderr, result.stderr
        after = snapshot(tmp_path)
        visible = {n: v for n, v in after.items() if not n.startswith(".")}
        assert visible == before, f"{command}: failure at output {k} of {len(written)}"
        left = sorted(set(after) - set(visible))
        if left:  # a resumable run stopped by a full disk keeps its completed work
            assert any(n.endswith(".resume.json") for n in left), left
            assert "the completed work is kept" in result.stderr, result.stderr
            for n in left:
                (tmp_path / n).unlink()


# -- refused resumes, generated over every resumable command ----------------------------------

# A changed value of each option that a checkpoint records, per resumable command
# (valid values: the run itself would succeed with them).
CHANGES = {
    "dh": [["-b", "0.0150001"], ["-k", "16"], ["-c", "4.5"], ["--index", "::2"]],
    "snapshot": [["-b", "0.0150001"], ["-k", "16"], ["-c", "4.5"], ["--chunk-atoms", "8"]],
    "explore": [
        ["-b", "0.0150001"],
        ["--seed", "7"],
        ["--temperature", "400"],
        ["--weight", "0.5"],
    ],
}
RESUMABLE = [c for c in BASE if "--resume" in parser_of(c)[0]._option_string_actions]


def test_every_resumable_command_is_covered():
    assert sorted(RESUMABLE) == sorted(CHANGES)


@pytest.mark.parametrize("command", RESUMABLE)
def test_refused_resumes_keep_the_checkpoint(command, tmp_path, monkeypatch):
    """Interrupted after its second checkpoint, the run is resumed with each option
    changed, then with an input changed: each is refused in one line naming what
    differs, and the checkpoint and partial files keep their bytes. The right
    --resume then gives the bytes of an uninterrupted run."""
    from atominfo.runs.checkpoint import Checkpoint

    inputs = make_inputs(tmp_path)
    argv, paths = _with_every_output(command, tmp_path, inputs)
    if command == "snapshot":
        argv += ["--chunk-atoms", "10"]
    streamed = [p for p in paths if p.suffix not in (".png", ".pdf", ".svg", ".gz")]
    argv = _drop_options(argv, [p for p in paths if p not in streamed])
    assert run_inprocess(argv, tmp_path).returncode == 0
    expected = {p: p.read_bytes() for p in streamed if p.exists()}
    for p in expected:
        p.unlink()

    real_save, saves = Checkpoint.save, []

    def interrupting(self, state, progress=None):
        real_save(self, state, progress)
        saves.append(progress)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", interrupting)
    assert run_inprocess(argv, tmp_path).returncode == 130
    monkeypatch.undo()
    kept = hidden(tmp_path)
    assert any(n.endswith(".resume.json") for n in kept), kept
    for change in CHANGES[command]:
        result = run_inprocess([*argv, *change, "--resume"], tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "in the interrupted run" in result.stderr, result.stderr
        assert hidden(tmp_path) == kept, change
    result = run_inprocess(argv, tmp_path)  # neither --resume nor --restart
    assert result.returncode == 2 and "--restart" in result.stderr, result.stderr
    assert hidden(tmp_path) == kept
    hot = Path(inputs["hot"])
    original = hot.read_bytes()
    hot.write_bytes(original.replace(b"Cu", b"Cu", 1) + b"\n")
    result = run_inprocess([*argv, "--resume"], tmp_path)
    assert result.returncode == 2 and "input changed" in result.stderr, result.stderr
    assert hidden(tmp_path) == kept
    hot.write_bytes(original)
    assert run_inprocess([*argv, "--resume"], tmp_path).returncode == 0
    assert {p: p.read_bytes() for p in expected} == expected
    assert hidden(tmp_path) == {}


def _drop_options(argv: list[str], paths: list[Path]) -> list[str]:
    """`argv` without the options whose value is one of `paths`."""
    out: list[str] = []
    skip = {str(p) for p in paths}
    for token in argv:
        if token in skip:
            out.pop()
            continue
        out.append(token)
    return out


def test_another_run_does_not_destroy_interrupted_work(traj, tmp_path, monkeypatch, capsys):
    """A run writing one of an interrupted run's outputs (its checkpoint beside the other)
    is refused, and the interrupted run then resumes."""
    out, table = tmp_path / "out.extxyz", tmp_path / "t.csv"
    argv = ["dh", str(traj), "--ref", FCC, "-o", str(out), "--table", str(table), "-q"]
    interrupt_after(monkeypatch, 3)
    assert main(argv) == 130
    monkeypatch.undo()
    kept = hidden(tmp_path)
    capsys.readouterr()
    assert main(["dh", str(traj), "--ref", FCC, "--table", str(table), "--index", ":5", "-q"]) == 2
    assert "partial output of an interrupted run" in capsys.readouterr().err
    assert hidden(tmp_path) == kept
    assert main([*argv, "--resume"]) == 0 and hidden(tmp_path) == {}
