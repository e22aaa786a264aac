"""Reading structures frame by frame and validating them."""

from __future__ import annotations

import functools
import io
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from ase import Atoms

from atominfo.errors import InputError
from atominfo.structures.geometry import check_periodic_cell


@dataclass
class Frame:
    """One structure and where it came from (file name or '<memory>', frame number)."""

    atoms: Atoms
    source: str
    index: int


def _is_pathlike(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def _is_open_file(obj) -> bool:
    # iterating an open file would give its lines, each taken for a path
    return isinstance(obj, io.IOBase) or (hasattr(obj, "read") and hasattr(obj, "readline"))


def _open_file_path(obj) -> str:
    """The path of an open file (read again from its start by name), or InputError."""
    name = getattr(obj, "name", None)
    if isinstance(name, (str, os.PathLike)) and os.path.isfile(name):
        return os.fspath(name)
    raise InputError(
        f"got an open {type(obj).__name__} with no file on disk behind it; give a path, "
        "not an open file (or ase.Atoms from ase.io.read)"
    )


def iter_frames(
    structures, index=":", format=None, *, validate=True, type_map=None
) -> Iterator[Frame]:
    """Yield `Frame`s from an Atoms, a list of Atoms, a file path or a list of paths.

    Files are streamed frame by frame, so a trajectory is never held whole.
    An open file is read by its path (from its start); a stream without a
    file on disk (``io.StringIO``) is refused. Each file is checked by
    `check_input_file` first (a directory, FIFO or device is refused by name).
    `index` is a frame selection (":" all, "-1" last, "::10", "3:7", "::-1";
    see `atominfo.structures.scan.parse_index`); `Frame.index` is always the
    true frame number in the file. LAMMPS boxes are checked
    (`atominfo.structures.lammps.check_box_bounds`): an inverted box, or a
    zero-length periodic edge, is an InputError naming the file and frame.

    Text trajectories (extxyz/xyz, LAMMPS text dumps) are scanned first
    (`atominfo.structures.scan`): a frame whose atom count disagrees with its
    atom lines is an InputError naming it; an incomplete last frame (a run
    that crashed or is still writing) is left out with one
    `TruncatedFrameWarning`. `type_map` (``{1: "Cu"}`` or ``"1=Cu,2=O"``)
    names the species of numeric LAMMPS types; a LAMMPS dump with types but
    no element column and no map gives one `UntypedDumpWarning` per file.
    """
    from atominfo.structures.lammps import apply_type_map, parse_type_map
    from atominfo.structures.scan import parse_index

    type_map = parse_type_map(type_map)
    parse_index(index)  # a bad selection is refused before anything is read
    if isinstance(structures, Atoms) or _is_pathlike(structures) or _is_open_file(structures):
        items: Iterable = [structures]
    else:
        try:
            items = list(structures)
        except TypeError:
            raise InputError(
                f"expected ase.Atoms or a file path, got {type(structures).__name__}"
            ) from None
    memory_count = 0
    for item in items:
        if _is_open_file(item):
            item = _open_file_path(item)
        if isinstance(item, Atoms):
            atoms = apply_type_map(item, type_map, source="<memory>", frame=memory_count)
            if validate:
                validate_atoms(atoms, "<memory>", memory_count)
            yield Frame(atoms, "<memory>", memory_count)
            memory_count += 1
        elif _is_pathlike(item):
            for frame in _iter_file(Path(item), index, format, validate, warn_untyped=not type_map):
                frame.atoms = apply_type_map(
                    frame.atoms, type_map, source=frame.source, frame=frame.index
                )
                yield frame
        else:
            raise InputError(f"expected ase.Atoms or a file path, got {type(item).__name__}")


def _iter_file(
    path: Path, index, format, validate, *, warn_untyped: bool = True
) -> Iterator[Frame]:
    from atominfo.structures.lammps import check_lammps_cell
    from atominfo.structures.scan import guess_format, scannable

    name = str(path)
    check_input_file(name)
    fmt = format or guess_format(name)
    if fmt is not None and scannable(name, fmt):
        frames = _iter_scanned(name, index, fmt, warn_untyped)
    else:
        frames = _iter_ase(name, index, format)
    is_lammps = (fmt or "").startswith("lammps")
    for number, atoms in frames:
        if is_lammps:  # whichever reader read it (ours checks the bounds' text too)
            check_lammps_cell(atoms, source=name, frame=number)
        if validate:
            validate_atoms(atoms, name, number)
        yield Frame(atoms, name, number)


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_input_file(name: str) -> None:
    """Raise InputError unless `name` is a readable, non-empty regular file.

    The one check of every structure file before it is read: a missing file,
    a directory, a FIFO or device (never opened: reading a FIFO would wait
    for a writer, /dev/zero never ends), an empty or unreadable file each get
    their own message naming the file.
    """
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise InputError("file not found", source=name) from None
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=name) from None
    if stat.S_ISDIR(mode):
        raise InputError("is a directory, not a structure file", source=name)
    if not stat.S_ISREG(mode):
        kind = next((kind for test, kind in _FILE_KINDS if test(mode)), "not a file")
        raise InputError(f"is not a regular file ({kind}); give a file", source=name)
    if os.path.getsize(name) == 0:
        raise InputError("file is empty", source=name)
    try:
        open(name, "rb").close()
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=name) from None


