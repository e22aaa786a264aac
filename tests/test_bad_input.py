"""Every kind of bad input: one line naming file/frame/atom, exit 2, no output left."""

import contextlib
import io

import ase.io
import numpy as np
import pytest
from ase import Atoms

import atominfo
from atominfo import InputError
from atominfo.cli import main

from .conftest import DATA

FCC = str(DATA / "cu_fcc_108.extxyz")


def cli(*args):
    """The command line in this process (the contract suite runs a sample through
    ``python -m atominfo``): exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(map(str, args)))
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc, err, *fragments):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def write_xyz(path, atoms_list):
    ase.io.write(path, atoms_list, format="extxyz")
    return path


def test_missing_file(tmp_path):
    rc, _, err = cli("entropy", tmp_path / "nope.xyz")
    assert_one_line_error(rc, err, "nope.xyz", "not found")


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    rc, _, err = cli("entropy", empty)
    assert_one_line_error(rc, err, "empty.xyz", "empty")


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.extxyz"
    bad.write_text("3\nnot a header\nCu 0 0\n")
    rc, _, err = cli("entropy", bad)
    assert_one_line_error(rc, err, "bad.extxyz", "frame 0", "cannot read")


def test_unreadable_file(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    p = write_xyz(tmp_path / "locked.xyz", [Atoms("Cu", positions=[[0, 0, 0]])])
    p.chmod(0)
    rc, _, err = cli("entropy", p)
    assert_one_line_error(rc, err, "locked.xyz")


def test_directory_instead_of_file(tmp_path):
    rc, _, err = cli("entropy", tmp_path)
    assert_one_line_error(rc, err, "directory")


def test_frame_with_no_atoms(tmp_path):
    good = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    p = tmp_path / "noatoms.extxyz"
    p.write_text(
        '2\nProperties=species:S:1:pos:R:3 pbc="F F F"\nCu 0 0 0\nCu 2.5 0 0\n'
        '0\nProperties=species:S:1:pos:R:3 pbc="F F F"\n'
    )
    assert len(good) == 2
    rc, _, err = cli("entropy", p)
    assert_one_line_error(rc, err, "noatoms.extxyz", "frame 1", "no atoms")


def test_nan_coordinate(tmp_path):
    a = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [np.nan, 0, 0]])
    p = write_xyz(tmp_path / "nan.extxyz", [a.copy(), a])
    ok = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    write_xyz(p, [ok, a])
    rc, _, err = cli("entropy", p)
    assert_one_line_error(rc, err, "nan.extxyz", "frame 1", "atom 2", "NaN")


def test_inf_coordinate_in_memory():
    a = Atoms("Cu2", positions=[[0, 0, 0], [np.inf, 0, 0]])
    with pytest.raises(InputError, match="atom 1"):
        atominfo.descriptors(a)


def test_zero_volume_cell(tmp_path):
    a = Atoms(
        "Cu2",
        positions=[[0, 0, 0], [1.5, 1.5, 0]],
        cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]],
        pbc=True,
    )
    p = write_xyz(tmp_path / "flat.extxyz", [a])
    rc, _, err = cli("entropy", p)
    assert_one_line_error(rc, err, "flat.extxyz", "frame 0", "zero volume")


def test_coincident_atoms(tmp_path):
    a = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5, 0, 0]])
    p = write_xyz(tmp_path / "dup.extxyz", [a])
    rc, _, err = cli("entropy", p)
    assert_one_line_error(rc, err, "dup.extxyz", "frame 0", "atom 1", "same position")


def test_coincident_periodic_image():
    # atom 1 sits exactly on a periodic image of atom 0
    a = Atoms("Cu2", positions=[[0, 0, 0], [3.0, 0, 0]], cell=[3, 3, 3], pbc=True)
    with pytest.raises(InputError, match="same position"):
        atominfo.descriptors(a)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["-k", "1"], "-k must be an integer >= 2"),
        (["-c", "0"], "--cutoff must be a finite number > 0"),
        (["-c", "-1"], "--cutoff must be a finite number > 0"),
        (["-b", "0"], "--bandwidth must be a finite number > 0"),
        (["-b", "-0.01"], "--bandwidth must be a finite number > 0"),
        (["-b", "abc"], "bandwidth"),
    ],
)
def test_bad_parameters(args, fragment):
    rc, _, err = cli("entropy", FCC, *args)
    assert_one_line_error(rc, err, fragment)


def test_mismatched_widths():
    X = np.zeros((5, 63))
    with pytest.raises(InputError, match="widths differ"):
        atominfo.delta_entropy(np.zeros((3, 31)), X)


def test_mismatched_widths_in_reference():
    ref = atominfo.Reference(np.zeros((5, 63)))
    with pytest.raises(InputError, match="63"):
        ref.delta_entropy(np.zeros((2, 31)))


def test_no_partial_output_on_error(tmp_path):
    a = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [np.nan, 0, 0]])
    bad = write_xyz(tmp_path / "bad.extxyz", [a])
    out = tmp_path / "dh.extxyz"
    rc, _, err = cli("dh", bad, "--ref", FCC, "-o", out)
    assert_one_line_error(rc, err, "bad.extxyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.extxyz"]


def test_existing_output_kept_when_run_fails(tmp_path):
    out = tmp_path / "X.npy"
    np.save(out, np.arange(3))
    rc, _, err = cli("descriptors", tmp_path / "missing.xyz", "-o", out)
    assert rc == 2
    np.testing.assert_array_equal(np.load(out), np.arange(3))


def test_bad_output_suffix(tmp_path):
    rc, _, err = cli("descriptors", FCC, "-o", tmp_path / "X.txt")
    assert_one_line_error(rc, err, "X.txt", ".npy")
