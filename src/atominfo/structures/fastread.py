"""Fast readers of LAMMPS text dumps and extended XYZ: numbers parsed by a numba kernel.

The atom block of a frame is parsed straight from its bytes by one compiled
pass (no Python object per number). Every float is rounded exactly as
Python's ``float()`` rounds it (a token of at most 19 significant digits and
a decimal exponent within +-22 is converted by one correctly rounded IEEE
operation, Clinger's fast path; any other token, ``nan``/``inf`` included, is
converted by ``float()`` itself), so the positions are bit-identical to those
ASE reads. Integers are exact.

Two uses:

* `lammps_atoms` / `extxyz_atoms` build the same `ase.Atoms` as ``ase.io.read``
  (positions, cell, pbc, numbers, every per-atom array, info, calculator
  results), without importing ``ase.io``. A frame they do not support raises
  `Unsupported`, and the caller falls back to ASE (`atominfo.structures.frames`
  does so).
* `open_frame` streams one frame of any size in blocks of atoms (plain or
  ``.gz``), for snapshots larger than memory (`atominfo.workflows.snapshot`);
  `read_snapshot` reads one frame into arrays.

Frames are numbered from 0 in file order; errors are `InputError` naming the
file, frame and atom.

Threads: a block of 100,000 lines or more is parsed by two threads (cut at a
newline, each half into its rows; the result and the first error are the
serial parse's) where numba may use two (`numba.set_num_threads`); a .gz file
is decompressed (by ISA-L's igzip where installed, else the gzip module) in a
read-ahead thread while `StreamedFrame.blocks()` parses, with at most
`READ_AHEAD` chunks of `READ_CHUNK` bytes held ahead. Both threads end before
the call or the generator returns, closes or raises.
"""

from __future__ import annotations

import gzip
import os
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numba
import numpy as np

from atominfo.errors import InputError

# column kinds of the kernel
FLOAT, INT, STRING, SKIP = 0, 1, 2, 3
_MAX_SLOW = 4096  # tokens off the fast path before a block is parsed again with more room
BLOCK_BYTES = 1 << 25  # 32 MiB of text per streamed block

_POW10 = np.array([10.0**i for i in range(23)])
MAX_COORDINATE = 1e9  # Å, as atominfo.descriptor.kernel
SMALL_TOKENS = 20_000  # numbers below which a block is parsed by Python, not the kernel
PARALLEL_LINES = 100_000  # lines from which a block is parsed by two threads


class Unsupported(Exception):
    """The fast reader does not handle this frame: read it with ASE instead."""


class _Truncated(Exception):
    """The file ends inside the header of frame `args[0]`."""


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
    kinds = np.asarray(kinds, dtype=np.int64)
    slot = np.zeros(len(kinds), dtype=np.int64)
    counts = [0, 0, 0, 0]
    for c, kind in enumerate(kinds):
        slot[c] = counts[kind]
        counts[kind] += 1
    out_f = np.empty((n_lines, counts[FLOAT]))
    out_i = np.empty((n_lines, counts[INT]), dtype=np.int64)
    out_s = np.empty((n_lines, counts[STRING], 2), dtype=np.int64)
    if n_lines * len(kinds) <= SMALL_TOKENS:
        # a small frame: Python's own float() and int(), and no compiled kernel to load
        # (loading it costs about as much as the `import ase.io` the fast reader saves)
        slow = _parse_small(buf, start, n_lines, kinds, slot, out_s)
        end, status, line, n_slow = slow[0], slow[1], slow[2], len(slow[3])
        slow = np.array(slow[3], dtype=np.int64).reshape(-1, 4)
    else:
        end, status, line, slow = _parse_kernel(
            buf, start, n_lines, kinds, slot, out_f, out_i, out_s
        )
        n_slow = len(slow)
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
    raw = bytes(buf) if n_slow else b""
    for i in range(int(n_slow)):
        row, col, t0, t1 = (int(v) for v in slow[i])
        text = raw[t0:t1].decode("ascii", "replace")
        try:
            if kinds[col] == FLOAT:
                out_f[row, slot[col]] = float(text)
            else:
                out_i[row, slot[col]] = int(text)
        except (ValueError, OverflowError):
            what = "a number" if kinds[col] == FLOAT else "an integer"
            raise InputError(
                f"column {col + 1} {text[:30]!r} is not {what}",
                source=source,
                frame=frame,
                atom=first_atom + row,
            ) from None
    return Columns(out_f, out_i, out_s, buf, list(slot)), int(end)


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
def _newline_cut(buf, max_lines):
    """(lines, cut): the complete lines of buf, at most `max_lines`, and the byte after them."""
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
        nl = _find(buf, 10, pos)
        pos = nl + 1
    nl = _find(buf, 10, pos)
    return bytes(buf[pos : nl if nl >= 0 else len(buf)]).decode("utf-8", "replace").strip()


def _find(buf, byte, pos) -> int:
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


