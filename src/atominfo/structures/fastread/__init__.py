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
* `StreamedFrame` streams one frame of any size in blocks of atoms (plain or
  ``.gz``), for snapshots larger than memory (`atominfo.workflows.snapshot`);
  `read_snapshot` reads one frame into arrays.

Modules: `tokens` (the compiled parse of atom lines), `lammps` and `extxyz`
(each format's header and `Atoms`), `lines` (buffered line and block reads of
a plain or .gz file, with the read-ahead thread), `stream` (`StreamedFrame`:
one frame in blocks), `frame` (one whole frame: `read_snapshot`,
`frame_atoms`). Frames are numbered from 0 in file order; errors are
`InputError` naming the file, frame and atom.

Threads: a block of 100,000 lines or more is parsed by two threads (cut at a
newline, each half into its rows; the result and the first error are the
serial parse's) where numba may use two (`numba.set_num_threads`); a .gz file
is decompressed (by ISA-L's igzip where installed, else the gzip module) in a
read-ahead thread while `StreamedFrame.blocks()` parses, with at most
`lines.READ_AHEAD` chunks of `lines.READ_CHUNK` bytes held ahead. Both threads end before
the call or the generator returns, closes or raises.
"""

from atominfo.structures.fastread.extxyz import comment_info, extxyz_atoms
from atominfo.structures.fastread.frame import Snapshot, frame_atoms, read_snapshot
from atominfo.structures.fastread.lammps import LammpsHeader, lammps_atoms, parse_lammps_header
from atominfo.structures.fastread.stream import AtomBlock, FrameHeader, StreamedFrame
from atominfo.structures.fastread.tokens import Columns, Unsupported, parse_lines

__all__ = [
    "AtomBlock",
    "Columns",
    "FrameHeader",
    "LammpsHeader",
    "Snapshot",
    "StreamedFrame",
    "Unsupported",
    "comment_info",
    "extxyz_atoms",
    "frame_atoms",
    "lammps_atoms",
    "parse_lammps_header",
    "parse_lines",
    "read_snapshot",
]