def _read_error(exc: Exception, name: str, frame: int | None) -> InputError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(f"cannot read ({type(exc).__name__}: {msg})", source=name, frame=frame)


def _iter_scanned(
    name: str, index, fmt: str, warn_untyped: bool = True
) -> Iterator[tuple[int, Atoms]]:
    """Complete frames of a scanned text trajectory, each parsed on its own."""
    import warnings

    from atominfo.structures.lammps import UntypedDumpWarning, dump_has_elements, untyped_message
    from atominfo.structures.scan import TruncatedFrameWarning, resolve_index, scan_file

    scan = scan_file(name, fmt)
    if scan.truncated:
        warnings.warn(scan.truncation_message(), TruncatedFrameWarning, stacklevel=4)
    columns = scan.columns or []
    if (
        warn_untyped
        and fmt == "lammps-dump-text"
        and "type" in columns
        and not dump_has_elements(columns)
    ):
        warnings.warn(untyped_message(name), UntypedDumpWarning, stacklevel=4)
    selected = resolve_index(index, len(scan), name)
    if not selected:
        raise InputError(
            f"no frames selected by index {index!r} (the file has {len(scan)} complete frames)",
            source=name,
        )
    with open(scan.source, "rb") as handle:  # one handle for all frames, not one each
        yield from _scanned_frames(scan, selected, fmt, name, handle)


def _scanned_frames(scan, selected, fmt: str, name: str, handle) -> Iterator[tuple[int, Atoms]]:
    """The `selected` frames of `scan`, read from the open file `handle`."""
    for number in selected:
        atoms = _fast_atoms(scan, number, fmt, name, handle)
        if atoms is not None:
            if len(atoms) != scan.counts[number]:
                raise InputError(
                    f"declares {scan.counts[number]} atoms but {len(atoms)} were read",
                    source=name,
                    frame=number,
                )
            yield number, atoms
            continue
        import ase.io

        text = scan.read_text(number)
        try:
            # ASE annotates read() for any index: an integer one gives one Atoms
            atoms = cast(Atoms, ase.io.read(io.StringIO(text), index=0, format=fmt))
        except InputError:
            raise
        except Exception as exc:  # ASE raises many types for malformed frames
            located = bad_atom_line(text, fmt)
            if located is not None:
                raise InputError(located[1], source=name, frame=number, atom=located[0]) from None
            raise _read_error(exc, name, number) from None
        if len(atoms) != scan.counts[number]:
            raise InputError(
                f"declares {scan.counts[number]} atoms but {len(atoms)} were read",
                source=name,
                frame=number,
            )
        yield number, atoms


def _fast_atoms(scan, number: int, fmt: str, name: str, handle) -> Atoms | None:
    """The frame as ase.io.read gives it, by `structures.fastread` (no ase.io import),
    or None where that reader does not reproduce ASE's (the caller then uses ASE)."""
    if fmt not in ("extxyz", "lammps-dump-text"):
        return None
    from atominfo.structures.fastread import Unsupported, frame_atoms

    handle.seek(scan.starts[number])
    data = handle.read(scan.ends[number] - scan.starts[number])
    try:
        return frame_atoms(data, fmt, source=name, frame=number)
    except Unsupported:
        return None