# ---------------------------------------------------------------------------
# LAMMPS text dumps
# ---------------------------------------------------------------------------

_POSITION_SETS = (("x", "y", "z"), ("xs", "ys", "zs"), ("xu", "yu", "zu"), ("xsu", "ysu", "zsu"))


@dataclass
class LammpsHeader:
    """The header of one LAMMPS dump frame (ASE's conventions for cell and pbc)."""

    timestep: int
    n_atoms: int
    cell: np.ndarray
    celldisp: np.ndarray
    pbc: list
    columns: list
    body: int  # byte offset of the first atom line


def parse_lammps_header(lines: list[str], *, source="<text>", frame=None) -> LammpsHeader:
    """Header items of a frame from its lines (up to and including ITEM: ATOMS)."""
    timestep = n_atoms = None
    cell = celldisp = None
    pbc = [False, False, False]
    columns = None
    i = 0
    try:
        while i < len(lines):
            line = lines[i]
            if line.startswith("ITEM: TIMESTEP"):
                timestep = int(lines[i + 1].split()[0])
                i += 2
                continue
            if line.startswith("ITEM: NUMBER OF ATOMS"):
                n_atoms = int(lines[i + 1].split()[0])
                i += 2
                continue
            if line.startswith("ITEM: BOX BOUNDS"):
                cell, celldisp, pbc = _box(line, lines[i + 1 : i + 4])
                i += 4
                continue
            if line.startswith("ITEM: ATOMS"):
                columns = line.split()[2:]
                break
            if line.startswith("ITEM:"):
                raise Unsupported(f"header item {line.strip()!r}")
            i += 1
    except (IndexError, ValueError):
        raise Unsupported("unusual header") from None
    if timestep is None or n_atoms is None or columns is None or cell is None or celldisp is None:
        raise Unsupported("incomplete header")
    return LammpsHeader(timestep, n_atoms, cell, celldisp, pbc, columns, 0)


def _box(line: str, rows: list[str]):
    """Cell, origin and pbc of ITEM: BOX BOUNDS as ASE builds them (orthogonal or tilted)."""
    items = line.split()[3:]
    data = np.array([[float(v) for v in r.split()] for r in rows])
    if data.shape[0] != 3 or data.shape[1] not in (2, 3):
        raise Unsupported("box bounds")
    if items and items[0] == "abc":
        raise Unsupported("general triclinic box")
    diag = data[:, :2].flatten()
    if data.shape[1] > 2:
        off = data[:, 2]
        if len(items) >= 3:
            off = off[[items.index(t) for t in ("xy", "xz", "yz")]]
    else:
        off = np.zeros(3)
    xlo, xhi, ylo, yhi, zlo, zhi = diag
    xy, xz, yz = off
    cell = np.array(
        [
            [(xhi - xlo) - abs(xy) - abs(xz), 0, 0],
            [xy, (yhi - ylo) - abs(yz), 0],
            [xz, yz, zhi - zlo],
        ]
    )
    disp = np.array([xlo - min(0, xy) - min(0, xz), ylo - min(0, yz), zlo])
    flags = items[-3:] if len(items) >= 3 else ["f", "f", "f"]
    return cell, disp, ["p" in d.lower() for d in flags]


def _lammps_kinds(columns: list[str]) -> list[int]:
    kinds = []
    for name in columns:
        if name in ("id", "type") or name.startswith(("i_", "i2_")):
            kinds.append(INT)
        elif name == "element":
            kinds.append(STRING)
        else:
            kinds.append(FLOAT)
    return kinds


def _check_lammps_columns(columns: list[str]) -> tuple[str, ...]:
    for names in _POSITION_SETS:
        if names[0] in columns:
            if not all(n in columns for n in names):
                raise Unsupported("incomplete position columns")
            if names is not _POSITION_SETS[0] and "x" in columns:
                raise Unsupported("several position sets")
            break
    else:
        raise Unsupported("no positions")
    if "element" not in columns and "type" not in columns:
        raise Unsupported("no species")  # ASE would try masses
    if any(c.startswith("c_q[") for c in columns):
        raise Unsupported("quaternions")
    if len(set(columns)) != len(columns):
        raise Unsupported("repeated column")
    return names


def _header_lines(buf: np.ndarray) -> tuple[list[str], int]:
    """Lines up to and including 'ITEM: ATOMS', and the offset of the next byte."""
    pos = 0
    lines = []
    while True:
        nl = _find(buf, 10, pos)
        if nl < 0:
            raise Unsupported("no ITEM: ATOMS")
        line = bytes(buf[pos:nl]).decode("utf-8", "replace")
        lines.append(line)
        pos = nl + 1
        if line.startswith("ITEM: ATOMS"):
            return lines, pos
        if len(lines) > 64:
            raise Unsupported("long header")


