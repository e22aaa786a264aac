"""The compiled pass over the atom lines of a frame: numbers straight from bytes.

One numba pass parses a block of lines into float, integer and string
columns (no Python object per number). Every float is rounded exactly as
Python's ``float()`` rounds it (a token of at most 19 significant digits and
a decimal exponent within +-22 is converted by one correctly rounded IEEE
operation, Clinger's fast path; any other token, ``nan``/``inf`` included, is
converted by ``float()`` itself). A block of `PARALLEL_LINES` lines or more is
parsed by two threads (cut at a newline, each half into its rows; the result
and the first error are the serial parse's) where numba may use two.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field

import numba
import numpy as np

from atominfo.errors import InputError

# column kinds of the kernel
FLOAT, INT, STRING, SKIP = 0, 1, 2, 3
_MAX_SLOW = 4096  # tokens off the fast path before a block is parsed again with more room

_POW10 = np.array([10.0**i for i in range(23)])
SMALL_TOKENS = 20_000  # numbers below which a block is parsed by Python, not the kernel
PARALLEL_LINES = 100_000  # lines from which a block is parsed by two threads


class Unsupported(Exception):
    """The fast reader does not handle this frame: read it with ASE instead."""


@numba.njit(cache=True, nogil=True)
def _parse_block(buf, start, n_lines, kinds, slot, out_f, out_i, out_s, slow):
    """Parse `n_lines` lines of whitespace-separated columns from buf[start:].

    kinds[c] is FLOAT, INT, STRING or SKIP; slot[c] is its column in out_f,
    out_i or out_s (string tokens as (start, end) byte offsets). Floats with
    more than 19 significant digits, a decimal exponent beyond +-22 or any
    non-numeric character (nan, inf), and integers beyond 18 digits, are
    listed in `slow` as (line, column, start, end) for Python to convert.

    Returns (end, status, line, n_slow): status 0 ok, 1 a line has too few
    columns, 2 too many, 3 the text ends early, 4 too many slow tokens.
    """
    pos = start
    n = buf.shape[0]
    n_cols = kinds.shape[0]
    n_slow = 0
    for line in range(n_lines):
        col = 0
        while True:
            # skip blanks (not newlines)
            while pos < n and (buf[pos] == 32 or buf[pos] == 9 or buf[pos] == 13):
                pos += 1
            if pos >= n:
                if col == n_cols:
                    return pos, 0 if line == n_lines - 1 else 3, line, n_slow
                return pos, 3, line, n_slow
            ch = buf[pos]
            if ch == 10:
                pos += 1
                if col < n_cols:
                    return pos, 1, line, n_slow
                break
            if col >= n_cols:
                return pos, 2, line, n_slow
            t0 = pos
            while (
                pos < n and buf[pos] != 32 and buf[pos] != 9 and buf[pos] != 13 and buf[pos] != 10
            ):
                pos += 1
            t1 = pos
            kind = kinds[col]
            s = slot[col]
            if kind == FLOAT:
                ok, value = _float_token(buf, t0, t1)
                if ok:
                    out_f[line, s] = value
                else:
                    out_f[line, s] = np.nan
                    if n_slow == slow.shape[0]:
                        return pos, 4, line, n_slow
                    slow[n_slow, 0] = line
                    slow[n_slow, 1] = col
                    slow[n_slow, 2] = t0
                    slow[n_slow, 3] = t1
                    n_slow += 1
            elif kind == INT:
                ok, ivalue = _int_token(buf, t0, t1)
                if ok:
                    out_i[line, s] = ivalue
                else:
                    out_i[line, s] = 0
                    if n_slow == slow.shape[0]:
                        return pos, 4, line, n_slow
                    slow[n_slow, 0] = line
                    slow[n_slow, 1] = col
                    slow[n_slow, 2] = t0
                    slow[n_slow, 3] = t1
                    n_slow += 1
            elif kind == STRING:
                out_s[line, s, 0] = t0
                out_s[line, s, 1] = t1
            col += 1
    return pos, 0, n_lines, n_slow


@numba.njit(cache=True, nogil=True, inline="always")
def _float_token(buf, t0, t1):
    """(True, value) when the token converts exactly by the fast path, else (False, 0)."""
    p = t0
    negative = False
    if buf[p] == 45 or buf[p] == 43:  # - +
        negative = buf[p] == 45
        p += 1
    mant = np.uint64(0)
    digits = 0
    frac = 0
    seen = False
    dot = False
    while p < t1:
        c = buf[p]
        if 48 <= c <= 57:
            seen = True
            if digits > 0 or c != 48:
                if digits == 19:
                    return False, 0.0
                mant = mant * np.uint64(10) + np.uint64(c - 48)
                digits += 1
            if dot:
                frac += 1
        elif c == 46 and not dot:
            dot = True
        else:
            break
        p += 1
    if not seen:
        return False, 0.0
    exp = 0
    if p < t1:
        c = buf[p]
        if c != 101 and c != 69:  # e E
            return False, 0.0
        p += 1
        eneg = False
        if p < t1 and (buf[p] == 45 or buf[p] == 43):
            eneg = buf[p] == 45
            p += 1
        if p >= t1:
            return False, 0.0
        while p < t1:
            c = buf[p]
            if not 48 <= c <= 57:
                return False, 0.0
            exp = exp * 10 + (c - 48)
            if exp > 10000:
                return False, 0.0
            p += 1
        if eneg:
            exp = -exp
    e10 = exp - frac
    if mant == 0:
        value = 0.0
    elif mant > np.uint64(9007199254740992) or e10 > 22 or e10 < -22:
        return False, 0.0
    elif e10 >= 0:
        value = float(mant) * _POW10[e10]
    else:
        value = float(mant) / _POW10[-e10]
    return True, -value if negative else value


@numba.njit(cache=True, nogil=True, inline="always")
def _int_token(buf, t0, t1):
    p = t0
    negative = False
    if buf[p] == 45 or buf[p] == 43:
        negative = buf[p] == 45
        p += 1
    if p >= t1 or t1 - p > 18:
        return False, 0
    value = 0
    while p < t1:
        c = buf[p]
        if not 48 <= c <= 57:
            return False, 0
        value = value * 10 + (c - 48)
        p += 1
    return True, -value if negative else value


@dataclass
class Columns:
    """Parsed atom lines: floats (n, n_float), ints (n, n_int), string offsets (n, n_str, 2)."""

    floats: np.ndarray
    ints: np.ndarray
    strings: np.ndarray
    buf: np.ndarray
    slots: list = field(default_factory=list)


def parse_lines(
    buf: np.ndarray,
    start: int,
    n_lines: int,
    kinds,
    *,
    source: str = "<text>",
    frame: int | None = None,
    first_atom: int = 0,
    expected: int | None = None,
) -> tuple[Columns, int]:
    """Parse `n_lines` atom lines of `buf` (uint8) from byte `start`.

    Parameters
    ----------
    kinds : sequence of FLOAT / INT / STRING / SKIP, one per column.
    source, frame, first_atom : where the lines are, for error messages.

    Returns
    -------
    (Columns, end): the columns, and the byte after the last line.

    Raises
    ------
    InputError naming the atom whose line has the wrong number of columns,
    ends early, or holds a number that is not one.
    """
    kind_of = [int(kind) for kind in kinds]
    slot_of, counts = [], [0, 0, 0, 0]
    for kind in kind_of:
        slot_of.append(counts[kind])
        counts[kind] += 1
    kinds, slot = np.array(kind_of, dtype=np.int64), np.array(slot_of, dtype=np.int64)
    out_f = np.empty((n_lines, counts[FLOAT]))
    out_i = np.empty((n_lines, counts[INT]), dtype=np.int64)
    out_s = np.empty((n_lines, counts[STRING], 2), dtype=np.int64)
    if n_lines * len(kinds) <= SMALL_TOKENS:
        # a small frame: Python's own float() and int(), and no compiled kernel to load
        # (loading it costs about as much as the `import ase.io` the fast reader saves)
        end, status, line, slow = _parse_small(buf, start, n_lines, kind_of, slot_of, out_s)
    else:
        end, status, line, found = _parse_kernel(
            buf, start, n_lines, kinds, slot, out_f, out_i, out_s
        )
        slow = found.tolist()  # Python ints: no numpy scalar per number below
    atom = first_atom + int(line)
    if status in (1, 2):
        got = _line_text(buf, start, int(line))
        raise InputError(
            f"atom line {got[:40]!r} has {len(got.split())} columns, the header "
            f"declares {len(kinds)}",
            source=source,
            frame=frame,
            atom=atom,
        )
    if status == 3:
        raise InputError(
            f"the frame ends after {line} of its atom lines", source=source, frame=frame, atom=atom
        )
    raw = bytes(buf) if slow else b""
    for row, col, t0, t1 in slow:
        text = raw[t0:t1].decode("ascii", "replace")
        try:
            if kind_of[col] == FLOAT:
                out_f[row, slot_of[col]] = float(text)
            else:
                out_i[row, slot_of[col]] = int(text)
        except (ValueError, OverflowError):
            what = "a number" if kind_of[col] == FLOAT else "an integer"
            raise InputError(
                f"column {col + 1} {text[:30]!r} is not {what}",
                source=source,
                frame=frame,
                atom=first_atom + row,
            ) from None
    return Columns(out_f, out_i, out_s, buf, slot_of), int(end)


def column_getter(columns: list[str], kinds, cols: Columns):
    """A function giving the values of a column by name: ``get("x")`` is the float
    column x of `cols`, ``get("id")`` an int column (views, not copies).

    `columns` and `kinds` are the names and kinds `cols` was parsed with; a
    STRING or SKIP column raises KeyError (`string_column` reads strings).
    """

    def get(name: str) -> np.ndarray:
        c = columns.index(name)
        if kinds[c] == FLOAT:
            return cols.floats[:, cols.slots[c]]
        if kinds[c] == INT:
            return cols.ints[:, cols.slots[c]]
        raise KeyError(name)

    return get


def _parse_serial(buf, start, n_lines, kinds, slot, out_f, out_i, out_s):
    """`_parse_block` with room for every slow token: (end, status, line, slow (m, 4))."""
    slow = np.empty((_MAX_SLOW, 4), dtype=np.int64)
    end, status, line, n_slow = _parse_block(
        buf, start, n_lines, kinds, slot, out_f, out_i, out_s, slow
    )
    if status == 4:  # many numbers off the fast path: room for all of them
        slow = np.empty((max(n_lines * len(kinds), 1), 4), dtype=np.int64)
        end, status, line, n_slow = _parse_block(
            buf, start, n_lines, kinds, slot, out_f, out_i, out_s, slow
        )
    return int(end), int(status), int(line), slow[:n_slow]


def parse_threads() -> int:
    """Threads that parse one large block: 2 where numba may use 2 or more (`--threads`).

    Reads numba's limit without starting numba's thread pool where it is not
    started (`numba.set_num_threads` starts it).
    """
    if (os.cpu_count() or 1) < 2:
        return 1
    try:
        from numba.np.ufunc import parallel

        started = bool(parallel._is_initialized)
    except (ImportError, AttributeError):
        started = True
    most = numba.get_num_threads() if started else numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    return 2 if most >= 2 else 1


def _parse_kernel(buf, start, n_lines, kinds, slot, out_f, out_i, out_s) -> tuple:
    """The lines parsed by the compiled kernel, in two halves on two threads when large.

    The text is cut at the first newline after its middle byte. This thread
    parses the first half (the lines before the cut) into the first rows; a
    second thread counts those lines, then parses the rest into the rows after
    them. The result is the serial parse's: the same values, and the first
    error of the two halves (the first half's lines come first).

    Returns (end, status, line, slow): as `_parse_block`, with ``slow`` (m, 4)
    the tokens off the fast path as (line, column, start, end).
    """
    size = buf.shape[0] - start
    if n_lines < PARALLEL_LINES or len(kinds) == 0 or parse_threads() < 2:
        return _parse_serial(buf, start, n_lines, kinds, slot, out_f, out_i, out_s)
    cut = _next_newline(buf, start + size // 2)
    if cut < 0:
        return _parse_serial(buf, start, n_lines, kinds, slot, out_f, out_i, out_s)
    cut += 1
    second: list = []

    def rest():
        try:
            before = int(_count_newlines(buf, start, cut))
            if before >= n_lines:  # the frame's lines end in the first half
                second.append((before, None))
                return
            second.append(
                (
                    before,
                    _parse_serial(
                        buf,
                        cut,
                        n_lines - before,
                        kinds,
                        slot,
                        out_f[before:],
                        out_i[before:],
                        out_s[before:],
                    ),
                )
            )
        except BaseException as exc:  # re-raised by the caller
            second.append((0, exc))

    worker = threading.Thread(target=rest, name="atominfo-parse", daemon=True)
    worker.start()
    try:
        first = _parse_serial(buf[:cut], start, n_lines, kinds, slot, out_f, out_i, out_s)
    finally:
        worker.join()
    before, result = second[0]
    if isinstance(result, BaseException):
        raise result
    end, status, line, slow = first
    if status != 3:  # an error in the first half, or every line in it
        return first
    if result is None or line != before:  # cannot happen: the halves disagree
        return _parse_serial(buf, start, n_lines, kinds, slot, out_f, out_i, out_s)
    # the first half ended cleanly at its last newline, after `before` lines
    end, status, line, slow2 = result
    slow2 = slow2.copy()
    slow2[:, 0] += before
    return end, status, before + line, np.concatenate([slow, slow2])


@numba.njit(cache=True, nogil=True)
def _count_newlines(buf, start, stop):
    """The number of newline bytes in buf[start:stop] (a loop the compiler vectorises)."""
    view = buf[start:stop]
    count = np.int64(0)
    for i in range(view.shape[0]):
        count += np.int64(view[i] == np.uint8(10))
    return count


@numba.njit(cache=True, nogil=True)
def _next_newline(buf, pos):
    """Offset of the first newline at or after `pos`, or -1."""
    for i in range(pos, buf.shape[0]):
        if buf[i] == 10:
            return i
    return -1


@numba.njit(cache=True, nogil=True)
def newline_cut(buf, max_lines):
    """(lines, cut): the complete lines of buf (uint8), at most `max_lines`, and the byte
    after the last of them ((0, 0) when buf holds no newline). Compiled: for blocks of
    megabytes, where counting with `bytes.count` and a search would pass twice."""
    n = buf.shape[0]
    count = 0
    pos = 0
    while pos < n:
        stop = min(pos + 65536, n)
        more = _count_newlines(buf, pos, stop)
        if count + more >= max_lines:
            for i in range(pos, stop):
                if buf[i] == 10:
                    count += 1
                    if count == max_lines:
                        return count, i + 1
        count += more
        pos = stop
    for i in range(n - 1, -1, -1):
        if buf[i] == 10:
            return count, i + 1
    return 0, 0


_TOKEN = re.compile(rb"[^ \t\r\n]+")


def _parse_small(buf, start, n_lines, kinds, slot, out_s):
    """`_parse_block` in Python for a few lines: every number goes to the slow list.

    Returns (end, status, line, slow) with `slow` a list of (line, column, start, end).
    """
    data = bytes(buf)
    pos = start
    n_cols = len(kinds)
    slow = []
    for line in range(n_lines):
        nl = data.find(b"\n", pos)
        stop = len(data) if nl < 0 else nl
        spans = [m.span() for m in _TOKEN.finditer(data, pos, stop)]
        if nl < 0 and not spans:
            return len(data), 3, line, slow
        if len(spans) < n_cols:
            return stop, 1, line, slow
        if len(spans) > n_cols:
            return stop, 2, line, slow
        for col, (t0, t1) in enumerate(spans):
            if kinds[col] == STRING:
                out_s[line, slot[col], 0] = t0
                out_s[line, slot[col], 1] = t1
            elif kinds[col] != SKIP:
                slow.append((line, col, t0, t1))
        pos = stop + 1
    return min(pos, len(data)), 0, n_lines, slow


def _line_text(buf, start, line) -> str:
    pos = start
    for _ in range(line):
        nl = find_byte(buf, 10, pos)
        pos = nl + 1
    nl = find_byte(buf, 10, pos)
    return bytes(buf[pos : nl if nl >= 0 else len(buf)]).decode("utf-8", "replace").strip()


def find_byte(buf, byte, pos) -> int:
    """Offset of the first `byte` at or after `pos` in the uint8 array `buf`, or -1."""
    step = 4096
    while pos < len(buf):
        hits = np.flatnonzero(buf[pos : pos + step] == byte)
        if hits.size:
            return int(pos + hits[0])
        pos += step
        step *= 4
    return -1


@numba.njit(cache=True, nogil=True)
def _small_string_table(buf, offsets, max_distinct):
    """Distinct tokens of up to 8 bytes, in order of first appearance, and each row's one.

    Returns (first_rows, inverse, ok): ok is False when a token is longer than 8
    bytes or there are more than `max_distinct` distinct tokens.
    """
    n = offsets.shape[0]
    keys = np.empty(max_distinct, dtype=np.uint64)
    first = np.empty(max_distinct, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    n_keys = 0
    for i in range(n):
        a, b = offsets[i, 0], offsets[i, 1]
        if b - a > 8:
            return first[:0], inverse, False
        key = np.uint64(b - a)
        for p in range(a, b):
            key = (key << np.uint64(8)) | np.uint64(buf[p])
        found = -1
        for t in range(n_keys):
            if keys[t] == key:
                found = t
                break
        if found < 0:
            if n_keys == max_distinct:
                return first[:0], inverse, False
            keys[n_keys] = key
            first[n_keys] = i
            found = n_keys
            n_keys += 1
        inverse[i] = found
    return first[:n_keys], inverse, True


def string_column(cols: Columns, slot: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct strings, inverse): the distinct tokens of a string column and each row's one."""
    offsets = np.ascontiguousarray(cols.strings[:, slot])
    if len(offsets) <= SMALL_TOKENS:  # no compiled kernel to load for a small frame
        raw = bytes(cols.buf)
        table: dict[bytes, int] = {}
        inverse = np.array(
            [table.setdefault(raw[a:b], len(table)) for a, b in offsets.tolist()], dtype=np.int64
        )
        return np.array([k.decode("utf-8", "replace") for k in table], dtype=object), inverse
    first, inverse, ok = _small_string_table(cols.buf, offsets, 64)
    if ok:
        distinct = [
            bytes(cols.buf[offsets[r, 0] : offsets[r, 1]]).decode("utf-8", "replace") for r in first
        ]
        return np.array(distinct, dtype=object), inverse
    length = offsets[:, 1] - offsets[:, 0]
    width = int(length.max()) if len(length) else 1
    idx = offsets[:, :1] + np.arange(max(width, 1))[None, :]
    mask = np.arange(max(width, 1))[None, :] < length[:, None]
    padded = np.where(mask, cols.buf[np.minimum(idx, len(cols.buf) - 1)], 0).astype(np.uint8)
    keys = np.ascontiguousarray(padded).view(f"S{max(width, 1)}")[:, 0]
    unique, inverse = np.unique(keys, return_inverse=True)
    return np.array([u.decode("utf-8", "replace") for u in unique], dtype=object), inverse
