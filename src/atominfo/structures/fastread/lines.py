"""Buffered line and block reads of a plain or gzipped text file, with a read-ahead thread.

`LineReader` reads a file line by line (headers) and in blocks of whole lines
(atom lines, for the compiled parse). A .gz file is decompressed (by ISA-L's
igzip where installed, else the gzip module) in a read-ahead thread while
the caller parses, with at most `READ_AHEAD` chunks of `READ_CHUNK` bytes
held ahead; the thread ends when the reader pauses or closes.
"""

from __future__ import annotations

import gzip
import queue
import threading
import zlib

import numpy as np

from atominfo.errors import InputError
from atominfo.structures.fastread.tokens import newline_cut

BLOCK_BYTES = 1 << 25  # 32 MiB of text per block of lines
READ_CHUNK = 1 << 22  # bytes of decompressed text per read of the read-ahead thread
READ_AHEAD = 8  # chunks the read-ahead thread holds before the parser takes them


def gzip_module():
    """ISA-L's igzip (about 3x faster inflate than zlib) where installed, else gzip."""
    try:
        from isal import igzip
    except ImportError:
        return gzip
    return igzip


def _read_errors() -> tuple:
    """What reading a (corrupt or cut) plain or gzip file raises."""
    errors: tuple = (OSError, EOFError, zlib.error)
    try:
        from isal.isal_zlib import error
    except ImportError:
        return errors
    return (*errors, error)


def open_binary(path: str):
    """`path` opened for reading bytes: decompressed on the fly where it ends in .gz."""
    if path.lower().endswith(".gz"):
        return gzip_module().open(path, "rb")
    return open(path, "rb")


def _cut_lines(buf: np.ndarray, max_lines: int) -> tuple[int, int]:
    """(lines, cut): the first complete lines of `buf` (uint8; at most `max_lines`,
    >= 1), and the byte after the last of them (0 when there is none)."""
    if len(buf) <= 1 << 20:  # bytes.count and a search: no compiled kernel to load
        data = buf.tobytes()
        count = data.count(b"\n")
        if count <= max_lines:
            return count, data.rfind(b"\n") + 1
        nl = -1
        for _ in range(max_lines):
            nl = data.find(b"\n", nl + 1)
        return max_lines, nl + 1
    count, cut = newline_cut(buf, max_lines)
    return int(count), int(cut)


def _read_ahead(fh, chunk: int, out: queue.Queue, stop: threading.Event, held: list) -> None:
    """Read `fh` in chunks into `out` until its end, an error (put in `out` as
    the exception) or `stop`; a chunk read but not put when stopped goes to `held`."""
    while not stop.is_set():
        try:
            item = fh.read(chunk)
        except BaseException as exc:  # raised by the reader when it reaches it
            item = exc
        while True:
            if stop.is_set():
                held.append(item)
                return
            try:
                out.put(item, timeout=0.05)
                break
            except queue.Full:
                continue
        if not isinstance(item, bytes) or not item:
            return


class _ReadAhead:
    """A daemon thread reading (and decompressing) a file ahead of the parser.

    zlib's and ISA-L's inflate release the GIL, as the numba parser does, so a
    .gz file is decompressed on one core while it is parsed on the other. The
    queue holds at most `READ_AHEAD` chunks of `READ_CHUNK` bytes. `stop()`
    ends and joins the thread and returns, in file order, what it read that
    was not taken (bytes, or the exception a read raised).
    """

    def __init__(self, fh) -> None:
        self.queue: queue.Queue = queue.Queue(READ_AHEAD)
        self.stop_event = threading.Event()
        self.held: list = []
        self.thread = threading.Thread(
            target=_read_ahead,
            args=(fh, READ_CHUNK, self.queue, self.stop_event, self.held),
            name="atominfo-read-ahead",
            daemon=True,
        )
        self.thread.start()

    def get(self):
        """The next chunk (b"" at the end), or the exception its read raised."""
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():
                    # cannot happen: the thread puts b"" or its error before ending
                    return EOFError("the read-ahead thread ended early")

    def stop(self) -> list:
        self.stop_event.set()
        left = []
        while True:
            try:
                while True:
                    left.append(self.queue.get_nowait())
            except queue.Empty:
                pass
            if not self.thread.is_alive():
                break
            self.thread.join(0.05)
        try:  # whatever the thread put between the last drain and its end
            while True:
                left.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return left + self.held