def lammps_atoms(data: bytes, *, source: str = "<text>", frame: int | None = None):
    """The `ase.Atoms` ase.io.read makes of one LAMMPS text dump frame (its bytes).

    Same atoms in the same order (sorted by id), positions, cell, celldisp,
    pbc, numbers, ``arrays["type"]``, compute/fix/variable columns, velocities,
    charges, forces (a SinglePointCalculator with energy 0, as ASE), and
    ``info["timestep"]``. Raises `Unsupported` for a frame ASE reads in a way
    not reproduced here (masses as species, quaternions, general triclinic boxes).
    """
    from ase import Atoms
    from ase.data import atomic_numbers

    buf = np.frombuffer(data, dtype=np.uint8)
    lines, body = _header_lines(buf)
    head = parse_lammps_header(lines, source=source, frame=frame)
    names = _check_lammps_columns(head.columns)
    kinds = _lammps_kinds(head.columns)
    cols, end = parse_lines(buf, body, head.n_atoms, kinds, source=source, frame=frame)
    if bytes(buf[end:]).strip():
        raise Unsupported("text after the atom lines")
    get = _getter(head.columns, kinds, cols)
    order = None
    if "id" in head.columns:
        order = np.argsort(get("id"))
    if "element" in head.columns:
        unique, inverse = string_column(cols, cols.slots[head.columns.index("element")])
        try:
            table = np.array([atomic_numbers[str(s)] for s in unique], dtype=int)
        except KeyError:
            raise Unsupported("unknown element") from None
        numbers = table[inverse]
    else:
        numbers = get("type")
    n = head.n_atoms

    def sort(a):
        return a if order is None else a[order]

    def stack(labels):
        return sort(np.column_stack([get(c) for c in labels]).astype(float))

    kwargs = dict(
        numbers=sort(numbers).reshape(n), pbc=head.pbc, celldisp=head.celldisp, cell=head.cell
    )
    if names[0] in ("x", "xu"):
        atoms = Atoms(positions=stack(names), **kwargs)
    else:
        atoms = Atoms(scaled_positions=stack(names), **kwargs)
    if any(c in head.columns for c in ("vx", "q", "fx")):
        from ase.calculators.lammps import convert  # units: imported only when needed

        if all(c in head.columns for c in ("vx", "vy", "vz")):
            atoms.set_velocities(convert(stack(("vx", "vy", "vz")), "velocity", "metal", "ASE"))
        if "q" in head.columns:
            q = convert(stack(("q",)), "charge", "metal", "ASE")
            atoms.set_initial_charges([c[0] for c in q])
        if all(c in head.columns for c in ("fx", "fy", "fz")):
            from ase.calculators.singlepoint import SinglePointCalculator

            forces = convert(stack(("fx", "fy", "fz")), "force", "metal", "ASE")
            atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=forces)
    for name in head.columns:
        if name.startswith(("f_", "v_", "d_", "d2_")) or (name.startswith("c_")):
            atoms.new_array(name, sort(get(name)), dtype="float")
        elif name.startswith(("i_", "i2_")):
            atoms.new_array(name, sort(get(name)), dtype="int")
        elif name == "type":
            atoms.new_array(name, sort(get("type")), dtype="int")
    atoms.info.update({"timestep": head.timestep})
    return atoms


def _getter(columns, kinds, cols: Columns):
    def get(name):
        c = columns.index(name)
        if kinds[c] == FLOAT:
            return cols.floats[:, cols.slots[c]]
        if kinds[c] == INT:
            return cols.ints[:, cols.slots[c]]
        raise KeyError(name)

    return get


# ---------------------------------------------------------------------------
# extended XYZ
# ---------------------------------------------------------------------------

# ase.io.extxyz's tables (a test checks them against the installed ASE)
SPECIAL_3_3_KEYS = {"Lattice", "virial", "stress"}
UNPROCESSED_KEYS = {"uid"}
REV_PROPERTY_NAME_MAP = {
    "pos": "positions",
    "Z": "numbers",
    "charge": "charges",
    "species": "symbols",
}
_SIMPLE_PAIR = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_\-]*)="
    r'(?:"([^"\\{}\[\]\']*)"|([^\s"\\{}\[\]\'=]+))'
)
_BOOLS = {
    "T": True,
    "F": False,
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
}


def comment_info(line: str) -> dict:
    """The key=value pairs of an extxyz comment line, converted as ASE converts them.

    Handles ``key=value`` and ``key="several values"`` (numbers become int or
    float scalars or arrays, T/F booleans, special 3x3 keys reshaped);
    anything else (brackets, escapes, JSON, bare keys) raises `Unsupported`.
    """
    text = line.strip()
    out: dict = {}
    pos = 0
    while pos < len(text):
        found = _SIMPLE_PAIR.match(text, pos)
        if not found:
            raise Unsupported("comment line")
        key = found.group(1)
        value = found.group(2) if found.group(2) is not None else found.group(3)
        pos = found.end()
        if pos < len(text) and not text[pos].isspace():
            raise Unsupported("comment line")
        out[key] = _convert(key, value)
    return out


