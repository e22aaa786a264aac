"""SIGINT and SIGTERM: an interruption is never lost.

A Python signal handler runs at the next Python instruction. When that
instruction is inside a callback called from C (a ctypes callback, such as
the fix external of a LAMMPS run, or llvmlite's while numba compiles), the
exception it raises is lost: ctypes prints it and the C code goes on.

* `Interrupts` records the signal instead, where the code knows it runs
  such callbacks: the callback asks the C code to stop cleanly and the caller
  acts on the signal once it has returned (`atominfo.workflows.lammps`).
* `raise_on_signals` (the command line's handlers) raises KeyboardInterrupt
  and, until `interruption_reached` says the exception arrived, raises it
  again every RETRY_SECONDS from a SIGALRM timer: an interruption swallowed
  by a callback (a Ctrl-C while numba compiled at the first run of a fresh
  install went unnoticed, and the run went on) is raised again outside it.
  A retry is skipped while a KeyboardInterrupt is being handled (its
  except and finally blocks: the cleanup that keeps outputs whole).
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["Interrupts", "interruption_reached", "raise_on_signals"]

RETRY_SECONDS = 0.25
_pending = False


def _handling_an_interruption() -> bool:
    """Whether a KeyboardInterrupt is being handled (also as the context of another)."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__context__
    return False


def _interrupt(signum, frame) -> None:
    global _pending
    _pending = True
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS, RETRY_SECONDS)
    raise KeyboardInterrupt


def _retry(signum, frame) -> None:
    if not _pending:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elif not _handling_an_interruption():
        raise KeyboardInterrupt


def _quiet_lost_interrupt(unraisable, default=sys.unraisablehook) -> None:
    # the KeyboardInterrupt a C callback swallowed is raised again: its
    # "Exception ignored" traceback would break the one-line error contract
    if not (_pending and isinstance(unraisable.exc_value, KeyboardInterrupt)):
        default(unraisable)


def raise_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, again until it arrives (module docstring).

    Main thread only (elsewhere Python handles no signal: nothing is done). A signal
    ignored on entry stays ignored (POSIX: a shell's background job inherits SIGINT
    ignored, so that Ctrl-C of the shell leaves it running).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    sys.unraisablehook = _quiet_lost_interrupt
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _retry)


def interruption_reached() -> None:
    """The KeyboardInterrupt arrived where it is acted on: no more retries."""
    global _pending
    if _pending:  # (the timer is ours only then: a caller's own SIGALRM is left alone)
        _pending = False
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            signal.setitimer(signal.ITIMER_REAL, 0)


class Interrupts:
    """While in its ``with`` block, SIGINT and SIGTERM are recorded instead of raised.

    The handler only notes the signal in `signum` (the first one); the code
    in the block polls it and stops cleanly, and the caller acts on it after
    the block. Only signals that Python handles are deferred: a SIGTERM left
    to its default action still ends the process. Nothing is deferred outside
    the main thread, where Python handles no signal. Blocks nest: the
    innermost records, and each restores the handlers it found.

    Attributes
    ----------
    signum : int or None, the first signal received in the block.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _record(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            if _pending:  # raised before the block and lost: the block acts on it
                self.signum = signal.SIGINT
                if hasattr(signal, "setitimer"):
                    signal.setitimer(signal.ITIMER_REAL, 0)
            for signum in self.SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):
                    self._previous[signum] = handler
                    signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # a handler getsignal gave
