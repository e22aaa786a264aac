"""One frame of any size, streamed in blocks of atoms from a plain or gzipped file.

A .gz file is decompressed (by ISA-L's igzip where installed, else the gzip
module) in a read-ahead thread while `StreamedFrame.blocks()` parses, with at
most `READ_AHEAD` chunks of `READ_CHUNK` bytes held ahead; the thread ends
before the generator returns, closes or raises.
"""

from __future__ import annotations

import gzip
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.structures.fastread.extxyz import (
    REV_PROPERTY_NAME_MAP,
    _properties,
    comment_info,
    extxyz_atoms,
)
from atominfo.structures.fastread.lammps import (
    _check_lammps_columns,
    _getter,
    lammps_atoms,
    parse_lammps_header,
)
from atominfo.structures.fastread.tokens import (
    FLOAT,
    INT,
    SKIP,
    STRING,
    Unsupported,
    _newline_cut,
    _Truncated,
    parse_lines,
    string_column,
)

BLOCK_BYTES = 1 << 25  # 32 MiB of text per streamed block
MAX_COORDINATE = 1e9  # Å, as atominfo.descriptor.kernel


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
        from atominfo.structures.frames import check_input_file
        from atominfo.structures.lammps import parse_type_map

        self.name = str(path)
        check_input_file(self.name)
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