def _convert(key: str, value: str):
    if key.lower() in UNPROCESSED_KEYS or value.startswith("_JSON"):
        raise Unsupported("unprocessed key or JSON")
    parts = re.findall(r"[^\s,]+", value)
    converted: object = value
    try:
        try:
            number = np.array(parts, dtype=int)
        except (ValueError, OverflowError):
            number = np.array(parts, dtype=float)
        converted = number[0] if len(number) == 1 else number
    except (ValueError, OverflowError):
        pass
    if key in SPECIAL_3_3_KEYS:
        if not isinstance(converted, np.ndarray) or converted.shape != (9,):
            raise Unsupported("special 3x3 key")
        converted = np.array(converted).reshape((3, 3), order="F")
    if isinstance(converted, str):
        try:
            flags = [_BOOLS[p] for p in parts]
            converted = flags[0] if len(flags) == 1 else flags
        except KeyError:
            pass
    return converted


def _properties(text: str) -> list[tuple[str, str, int]]:
    fields = text.split(":")
    if len(fields) % 3:
        raise Unsupported("Properties")
    try:
        out = [(n, t, int(c)) for n, t, c in zip(fields[::3], fields[1::3], fields[2::3])]
    except ValueError:
        raise Unsupported("Properties") from None
    if any(t not in "RISL" or len(t) != 1 or c < 1 for _, t, c in out):
        raise Unsupported("Properties")
    if len({n for n, _, _ in out}) != len(out):
        raise Unsupported("repeated property")
    return out


def extxyz_atoms(data: bytes, *, source: str = "<text>", frame: int | None = None):
    """The `ase.Atoms` ase.io.read makes of one extxyz frame (its bytes).

    Same positions, cell, pbc, numbers, per-atom arrays (with their dtypes),
    info and calculator results. Raises `Unsupported` for what is not
    reproduced here (constraints, VEC lines, brackets or JSON in the comment).
    """
    from ase import Atoms
    from ase.data import atomic_numbers

    buf = np.frombuffer(data, dtype=np.uint8)
    nl = _find(buf, 10, 0)
    nl2 = _find(buf, 10, nl + 1) if nl >= 0 else -1
    if nl2 < 0:
        raise Unsupported("header")
    try:
        n = int(bytes(buf[:nl]))
    except ValueError:
        raise Unsupported("count") from None
    try:
        comment = bytes(buf[nl + 1 : nl2]).decode("utf-8")
    except UnicodeDecodeError:
        raise Unsupported("not UTF-8") from None
    info = comment_info(comment) if comment.strip() else {}
    pbc = info.pop("pbc") if "pbc" in info else ([True] * 3 if "Lattice" in info else None)
    cell = None
    if "Lattice" in info:
        cell = info.pop("Lattice").T
    props = _properties(info.pop("Properties", "species:S:1:pos:R:3"))
    kinds = []
    for _, ptype, count in props:
        kinds += [{"R": FLOAT, "I": INT, "S": STRING, "L": STRING}[ptype]] * count
    cols, end = parse_lines(buf, nl2 + 1, n, kinds, source=source, frame=frame)
    if bytes(buf[end:]).strip():
        raise Unsupported("text after the atom lines (VEC lines)")
    arrays: dict = {}
    species = None  # (distinct symbols, inverse) of the species column
    c = 0
    for name, ptype, count in props:
        ase_name = REV_PROPERTY_NAME_MAP.get(name, name)
        if ase_name == "positions" and ptype == "R" and count == 3:
            # a view (Atoms copies it): no per-column copies and no stacking
            first = cols.slots[c]
            arrays[ase_name] = cols.floats[:, first : first + 3]
            c += count
            continue
        if ase_name == "symbols" and ptype == "S" and count == 1:
            # only the atomic numbers are kept: no array of a million strings
            species = string_column(cols, cols.slots[c])
            c += count
            continue
        blocks = []
        for j in range(count):
            slot = cols.slots[c + j]
            if ptype == "R":
                blocks.append(cols.floats[:, slot].copy())
            elif ptype == "I":
                values = cols.ints[:, slot]
                if np.any(values != values.astype(np.int32)):
                    raise Unsupported("integer beyond int32")
                blocks.append(values.astype(np.intc))
            else:
                unique, inverse = string_column(cols, slot)
                if ptype == "L":
                    table = [
                        {"T": True, "F": False, "True": True, "False": False}.get(u) for u in unique
                    ]
                    if any(t is None for t in table):
                        raise Unsupported("logical value")
                    blocks.append(np.array(table, dtype=bool)[inverse])
                else:
                    blocks.append(unique[inverse])
        c += count
        arrays[ase_name] = blocks[0] if count == 1 else np.vstack(blocks).T
    if "move_mask" in arrays:
        raise Unsupported("constraints")
    numbers = arrays.pop("numbers", None)
    symbols = arrays.pop("symbols", None)
    if numbers is None:
        if symbols is None and species is None:
            raise Unsupported("no species")
        distinct, which = (
            species if species is not None else np.unique(symbols.astype(str), return_inverse=True)
        )
        try:
            species_numbers = np.array(
                [atomic_numbers[s.capitalize()] for s in distinct], dtype=int
            )
        except KeyError:
            raise Unsupported("unknown species") from None
        numbers = species_numbers[which].reshape(n)
    atoms = Atoms(
        numbers=numbers,
        positions=arrays.pop("positions", None),
        charges=arrays.pop("initial_charges", None),
        cell=cell,
        pbc=pbc,
        info=info,
    )
    _calc_and_arrays(atoms, arrays)
    return atoms


