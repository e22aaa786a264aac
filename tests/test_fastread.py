"""The fast LAMMPS-dump and extxyz readers give exactly the Atoms ase.io.read gives."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from atominfo.errors import InputError
from atominfo.structures import fastread
from atominfo.structures.fastread import (
    Unsupported,
    extxyz_atoms,
    lammps_atoms,
    parse_lines,
    read_snapshot,
)
from atominfo.structures.frames import iter_frames

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, params=["kernel", "python"])
def parser(request, monkeypatch):
    """Every test on both parsers: the compiled kernel and the small-frame Python path."""
    monkeypatch.setattr(fastread, "SMALL_TOKENS", 0 if request.param == "kernel" else 10**9)
    return request.param


def assert_same(a, b):
    """Identical positions, cell, pbc, numbers, arrays (with dtypes), info and results."""
    assert np.array_equal(a.positions, b.positions)
    assert np.array_equal(a.cell[:], b.cell[:])
    assert np.array_equal(a.pbc, b.pbc)
    assert np.array_equal(a.numbers, b.numbers)
    assert np.array_equal(a.get_celldisp(), b.get_celldisp())
    assert list(a.arrays) == list(b.arrays)
    for key in a.arrays:
        assert a.arrays[key].dtype == b.arrays[key].dtype, key
        assert np.array_equal(a.arrays[key], b.arrays[key]), key
    assert list(a.info) == list(b.info)
    for key in a.info:
        assert type(a.info[key]) is type(b.info[key]), key
        assert np.array_equal(a.info[key], b.info[key]), key
    assert (a.calc is None) == (b.calc is None)
    if a.calc is not None:
        assert list(a.calc.results) == list(b.calc.results)
        for key in a.calc.results:
            assert np.array_equal(a.calc.results[key], b.calc.results[key]), key


@pytest.mark.parametrize("path", sorted(DATA.glob("*.extxyz")), ids=lambda p: p.name)
def test_fixtures_equal_ase(path):
    import ase.io

    assert_same(extxyz_atoms(path.read_bytes()), ase.io.read(path, 0, format="extxyz"))


def test_extxyz_with_info_arrays_and_results_equals_ase(tmp_path):
    import ase.io

    rng = np.random.default_rng(1)
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.1, seed=2)
    atoms.info.update(
        energy=-3.5,
        note="hello",
        vec=np.array([1, 2, 3]),
        flag=True,
        temperature=300.25,
        stress=rng.normal(size=(3, 3)),
    )
    atoms.new_array("forces", rng.normal(size=(len(atoms), 3)))
    atoms.new_array("tags2", np.arange(len(atoms)))
    atoms.new_array("label", np.array(["a", "bb"] * (len(atoms) // 2)))
    atoms.new_array("fixed", np.arange(len(atoms)) % 3 == 0)
    path = tmp_path / "t.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    assert_same(extxyz_atoms(path.read_bytes()), ase.io.read(path, format="extxyz"))


def write_dump(path, atoms, ids, extra=""):
    n = len(atoms)
    rng = np.random.default_rng(0)
    lines = [
        "ITEM: TIMESTEP",
        "42",
        "ITEM: NUMBER OF ATOMS",
        str(n),
        "ITEM: BOX BOUNDS xy xz yz pp pp ff",
        "-0.5 10.5 0.7",
        "0.0 9.9 -0.3",
        "0.0 9.9 0.2",
        "ITEM: ATOMS id type x y z" + extra,
    ]
    for i in range(n):
        x, y, z = atoms.positions[i].tolist()
        row = f"{ids[i]} {1 + i % 2} {x:.8g} {y:.17g} {z:.8e}"
        if extra:
            row += f" 0.1 -0.2 {rng.normal():.4f} {rng.normal()!r} 0.5 1.0 2.0 3.0"
        lines.append(row)
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        Path(path).write_text(text)


@pytest.mark.parametrize("extra", ["", " vx vy vz c_pe q fx fy fz"])
def test_lammps_dump_equals_ase(tmp_path, extra):
    import ase.io

    atoms = bulk("Ta", "bcc", a=3.3).repeat((3, 3, 3))
    atoms.rattle(0.05, seed=3)
    ids = np.random.default_rng(4).permutation(len(atoms)) + 1
    path = tmp_path / "t.dump"
    write_dump(path, atoms, ids, extra)
    assert_same(lammps_atoms(path.read_bytes()), ase.io.read(path, format="lammps-dump-text"))


def test_gz_snapshot_equals_ase(tmp_path):
    import ase.io

    atoms = bulk("Ta", "bcc", a=3.3).repeat((4, 3, 3))
    atoms.rattle(0.05, seed=5)
    ids = np.random.default_rng(6).permutation(len(atoms)) + 1
    path = tmp_path / "t.dump.gz"
    write_dump(path, atoms, ids)
    ref = ase.io.read(path, format="lammps-dump-text")
    snap = read_snapshot(path, type_map="1=Ta,2=Nb")
    order = np.argsort(snap.ids)  # ASE sorts by id; the snapshot keeps file order
    assert np.array_equal(snap.positions[order], ref.positions)
    assert np.array_equal(snap.cell, ref.cell[:])
    assert np.array_equal(snap.pbc, ref.pbc)
    assert np.array_equal(snap.types[order], ref.arrays["type"])
    assert np.array_equal(snap.numbers[order], np.where(ref.arrays["type"] == 1, 73, 41))


def test_iter_frames_uses_the_fast_reader_with_true_frame_numbers(tmp_path):
    import ase.io

    atoms = bulk("Ta", "bcc", a=3.3).repeat((2, 2, 2))
    path = tmp_path / "two.dump"
    write_dump(path, atoms, np.arange(1, len(atoms) + 1))
    text = path.read_text()
    path.write_text(text + text.replace("42", "43", 1) + text[:200])  # + a cut frame
    with pytest.warns(UserWarning, match="frame 2 is incomplete"):
        frames = list(iter_frames(str(path), index="-1", type_map="1=Ta,2=Nb"))
    assert [f.index for f in frames] == [1]
    expected = ase.io.read(io.StringIO(text), format="lammps-dump-text")
    assert np.array_equal(frames[0].atoms.positions, expected.positions)
    assert frames[0].atoms.info["timestep"] == 43
    assert set(frames[0].atoms.get_chemical_symbols()) == {"Ta", "Nb"}


def test_streamed_frame_numbers_and_errors(tmp_path):
    atoms = bulk("Ta", "bcc", a=3.3).repeat((2, 2, 2))
    path = tmp_path / "two.dump"
    write_dump(path, atoms, np.arange(1, len(atoms) + 1))
    text = path.read_text()
    moved = text.replace("42", "43", 1)
    path.write_text(text + moved)
    second = read_snapshot(path, frame=1)
    assert second.frame == 1 and second.timestep == 43
    with pytest.raises(InputError, match="frame 2 does not exist"):
        read_snapshot(path, frame=2)
    lines = text.splitlines()
    lines[12] = lines[12] + " 7"
    bad = tmp_path / "bad.dump"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"frame 0: atom 3: atom line .* has 6 columns"):
        read_snapshot(bad)
    lines = text.splitlines()
    lines[11] = "4 1 0.0 abc 0.0"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"atom 2: column 4 'abc' is not a number"):
        read_snapshot(bad)
    with pytest.raises(InputError, match="type 2 is not in the type map"):
        read_snapshot(path, type_map="1=Ta")


@pytest.mark.parametrize(
    "token",
    [
        "0",
        "-0.0",
        "1e-300",
        "123456789012345678901234",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
        "nan",
        "-inf",
        "+3.5",
        "0.1",
        "9007199254740993",
        "1.0000000000000002",
        "4.9e-324",
        ".5",
        "5.",
        "1E+22",
        "1e23",
        "0.000000000000000000000000123",
    ],
)
def test_float_tokens_round_as_python(token):
    buf = np.frombuffer(f"{token} 1\n".encode(), dtype=np.uint8)
    cols, _ = parse_lines(buf, 0, 1, [fastread.FLOAT, fastread.INT])
    value = cols.floats[0, 0]
    expected = float(token)
    assert (np.isnan(value) and np.isnan(expected)) or (
        value == expected and np.signbit(value) == np.signbit(expected)
    )


def test_random_floats_round_as_python():
    rng = np.random.default_rng(7)
    values = rng.normal(scale=10.0 ** rng.integers(-30, 30, 20000), size=20000)
    digits = rng.integers(1, 18, size=20000)
    tokens = [
        f"{v:.{d}g}" if i % 2 else f"{v:.{d}f}" for i, (v, d) in enumerate(zip(values, digits))
    ]
    buf = np.frombuffer(("\n".join(tokens) + "\n").encode(), dtype=np.uint8)
    cols, _ = parse_lines(buf, 0, len(tokens), [fastread.FLOAT])
    assert np.array_equal(cols.floats[:, 0], np.array([float(t) for t in tokens]))


def test_ase_tables_match_the_installed_ase():
    from ase.io import extxyz

    assert fastread.SPECIAL_3_3_KEYS == extxyz.SPECIAL_3_3_KEYS
    assert fastread.UNPROCESSED_KEYS == extxyz.UNPROCESSED_KEYS
    assert fastread.REV_PROPERTY_NAME_MAP == extxyz.REV_PROPERTY_NAME_MAP


def test_unsupported_comment_falls_back_to_ase(tmp_path):
    text = "1\nProperties=species:S:1:pos:R:3 data={1 2}\nCu 0 0 0\n"
    with pytest.raises(Unsupported):
        extxyz_atoms(text.encode())
    path = tmp_path / "odd.extxyz"
    path.write_text(text)
    [frame] = list(iter_frames(str(path)))  # ASE reads it instead
    assert len(frame.atoms) == 1
