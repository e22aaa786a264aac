"""Ctrl-C ends `atominfo dh` with exit 130 and one line, at whatever instant it comes.

* during the start-up imports of the console script (an interruption there
  was a traceback and death by SIGINT);
* at many instants of a run (reading, describing, kernel sums, writing): never
  ignored, never a traceback, and the process ends within a bound.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REF = Path(__file__).parent / "data" / "cu_fcc_108.extxyz"

# Runs the console script's function, first saying it is about to.
CHILD = """
import sys
sys.argv = ["atominfo", "dh", sys.argv[1], "--ref", sys.argv[2], "-q", "-o", sys.argv[3]]
from atominfo.cli import console_main
print("ready", flush=True)
console_main()
"""

# Ctrl-C while console_main imports its first module.
IMPORTING = """
import os, signal, sys

class Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == "atominfo.cli.report":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupting())
sys.argv = ["atominfo", "--help"]
from atominfo.cli import console_main
console_main()
"""


def test_ctrl_c_during_the_start_up_imports_is_exit_130_in_one_line():
    done = subprocess.run(
        [sys.executable, "-c", IMPORTING], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "atominfo: interrupted\n" and done.stdout == ""


def _frames(path: Path, n: int) -> None:
    """`n` one-atom frames: a run of several seconds through every stage."""
    head = '1\nLattice="3.6 0 0 0 3.6 0 0 0 3.6" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
    path.write_text("".join(head + f"Cu {0.01 * (i % 50)} 0 0\n" for i in range(n)))


@pytest.mark.slow
def test_ctrl_c_at_many_instants_of_a_dh_run_exits_130_promptly(tmp_path):
    test = tmp_path / "many.extxyz"
    _frames(test, 6000)
    for i, delay in enumerate([0.0, 0.05, 0.2, 0.5, 1.0, 2.0]):
        out = tmp_path / f"dh_{i}.extxyz"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(test), str(REF), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            _, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            pytest.fail(f"Ctrl-C {delay} s into dh: still running 30 s later")
        waited = time.monotonic() - sent
        if child.returncode == 0:  # finished before the signal: its output whole
            assert out.exists()
            continue
        assert child.returncode == 130, (delay, child.returncode, err)
        assert "Traceback" not in err and err.strip().startswith("atominfo: interrupted"), err
        assert len(err.strip().splitlines()) == 1, err
        assert waited < 15, (delay, waited)  # teardown of a run included, on a loaded machine
        assert not out.exists()  # all or none