def _calc_and_arrays(atoms, arrays: dict) -> None:
    """Calculator results to a SinglePointCalculator, the rest to atoms.arrays (as ASE)."""
    from ase.calculators.calculator import all_properties

    results = {}
    for name, array in arrays.items():
        if name in all_properties:
            results[name] = array
        else:
            atoms.new_array(name, array)
    config = [key for key in atoms.info if key in all_properties]
    if config:
        from ase.outputs import ArrayProperty, all_outputs

        for key in config:
            spec = all_outputs.get(key)
            if isinstance(spec, ArrayProperty) and spec.shapespec[0] == "natoms":
                continue
            results[key] = atoms.info.pop(key)
            if key == "stress" and np.shape(results[key]) == (3, 3):
                s = results[key]
                results[key] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    if results:
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms.calc = SinglePointCalculator(atoms, **results)


# ---------------------------------------------------------------------------
# one frame, streamed in blocks
# ---------------------------------------------------------------------------


@dataclass
class FrameHeader:
    """What a streamed frame declares before its atom lines.

    Attributes
    ----------
    source, frame : file name and frame number (from 0).
    n_atoms : int.
    cell : (3, 3) Å, rows are the cell vectors (ASE's cell); pbc : (3,) bool.
    origin : (3,) Å, the LAMMPS box origin (ASE's celldisp); zeros for extxyz.
    format : 'lammps-dump-text' or 'extxyz'.
    columns : per-column names; kinds : per-column FLOAT/INT/STRING/SKIP.
    timestep : int or None.
    """

    source: str
    frame: int
    n_atoms: int
    cell: np.ndarray
    pbc: np.ndarray
    origin: np.ndarray
    format: str
    columns: list
    kinds: list
    scaled: bool = False
    timestep: int | None = None


@dataclass
class AtomBlock:
    """Consecutive atoms of a streamed frame, in file order.

    positions (b, 3) Å; ids (b,) int64 (LAMMPS id, else the atom number + 1);
    types (b,) int64 (LAMMPS type, else atomic number); numbers (b,) int64
    atomic numbers (LAMMPS types without element column or map: the type,
    as ASE); start: the number of the block's first atom in the frame.
    """

    start: int
    positions: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    numbers: np.ndarray


def _gzip_module():
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


def _open(path: str):
    if path.lower().endswith(".gz"):
        return _gzip_module().open(path, "rb")
    return open(path, "rb")


def _guess(path: str, format: str | None) -> str:
    if format is not None:
        fmt = format
    else:
        lower = path.lower().removesuffix(".gz")
        if lower.endswith((".extxyz", ".xyz")):
            fmt = "extxyz"
        elif "lammpstrj" in lower or lower.endswith(".dump"):
            fmt = "lammps-dump-text"
        else:
            fmt = ""
    if fmt not in ("extxyz", "xyz", "lammps-dump-text"):
        raise InputError(
            "only LAMMPS text dumps (.dump, .lammpstrj) and extxyz files "
            "(plain or .gz) can be streamed",
            source=path,
        )
    return "extxyz" if fmt == "xyz" else fmt


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
    count, cut = _newline_cut(buf, max_lines)
    return int(count), int(cut)


READ_CHUNK = 1 << 22  # bytes of decompressed text per read of the read-ahead thread
READ_AHEAD = 8  # chunks the read-ahead thread holds before the parser takes them


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


