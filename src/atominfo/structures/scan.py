"""Fast scans of text trajectories (extxyz/xyz, LAMMPS text dumps) before parsing.

A scan reads the file line by line without parsing coordinates: it finds
where every frame starts and ends, checks that each frame's declared atom
count agrees with its atom lines, and notices a last frame that was cut
(a simulation that crashed or is still running). The reader then parses
only the complete, selected frames, so frame numbers are true frame numbers
in the file for any ASE index (negative and reversed included), and an
absurd header (10^11 atoms) is rejected before anything is allocated.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from atominfo.errors import InputError

# The shortest possible atom line ("H 0 0 0\n" or "1 1 0 0 0\n" is longer):
# a declared atom count above file_size / MIN_ATOM_LINE cannot be true.
MIN_ATOM_LINE = 8  # bytes

SCANNED_FORMATS = ("extxyz", "xyz", "lammps-dump-text")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip")


class TruncatedFrameWarning(UserWarning):
    """The last frame of a file is incomplete; the complete frames were read."""


@dataclass
class FileScan:
    """Where the complete frames of a text trajectory are.

    Attributes
    ----------
    source : str
        The file name.
    format : str
        'extxyz', 'xyz' or 'lammps-dump-text'.
    starts, ends : list of int
        Byte range ``[starts[f], ends[f])`` of complete frame `f`.
    counts : list of int
        Declared (and verified) number of atoms of each complete frame.
    truncated : bool
        Whether an incomplete frame follows the complete ones (its number is
        ``len(counts)``).
    columns : list of str, optional
        LAMMPS dumps: the column names of the first ``ITEM: ATOMS`` line.
    """

    source: str
    format: str
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    truncated: bool = False
    columns: list[str] | None = None

    def __len__(self) -> int:
        return len(self.counts)

    def read_text(self, frame: int) -> str:
        """Text of complete frame `frame`."""
        with open(self.source, "rb") as fh:
            fh.seek(self.starts[frame])
            data = fh.read(self.ends[frame] - self.starts[frame])
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text (byte {self.starts[frame] + exc.start})",
                source=self.source,
                frame=frame,
            ) from None

    def truncation_message(self) -> str:
        return (
            f"{self.source}: frame {len(self.counts)} is incomplete (the file ends inside it:"
            f" cut, or still being written); read the {len(self.counts)} complete frame(s)"
            " before it"
        )


def format_by_name(name: str) -> str | None:
    """'extxyz' (.extxyz, .xyz) or 'lammps-dump-text' (.dump, or 'lammpstrj' in the name)
    from a file's name alone, or None. A compressed file's name is taken as it is:
    strip its suffix first to name what it holds."""
    lower = name.lower()
    if lower.endswith((".extxyz", ".xyz")):
        return "extxyz"
    if "lammpstrj" in lower or lower.endswith(".dump"):
        return "lammps-dump-text"
    return None


def guess_format(name: str) -> str | None:
    """The ASE format name of a file (by its content where ASE can tell), or None
    (a missing file: by its name only).

    A path that is there but is no regular file (a directory, a FIFO, a
    device) is an InputError saying what it is: ASE would call a directory
    'bundletrajectory' and wait on a FIFO for a writer.
    """
    if os.path.exists(name) and not os.path.isfile(name):
        from atominfo.structures.frames import check_input_file

        check_input_file(str(name))
    by_name = format_by_name(str(name))
    if by_name is not None:
        return by_name
    if not os.path.exists(name):
        return None
    try:
        from ase.io.formats import filetype

        return filetype(str(name))
    except Exception:  # unknown or unreadable: left to ASE's reader to report
        return None


def scannable(name: str, format: str | None) -> bool:
    return format in SCANNED_FORMATS and not str(name).lower().endswith(_COMPRESSED)


def scan_file(name: str, format: str) -> FileScan:
    """Scan `name` as `format` ('extxyz', 'xyz' or 'lammps-dump-text').

    Raises InputError naming the frame whose atom count disagrees with its
    atom lines, or whose header is malformed; an incomplete last frame sets
    ``truncated`` instead (the caller warns). A file whose first frame is
    incomplete is an InputError (there is nothing to read).
    """
    from atominfo.structures.frames import check_input_file

    check_input_file(str(name))  # never opens a FIFO or device
    size = os.path.getsize(name)
    with open(name, "rb") as fh:
        if format == "lammps-dump-text":
            scan = _scan_lammps(fh, str(name), size)
        else:
            scan = _scan_xyz(fh, str(name), format, size)
    if not scan.counts:
        if scan.truncated:
            raise InputError(
                "cannot read: frame 0 is incomplete (the file ends inside it)", source=str(name)
            )
        raise InputError("file holds no frames", source=str(name))
    return scan


def _text(line: bytes) -> str:
    return line[:60].decode("utf-8", "replace").strip()


def _check_capacity(n: int, size: int, name: str, frame: int) -> None:
    if n < 0:
        raise InputError(f"negative atom count {n}", source=name, frame=frame)
    if n * MIN_ATOM_LINE > size:
        raise InputError(
            f"cannot read: declares {n} atoms but the file ({size} bytes) can hold "
            f"at most {size // MIN_ATOM_LINE}",
            source=name,
            frame=frame,
        )


def _scan_xyz(fh, name: str, format: str, size: int) -> FileScan:
    scan = FileScan(name, format)
    frame = 0
    prev_fields = None  # number of fields of the previous frame's atom lines
    while True:
        start = fh.tell()
        line = fh.readline()
        if not line:
            break
        if not line.strip():
            continue  # blank lines between or after frames
        if not line.endswith(b"\n"):
            scan.truncated = True
            break
        fields = line.split()
        try:
            if len(fields) != 1:
                raise ValueError
            n = int(fields[0])
        except ValueError:
            if prev_fields is not None and len(fields) == prev_fields:
                raise InputError(
                    f"more atom lines than its atom count {scan.counts[-1]}",
                    source=name,
                    frame=frame - 1,
                ) from None
            raise InputError(
                f"atom-count line is not an integer: {_text(line)!r}", source=name, frame=frame
            ) from None
        _check_capacity(n, size, name, frame)
        comment = fh.readline()
        if not comment.endswith(b"\n"):
            scan.truncated = True
            break
        first = last = None
        complete = True
        for i in range(n):
            line = fh.readline()
            if not line.endswith(b"\n"):
                complete = False
                break
            if i == 0:
                first = line
            last = line
        if not complete:
            scan.truncated = True
            break
        if n:
            assert first is not None and last is not None  # n complete lines were read
            n_fields = len(first.split())
            if len(last.split()) != n_fields or n_fields < 4:
                raise InputError(
                    f"atom count {n} disagrees with the atom lines (line "
                    f"{_text(last)!r} is not an atom line)",
                    source=name,
                    frame=frame,
                )
            prev_fields = n_fields
        scan.starts.append(start)
        scan.ends.append(fh.tell())
        scan.counts.append(n)
        frame += 1
    return scan


def _scan_lammps(fh, name: str, size: int) -> FileScan:
    scan = FileScan(name, "lammps-dump-text")
    frame = 0
    while True:
        start = fh.tell()
        line = fh.readline()
        if not line:
            break
        if not line.strip():
            continue
        if not line.endswith(b"\n"):
            scan.truncated = True
            break
        if not line.startswith(b"ITEM: TIMESTEP"):
            if frame == 0:
                raise InputError(
                    f"not a LAMMPS text dump (first line {_text(line)!r})", source=name
                )
            raise InputError(
                f"ITEM: NUMBER OF ATOMS says {scan.counts[-1]} but more atom lines follow",
                source=name,
                frame=frame - 1,
            )
        n = None
        columns = None
        complete = True
        while True:
            line = fh.readline()
            if not line.endswith(b"\n"):
                complete = False
                break
            if line.startswith(b"ITEM: NUMBER OF ATOMS"):
                value = fh.readline()
                if not value.endswith(b"\n"):
                    complete = False
                    break
                try:
                    n = int(value)
                except ValueError:
                    raise InputError(
                        f"ITEM: NUMBER OF ATOMS is not an integer: {_text(value)!r}",
                        source=name,
                        frame=frame,
                    ) from None
                _check_capacity(n, size, name, frame)
            elif line.startswith(b"ITEM: ATOMS"):
                columns = line.decode("utf-8", "replace").split()[2:]
                break
            elif line.startswith(b"ITEM: TIMESTEP"):
                raise InputError("frame has no ITEM: ATOMS section", source=name, frame=frame)
        if not complete:
            scan.truncated = True
            break
        if n is None:
            raise InputError("frame has no ITEM: NUMBER OF ATOMS", source=name, frame=frame)
        for i in range(n):
            line = fh.readline()
            if not line.endswith(b"\n"):
                complete = False
                break
            if line.startswith(b"ITEM:"):
                raise InputError(
                    f"ITEM: NUMBER OF ATOMS says {n} but only {i} atom lines follow",
                    source=name,
                    frame=frame,
                )
        if not complete:
            scan.truncated = True
            break
        if scan.columns is None:
            scan.columns = columns
        scan.starts.append(start)
        scan.ends.append(fh.tell())
        scan.counts.append(n)
        frame += 1
    return scan


def resolve_index(index, n_frames: int, source: str | None = None) -> list[int]:
    """Frame numbers (in file order of selection) picked by an ASE index.

    `index` is an int, a slice, or its text form (":", "-1", "::-1", "-3:",
    "2:8:2", see `parse_index`); None means all frames.
    """
    selection = parse_index(index)
    frames = range(n_frames)
    if isinstance(selection, int):
        try:
            return [frames[selection]]
        except IndexError:
            raise InputError(
                f"index {index!r} selects frame {selection}, which does not exist "
                f"(the file has {n_frames} complete frames)",
                source=source,
            ) from None
    return list(frames[selection])


INDEX_FORMS = "use N, START:STOP or START:STOP:STEP"
_INDEX_TEXT = re.compile(r"[+-]?\d+")


def parse_index(index, label: str = "index"):
    """A frame selection as an int or a slice; InputError naming `label` otherwise.

    Accepts an int, a slice of ints, None (every frame), or the text forms
    ``"N"``, ``"START:STOP"`` and ``"START:STOP:STEP"`` (each part an integer,
    negative counting from the end, or empty: ``":"``, ``"-1"``, ``"::10"``,
    ``"::-1"``). A step of 0 is refused. This is the one parser of frame
    selections (API ``index=`` and the command line's ``--index``).
    """
    not_a_selection = InputError(f"{label}: {index!r} is not an index or slice ({INDEX_FORMS})")
    if index is None:
        return slice(None)
    if _is_int(index):
        return int(index)
    if isinstance(index, slice):
        parts = [index.start, index.stop, index.step]
        if not all(p is None or _is_int(p) for p in parts):
            raise not_a_selection
    elif isinstance(index, str):
        parts = index.strip().split(":")
        if len(parts) > 3 or not all(not p or _INDEX_TEXT.fullmatch(p) for p in parts):
            raise not_a_selection
        if len(parts) == 1:
            if not parts[0]:
                raise not_a_selection
            return int(parts[0])
        parts = [p or None for p in parts]
    else:
        raise not_a_selection
    selection = slice(*(None if p is None else int(p) for p in parts))
    if selection.step == 0:
        raise InputError(
            f"{label}: {index!r} has a step of 0 (a step is 1 or more, or negative to reverse)"
        )
    return selection


def _is_int(value) -> bool:
    """An integer (Python or numpy), not a bool."""
    return not isinstance(value, (bool, str)) and hasattr(value, "__index__")


def count_atoms(paths, index=":", format=None) -> int | None:
    """Total number of atoms in the selected frames, by a quick scan of the text.

    Only for extxyz/xyz and LAMMPS text dumps (others: None). Used for a
    progress bar's time left; never raises.
    """
    try:
        total = 0
        for path in paths:
            name = str(path)
            fmt = format or guess_format(name)
            if fmt is None or not scannable(name, fmt):
                return None
            scan = scan_file(name, fmt)
            total += sum(scan.counts[f] for f in resolve_index(index, len(scan), name))
        return total
    except Exception:  # a progress estimate must never break a run
        return None
