"""Outputs never destroy an input, never race, never leave hidden files; resumes always finish."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from atominfo.errors import InputError
from atominfo.runs.atomic import atomic_output
from atominfo.runs.files import hidden_files, hidden_path
from atominfo.runs.guard import OutputGuard, check_outputs

SRC = str(Path(__file__).resolve().parents[1] / "src")


def listing(directory):
    return sorted(p.name for p in Path(directory).iterdir())


@pytest.fixture
def inp(tmp_path):
    path = tmp_path / "in.extxyz"
    path.write_text("input\n")
    return path


# -- refusals before any work --------------------------------------------------------


def test_refuses_an_output_that_is_an_input(tmp_path, inp):
    (tmp_path / "link.extxyz").symlink_to(inp)
    os.link(inp, tmp_path / "hard.extxyz")
    (tmp_path / "sub").mkdir()
    spellings = [
        inp,
        tmp_path / "sub" / ".." / "in.extxyz",
        tmp_path / "link.extxyz",
        tmp_path / "hard.extxyz",
    ]
    for out in spellings:
        with pytest.raises(InputError, match="same file as the input"):
            with OutputGuard(inputs=[inp], outputs={out: (".extxyz",)}):
                raise AssertionError("must not start")
    # Also when the input is given through the link and the output is the file.
    with pytest.raises(InputError, match="same file as the input"):
        check_outputs([tmp_path / "hard.extxyz"], [inp])
    assert inp.read_text() == "input\n"
    assert listing(tmp_path) == ["hard.extxyz", "in.extxyz", "link.extxyz", "sub"]


def test_refuses_two_outputs_that_are_one_file(tmp_path):
    a = tmp_path / "a.json"
    with pytest.raises(InputError, match="two outputs are the same file"):
        check_outputs([], [(a, (".json",)), (tmp_path / "." / "a.json", None)])
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="two outputs are the same file"):
        check_outputs([], {a: None, tmp_path / "sub" / ".." / "a.json": None})
    a.write_text("{}")
    os.link(a, tmp_path / "b.json")
    with pytest.raises(InputError, match="two outputs are the same file"):
        check_outputs([], [a, tmp_path / "b.json"])


def test_refuses_unwritable_outputs(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="must end in .npy, .json"):
        check_outputs([], {tmp_path / "x.txt": (".npy", ".json")})
    with pytest.raises(InputError, match="directory does not exist"):
        check_outputs([], [tmp_path / "missing" / "x.npy"])
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_outputs([], [tmp_path / "d.npy"])
    protected = tmp_path / "p.npy"
    protected.write_bytes(b"keep")
    protected.chmod(0o444)
    with pytest.raises(InputError, match="write-protected"):
        check_outputs([], [protected])
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode)
    )
    with pytest.raises(InputError, match="not writable") as info:
        check_outputs([], [tmp_path / "x.npy"])
    assert str(tmp_path / "x.npy") in str(info.value)
    assert "\n" not in str(info.value)


# -- locks --------------------------------------------------------------------------------


def test_second_run_on_the_same_output_refuses(tmp_path):
    out = tmp_path / "out.npy"
    (tmp_path / "alias").symlink_to(tmp_path)
    with OutputGuard(outputs=[out]):
        assert hidden_path(out, "lock").exists()
        with pytest.raises(InputError, match="another run is writing this output"):
            with OutputGuard(outputs=[tmp_path / "alias" / "out.npy"]):
                pass
    assert listing(tmp_path) == ["alias"]
    with OutputGuard(outputs=[out]):  # free again
        pass


def test_a_symlinked_output_and_its_target_share_one_lock(tmp_path):
    """Writing through ``link.npy`` replaces the file it names: a run writing that
    file directly is the same output (they were locked separately)."""
    target, link = tmp_path / "real.npy", tmp_path / "link.npy"
    link.symlink_to(target)
    for first, second in ((link, target), (target, link)):
        with OutputGuard(outputs=[first]):
            with pytest.raises(InputError, match="another run is writing this output"):
                with OutputGuard(outputs=[second]):
                    pass
    with pytest.raises(InputError, match="same file"):
        OutputGuard(outputs=[link, target]).__enter__()
    assert listing(tmp_path) == ["link.npy"]


def test_waiting_run_is_serialised(tmp_path):
    out = tmp_path / "out.npy"
    events = []

    def first():
        with OutputGuard(outputs=[out]):
            events.append("first in")
            time.sleep(0.3)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    while not events:
        time.sleep(0.01)
    with OutputGuard(outputs=[out], wait=10):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
    assert listing(tmp_path) == []


def test_lock_of_a_killed_run_does_not_block(tmp_path):
    out = tmp_path / "out.npy"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from atominfo.runs.guard import OutputGuard;"
        "g = OutputGuard(outputs=[sys.argv[2]]).__enter__();"
        "print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, SRC, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(InputError, match=f"process {proc.pid}"):
        with OutputGuard(outputs=[out]):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert hidden_path(out, "lock").exists()  # left behind by the killed run
    with OutputGuard(outputs=[out]):
        pass
    assert listing(tmp_path) == []


# -- leftovers -------------------------------------------------------------------------

LEFTOVERS = [
    ".out.npy.partial",
    ".out.npy.resume.json",
    ".out.npy.final",
    ".out.npy.frames.partial",
    ".out.npy.resume.json.tmp",
    ".out.npy.ab_12xyz.part.npy",
]


@pytest.mark.parametrize("resume", [False, True])
def test_leftovers_of_a_killed_run_are_cleaned(tmp_path, resume):
    out = tmp_path / "out.npy"
    for name in LEFTOVERS + [".out.npy.notes", ".other.npy.partial"]:
        (tmp_path / name).write_text("x")
    with OutputGuard(outputs=[out], resume=resume):
        kept = set(listing(tmp_path))
    resumable = {
        ".out.npy.partial",
        ".out.npy.resume.json",
        ".out.npy.final",
        ".out.npy.frames.partial",
    }
    not_ours = {".out.npy.notes", ".other.npy.partial"}
    assert kept == not_ours | {".out.npy.lock"} | (resumable if resume else set())
    assert set(listing(tmp_path)) == not_ours  # success: nothing hidden of ours is left


def test_no_hidden_files_after_success_or_handled_error(tmp_path):
    out = tmp_path / "out.npy"
    with OutputGuard(outputs=[out]):
        with atomic_output(out) as tmp:
            np.save(tmp, np.arange(3.0))
    assert listing(tmp_path) == ["out.npy"]
    with pytest.raises(InputError, match="bad frame"):
        with OutputGuard(outputs=[tmp_path / "b.npy"]):
            (tmp_path / ".b.npy.partial").write_text("half")
            raise InputError("bad frame")
    assert listing(tmp_path) == ["out.npy"]
    with pytest.raises(KeyboardInterrupt):  # interrupted: --resume continues from these
        with OutputGuard(outputs=[tmp_path / "b.npy"]):
            (tmp_path / ".b.npy.partial").write_text("half")
            (tmp_path / ".b.npy.resume.json.tmp").write_text("half")
            raise KeyboardInterrupt
    assert listing(tmp_path) == [".b.npy.partial", "out.npy"]
    assert hidden_files(tmp_path / "b.npy", keep_resumable=True) == []


# -- disk full -----------------------------------------------------------------------------


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_is_an_input_error_naming_the_file(tmp_path, monkeypatch):
    out = tmp_path / "out.npy"
    with pytest.raises(InputError, match="No space left") as info:
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            enospc()  # as a write to `tmp` raises when the disk is full
    assert str(out) in str(info.value) and listing(tmp_path) == []
    monkeypatch.setattr(np.lib.format, "write_array", enospc)
    with pytest.raises(InputError, match=r"out\.npy: cannot write output \(disk full: No space"):
        with OutputGuard(outputs=[out]):
            (tmp_path / ".out.npy.partial").write_text("half")
            with atomic_output(out) as tmp:
                np.save(tmp, np.arange(3.0))
    assert listing(tmp_path) == []
    with pytest.raises(InputError, match="out.npy"):  # an OSError escaping the block
        with OutputGuard(outputs=[out]):
            raise OSError(
                errno.ENOSPC, "No space left on device", str(tmp_path / ".out.npy.partial")
            )
    assert listing(tmp_path) == []


# -- resumable dH stream: changed inputs, kills at any instant -----------------------------

import atominfo.runs.checkpoint as checkpoint  # noqa: E402
import atominfo.runs.stream as stream  # noqa: E402
from atominfo.runs.stream import DHStreamWriter  # noqa: E402

from .stream_harness import fake_frames, output_bytes, run_to_end  # noqa: E402

# (per-atom output, table) suffix pairs covering every finishing path: renamed
# partials (.extxyz, .csv), converted ones (.npy, .json) and the hidden frame index.
LAYOUTS = [(".extxyz", ".csv"), (".npy", ".json"), (".json", None), (None, ".csv")]


class Killed(BaseException):
    """A SIGKILL, simulated: nothing of the writer's runs after it."""


