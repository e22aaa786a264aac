"""Reading structures: inputs no reader can use are refused with a message that says
what is wrong (issue 19).

An inverted or flat LAMMPS box, a frame selection that is not one, a FIFO,
device or directory given as a structure file, an open file object, no
command at all, and negative values of float options.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import signal
from pathlib import Path

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo import InputError
from atominfo.cli import COMMANDS, UsageError, command_parser, main
from atominfo.structures.fastread import lammps_atoms, read_snapshot
from atominfo.structures.frames import check_input_file, iter_frames, read_frames
from atominfo.structures.lammps import check_box_bounds
from atominfo.structures.scan import guess_format, parse_index

from .conftest import DATA
from .contract import badfiles
from .contract.cases import base_argv, make_inputs
from .contract.cli import options_of

HOT = DATA / "cu_hot_32.extxyz"
FCC = DATA / "cu_fcc_108.extxyz"


def error_line(capsys) -> str:
    """The one stderr line of a failed run (asserting that it is one line)."""
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("atominfo: error: "), lines[0]
    assert "internal error" not in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def no_hang(seconds: float = 30.0):
    """Fail (instead of hanging the suite) when the body blocks, e.g. on a FIFO."""

    def stop(signum, frame):
        raise AssertionError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- LAMMPS boxes -----------------------------------------------------------------------

L = 7.22  # the cubic cell of cu_hot_32, Å


def dump(rows, head="pp pp pp", n_frames=1, bad_frame=None, good_rows=None) -> bytes:
    """A LAMMPS dump (id type x y z) of the cu_hot_32 atoms with box rows `rows`
    (in frame `bad_frame` only when given, `good_rows` elsewhere)."""
    atoms = ase.io.read(HOT)
    good_rows = good_rows or [f"0.0 {L}"] * 3
    out = []
    for f in range(n_frames):
        box = rows if bad_frame is None or f == bad_frame else good_rows
        out += ["ITEM: TIMESTEP", str(10 * f), "ITEM: NUMBER OF ATOMS", str(len(atoms))]
        out += [f"ITEM: BOX BOUNDS {head}", *box, "ITEM: ATOMS id type x y z"]
        out += [
            f"{i + 1} 1 {x:.10f} {y:.10f} {z:.10f}" for i, (x, y, z) in enumerate(atoms.positions)
        ]
    return ("\n".join(out) + "\n").encode()


INVERTED_X = [f"{L} 0.0", f"0.0 {L}", f"0.0 {L}"]
INVERTED_Z = [f"0.0 {L}", f"0.0 {L}", f"{L} 0.0"]
TRICLINIC_INVERTED = [f"{L} 0.0 0.5", f"0.0 {L} 0.0", f"0.0 {L} 0.0"]
TRICLINIC_NARROW = [f"0.0 {L} 4.0", f"0.0 {L} 4.0", f"0.0 {L} 0.0"]  # |xy| + |xz| > L
FLAT_Y = [f"0.0 {L}", "2.0 2.0", f"0.0 {L}"]
TILTED = "xy xz yz pp pp pp"


@pytest.mark.parametrize(
    "rows, head, expected",
    [
        (INVERTED_X, "pp pp pp", r"xlo 7\.22 > xhi 0 \(an inverted box\)"),
        (INVERTED_Z, "pp pp pp", r"zlo 7\.22 > zhi 0"),
        (TRICLINIC_INVERTED, TILTED, r"xlo 7\.22 > xhi 0"),
        (TRICLINIC_NARROW, TILTED, r"xhi - xlo = 7\.22 is less than the tilts \|xy\| \+ \|xz\|"),
        (FLAT_Y, "pp pp pp", r"periodic y edge has zero length"),
    ],
)
def test_fast_reader_refuses_boxes_lammps_never_writes(rows, head, expected):
    with pytest.raises(InputError, match=expected) as err:
        lammps_atoms(dump(rows, head), source="run.dump", frame=3)
    assert err.value.source == "run.dump" and err.value.frame == 3


def test_flat_box_on_a_non_periodic_axis_is_read():
    atoms = lammps_atoms(dump(FLAT_Y, "pp ff pp"))
    assert len(atoms) == 32 and atoms.cell[1, 1] == 0.0


def test_check_box_bounds_accepts_real_boxes():
    check_box_bounds([[0, L]] * 3, [0, 0, 0], [True] * 3)
    check_box_bounds([[-1.0, L], [0, L], [0, L]], [0.5, -0.5, 0.2], [True] * 3)


@pytest.mark.parametrize("name", ["run.lammpstrj", "run.lammpstrj.gz"])
def test_every_reader_names_file_frame_and_bound(tmp_path, name):
    """The scanned reader, ASE's (a .gz dump) and the streamed one (snapshots)."""
    data = dump(INVERTED_X, n_frames=3, bad_frame=1)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(InputError, match=r"frame 1: .*\bxlo\b.*inverted") as err:
        read_frames(path, type_map="1=Cu")
    assert err.value.source == str(path)
    assert len(read_frames(path, index=":1", type_map="1=Cu")) == 1  # frame 0 is fine
    with pytest.raises(InputError, match=r"frame 1: BOX BOUNDS: xlo 7\.22 > xhi 0"):
        read_snapshot(path, frame=1, type_map="1=Cu")