class _Lines:
    """Buffered line and block reads of a (possibly gzipped) file.

    `read_ahead()` moves the reads of the file to a `_ReadAhead` thread (a .gz
    file is decompressed while the caller parses); `pause()` stops that thread,
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
        if self.ahead is None and not self.eof:
            self.ahead = _ReadAhead(self.fh)

    def pause(self) -> None:
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
        self.pause()
        self.pending = []


class StreamedFrame:
    """One frame of a LAMMPS text dump or extxyz file, read block by block.

    Use as a context manager; `header` is read on entry; `blocks()` yields
    `AtomBlock`s of at most `block_atoms` atoms, in file order, checking
    every value (NaN or infinite coordinates, column counts, the declared
    atom count: a frame that ends early is an InputError, never a silently
    smaller snapshot).
    """

    def __init__(
        self,
        path,
        frame: int = 0,
        *,
        format: str | None = None,
        type_map=None,
        block_atoms: int = 1 << 20,
    ):
        from atominfo.structures.lammps import parse_type_map

        self.name = str(path)
        if not os.path.exists(self.name):
            raise InputError("file not found", source=self.name)
        if os.path.isdir(self.name):
            raise InputError("is a directory, not a structure file", source=self.name)
        self.format = _guess(self.name, format)
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame < 0:
            raise InputError(f"frame must be an integer >= 0, got {frame!r}", source=self.name)
        self.frame = int(frame)
        self.type_map = parse_type_map(type_map)
        self.block_atoms = int(block_atoms)
        self.header: FrameHeader | None = None
        self._lines: _Lines | None = None
        self._fh = None

    def __enter__(self) -> StreamedFrame:
        try:
            self._fh = _open(self.name)
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", source=self.name) from None
        self._lines = _Lines(self._fh, self.name)
        try:
            self.header = self._seek_frame()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the read-ahead thread (if any), then close the file."""
        if self._lines is not None:
            self._lines.close()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # -- header -------------------------------------------------------------
    def _seek_frame(self) -> FrameHeader:
        assert self._lines is not None
        for number in range(self.frame + 1):
            try:
                header = self._read_header(number)
            except _Truncated:
                header = None
                if number == 0:
                    raise InputError(
                        "cannot read: frame 0 is incomplete (the file ends inside it)",
                        source=self.name,
                    ) from None
            if header is None:
                if number == 0:
                    raise InputError("file holds no frames", source=self.name)
                raise InputError(
                    f"frame {self.frame} does not exist (the file has {number} complete frames)",
                    source=self.name,
                )
            self._check_cell(header)
            if number < self.frame:
                self.header = header
                try:
                    for _ in self.blocks():
                        pass
                except InputError as exc:
                    if "the file is cut" in exc.reason:
                        raise InputError(
                            f"frame {self.frame} does not exist (the file has "
                            f"{number} complete frames)",
                            source=self.name,
                        ) from None
                    raise
        assert header is not None
        return header

    def check_rest(self) -> None:
        """Read and check every frame after this one (after `blocks()` is exhausted).

        A frame whose atom count disagrees with its lines, or holding a NaN, is
        an InputError naming it; an incomplete last frame gives one
        `TruncatedFrameWarning`, as `atominfo.structures.frames.iter_frames` does.
        """
        import warnings

        from atominfo.structures.scan import TruncatedFrameWarning

        number = (self.header.frame if self.header else self.frame) + 1
        while True:
            try:
                header = self._read_header(number)
                if header is None:
                    return
                self._check_cell(header)
                self.header = header
                for _ in self.blocks():
                    pass
            except _Truncated:
                cut = True
            except InputError as exc:
                if "the file is cut" not in exc.reason:
                    raise
                cut = True
            else:
                number += 1
                continue
            if cut:
                warnings.warn(
                    f"{self.name}: frame {number} is incomplete (the file ends inside"
                    f" it: cut, or still being written); read the {number} complete "
                    "frame(s) before it",
                    TruncatedFrameWarning,
                    stacklevel=2,
                )
                return

    def _read_header(self, number: int) -> FrameHeader | None:
        lines = self._lines
        assert lines is not None
        line = lines.readline()
        while line and not line.strip():
            line = lines.readline()
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise _Truncated(number)
        text = self._decode(line, number)
        if self.format == "extxyz":
            return self._xyz_header(text, number)
        if not text.startswith("ITEM: TIMESTEP"):
            if number == 0:
                raise InputError(
                    f"not a LAMMPS text dump (line {text.strip()[:40]!r})", source=self.name
                )
            raise InputError(
                "ITEM: NUMBER OF ATOMS is smaller than the atom lines that follow",
                source=self.name,
                frame=number - 1,
            )
        head = [text]
        while not head[-1].startswith("ITEM: ATOMS"):
            more = lines.readline()
            if not more.endswith(b"\n"):
                raise _Truncated(number)
            head.append(self._decode(more, number))
            if len(head) > 64:
                break
        try:
            h = parse_lammps_header(head, source=self.name, frame=number)
            names = _check_lammps_columns(h.columns)
        except Unsupported as exc:
            raise InputError(
                f"cannot stream this LAMMPS frame ({exc})", source=self.name, frame=number
            ) from None
        kinds = [SKIP] * len(h.columns)
        for c in (*names, "id", "type"):
            if c in h.columns:
                kinds[h.columns.index(c)] = INT if c in ("id", "type") else FLOAT
        if "element" in h.columns:
            kinds[h.columns.index("element")] = STRING
        self._check_count(h.n_atoms, number)
        return FrameHeader(
            self.name,
            number,
            h.n_atoms,
            h.cell,
            np.array(h.pbc, dtype=bool),
            h.celldisp,
            self.format,
            h.columns,
            kinds,
            scaled=names[0] in ("xs", "xsu"),
            timestep=h.timestep,
        )

    def _check_count(self, n, number) -> None:
        if n <= 0:
            raise InputError(f"declares {n} atoms", source=self.name, frame=number)

    def _decode(self, line: bytes, number: int) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text (byte {exc.start} of a header line)",
                source=self.name,
                frame=number,
            ) from None

    def _check_cell(self, h: FrameHeader) -> None:
        """The periodic cell must be finite with a non-zero volume (as `validate_atoms`)."""
        if not h.pbc.any():
            return
        if not np.isfinite(h.cell).all() or not np.isfinite(h.origin).all():
            raise InputError("cell is NaN or infinite", source=self.name, frame=h.frame)
        sv = np.linalg.svd(h.cell[h.pbc], compute_uv=False)
        if sv.min() < 1e-8 * max(1.0, sv.max()):
            raise InputError(
                f"periodic cell has zero volume (pbc={tuple(bool(p) for p in h.pbc)})",
                source=self.name,
                frame=h.frame,
            )

    def _xyz_header(self, text: str, number: int) -> FrameHeader:
        lines = self._lines
        assert lines is not None
        try:
            n = int(text)
        except ValueError:
            if number > 0:
                raise InputError(
                    "more atom lines than its atom count", source=self.name, frame=number - 1
                ) from None
            raise InputError(
                f"atom-count line is not an integer: {text.strip()[:40]!r}",
                source=self.name,
                frame=number,
            ) from None
        self._check_count(n, number)
        comment = lines.readline()
        if not comment.endswith(b"\n"):
            raise _Truncated(number)
        try:
            info = comment_info(self._decode(comment, number))
            props = _properties(info.pop("Properties", "species:S:1:pos:R:3"))
        except Unsupported as exc:
            raise InputError(
                f"cannot stream this extxyz frame ({exc})", source=self.name, frame=number
            ) from None
        pbc = info.get("pbc", [True] * 3 if "Lattice" in info else [False] * 3)
        pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        cell = info["Lattice"].T.astype(float) if "Lattice" in info else np.zeros((3, 3))
        columns, kinds = [], []
        for name, _, count in props:
            ase_name = REV_PROPERTY_NAME_MAP.get(name, name)
            for j in range(count):
                columns.append(ase_name if count == 1 else f"{ase_name}{j}")
                if ase_name == "positions":
                    kinds.append(FLOAT)
                elif ase_name == "symbols":
                    kinds.append(STRING)
                elif ase_name == "numbers":
                    kinds.append(INT)
                else:
                    kinds.append(SKIP)
        if "positions0" not in columns or not ({"symbols", "numbers"} & set(columns)):
            raise InputError(
                "cannot stream this extxyz frame (needs pos:R:3 and species or Z)",
                source=self.name,
                frame=number,
            )
        return FrameHeader(
            self.name, number, n, cell, pbc, np.zeros(3), "extxyz", columns, kinds, timestep=None
        )

    # -- atoms --------------------------------------------------------------
    def blocks(self) -> Iterator[AtomBlock]:
        """The frame's atoms in blocks, in file order (see `AtomBlock`).

        A .gz file is decompressed by a read-ahead thread while the blocks are
        parsed; the thread ends when the generator does (exhausted, closed
        early, or on an error) and when the frame is closed.
        """
        lines = self._lines
        assert lines is not None
        if self.name.lower().endswith(".gz"):
            lines.read_ahead()
        try:
            yield from self._blocks()
        finally:
            lines.pause()

    def _blocks(self) -> Iterator[AtomBlock]:
        from ase.data import atomic_numbers

        h = self.header
        lines = self._lines
        assert h is not None and lines is not None
        done = 0
        cols_ = h.columns
        pos_names = (
            [
                c
                for c in cols_
                if c in ("x", "y", "z", "xs", "ys", "zs", "xu", "yu", "zu", "xsu", "ysu", "zsu")
            ]
            if h.format == "lammps-dump-text"
            else ["positions0", "positions1", "positions2"]
        )
        symbol_cache: dict[str, int] = {}
        while done < h.n_atoms:
            data, count = lines.lines_block(min(self.block_atoms, h.n_atoms - done))
            if count == 0:
                raise InputError(
                    f"the frame ends after {done} of its {h.n_atoms} atom lines (the file is cut)",
                    source=self.name,
                    frame=h.frame,
                    atom=done,
                )
            cols, _ = parse_lines(
                data, 0, count, h.kinds, source=self.name, frame=h.frame, first_atom=done
            )
            get = _getter(cols_, h.kinds, cols)
            slots = [cols.slots[cols_.index(c)] for c in pos_names]
            if slots == list(range(slots[0], slots[0] + 3)):  # no copy for x y z in a row
                pos = np.ascontiguousarray(cols.floats[:, slots[0] : slots[0] + 3])
            else:
                pos = np.column_stack([get(c) for c in pos_names])
            if h.scaled:
                pos = pos @ h.cell
            low, high = pos.min(), pos.max()  # NaN if any is
            if not (np.isfinite(low) and np.isfinite(high)):
                bad = ~np.isfinite(pos).all(axis=1)
                raise InputError(
                    "coordinate is NaN or infinite",
                    source=self.name,
                    frame=h.frame,
                    atom=done + int(np.argmax(bad)),
                )
            if max(-low, high) > MAX_COORDINATE:
                far = np.abs(pos).max(axis=1) > MAX_COORDINATE
                a = int(np.argmax(far))
                raise InputError(
                    f"coordinate {np.abs(pos[a]).max():.3g} Å is beyond "
                    f"{MAX_COORDINATE:.0e} Å: distances would lose all precision",
                    source=self.name,
                    frame=h.frame,
                    atom=done + a,
                )
            ids = get("id") if "id" in cols_ else np.arange(done + 1, done + count + 1)
            numbers = None
            string = "element" if "element" in cols_ else "symbols"
            if string in cols_:
                unique, inverse = string_column(cols, cols.slots[cols_.index(string)])
                table = []
                for i, s in enumerate(unique):
                    key = str(s) if string == "element" else str(s).capitalize()
                    if key not in symbol_cache:
                        if key not in atomic_numbers:
                            a = done + int(np.argmax(inverse == i))
                            raise InputError(
                                f"unknown chemical symbol {key!r}",
                                source=self.name,
                                frame=h.frame,
                                atom=a,
                            )
                        symbol_cache[key] = atomic_numbers[key]
                    table.append(symbol_cache[key])
                numbers = np.array(table, dtype=np.int64)[inverse]
            elif "numbers" in cols_:
                numbers = get("numbers")
            types = get("type") if "type" in cols_ else numbers
            if self.type_map and types is not None and "type" in cols_:
                known = np.isin(types, list(self.type_map))
                if not known.all():
                    from atominfo.structures.lammps import format_type_map

                    a = int(np.argmax(~known))
                    raise InputError(
                        f"LAMMPS type {types[a]} is not in the type map "
                        f"{format_type_map(self.type_map)}",
                        source=self.name,
                        frame=h.frame,
                        atom=done + a,
                    )
                keys = np.array(sorted(self.type_map))
                mapped = np.array([atomic_numbers[self.type_map[k]] for k in keys])
                numbers = mapped[np.searchsorted(keys, types)]
            elif numbers is None:
                numbers = types
            yield AtomBlock(
                done,
                pos,
                np.asarray(ids, dtype=np.int64),
                np.asarray(types, dtype=np.int64),
                np.asarray(numbers, dtype=np.int64),
            )
            done += count


