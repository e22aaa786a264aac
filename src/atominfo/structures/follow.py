"""Following a trajectory file that is still being written (LAMMPS text dumps, extxyz).

A frame is handed out only once all its lines are in the file; the frame
being written is left for a later poll. A multi-byte UTF-8 character split
between two polls is kept as bytes until it is whole.
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
    format : 'lammps-dump-text', 'extxyz' or 'xyz' (guessed from the name if None)
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
        Naming the file and frame: bad text (not UTF-8), an atom count that
        is not a number or disagrees with the atom lines, a frame ASE cannot
        parse, or a file that shrank while being followed.
    """
    from atominfo.structures.lammps import parse_type_map
    from atominfo.structures.scan import guess_format

    poll = params.check("poll", poll)
    idle_timeout = params.check_optional("idle_timeout", idle_timeout)
    type_map = parse_type_map(type_map)
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise InputError("is a directory, not a structure file", source=name)
    if format is None:
        format = guess_format(name) if path.exists() else _guess_by_name(name)
    if format not in FOLLOWERS:
        raise InputError(
            f"cannot follow format {format!r}; use one of {sorted(FOLLOWERS)}", source=name
        )
    return _follow(path, format, poll, idle_timeout, from_start, type_map, sleep, clock)


def _follow(path: Path, format: str, poll, idle_timeout, from_start, type_map, sleep, clock):
    """`follow_frames` once its parameters are checked."""
    import ase.io

    from atominfo.structures.lammps import (
        UntypedDumpWarning,
        apply_type_map,
        dump_has_elements,
        untyped_message,
    )

    name = str(path)
    complete = FOLLOWERS[format]
    offset, pending, raw_pending, number = 0, "", b"", 0
    last_frame = clock()
    skip_existing = not from_start

    def idle_left() -> float:
        """Seconds before the idle timeout (inf without one); <= 0 once it has passed."""
        return float("inf") if idle_timeout is None else idle_timeout - (clock() - last_frame)

    warned = False
    while True:
        if not path.exists():
            if offset > 0:
                raise InputError("file disappeared while being followed", source=name)
            left = idle_left()
            if left <= 0:
                raise InputError(
                    f"file not found (waited {idle_timeout:g} s for it to appear)", source=name
                )
            sleep(min(poll, left))
            continue
        if path.is_dir():
            raise InputError("is a directory, not a structure file", source=name)
        size = path.stat().st_size
        if size < offset:
            raise InputError(
                "file shrank while being followed (truncated or replaced)", source=name
            )
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(size - offset)
            raw = raw_pending + data
            bad_byte = None
            try:
                decoded = raw.decode("utf-8")
                raw_pending = b""
            except UnicodeDecodeError as exc:
                decoded = raw[: exc.start].decode("utf-8")
                if exc.reason == "unexpected end of data":  # a character split by the writer
                    raw_pending = raw[exc.start :]
                else:  # garbage: the complete frames before it are still handed out
                    bad_byte = offset - len(raw_pending) + exc.start
                    raw_pending = b""
            offset += len(data)
            text = pending + decoded
            lines = text.split("\n")
            tail = lines.pop()  # text after the last newline: an unfinished line
            try:
                ends = complete(lines)
            except InputError as exc:
                raise InputError(exc.reason, source=name, frame=number + (exc.frame or 0)) from None
            n_done = ends[-1] if ends else 0
            pending = "\n".join(lines[n_done:] + [tail])
            begin = 0
            for end in ends:
                chunk = "\n".join(lines[begin:end]) + "\n"
                if format == "lammps-dump-text" and not warned and not type_map:
                    header = next(
                        (ln for ln in lines[begin:end] if ln.startswith("ITEM: ATOMS")), ""
                    )
                    columns = header.split()[2:]
                    if "type" in columns and not dump_has_elements(columns):
                        warnings.warn(untyped_message(name), UntypedDumpWarning, stacklevel=2)
                    warned = True
                begin = end
                if skip_existing:
                    number += 1
                    continue
                try:
                    # ASE annotates read() for any index: an integer one gives one Atoms
                    atoms = cast(Atoms, ase.io.read(io.StringIO(chunk), index=0, format=format))
                except Exception as exc:  # ASE raises many types for malformed frames
                    from atominfo.structures.frames import bad_atom_line

                    located = bad_atom_line(chunk, format)
                    if located is not None:
                        raise InputError(
                            located[1], source=name, frame=number, atom=located[0]
                        ) from None
                    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise InputError(
                        f"cannot read frame ({type(exc).__name__}: {msg})",
                        source=name,
                        frame=number,
                    ) from None
                atoms = apply_type_map(atoms, type_map, source=name, frame=number)
                yield number, atoms
                number += 1
            if bad_byte is not None:
                raise InputError(f"not UTF-8 text (byte {bad_byte})", source=name, frame=number)
            if ends:
                last_frame = clock()
            skip_existing = False
        left = idle_left()
        if left <= 0:
            return
        sleep(min(poll, left))


def _guess_by_name(name: str) -> str | None:
    lower = name.lower()
    if "lammpstrj" in lower or lower.endswith(".dump"):
        return "lammps-dump-text"
    if lower.endswith((".extxyz", ".xyz")):
        return "extxyz"
    return None
