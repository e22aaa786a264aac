"""Bad structure files, generated from valid seeds, and a hand-written LAMMPS dump.

Each generator writes one file (or directory, FIFO, link to /dev/zero, or
nothing) at the path it is given and returns what the error line must name
beyond the file (e.g. ``"frame 1"``), or None. The seeds are
tests/data/cu_hot_32.extxyz (32 Cu atoms, cubic cell of 7.22 Å) and a LAMMPS
text dump of the same atoms.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from .cases import DATA

HOT = (DATA / "cu_hot_32.extxyz").read_bytes()


def xyz_parts(text: bytes = HOT):
    """(count line, comment line, atom lines) of a one-frame extxyz."""
    lines = text.decode().splitlines()
    return lines[0], lines[1], lines[2 : 2 + int(lines[0])]


def join(count, comment, atoms) -> bytes:
    return ("\n".join([str(count), comment, *atoms]) + "\n").encode()


def with_atom(i: int, new_line: str) -> bytes:
    count, comment, atoms = xyz_parts()
    atoms = list(atoms)
    atoms[i] = new_line
    return join(count, comment, atoms)


def with_coordinate(i: int, axis: int, value: str) -> bytes:
    count, comment, atoms = xyz_parts()
    fields = atoms[i].split()
    fields[1 + axis] = value
    return with_atom(i, "  ".join(fields))


def with_lattice(lattice: str) -> bytes:
    count, comment, atoms = xyz_parts()
    start = comment.index('Lattice="') + len('Lattice="')
    end = comment.index('"', start)
    return join(count, comment[:start] + lattice + comment[end:], atoms)


def with_count(n) -> bytes:
    _, comment, atoms = xyz_parts()
    return join(n, comment, atoms)


def two_frames(second: bytes) -> bytes:
    return HOT + second


def lammps_dump(
    n_declared: int | str | None = None,
    atoms_dropped: int = 0,
    box: str = "0.0 7.22",
    box_rows: list[str] | None = None,
    bounds_header: str = "pp pp pp",
    timestep: int = 0,
    n_frames: int = 1,
    types: list[int] | None = None,
    atom_line_hook=None,
) -> bytes:
    """A LAMMPS text dump (columns id type x y z) of the cu_hot_32 atoms: `box` on
    each axis, or the three `box_rows` (with tilts for a tilted `bounds_header`)."""
    _, _, atoms = xyz_parts()
    xyz = [a.split()[1:4] for a in atoms]
    out = []
    for f in range(n_frames):
        lines = [
            f"{i + 1} {(types or [1] * len(xyz))[i]} {x} {y} {z}" for i, (x, y, z) in enumerate(xyz)
        ]
        if atom_line_hook is not None:
            lines = atom_line_hook(lines)
        lines = lines[: len(lines) - atoms_dropped]
        n = len(xyz) if n_declared is None else n_declared
        out += [
            "ITEM: TIMESTEP",
            str(timestep + 10 * f),
            "ITEM: NUMBER OF ATOMS",
            str(n),
            f"ITEM: BOX BOUNDS {bounds_header}",
            *(box_rows or [box] * 3),
            "ITEM: ATOMS id type x y z",
            *lines,
        ]
    return ("\n".join(out) + "\n").encode()


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# name -> (suffix, content: bytes | 'missing' | 'directory' | 'fifo' | 'devzero',
#          what the message must also name)
# `must_name` is a regular expression matched against the error line.
EXTXYZ_CASES = {
    "missing": (".extxyz", "missing", None),
    "directory": (".extxyz", "directory", r"is a directory"),
    # never opened: a FIFO would wait for a writer, /dev/zero never ends
    "fifo": (".extxyz", "fifo", r"\bFIFO\b"),
    "devzero": (".extxyz", "devzero", r"\bdevice\b"),
    "empty": (".extxyz", b"", None),
    "blank_lines": (".extxyz", b"\n\n   \n", None),
    "garbage_text": (".extxyz", b"hello world\nthis is not a structure file\n", None),
    "binary_noise": (".extxyz", _noise(1, 4096), None),
    "binary_noise_xyz_header": (".extxyz", b"32\n\n" + _noise(2, 2048), None),
    "zero_atoms": (".extxyz", b'0\nLattice="7.22 0 0 0 7.22 0 0 0 7.22" pbc="T T T"\n', None),
    "count_larger": (".extxyz", with_count(33), None),
    "count_smaller": (".extxyz", with_count(31), None),
    "count_1e11": (".extxyz", with_count(10**11), None),
    "count_negative": (".extxyz", with_count(-5), None),
    "count_text": (".extxyz", with_count("abc"), None),
    "count_float": (".extxyz", with_count("32.5"), None),
    "atom_line_short": (".extxyz", with_atom(7, "Cu 0.1 0.2"), r"\batom\b|\bline\b"),
    "unknown_element": (".extxyz", with_atom(7, "Xx 0.1 0.2 0.3"), None),
    "coordinate_nan": (".extxyz", with_coordinate(5, 0, "nan"), r"\batom\b"),
    "coordinate_inf": (".extxyz", with_coordinate(5, 1, "inf"), r"\batom\b"),
    "coordinate_neg_inf": (".extxyz", with_coordinate(5, 2, "-inf"), r"\batom\b"),
    "coordinate_1e300": (".extxyz", with_coordinate(5, 0, "1e300"), r"\batom\b"),
    "coordinate_text": (".extxyz", with_coordinate(5, 0, "abc"), None),
    "coincident_atoms": (".extxyz", with_atom(9, xyz_parts()[2][3]), r"\batom\b"),
    "zero_volume_cell": (".extxyz", with_lattice("7.22 0 0 7.22 0 0 0 0 7.22"), None),
    "flat_cell": (".extxyz", with_lattice("7.22 0 0 0 7.22 0 0 0 0"), None),
    "cell_nan": (".extxyz", with_lattice("nan 0 0 0 7.22 0 0 0 7.22"), None),
    "nan_in_second_frame": (".extxyz", two_frames(with_coordinate(3, 1, "nan")), r"\bframe 1\b"),
    # a middle frame whose count disagrees with its atom lines (not a cut last frame)
    "count_larger_in_middle_frame": (".extxyz", two_frames(with_count(40)) + HOT, r"\bframe 1\b"),
    "count_smaller_in_middle_frame": (".extxyz", two_frames(with_count(31)) + HOT, r"\bframe 1\b"),
    "non_utf8_comment": (".extxyz", HOT.replace(b"pbc=", b"note=\xff\xfe pbc=", 1), None),
    "non_utf8_species": (".extxyz", HOT.replace(b"\nCu ", b"\nC\xe9 ", 1), None),
    "latin1_text": (
        ".extxyz",
        "3\nkommentar \u00c5\u00e4\u00f6\n".encode("latin-1")
        + b"Cu 0 0 0\nCu 1.8 0 0\nCu 0 1.8 0\n",
        None,
    ),
}

# LAMMPS text dumps: read with --type-map 1=Cu (dumps hold numeric types only).
LAMMPS_CASES = {
    "lammps_count_larger": (".lammpstrj", lammps_dump(n_declared=33), None),
    "lammps_count_smaller": (".lammpstrj", lammps_dump(n_declared=31), None),
    "lammps_count_1e11": (".lammpstrj", lammps_dump(n_declared=10**11), None),
    "lammps_atoms_missing": (".lammpstrj", lammps_dump(atoms_dropped=3), None),
    "lammps_count_larger_frame_1": (
        ".lammpstrj",
        lammps_dump() + lammps_dump(n_declared=40, timestep=10) + lammps_dump(timestep=20),
        r"\bframe 1\b",
    ),
    "lammps_count_smaller_frame_1": (
        ".lammpstrj",
        lammps_dump() + lammps_dump(n_declared=30, timestep=10) + lammps_dump(timestep=20),
        r"\bframe 1\b",
    ),
    "lammps_box_zero": (".lammpstrj", lammps_dump(box="0.0 0.0"), r"\bzero (length|volume)\b"),
    # boxes LAMMPS never writes: read as cells with negative edges, silently wrong numbers
    "lammps_box_inverted": (".lammpstrj", lammps_dump(box="7.22 0.0"), r"\bframe 0\b.*\bxlo\b"),
    "lammps_box_inverted_frame_1": (
        ".lammpstrj",
        lammps_dump() + lammps_dump(box_rows=["0.0 7.22", "7.22 0.0", "0.0 7.22"], timestep=10),
        r"\bframe 1\b.*\bylo\b",
    ),
    "lammps_box_tilted_inverted": (
        ".lammpstrj",
        lammps_dump(
            box_rows=["7.22 0.0 0.5", "0.0 7.22 0.0", "0.0 7.22 0.0"],
            bounds_header="xy xz yz pp pp pp",
        ),
        r"\bxlo\b",
    ),
    "lammps_box_nan": (".lammpstrj", lammps_dump(box="0.0 nan"), None),
    "lammps_coordinate_nan": (
        ".lammpstrj",
        lammps_dump(atom_line_hook=lambda ls: ls[:4] + ["5 1 nan 0.5 0.5"] + ls[5:]),
        r"\batom\b",
    ),
    "lammps_type_unmapped": (".lammpstrj", lammps_dump(types=[1] * 31 + [2]), None),
    "lammps_header_only": (".lammpstrj", b"ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n", None),
    "lammps_non_utf8": (
        ".lammpstrj",
        lammps_dump().replace(b"ITEM: ATOMS", b"ITEM: \xffATOMS"),
        None,
    ),
}

ALL_CASES = {**EXTXYZ_CASES, **LAMMPS_CASES}


def write_case(directory: Path, name: str) -> Path:
    """Create bad input `name` in `directory`; returns its path."""
    suffix, content, _ = ALL_CASES[name]
    path = directory / f"bad_{name}{suffix}"
    if content == "directory":
        path.mkdir()
    elif content == "fifo":
        os.mkfifo(path)
    elif content == "devzero":
        path.symlink_to("/dev/zero")
    elif content != "missing":
        path.write_bytes(content)
    return path


def frame_spans(data: bytes) -> list[int]:
    """Byte offsets where each frame of a well-formed (multi-frame) xyz ends."""
    lines = data.splitlines(keepends=True)
    ends, pos, i = [], 0, 0
    while i < len(lines):
        n = int(lines[i])
        block = lines[i : i + 2 + n]
        pos += sum(len(x) for x in block)
        ends.append(pos)
        i += 2 + n
    return ends


def truncation_kind(data: bytes, offset: int) -> str:
    """How a cut of `data` at `offset` reads: 'empty', 'complete' (a frame boundary),
    'ambiguous' (every line present, only the tail of the last number or the final
    newline cut: indistinguishable from a valid file), 'first' (frame 0 cut) or 'later'."""
    if offset == 0:
        return "empty"
    ends = frame_spans(data)
    if offset in ends:
        return "complete"
    done = sum(1 for e in ends if e <= offset)
    start = ends[done - 1] if done else 0
    end = ends[done]
    frame = data[start:end].splitlines(keepends=True)
    head = data[start:offset].splitlines(keepends=True)
    if len(head) == len(frame) and len(head[-1].split()) == len(frame[-1].split()):
        return "ambiguous"
    return "first" if done == 0 else "later"