def test_ase_read_lammps_data_file_with_inverted_box(tmp_path):
    data = tmp_path / "cu.data"
    data.write_text(
        "cu\n\n2 atoms\n1 atom types\n\n"
        f"0.0 {L} xlo xhi\n{L} 0.0 ylo yhi\n0.0 {L} zlo zhi\n\n"
        "Atoms # atomic\n\n1 1 0.0 0.0 0.0\n2 1 1.8 1.8 0.0\n"
    )
    with pytest.raises(InputError, match=r"cu\.data: frame 0: the box y edge is -7\.22 Å long"):
        read_frames(data, format="lammps-data", type_map="1=Cu")


def test_snapshot_refuses_an_inverted_box(tmp_path, capsys):
    """Issue 19: `atominfo snapshot` read this box and reported novel atoms."""
    path = tmp_path / "inverted.lammpstrj"
    path.write_bytes(dump(INVERTED_X))
    out = tmp_path / "out.npy"
    code = main(["snapshot", str(path), "-r", str(FCC), "-o", str(out), "--type-map", "1=Cu"])
    assert code == 2
    assert re.search(
        r"inverted\.lammpstrj: frame 0: BOX BOUNDS: xlo 7\.22 > xhi 0", error_line(capsys)
    )
    assert not out.exists()


# -- frame selections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (":", slice(None)),
        ("-1", -1),
        (" 3 ", 3),
        ("::10", slice(None, None, 10)),
        ("3:7", slice(3, 7)),
        ("-3:", slice(-3, None)),
        ("::-1", slice(None, None, -1)),
        ("1:8:2", slice(1, 8, 2)),
        (np.int64(2), 2),
        (None, slice(None)),
    ],
)
def test_parse_index_reads_every_form(text, expected):
    assert parse_index(text) == expected


@pytest.mark.parametrize(
    "bad", ["1:2:3:4", ":::", "", "abc", "1.5", "1_0", "1:x", 1.5, True, [0], slice("a")]
)
def test_parse_index_refuses_what_is_not_a_selection(bad):
    with pytest.raises(InputError, match=r"is not an index or slice \(use N, START:STOP"):
        parse_index(bad)


@pytest.mark.parametrize("bad", ["::0", "1:5:0", slice(0, 4, 0)])
def test_parse_index_refuses_step_zero(bad):
    with pytest.raises(InputError, match="has a step of 0"):
        parse_index(bad)


@pytest.mark.parametrize("bad", ["1:2:3:4", ":::", "::0"])
def test_api_index_error_is_an_input_error(bad):
    with pytest.raises(InputError, match=r"^index: "):
        atominfo.descriptors(str(HOT), index=bad)
    with pytest.raises(InputError, match=r"^index: "):
        atominfo.descriptors(ase.io.read(HOT), index=bad)  # checked for Atoms too


@pytest.mark.parametrize("bad", ["1:2:3:4", ":::", "::0", "x"])
def test_cli_index_error_names_the_option(bad, capsys):
    assert main(["entropy", str(HOT), "--index", bad, "-q"]) == 2
    line = error_line(capsys)
    assert f"argument --index: {bad!r}" in line
    assert "START:STOP:STEP" in line or "step of 0" in line


