"""An interruption is never lost (`atominfo.runs.signals.raise_on_signals`).

Signal handlers belong to a process's main thread: each case runs in a child.
"""

import subprocess
import sys
import textwrap

SETUP = """
import ctypes, os, signal, sys, time
from atominfo.runs.signals import interruption_reached, raise_on_signals
raise_on_signals()
start = time.monotonic()
"""


def _run(body: str) -> subprocess.CompletedProcess:
    code = SETUP + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_an_interrupt_lost_in_a_c_callback_is_raised_again():
    # a Ctrl-C whose KeyboardInterrupt is raised inside a callback from C (as
    # while numba compiles through llvmlite) is swallowed by ctypes: it is
    # raised again within RETRY_SECONDS, with no "Exception ignored" on stderr
    done = _run(
        """
        def callback():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: its exception is lost
        ctypes.CFUNCTYPE(None)(callback)()
        print("went on", flush=True)
        try:
            while time.monotonic() - start < 20:
                sum(range(1000))
            print("not interrupted")
        except KeyboardInterrupt:
            interruption_reached()
            print(f"interrupted {time.monotonic() - start:.2f}")
        """
    )
    lines = done.stdout.split()
    assert lines[:2] == ["went", "on"] and lines[2] == "interrupted", done.stdout
    assert float(lines[3]) < 5.0
    assert done.stderr == ""


def test_cleanup_of_an_interruption_is_not_interrupted_again():
    # while the KeyboardInterrupt is being handled (finally blocks writing
    # outputs, also inside a nested except of another error) no retry fires;
    # after interruption_reached nothing more is raised
    done = _run(
        """
        try:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            finally:
                t = time.monotonic()
                while time.monotonic() - t < 1.0:
                    try:
                        raise OSError("a nested error during cleanup")
                    except OSError:
                        sum(range(1000))
                print("cleanup done", flush=True)
        except KeyboardInterrupt:
            interruption_reached()
        t = time.monotonic()
        while time.monotonic() - t < 1.0:
            sum(range(1000))
        print("after", flush=True)
        """
    )
    assert done.stdout.splitlines() == ["cleanup done", "after"], done.stderr
    assert done.returncode == 0


def test_a_signal_ignored_on_entry_stays_ignored():
    # a shell's background job inherits SIGINT ignored (POSIX): the command line
    # leaves it so, and still takes SIGTERM
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "from atominfo.runs.signals import raise_on_signals\n"
            "raise_on_signals()\n"
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,"
            " callable(signal.getsignal(signal.SIGTERM)))\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr
