"""Following a trajectory file that is still being written (LAMMPS text dumps, extxyz).

A frame is handed out only once all its lines are in the file; the frame
being written is left for a later poll. Each frame is checked as a frame
read whole would be (an inverted LAMMPS box is refused). A multi-byte UTF-8
character split between two polls is kept as bytes until it is whole.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from ase import Atoms

from atominfo import params
from atominfo.errors import InputError

# A frame declaring more atoms than this cannot be a text frame (it would be
# hundreds of GB): refuse it instead of waiting for it forever.
MAX_FOLLOW_ATOMS = 10**9


def _count(text: str, frame: int, what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise InputError(f"{what} is not an integer: {text.strip()[:40]!r}", frame=frame) from None
    if n < 0 or n > MAX_FOLLOW_ATOMS:
        raise InputError(
            f"{what} {n} is not a possible number of atoms (0 to {MAX_FOLLOW_ATOMS:.0e})",
            frame=frame,
        )
    return n


def _complete_lammps(lines: list[str]) -> list[int]:
    """End line (exclusive) of each complete LAMMPS dump frame at the start of `lines`.

    Raises InputError with `frame` counted from the first of `lines`.
    """
    ends, i, n_lines, frame = [], 0, len(lines), 0
    while i < n_lines:
        if not lines[i].strip():
            i += 1
            continue
        if not lines[i].startswith("ITEM: TIMESTEP"):
            if frame == 0:
                raise InputError(f"not a LAMMPS text dump (line {lines[i][:40]!r})", frame=0)
            raise InputError(
                "ITEM: NUMBER OF ATOMS disagrees with the atom lines (more atom lines follow)",
                frame=frame - 1,
            )
        j, n_atoms = i + 1, None
        while j < n_lines and not lines[j].startswith("ITEM: ATOMS"):
            if lines[j].startswith("ITEM: NUMBER OF ATOMS") and j + 1 < n_lines:
                n_atoms = _count(lines[j + 1], frame, "ITEM: NUMBER OF ATOMS")
            j += 1
        if j >= n_lines:
            break
        if n_atoms is None:
            raise InputError("frame has no ITEM: NUMBER OF ATOMS", frame=frame)
        end = j + 1 + n_atoms
        for q in range(j + 1, min(end, n_lines)):
            if lines[q].startswith("ITEM:"):
                raise InputError(
                    f"ITEM: NUMBER OF ATOMS says {n_atoms} but only {q - j - 1} atom lines follow",
                    frame=frame,
                )
        if end > n_lines:
            break
        ends.append(end)
        i = end
        frame += 1
    return ends


def _complete_xyz(lines: list[str]) -> list[int]:
    """End line (exclusive) of each complete (ext)xyz frame at the start of `lines`."""
    ends, i, frame = [], 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if frame > 0 and not lines[i].strip().isdigit():
            # an atom line where the next count should be: the previous frame has
            # more atom lines than its count says
            raise InputError(
                "atom count disagrees with the atom lines (more atom lines "
                f"follow: {lines[i].strip()[:40]!r})",
                frame=frame - 1,
            )
        n_atoms = _count(lines[i], frame, "atom-count line")
        for q in range(i + 2, min(i + 2 + n_atoms, len(lines))):
            if lines[q].strip().isdigit():  # the next frame's count: too few atom lines
                raise InputError(
                    f"atom-count line says {n_atoms} but only {q - i - 2} atom lines follow",
                    frame=frame,
                )
        if i + 2 + n_atoms > len(lines):
            break
        i += 2 + n_atoms
        ends.append(i)
        frame += 1
    return ends


FOLLOWERS = {"lammps-dump-text": _complete_lammps, "extxyz": _complete_xyz, "xyz": _complete_xyz}


def follow_frames(
    path,
    format: str | None = None,
    *,
    poll: float = 1.0,
    idle_timeout: float | None = None,
    from_start: bool = True,
    type_map=None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[tuple[int, Atoms]]:
    """Yield (frame number, Atoms) of a file still being written, as frames complete.

    The parameters are checked at the call (before the first frame is asked
    for). Between polls it sleeps `poll` seconds, or less when the idle
    timeout comes sooner: it stops (or fails) at `idle_timeout`, never a poll later.

    Parameters
    ----------
    path : file name
        It need not exist yet: it is waited for (up to `idle_timeout`).
    format : 'lammps-dump-text', 'extxyz' or 'xyz'
        None: from the name as every reader names it
        (`atominfo.structures.scan.format_by_name`: .extxyz or .xyz is extxyz,
        else 'lammpstrj' in the name or .dump a LAMMPS dump), else from the
        content of a file that is there.
    poll : float
        Seconds between checks for new data (> 0, at most a day).
    idle_timeout : float, optional
        Stop after this many seconds without a new frame (None: never). A
        file that has not appeared by then is an InputError.
    from_start : bool
        False to skip the frames already in the file.
    type_map : dict or str, optional
        Species of numeric LAMMPS types (``{1: "Cu"}`` or ``"1=Cu,2=O"``).
    sleep, clock : the waiting and timing functions (for tests).

    Raises
    ------
    InputError
        Naming the file and frame: a path that is there but is no regular
        file (at once, with or without `format`), bad text (not UTF-8), an
        atom count that is not a number or disagrees with the atom lines, a
        frame ASE cannot parse, an inverted or flat LAMMPS box (as every
        reader refuses it, `atominfo.structures.lammps.check_lammps_cell`),
        or a file that shrank while being followed.
    """
    from atominfo.structures.lammps import parse_type_map
    from atominfo.structures.scan import guess_format

    poll = params.check("poll", poll)
    idle_timeout = params.check_optional("idle_timeout", idle_timeout)
    type_map = parse_type_map(type_map)
    path = Path(path)
    name = str(path)
    refuse_non_regular(path)
    if format is None:  # by the name (`format_by_name`), else by the content if it is there
        format = guess_format(name)
    if format not in FOLLOWERS:
        raise InputError(
            f"cannot follow format {format!r}; use one of {sorted(FOLLOWERS)}", source=name
        )
    return _follow(_Follower(path, format, type_map), poll, idle_timeout, from_start, sleep, clock)


def refuse_non_regular(path: Path) -> None:
    """InputError naming `path` when it is there but is no regular file (a directory, a
    FIFO, a device: `atominfo.structures.frames.check_input_file` says which). A missing
    or empty file is let through: it is being written."""
    from atominfo.structures.frames import check_input_file

    if path.exists() and not path.is_file():
        check_input_file(str(path))


def _follow(follower: _Follower, poll, idle_timeout, from_start, sleep, clock):
    """`follow_frames` once its parameters are checked: poll, hand out, wait."""
    path, name = follower.path, follower.name
    last_frame = clock()
    skip_existing = not from_start

    def idle_left() -> float:
        """Seconds before the idle timeout (inf without one); <= 0 once it has passed."""
        return float("inf") if idle_timeout is None else idle_timeout - (clock() - last_frame)

    while True:
        if not path.exists():
            if follower.offset > 0:
                raise InputError("file disappeared while being followed", source=name)
            left = idle_left()
            if left <= 0:
                raise InputError(
                    f"file not found (waited {idle_timeout:g} s for it to appear)", source=name
                )
            sleep(min(poll, left))
            continue
        refuse_non_regular(path)
        lines, bad_byte = follower.read()
        if lines is not None:
            chunks = follower.complete(lines)
            for chunk in chunks:
                if not skip_existing:
                    yield follower.number, follower.atoms(chunk)
                follower.number += 1
            if bad_byte is not None:
                raise InputError(
                    f"not UTF-8 text (byte {bad_byte})", source=name, frame=follower.number
                )
            if chunks:
                last_frame = clock()
            skip_existing = False
        left = idle_left()
        if left <= 0:
            return
        sleep(min(poll, left))


class _Follower:
    """What has been read of a followed file: the offset, the text after the last
    complete frame, and the number of the next frame."""

    def __init__(self, path: Path, format: str, type_map) -> None:
        self.path, self.name, self.format, self.type_map = path, str(path), format, type_map
        self.offset, self.pending, self.raw_pending, self.number = 0, "", b"", 0
        self.warned = False

    def read(self) -> tuple[list[str] | None, int | None]:
        """(complete lines since the last complete frame, or None when nothing new;
        offset of a byte that is not UTF-8, or None)."""
        size = self.path.stat().st_size
        if size < self.offset:
            raise InputError(
                "file shrank while being followed (truncated or replaced)", source=self.name
            )
        if size == self.offset:
            return None, None
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        raw = self.raw_pending + data
        bad_byte = None
        try:
            decoded = raw.decode("utf-8")
            self.raw_pending = b""
        except UnicodeDecodeError as exc:
            decoded = raw[: exc.start].decode("utf-8")
            if exc.reason == "unexpected end of data":  # a character split by the writer
                self.raw_pending = raw[exc.start :]
            else:  # garbage: the complete frames before it are still handed out
                bad_byte = self.offset - len(self.raw_pending) + exc.start
                self.raw_pending = b""
        self.offset += len(data)
        lines = (self.pending + decoded).split("\n")
        self.pending = lines.pop()  # text after the last newline: an unfinished line
        return lines, bad_byte

    def complete(self, lines: list[str]) -> list[str]:
        """The text of each complete frame at the start of `lines`; the rest is kept
        for the next poll."""
        try:
            ends = FOLLOWERS[self.format](lines)
        except InputError as exc:
            frame = self.number + (exc.frame or 0)
            raise InputError(exc.reason, source=self.name, frame=frame) from None
        n_done = ends[-1] if ends else 0
        self.pending = "\n".join(lines[n_done:] + [self.pending])
        chunks = [lines[begin:end] for begin, end in zip([0, *ends], ends, strict=False)]
        if chunks:
            self._warn_untyped(chunks[0])
        return ["\n".join(chunk) + "\n" for chunk in chunks]

    def _warn_untyped(self, lines: list[str]) -> None:
        """Say once that a dump without elements reads its types as elements 1, 2, ..."""
        from atominfo.structures.lammps import (
            UntypedDumpWarning,
            dump_has_elements,
            untyped_message,
        )

        if self.format != "lammps-dump-text" or self.warned or self.type_map:
            return
        header = next((ln for ln in lines if ln.startswith("ITEM: ATOMS")), "")
        columns = header.split()[2:]
        if "type" in columns and not dump_has_elements(columns):
            warnings.warn(untyped_message(self.name), UntypedDumpWarning, stacklevel=4)
        self.warned = True

    def atoms(self, chunk: str) -> Atoms:
        """Frame `number` from its text; InputError naming the file, frame (and atom)."""
        import ase.io

        from atominfo.structures.lammps import apply_type_map, check_lammps_cell

        name, number = self.name, self.number
        try:
            # ASE annotates read() for any index: an integer one gives one Atoms
            atoms = cast(Atoms, ase.io.read(io.StringIO(chunk), index=0, format=self.format))
        except Exception as exc:  # ASE raises many types for malformed frames
            from atominfo.structures.frames import bad_atom_line

            located = bad_atom_line(chunk, self.format)
            if located is not None:
                raise InputError(located[1], source=name, frame=number, atom=located[0]) from None
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"cannot read frame ({type(exc).__name__}: {msg})", source=name, frame=number
            ) from None
        if self.format == "lammps-dump-text":  # an inverted or flat box, as every reader
            check_lammps_cell(atoms, source=name, frame=number)
        return apply_type_map(atoms, self.type_map, source=name, frame=number)