def bad_atom_line(text: str, fmt: str) -> tuple[int, str] | None:
    """(atom, reason) of the first atom line of a frame whose columns differ from the
    header's, or None: a malformed frame's error then names the atom."""
    lines = text.splitlines()
    if fmt == "lammps-dump-text":
        start = next(
            (i + 1 for i, line in enumerate(lines) if line.startswith("ITEM: ATOMS")), None
        )
        if start is None:
            return None
        expected: int | None = len(lines[start - 1].split()) - 2
    else:
        start = 2
        header = lines[1] if len(lines) > 1 else ""
        expected = _extxyz_columns(header)
        if expected is None and len(lines) > start:
            expected = len(lines[start].split())
    for atom, line in enumerate(lines[start:]):
        fields = line.split()
        if expected is not None and len(fields) != expected:
            return atom, (
                f"atom line {line.strip()[:40]!r} has {len(fields)} columns, the "
                f"header declares {expected}"
            )
    return None


def _extxyz_columns(header: str) -> int | None:
    """Columns per atom line declared by an extxyz Properties= entry (None without one)."""
    import re

    found = re.search(r"Properties=([^\s]+)", header, flags=re.IGNORECASE)
    if not found:
        return None
    parts = found.group(1).strip('"').split(":")
    try:
        return sum(int(n) for n in parts[2::3])
    except ValueError:
        return None


def _needs_count(selection) -> bool:
    if isinstance(selection, int):
        return selection < 0
    return any(v is not None and v < 0 for v in (selection.start, selection.stop, selection.step))


def _iter_ase(name: str, index, format) -> Iterator[tuple[int, Atoms]]:
    """Frames of any other format ASE reads, numbered by their place in the file."""
    import ase.io

    from atominfo.structures.scan import parse_index, resolve_index

    selection = parse_index(index)
    if _needs_count(selection):
        # negative or reversed selections need the number of frames: read them
        # all (formats without a scan are small: POSCAR, CIF, ASE .traj, ...)
        try:
            every = cast(list[Atoms], ase.io.read(name, index=":", format=format))
        except InputError:
            raise
        except Exception as exc:
            raise _read_error(exc, name, None) from None
        selected = resolve_index(selection, len(every), name)
        if not selected:
            raise InputError(
                f"no frames selected by index {index!r} (the file has {len(every)} frames)",
                source=name,
            )
        for number in selected:
            yield number, every[number]
        return
    if isinstance(selection, int):
        selection = slice(selection, selection + 1)
    numbers = iter(range(selection.start or 0, 2**62, selection.step or 1))
    reader = ase.io.iread(name, index=selection, format=format)
    count = 0
    while True:
        number = next(numbers)
        try:
            atoms = next(reader)
        except StopIteration:
            break
        except InputError:
            raise
        except Exception as exc:  # ASE raises many types for malformed files
            raise _read_error(exc, name, number) from None
        yield number, atoms
        count += 1
    if count == 0:
        raise InputError(f"no frames selected by index {index!r}", source=name)


def validate_atoms(atoms: Atoms, source: str, frame: int) -> None:
    """Raise InputError for a structure the descriptor cannot be computed on."""
    if len(atoms) == 0:
        raise InputError("structure has no atoms", source=source, frame=frame)
    pos = atoms.positions
    if not np.isfinite(pos).all():
        bad = ~np.isfinite(pos).all(axis=1)
        raise InputError(
            "coordinate is NaN or infinite", source=source, frame=frame, atom=int(np.argmax(bad))
        )
    cell = np.asarray(atoms.cell[:], dtype=float)
    fault = _cell_fault(cell.tobytes(), np.asarray(atoms.pbc, dtype=bool).tobytes())
    if fault is not None:
        raise InputError(fault, source=source, frame=frame)


@functools.lru_cache(maxsize=64)
def _cell_fault(cell: bytes, pbc: bytes) -> str | None:
    """Why `check_periodic_cell` refuses a cell (its bytes), or None: the frames of a
    run mostly share one cell, checked once (an SVD costs as much as a small frame)."""
    try:
        check_periodic_cell(
            np.frombuffer(cell).reshape(3, 3), np.frombuffer(pbc, dtype=bool), source="", frame=0
        )
    except InputError as exc:
        return exc.reason
    return None


def read_frames(structures, index=":", format=None, *, type_map=None) -> list[Frame]:
    """All frames of `structures` in memory (see `iter_frames`)."""
    return list(iter_frames(structures, index=index, format=format, type_map=type_map))