def test_cli_negative_index_is_a_value(capsys):
    assert main(["entropy", str(HOT), "--index", "-1", "-q"]) == 0
    assert main(["entropy", str(HOT), "--index", "-1:", "-q"]) == 0
    assert "cu_hot_32" in capsys.readouterr().out


# -- what a path names -------------------------------------------------------------------


def test_check_input_file_says_what_the_path_is(tmp_path):
    fifo = tmp_path / "pipe.extxyz"
    os.mkfifo(fifo)
    (tmp_path / "dir.extxyz").mkdir()
    (tmp_path / "empty.extxyz").write_bytes(b"")
    (tmp_path / "zero.extxyz").symlink_to("/dev/zero")
    cases = {
        "pipe.extxyz": r"is not a regular file \(a FIFO\); give a file",
        "zero.extxyz": r"is not a regular file \(a character device\); give a file",
        "dir.extxyz": r"is a directory, not a structure file",
        "empty.extxyz": r"file is empty",
        "missing.extxyz": r"file not found",
    }
    with no_hang():
        for name, message in cases.items():
            with pytest.raises(InputError, match=message) as err:
                check_input_file(str(tmp_path / name))
            assert err.value.source == str(tmp_path / name)
    check_input_file(str(HOT))


def test_guess_format_says_what_a_path_is(tmp_path):
    """A directory was 'bundletrajectory' to ASE; a FIFO blocked its magic-byte read."""
    (tmp_path / "frames").mkdir()
    os.mkfifo(tmp_path / "pipe.extxyz")
    with no_hang():
        with pytest.raises(InputError, match="frames: is a directory, not a structure file"):
            guess_format(str(tmp_path / "frames"))
        with pytest.raises(InputError, match=r"pipe\.extxyz: is not a regular file \(a FIFO\)"):
            guess_format(str(tmp_path / "pipe.extxyz"))
    assert guess_format(str(tmp_path / "not-yet.lammpstrj")) == "lammps-dump-text"
    assert guess_format(str(tmp_path / "not-yet")) is None
    assert guess_format(str(HOT)) == "extxyz"


@pytest.mark.parametrize("kind", ["fifo", "devzero", "directory"])
@pytest.mark.parametrize(
    "command", [["entropy", "{bad}"], ["dh", "{hot}", "-r", "{bad}"], ["snapshot", "{bad}"]]
)
def test_cli_names_fifo_device_and_directory(tmp_path, capsys, kind, command):
    bad = tmp_path / ("bad.npy" if "-r" in command else "bad.extxyz")
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "devzero":
        bad.symlink_to("/dev/zero")
    else:
        bad.mkdir()
    argv = [a.format(bad=bad, hot=HOT) for a in command]
    if argv[0] == "snapshot":
        argv += ["-r", str(FCC), "-o", str(tmp_path / "out.npy")]
    with no_hang():
        assert main([*argv, "-q"]) == 2
    expected = {
        "fifo": "is not a regular file (a FIFO); give a file",
        "devzero": "is not a regular file (a character device); give a file",
        "directory": "is a directory",
    }[kind]
    line = error_line(capsys)
    assert f"{bad}: {expected}" in line


# -- open file objects --------------------------------------------------------------------


def test_open_file_is_read_by_its_path():
    expected = atominfo.descriptors(str(HOT))
    with open(HOT) as text, open(HOT, "rb") as binary:
        assert np.array_equal(atominfo.descriptors(text), expected)
        assert np.array_equal(atominfo.descriptors(binary), expected)
    with open(HOT) as a, open(FCC) as b:
        frames = list(iter_frames([a, b]))
    assert [f.source for f in frames] == [str(HOT), str(FCC)]


def test_stream_without_a_file_is_refused():
    stream = io.StringIO(HOT.read_text())
    with pytest.raises(InputError, match="give a path, not an open file") as err:
        atominfo.descriptors(stream)
    assert "file not found" not in str(err.value)


# -- the command line's own parsing ------------------------------------------------------


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert error_line(capsys) == (
        "atominfo: error: no command given; run 'atominfo --help' for the list"
    )