class KillingOs:
    """`os` for the stream module that dies at its `at`-th file operation.

    half=True writes half of the bytes of that operation first when it is a write.
    """

    OPS = ("open", "write", "replace", "unlink", "ftruncate")

    def __init__(self, at, half=False):
        self.at, self.half, self.count, self.fds, self.names = at, half, 0, [], []

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.OPS:
            return real

        def op(*args, **kwargs):
            self.count += 1
            self.names.append(name)
            if self.count == self.at:
                if name == "write" and self.half and len(args[1]) > 1:
                    os.write(args[0], bytes(args[1][: len(args[1]) // 2]))
                raise Killed
            result = real(*args, **kwargs)
            if name == "open":
                self.fds.append(result)
            return result

        return op

    def close_all(self):  # the kernel closes a killed process's files
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


def kill_os(monkeypatch, killing: KillingOs) -> None:
    """Every file operation of the writer and its checkpoint goes through `killing`."""
    monkeypatch.setattr(stream, "os", killing)
    monkeypatch.setattr(checkpoint, "os", killing)


@pytest.fixture
def fast_tmp(tmp_path):
    """A directory in memory where there is one (/dev/shm): the kill tests make
    thousands of renames, 10x slower on a loaded disk; what they test does not
    depend on the file system."""
    import shutil
    import tempfile

    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="atominfo-test-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_killed_at_any_step_resumes_to_the_same_bytes(fast_tmp, monkeypatch, layout):
    tmp_path = fast_tmp
    frames = fake_frames(n_frames=3)
    inp = tmp_path / "traj.extxyz"
    inp.write_text("input frames\n")
    clean = tmp_path / "clean"
    clean.mkdir()
    run_to_end(clean, layout, frames, inp)
    expected = output_bytes(clean, layout)
    counter = KillingOs(at=0)
    kill_os(monkeypatch, counter)
    run_to_end(tmp_path / "clean", layout, frames, inp)  # finished: writes nothing
    clean_steps = counter.count
    monkeypatch.undo()
    assert output_bytes(clean, layout) == expected
    probe = tmp_path / "probe"
    probe.mkdir()
    counter = KillingOs(at=0)
    kill_os(monkeypatch, counter)
    run_to_end(probe, layout, frames, inp)
    n_steps, names = counter.count, counter.names
    monkeypatch.undo()
    assert clean_steps == 0 and n_steps > 5 * len(frames)
    for at in range(1, n_steps + 1):
        for half in (False, True) if names[at - 1] == "write" else (False,):
            work = tmp_path / f"kill{at}{'h' if half else ''}"
            work.mkdir()
            # Killed at step `at`, then the resumed run killed again a few steps in,
            # then resumed to the end.
            for kill_at in (at, 1 + at // 3, None):
                killer = KillingOs(at=kill_at or 0, half=half)
                kill_os(monkeypatch, killer)
                try:
                    run_to_end(work, layout, frames, inp)
                except Killed:
                    pass
                finally:
                    killer.close_all()
                    monkeypatch.undo()
            assert output_bytes(work, layout) == expected, (at, half)
            assert listing(work) == sorted(expected), (at, half)


def test_resume_refuses_an_input_changed_in_the_middle(tmp_path):
    frames = fake_frames()
    ref = tmp_path / "ref.extxyz"
    ref.write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    out = tmp_path / "dh.npy"
    writer = DHStreamWriter(out, None, 0.015, {"k": 32}, inputs=[ref])
    writer.add(frames[0])
    writer.close()  # interrupted
    stat = ref.stat()
    with open(ref, "r+b") as fh:  # one byte in the middle; same size, same mtime
        fh.seek(stat.st_size // 2)
        byte = fh.read(1)
        fh.seek(stat.st_size // 2)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(ref, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(InputError, match="input changed") as info:
        DHStreamWriter(out, None, 0.015, {"k": 32}, resume=True, inputs=[ref])
    assert str(ref) in str(info.value)
    with open(ref, "r+b") as fh:  # back as it was: the resume goes on
        fh.seek(stat.st_size // 2)
        fh.write(byte)
    writer = DHStreamWriter(out, None, 0.015, {"k": 32}, resume=True, inputs=[ref])
    assert writer.frames_done == 1
    writer.close()
    ref.unlink()
    with pytest.raises(InputError, match="unreadable|no interrupted|missing|cannot read input"):
        DHStreamWriter(out, None, 0.015, {"k": 32}, resume=True, inputs=[ref])


def test_stream_disk_full_keeps_the_work_and_resumes(tmp_path, monkeypatch):
    """A full disk at frame 1 names the output, keeps frame 0 and says how to go on;
    with space again, --resume finishes with the bytes of an uninterrupted run."""
    frames = fake_frames()
    out, table = tmp_path / "dh.extxyz", tmp_path / "t.csv"
    (tmp_path / "in.xyz").write_text("input\n")
    clean = tmp_path / "clean"
    clean.mkdir()
    run_to_end(clean, (".extxyz", ".csv"), frames, tmp_path / "in.xyz")
    expected = {
        "dh.extxyz": (clean / "dh.extxyz").read_bytes(),
        "t.csv": (clean / "frames.csv").read_bytes(),
    }
    with pytest.raises(InputError, match=r"dh\.extxyz: cannot write output \(disk full") as info:
        with OutputGuard(outputs=[out, table], resumable=True):
            writer = DHStreamWriter(out, table, 0.015, {"k": 32}, inputs=[tmp_path / "in.xyz"])
            writer.add(frames[0])
            real_write = os.write

            def full(fd, data):
                if os.fstat(fd).st_ino == os.stat(stream.partial_path(out)).st_ino:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(fd, data)

            monkeypatch.setattr(stream.os, "write", full)
            try:
                writer.add(frames[1])
            finally:
                writer.close()
    monkeypatch.undo()
    assert "the completed work is kept: free space, then run again with --resume" in str(info.value)
    assert ".dh.extxyz.resume.json" in listing(tmp_path)
    with OutputGuard(outputs=[out, table], resume=True):
        writer = DHStreamWriter(
            out, table, 0.015, {"k": 32}, resume=True, inputs=[tmp_path / "in.xyz"]
        )
        assert writer.frames_done == 1
        for frame in frames[1:]:
            writer.add(frame)
        writer.close()
        writer.finish()
    assert out.read_bytes() == expected["dh.extxyz"]
    assert [n for n in listing(tmp_path) if n.startswith(".")] == []


KILL_SCRIPT = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
from tests.stream_harness import fake_frames, run_to_end
frames = fake_frames(n_frames=int(sys.argv[4]), n_atoms=4)
print("start", flush=True)
run_to_end(Path(sys.argv[3]), (".extxyz", ".csv"), frames, Path(sys.argv[3]) / "in.xyz")
"""


@pytest.mark.slow
def test_sigkill_at_random_instants_then_resume(fast_tmp):
    """A real process killed with SIGKILL at random instants; resumed in process."""
    import random

    tmp_path = fast_tmp

    n_frames = 150
    frames = fake_frames(n_frames=n_frames, n_atoms=4)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "in.xyz").write_text("input\n")
    start = time.perf_counter()
    run_to_end(clean, (".extxyz", ".csv"), frames, clean / "in.xyz")
    duration = time.perf_counter() - start
    expected = output_bytes(clean, (".extxyz", ".csv"))
    rng = random.Random(0)
    root = str(Path(__file__).resolve().parents[1])
    for trial in range(3):
        work = tmp_path / f"run{trial}"
        work.mkdir()
        (work / "in.xyz").write_text("input\n")
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, root, SRC, str(work), str(n_frames)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "start"
        time.sleep(rng.uniform(0, 1.2 * duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_to_end(work, (".extxyz", ".csv"), frames, work / "in.xyz")
        assert output_bytes(work, (".extxyz", ".csv")) == expected
        assert listing(work) == sorted(["in.xyz", *expected])