class LineReader:
    """Buffered line and block reads of an open (possibly gzipped) binary file.

    `name` names the file in errors: a read that fails (a cut or damaged .gz
    file) is an InputError, raised again by the next read. `read_ahead()`
    moves the reads of the file to a `_ReadAhead` thread (a .gz file is
    decompressed while the caller parses); `pause()` stops that thread,
    keeping what it had read, so that reading goes on where it was.
    """

    def __init__(self, fh, name: str) -> None:
        self.fh, self.name = fh, name
        self.buf = b""
        self.eof = False
        self.pending: list = []  # chunks (or read errors) read ahead, not yet in buf
        self.ahead: _ReadAhead | None = None
        self._block: np.ndarray | None = None  # the buffer of `lines_block`

    def read_ahead(self) -> None:
        """Start the read-ahead thread (once; not at the end of the file)."""
        if self.ahead is None and not self.eof:
            self.ahead = _ReadAhead(self.fh)

    def pause(self) -> None:
        """Stop the read-ahead thread, keeping what it read for the next reads."""
        if self.ahead is not None:
            ahead, self.ahead = self.ahead, None
            self.pending += ahead.stop()

    def _read(self, size: int) -> bytes:
        if self.pending:
            item = self.pending.pop(0)
        elif self.ahead is not None:
            item = self.ahead.get()
        else:
            try:
                item = self.fh.read(size)
            except _read_errors() as exc:
                item = exc
        if isinstance(item, _read_errors()):
            self.pending.insert(0, item)  # the same error on the next read
            raise InputError(
                f"cannot read ({type(item).__name__}: {item})", source=self.name
            ) from None
        if isinstance(item, BaseException):
            raise item
        return item

    def fill(self, size: int) -> None:
        """Read until the buffer holds `size` bytes or the file ends."""
        parts = [self.buf]
        have = len(self.buf)
        try:
            while have < size and not self.eof:
                more = self._read(max(size - have, 1 << 20))
                if not more:
                    self.eof = True
                parts.append(more)
                have += len(more)
        finally:
            self.buf = parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self) -> bytes:
        """The next line with its newline (without one at the end of the file; b"" after it)."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[: nl + 1], self.buf[nl + 1 :]
                return line
            if self.eof:
                line, self.buf = self.buf, b""
                return line
            self.fill(len(self.buf) + (1 << 16))

    def _read_into(self, view: memoryview) -> int:
        """Read into `view`: the number of bytes read, 0 at the end of the file."""
        if self.pending or self.ahead is not None:
            item = self._read(len(view))
            k = min(len(item), len(view))
            view[:k] = memoryview(item)[:k]
            if k < len(item):
                self.pending.insert(0, item[k:])
            return k
        try:
            return self.fh.readinto(view)
        except _read_errors() as exc:
            raise InputError(
                f"cannot read ({type(exc).__name__}: {exc})", source=self.name
            ) from None

    def lines_block(self, max_lines: int) -> tuple[np.ndarray, int]:
        """Up to `max_lines` complete lines (fewer at the end of the file) as
        uint8 bytes, and their number.

        The bytes are a view of a buffer that the next call overwrites (one
        buffer, reused: a fresh one each time would cost a page fault per 4 KiB).
        """
        need = max(BLOCK_BYTES, len(self.buf)) + READ_CHUNK
        if self._block is None or len(self._block) < need:
            self._block = np.empty(need, dtype=np.uint8)
        block = self._block
        view = memoryview(block)  # type: ignore[arg-type]
        n = len(self.buf)
        view[:n] = self.buf
        self.buf = b""
        try:
            while n < BLOCK_BYTES and not self.eof:
                got = self._read_into(view[n:])
                if not got:
                    self.eof = True
                n += got
        except BaseException:
            self.buf = bytes(block[:n])  # what was read stays for the next read
            raise
        count, cut = _cut_lines(block[:n], max_lines)
        self.buf = block[cut:n].tobytes()
        return block[:cut], count

    def close(self) -> None:
        """Stop the read-ahead thread and drop what it read (the file is the caller's)."""
        self.pause()
        self.pending = []