def test_an_option_before_the_command_is_named(capsys):
    """`atominfo --bogus` said "the following arguments are required: COMMAND"."""
    assert main(["--bogus", "entropy"]) == 2
    assert error_line(capsys) == (
        "atominfo: error: unknown option --bogus: options go after the command; "
        "run 'atominfo --help'"
    )
    assert main(["--version"]) == 0


def _float_options():
    from atominfo import params

    out = []
    for command in COMMANDS:
        for opt in options_of(command):
            constraint = params.CONSTRAINTS.get(opt.constraint or "")
            if (
                opt.flag
                and opt.kind in ("typed", "bandwidths")
                and isinstance(constraint, params.Interval)
                and constraint.kind is float
            ):
                out.append(opt)
    return out


FLOAT_OPTIONS = _float_options()


def test_float_options_are_found():
    assert any(o.flag == "--min-dh" for o in FLOAT_OPTIONS)
    assert len(FLOAT_OPTIONS) > 20


@pytest.mark.parametrize("value", ["-inf", "-Infinity", "-nan", "-1e-3", "-.5", "-2"])
def test_every_float_option_takes_a_negative_value_after_a_space(tmp_path, value):
    """`--min-dh -inf` reaches the option's range check: never 'expected one argument'."""
    inputs = make_inputs(tmp_path)
    for opt in FLOAT_OPTIONS:
        parser, _ = command_parser(opt.command)
        argv = base_argv(opt.command, tmp_path, inputs)[1:]
        try:
            args = parser.parse_args([*argv, opt.flag, value])
        except UsageError as exc:
            message = str(exc)
            assert "expected one argument" not in message, (opt.command, opt.flag, message)
            assert opt.flag in message, (opt.command, opt.flag, message)
            continue
        parsed = getattr(args, opt.action.dest)
        parsed = parsed[0] if isinstance(parsed, list) else parsed
        assert parsed == float(value), (opt.command, opt.flag, parsed)


def test_negative_value_with_space_matches_equals_form(tmp_path, capsys):
    out_space, out_equals = tmp_path / "a.extxyz", tmp_path / "b.extxyz"
    common = [str(HOT), "-r", str(FCC), "-q", "--max", "1"]
    assert main(["extract", *common, "--min-dh", "-1e3", "-o", str(out_space)]) == 0
    assert main(["extract", *common, "--min-dh=-1e3", "-o", str(out_equals)]) == 0
    assert out_space.read_bytes() == out_equals.read_bytes()
    assert main(["extract", *common, "--min-dh", "-inf", "-o", str(out_space)]) == 2
    assert "argument --min-dh: --min-dh must be a finite number" in error_line(capsys)


def test_bad_file_seeds_cover_reading_failures():
    for name in ("fifo", "devzero", "directory", "lammps_box_inverted", "lammps_box_zero"):
        assert name in badfiles.ALL_CASES


def test_bad_file_seeds_are_written(tmp_path):
    fifo = badfiles.write_case(tmp_path, "fifo")
    assert fifo.is_fifo()
    assert badfiles.write_case(tmp_path, "devzero").resolve() == Path("/dev/zero")


# -- a full disk ---------------------------------------------------------------------------


def test_numpy_short_write_is_reported_as_a_full_disk(tmp_path):
    """np.save to a full disk raises OSError('N requested and M written') with no errno."""
    from atominfo.runs.atomic import atomic_output

    out = tmp_path / "X.npy"
    with pytest.raises(InputError, match=r"X\.npy: cannot write output \(disk full: ") as err:
        with atomic_output(out):
            raise OSError("40824 requested and 7664 written")
    assert "requested" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no partial file left
    with pytest.raises(OSError, match="unrelated"):  # other errors pass through unchanged
        with atomic_output(out):
            raise OSError("unrelated")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 kB tmpfs holding 30 kB of filler (needs root; skipped elsewhere)."""
    import shutil
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * 30_000)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_descriptors_to_a_full_disk_names_the_output(full_disk, capsys):
    out = full_disk / "X.npy"
    assert main(["descriptors", str(FCC), "-o", str(out), "-q"]) == 2
    line = error_line(capsys)
    assert line == (
        f"atominfo: error: {out}: cannot write output (disk full: No space left on device)"
    )
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
