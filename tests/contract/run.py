"""Run the command line (in this process or in a subprocess) and check the contract.

The contract, for every command line: exit status 0 on success and 2 on any
error, never 1, never a signal, never a traceback; an error prints exactly
one line on stderr, ``atominfo: error: ...``, and it is not an "internal
error" (that is a bug reached by bad input); the run ends within a time
bound; inputs keep their bytes and mtime; after an error the directory holds
exactly what it held before (no partial, hidden or lock file); after success
it holds in addition only the outputs asked for.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ERROR_PREFIX = "atominfo: error: "
WARNING_PREFIX = "atominfo: warning: "
REPO = Path(__file__).resolve().parents[2]

# Cases run, by kind; the suite reports the totals at the end.
COUNTS: dict[str, int] = {}


def count(kind: str) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + 1


@dataclass
class Result:
    argv: list
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    work_started: bool = False

    def command(self) -> str:
        return "atominfo " + " ".join(_quote(a) for a in self.argv)


def _quote(a: str) -> str:
    return a if a and re.fullmatch(r"[\w./:=,+-]+", a) else repr(a)


class TimeBoundExceeded(BaseException):
    """Raised in the process by the alarm of an in-process run past its bound."""


class WorkStartedBeforeRefusal(BaseException):
    """Raised when a run opens an input for reading although it had to refuse first."""


def snapshot(directory: Path) -> dict:
    """Every entry under `directory` (hidden ones included): kind, bytes hash and mtime."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(directory))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            elif not path.is_file():  # a FIFO or device: reading it would block or never end
                out[rel] = ("special", path.stat().st_mode)
            else:
                st = path.stat()
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


@contextlib.contextmanager
def _alarm(seconds: float):
    def handler(signum, frame):
        raise TimeBoundExceeded(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def _refuse_reading(paths):
    """Make opening any of `paths` for reading raise `WorkStartedBeforeRefusal`."""
    watched = {os.path.realpath(p) for p in paths}
    real_open = builtins.open

    def guarded(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and "r" in mode and "+" not in mode:
            if os.path.realpath(os.fsdecode(file)) in watched:
                raise WorkStartedBeforeRefusal(f"read {os.fsdecode(file)}")
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = guarded
    try:
        yield
    finally:
        builtins.open = io.open = real_open


def run_inprocess(argv: list, cwd: Path, timeout: float = 30.0, refuse_reading=()) -> Result:
    """`atominfo.cli.main(argv)` in this process, output captured, within `timeout` s.

    With `refuse_reading`, opening one of those files for reading counts as
    work started (the run had to refuse before it).
    """
    from atominfo.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    debug = os.environ.pop("ATOMINFO_DEBUG", None)
    start = time.perf_counter()
    code = None
    try:
        os.chdir(cwd)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _alarm(timeout),
            _refuse_reading(refuse_reading),
        ):
            code = main([str(a) for a in argv])
    except TimeBoundExceeded:  # raised outside main's own handler (rare)
        code = None
    finally:
        os.chdir(old_cwd)
        if debug is not None:
            os.environ["ATOMINFO_DEBUG"] = debug
    seconds = time.perf_counter() - start
    stderr = err.getvalue()
    return Result(
        [str(a) for a in argv],
        -999 if code is None else code,
        out.getvalue(),
        stderr,
        seconds,
        timed_out=code is None or "TimeBoundExceeded" in stderr,
        work_started="WorkStartedBeforeRefusal" in stderr,
    )


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ATOMINFO_DEBUG"}
    # two cores shared by everyone: one thread per subprocess
    env.update(
        NUMBA_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(REPO / "src"),
    )
    return env


def run_subprocess(argv: list, cwd: Path, timeout: float = 60.0) -> Result:
    """``python -m atominfo argv`` in a fresh process, killed after `timeout` s."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "atominfo", *map(str, argv)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:

        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

        return Result(
            [str(a) for a in argv],
            -999,
            text(exc.stdout),
            text(exc.stderr),
            time.perf_counter() - start,
            timed_out=True,
        )
    return Result(
        [str(a) for a in argv],
        proc.returncode,
        proc.stdout,
        proc.stderr,
        time.perf_counter() - start,
    )


# What a successful command prints when it writes none of its outputs, by design.
NOTHING_WRITTEN = "no file written"


@dataclass
class Expect:
    """What a case must do. `codes`: allowed exit statuses; `names`: regular
    expressions (or plain text) the error line must contain, any one of each
    inner tuple; `outputs`: names (relative to the directory) a success adds."""

    codes: tuple = (2,)
    names: list = field(default_factory=list)
    outputs: tuple = ()
    max_seconds: float | None = None
    warn_if_success: str | None = None  # a warning line must mention this on success


def check(
    result: Result, expect: Expect, before: dict, after: dict, inputs: list[Path] = ()
) -> None:
    """Assert the contract for one run (see the module docstring)."""
    how = (
        f"\n  command: {result.command()}\n  exit: {result.returncode}\n  stderr: "
        f"{result.stderr[-2000:]!r}\n  stdout: {result.stdout[-500:]!r}"
    )
    assert not result.timed_out, f"did not finish within its time bound{how}"
    assert not result.work_started, f"read an input before refusing a bad output{how}"
    assert result.returncode >= 0, f"killed by signal {-result.returncode}{how}"
    assert "Traceback" not in result.stderr, f"traceback on stderr{how}"
    assert result.returncode in expect.codes, (
        f"exit status {result.returncode}, expected {' or '.join(map(str, expect.codes))}{how}"
    )
    if expect.max_seconds is not None:
        assert result.seconds <= expect.max_seconds, (
            f"took {result.seconds:.2f} s, bound {expect.max_seconds} s{how}"
        )
    for p in inputs:
        rel = str(Path(p).name)
        if rel in before:
            assert after.get(rel) == before[rel], f"input {rel} changed (bytes or mtime){how}"
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    if result.returncode == 0:
        extra = set(after) - set(before)
        # a success may write none of its outputs when it says so (extract, nothing novel)
        outputs = () if NOTHING_WRITTEN in result.stdout else expect.outputs
        missing = [o for o in outputs if o not in after]
        assert not missing, f"outputs asked for are missing: {missing}{how}"
        unexpected = sorted(extra - set(outputs))
        assert not unexpected, f"files left besides the outputs asked for: {unexpected}{how}"
        changed = sorted(k for k in before if k not in expect.outputs and after.get(k) != before[k])
        assert not changed, f"files changed that are not outputs: {changed}{how}"
        odd = [ln for ln in lines if not ln.startswith(WARNING_PREFIX)]
        assert not odd, f"stderr of a success holds more than warning lines: {odd}{how}"
        if expect.warn_if_success is not None:
            assert any(expect.warn_if_success in ln for ln in lines), (
                f"success without a warning naming {expect.warn_if_success!r}{how}"
            )
        return
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), (
        f"an error must print exactly one line, starting {ERROR_PREFIX!r}{how}"
    )
    line = lines[0]
    assert "internal error" not in line, f"bad input reached a bug (internal error){how}"
    for alternatives in expect.names:
        alternatives = (alternatives,) if isinstance(alternatives, str) else alternatives
        assert any(re.search(a, line) for a in alternatives), (
            f"the error line does not name {' or '.join(alternatives)}{how}"
        )
    assert after == before, (
        f"directory changed by a failed run: added "
        f"{sorted(set(after) - set(before))}, removed "
        f"{sorted(set(before) - set(after))}, changed "
        f"{sorted(k for k in before if k in after and after[k] != before[k])}"
        f"{how}"
    )