@dataclass
class Snapshot:
    """One frame as arrays: positions (n, 3) Å, cell (3, 3) Å, pbc (3,), numbers (n,),
    ids (n,), types (n,), origin (3,) Å; source and frame say where it came from."""

    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    numbers: np.ndarray
    ids: np.ndarray
    types: np.ndarray
    origin: np.ndarray
    source: str
    frame: int
    timestep: int | None = None

    def to_atoms(self):
        """An `ase.Atoms` of the arrays (file order, LAMMPS types in ``arrays["type"]``)."""
        from ase import Atoms

        atoms = Atoms(
            numbers=self.numbers,
            positions=self.positions,
            cell=self.cell,
            pbc=self.pbc,
            celldisp=self.origin,
        )
        atoms.new_array("type", self.types, dtype="int")
        return atoms


def read_snapshot(
    path, frame: int = 0, *, format: str | None = None, type_map=None, atoms: bool = False
):
    """Read one frame of a LAMMPS text dump or extxyz file (plain or .gz) into arrays.

    Parameters
    ----------
    path : str or Path.
    frame : int >= 0, the frame number in the file.
    format : 'lammps-dump-text' or 'extxyz' (default: from the file name).
    type_map : ``{1: "Cu"}`` or ``"1=Cu"``: species of LAMMPS types.
    atoms : return an `ase.Atoms` instead of a `Snapshot`.

    Notes
    -----
    Atoms stay in file order (ASE's LAMMPS reader sorts them by id; use
    `lammps_atoms` for ASE's exact Atoms).
    """
    with StreamedFrame(path, frame, format=format, type_map=type_map) as stream:
        blocks = list(stream.blocks())
        h = stream.header
    assert h is not None
    snap = Snapshot(
        np.concatenate([b.positions for b in blocks]),
        h.cell,
        h.pbc,
        np.concatenate([b.numbers for b in blocks]),
        np.concatenate([b.ids for b in blocks]),
        np.concatenate([b.types for b in blocks]),
        h.origin,
        h.source,
        h.frame,
        h.timestep,
    )
    return snap.to_atoms() if atoms else snap


def frame_atoms(data: bytes, fmt: str, *, source: str = "<text>", frame: int | None = None):
    """`ase.Atoms` of one frame's bytes as ase.io.read gives them, or `Unsupported`."""
    if fmt == "lammps-dump-text":
        return lammps_atoms(data, source=source, frame=frame)
    if fmt == "extxyz":
        return extxyz_atoms(data, source=source, frame=frame)
    raise Unsupported(fmt)
