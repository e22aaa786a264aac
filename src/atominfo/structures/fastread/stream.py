"""One frame of any size, streamed in blocks of atoms from a plain or gzipped file.

`StreamedFrame` reads the frame's header on entry, then `blocks()` parses its
atom lines block by block (`atominfo.structures.fastread.tokens`), checking
every value. The file is read by a `atominfo.structures.fastread.lines.LineReader`:
a .gz file is decompressed in a read-ahead thread while the blocks are
parsed; the thread ends before the generator returns, closes or raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from atominfo.errors import InputError
from atominfo.structures.fastread.extxyz import (
    REV_PROPERTY_NAME_MAP,
    comment_info,
    parse_properties,
)
from atominfo.structures.fastread.lammps import check_lammps_columns, parse_lammps_header
from atominfo.structures.fastread.lines import LineReader, open_binary
from atominfo.structures.fastread.tokens import (
    FLOAT,
    INT,
    SKIP,
    STRING,
    Columns,
    Unsupported,
    column_getter,
    parse_lines,
    string_column,
)
from atominfo.structures.geometry import check_coordinates, check_periodic_cell
from atominfo.structures.scan import format_by_name

LAMMPS_POSITIONS = ("x", "y", "z", "xs", "ys", "zs", "xu", "yu", "zu", "xsu", "ysu", "zsu")


class _Truncated(Exception):
    """The file ends inside the header of frame `args[0]`."""


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


def _guess(path: str, format: str | None) -> str:
    if format is not None:
        fmt = format
    else:
        plain = path[: -len(".gz")] if path.lower().endswith(".gz") else path
        fmt = format_by_name(plain) or ""
    if fmt not in ("extxyz", "xyz", "lammps-dump-text"):
        raise InputError(
            "only LAMMPS text dumps (.dump, .lammpstrj) and extxyz files "
            "(plain or .gz) can be streamed",
            source=path,
        )
    return "extxyz" if fmt == "xyz" else fmt


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
        self._lines: LineReader | None = None
        self._fh = None

    def __enter__(self) -> StreamedFrame:
        try:
            self._fh = open_binary(self.name)
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", source=self.name) from None
        self._lines = LineReader(self._fh, self.name)
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
            names = check_lammps_columns(h.columns)
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
        if h.pbc.any() and not np.isfinite(h.origin).all():
            raise InputError("cell is NaN or infinite", source=self.name, frame=h.frame)
        check_periodic_cell(h.cell, h.pbc, source=self.name, frame=h.frame)

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
            props = parse_properties(info.pop("Properties", "species:S:1:pos:R:3"))
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
        h = self.header
        lines = self._lines
        assert h is not None and lines is not None
        columns = h.columns
        if h.format == "lammps-dump-text":
            position_names = [c for c in columns if c in LAMMPS_POSITIONS]
        else:
            position_names = ["positions0", "positions1", "positions2"]
        symbol_numbers: dict[str, int] = {}  # atomic number of each symbol met
        done = 0
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
            get = column_getter(columns, h.kinds, cols)
            positions = self._positions(cols, get, position_names, done)
            ids = get("id") if "id" in columns else np.arange(done + 1, done + count + 1)
            numbers = self._symbol_numbers(cols, symbol_numbers, done)
            if numbers is None and "numbers" in columns:
                numbers = get("numbers")
            types = get("type") if "type" in columns else numbers
            if self.type_map and types is not None and "type" in columns:
                numbers = self._mapped_numbers(types, done)
            elif numbers is None:
                numbers = types
            yield AtomBlock(
                done,
                positions,
                np.asarray(ids, dtype=np.int64),
                np.asarray(types, dtype=np.int64),
                np.asarray(numbers, dtype=np.int64),
            )
            done += count

    def _positions(self, cols: Columns, get, names: list[str], done: int) -> np.ndarray:
        """Cartesian positions (b, 3) Å of a parsed block, checked (`check_coordinates`)."""
        h = self.header
        assert h is not None
        slots = [cols.slots[h.columns.index(c)] for c in names]
        if slots == list(range(slots[0], slots[0] + 3)):  # no copy for x y z in a row
            positions = np.ascontiguousarray(cols.floats[:, slots[0] : slots[0] + 3])
        else:
            positions = np.column_stack([get(c) for c in names])
        if h.scaled:
            positions = positions @ h.cell
        check_coordinates(positions, source=self.name, frame=h.frame, first_atom=done)
        return positions

    def _symbol_numbers(self, cols: Columns, known: dict[str, int], done: int):
        """Atomic numbers of a block's element (LAMMPS) or species (extxyz) column, or None
        without one. `known` caches the number of each symbol met."""
        from ase.data import atomic_numbers

        h = self.header
        assert h is not None
        column = "element" if "element" in h.columns else "symbols"
        if column not in h.columns:
            return None
        unique, inverse = string_column(cols, cols.slots[h.columns.index(column)])
        table = []
        for i, s in enumerate(unique):
            key = str(s) if column == "element" else str(s).capitalize()
            if key not in known:
                if key not in atomic_numbers:
                    raise InputError(
                        f"unknown chemical symbol {key!r}",
                        source=self.name,
                        frame=h.frame,
                        atom=done + int(np.argmax(inverse == i)),
                    )
                known[key] = atomic_numbers[key]
            table.append(known[key])
        return np.array(table, dtype=np.int64)[inverse]

    def _mapped_numbers(self, types: np.ndarray, done: int) -> np.ndarray:
        """Atomic numbers of a block's LAMMPS types by the type map (each type must be in it)."""
        from ase.data import atomic_numbers

        from atominfo.structures.lammps import format_type_map

        h = self.header
        assert h is not None and self.type_map
        known = np.isin(types, list(self.type_map))
        if not known.all():
            a = int(np.argmax(~known))
            raise InputError(
                f"LAMMPS type {types[a]} is not in the type map {format_type_map(self.type_map)}",
                source=self.name,
                frame=h.frame,
                atom=done + a,
            )
        keys = np.array(sorted(self.type_map))
        mapped = np.array([atomic_numbers[self.type_map[k]] for k in keys])
        return mapped[np.searchsorted(keys, types)]
