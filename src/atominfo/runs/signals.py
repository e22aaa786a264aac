"""SIGINT and SIGTERM deferred while a run is inside code that cannot be interrupted.

A Python signal handler runs at the next Python instruction. When that
instruction is inside a callback called from C (a ctypes callback, such as
the fix external of a LAMMPS run), the exception it raises is lost: ctypes
prints it and the C code goes on. `Interrupts` records the signal instead;
the callback asks the C code to stop cleanly and the caller acts on the
signal once it has returned (`atominfo.workflows.lammps`).
"""

from __future__ import annotations

import signal
import threading

__all__ = ["Interrupts"]


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
