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
from atominfo.structures.fastread import extxyz as fx
from atominfo.structures.fastread import lines as flines
from atominfo.structures.fastread import tokens as ftok
from atominfo.structures.frames import iter_frames

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, params=["kernel", "python"])
def parser(request, monkeypatch):
    """Every test on both parsers: the compiled kernel and the small-frame Python path."""
    monkeypatch.setattr(ftok, "SMALL_TOKENS", 0 if request.param == "kernel" else 10**9)
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
    cols, _ = parse_lines(buf, 0, 1, [ftok.FLOAT, ftok.INT])
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
    cols, _ = parse_lines(buf, 0, len(tokens), [ftok.FLOAT])
    assert np.array_equal(cols.floats[:, 0], np.array([float(t) for t in tokens]))


def test_ase_tables_match_the_installed_ase():
    from ase.io import extxyz

    assert fx.SPECIAL_3_3_KEYS == extxyz.SPECIAL_3_3_KEYS
    assert fx.UNPROCESSED_KEYS == extxyz.UNPROCESSED_KEYS
    assert fx.REV_PROPERTY_NAME_MAP == extxyz.REV_PROPERTY_NAME_MAP


def test_unsupported_comment_falls_back_to_ase(tmp_path):
    text = "1\nProperties=species:S:1:pos:R:3 data={1 2}\nCu 0 0 0\n"
    with pytest.raises(Unsupported):
        extxyz_atoms(text.encode())
    path = tmp_path / "odd.extxyz"
    path.write_text(text)
    [frame] = list(iter_frames(str(path)))  # ASE reads it instead
    assert len(frame.atoms) == 1


# -- the pipelined readers: two parsing threads, a read-ahead thread, reused buffers --


def _threads(prefix):
    import threading

    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def _parse(text, n_lines, kinds, *, threads):
    """parse_lines through the kernel, serial (threads=1) or split in two (threads=2)."""
    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ftok, "SMALL_TOKENS", 0)
        mp.setattr(ftok, "PARALLEL_LINES", 1 if threads == 2 else 10**9)
        mp.setattr(ftok, "parse_threads", lambda: threads)
        try:
            cols, end = parse_lines(buf, 0, n_lines, kinds, source="f", frame=3, first_atom=10)
        except InputError as exc:
            return str(exc)
    return cols.floats.tobytes(), cols.ints.tobytes(), cols.strings.tobytes(), end  # bitwise


def test_two_thread_parse_equals_serial_wherever_the_text_is_cut():
    kinds = [ftok.INT, ftok.STRING, ftok.FLOAT, ftok.FLOAT]
    rows = [
        f"{i} {'Cu' if i % 3 else 'Ta'} {0.1 * i!r} {tok}"
        for i, tok in enumerate(["1.5", "nan", "1e-300", "123456789012345678901234", "-inf"] * 4)
    ]
    text = "\n".join(rows) + "\n"
    # the cut falls after the middle byte: a prefix of growing length moves it across
    # every line of the text
    for pad in range(0, len(text), 3):
        padded = "0 X 0 0\n" * (pad // 8) + "9" * (pad % 8) + " X 0 0\n" + text
        n = padded.count("\n")
        assert _parse(padded, n, kinds, threads=2) == _parse(padded, n, kinds, threads=1)
    # fewer lines than declared, more than declared, and trailing text without newline
    for n in (len(rows) + 2, len(rows) - 3, 4):
        assert _parse(text, n, kinds, threads=2) == _parse(text, n, kinds, threads=1)
    assert _parse(text[:-1], len(rows), kinds, threads=2) == _parse(
        text[:-1], len(rows), kinds, threads=1
    )


@pytest.mark.parametrize("bad", [2, 7, 12, 19])
@pytest.mark.parametrize("error", ["columns", "garbage", "short"])
def test_two_thread_parse_names_the_first_bad_atom(bad, error):
    kinds = [ftok.INT, ftok.FLOAT, ftok.FLOAT]
    rows = [f"{i} {i * 0.5!r} -{i}.25" for i in range(20)]
    if error == "columns":
        rows[bad] += " 7"
    elif error == "garbage":
        rows[bad] = f"{bad} 1.0 x{bad}"
    else:
        rows = rows[:bad]
    text = "\n".join(rows) + "\n"
    two, one = _parse(text, 20, kinds, threads=2), _parse(text, 20, kinds, threads=1)
    assert two == one
    assert isinstance(two, str) and f"frame 3: atom {10 + bad}" in two
    if error != "short":  # an error in both halves: the first one is named
        rows[19] = "19 1.0 y"
        text = "\n".join(rows) + "\n"
        assert _parse(text, 20, kinds, threads=2) == _parse(text, 20, kinds, threads=1)


def test_compiled_newline_scans_equal_python():
    rng = np.random.default_rng(3)
    for size in (0, 1, 5, 70_000, 140_001):
        buf = np.where(rng.random(size) < 0.01, 10, 65).astype(np.uint8)
        data = buf.tobytes()
        assert ftok._count_newlines(buf, 0, size) == data.count(b"\n")
        assert ftok._count_newlines(buf, size // 3, size // 2) == data.count(
            b"\n", size // 3, size // 2
        )
        total = data.count(b"\n")
        for max_lines in (1, 2, max(total // 2, 1), total, total + 5):
            count, cut = ftok.newline_cut(buf, max_lines)
            expected = min(total, max_lines)
            assert count == expected
            assert cut == (0 if expected == 0 else _nth(data, expected) + 1)


def _nth(data, k):
    pos = -1
    for _ in range(k):
        pos = data.find(b"\n", pos + 1)
    return pos


def _xyz_text(n, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 10, size=(n, 3))
    lines = [
        str(n),
        'Lattice="10.0 0.0 0.0 0.0 10.0 0.0 0.0 0.0 10.0" Properties=species:S:1:pos:R:3',
    ]
    names = ["Cu", "Ta", "cu"]
    lines += [f"{names[i % 3]} {x!r} {y:.6f} {z:.3e}" for i, (x, y, z) in enumerate(pos.tolist())]
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["isal", "gzip"])
def gzip_module(request, monkeypatch):
    """The .gz readers with ISA-L's igzip, and with the gzip module it falls back to."""
    if request.param == "gzip":
        monkeypatch.setattr(flines, "gzip_module", lambda: gzip)
    else:
        pytest.importorskip("isal")
    return request.param


@pytest.mark.parametrize("fmt", ["dump", "extxyz"])
def test_streamed_gz_equals_plain_with_blocks_cut_anywhere(tmp_path, monkeypatch, gzip_module, fmt):
    if fmt == "dump":
        atoms = bulk("Ta", "bcc", a=3.3).repeat((3, 3, 3))
        atoms.rattle(0.05, seed=3)
        plain, packed = tmp_path / "t.dump", tmp_path / "t.dump.gz"
        write_dump(plain, atoms, np.arange(1, len(atoms) + 1)[::-1])
        text = plain.read_text()
        plain.write_text(text + text.replace("42", "43", 1))  # two frames
    else:
        plain, packed = tmp_path / "t.extxyz", tmp_path / "t.extxyz.gz"
        plain.write_text(_xyz_text(40, 1) + _xyz_text(30, 2))
    with gzip.open(packed, "wt") as fh:
        fh.write(plain.read_text())
    expected = [read_snapshot(plain, frame=f) for f in (0, 1)]
    for block_bytes, chunk in [(1, 1), (7, 3), (50, 64), (333, 17), (10**6, 10**6)]:
        monkeypatch.setattr(flines, "BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(flines, "READ_CHUNK", chunk)
        for frame in (0, 1):
            for path in (plain, packed):
                got = read_snapshot(path, frame=frame)
                for key in ("positions", "ids", "types", "numbers", "cell", "pbc", "origin"):
                    assert np.array_equal(getattr(got, key), getattr(expected[frame], key)), (
                        block_bytes,
                        path.name,
                        key,
                    )
                with fastread.StreamedFrame(path, frame, block_atoms=5) as s:
                    blocks = list(s.blocks())
                assert [b.start for b in blocks] == list(range(0, len(expected[frame].ids), 5))
                assert np.array_equal(
                    np.concatenate([b.positions for b in blocks]), expected[frame].positions
                )
    assert not _threads("atominfo-")


def test_large_gz_frame_equals_plain_and_ase(tmp_path, monkeypatch, parser, gzip_module):
    """A frame of a few MB: compiled newline scans, two parsing threads, read-ahead."""
    import ase.io

    if parser == "python":
        pytest.skip("the compiled kernel's test")
    monkeypatch.setattr(ftok, "PARALLEL_LINES", 1000)
    monkeypatch.setattr(flines, "BLOCK_BYTES", 3 << 19)
    monkeypatch.setattr(flines, "READ_CHUNK", 1 << 18)
    text = _xyz_text(40_000, 5)
    plain, packed = tmp_path / "big.extxyz", tmp_path / "big.extxyz.gz"
    plain.write_text(text)
    with gzip.open(packed, "wt", compresslevel=1) as fh:
        fh.write(text)
    ref = ase.io.read(plain, format="extxyz")
    assert_same(extxyz_atoms(plain.read_bytes()), ref)
    for path in (plain, packed):
        snap = read_snapshot(path)
        assert np.array_equal(snap.positions, ref.positions)
        assert np.array_equal(snap.numbers, ref.numbers)
    assert not _threads("atominfo-")


def test_gz_errors_name_frame_and_atom_and_stop_the_threads(tmp_path, monkeypatch, gzip_module):
    monkeypatch.setattr(flines, "BLOCK_BYTES", 64)
    monkeypatch.setattr(flines, "READ_CHUNK", 16)
    good = _xyz_text(40, 1)
    lines = _xyz_text(40, 2).splitlines()
    lines[2 + 17] = "Cu 1.0 abc 2.0"
    path = tmp_path / "bad.extxyz.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(good + "\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"frame 1: atom 17: column 3 'abc' is not a number"):
        read_snapshot(path, frame=1)
    # a cut .gz file, and one whose compressed bytes are damaged: InputError, no traceback
    data = gzip.compress((good * 20).encode())
    cut = tmp_path / "cut.extxyz.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.extxyz\.gz: cannot read \(EOFError"):
        with fastread.StreamedFrame(cut, 0) as s:
            s.check_rest()
    damaged = tmp_path / "damaged.extxyz.gz"
    damaged.write_bytes(data[:40] + bytes(200) + data[240:])
    with pytest.raises(InputError, match="damaged.extxyz.gz: cannot read"):
        with fastread.StreamedFrame(damaged, 0) as s:
            list(s.blocks())
            s.check_rest()
    assert not _threads("atominfo-")


def test_consumer_stopping_early_stops_the_read_ahead_thread(tmp_path, monkeypatch, gzip_module):
    import time

    monkeypatch.setattr(flines, "BLOCK_BYTES", 100)
    monkeypatch.setattr(flines, "READ_CHUNK", 64)
    monkeypatch.setattr(flines, "READ_AHEAD", 2)  # the thread soon waits on a full queue
    path = tmp_path / "t.extxyz.gz"
    with gzip.open(path, "wt", compresslevel=1) as fh:  # more than the header's first read
        fh.write(_xyz_text(30_000, 4))
    t0 = time.perf_counter()
    # the generator closed early, the frame still open
    with fastread.StreamedFrame(path, 0, block_atoms=10) as s:
        blocks = s.blocks()
        first = next(blocks)
        assert _threads("atominfo-read-ahead")
        blocks.close()
        assert not _threads("atominfo-read-ahead")
    assert first.start == 0 and len(first.ids) == 10
    # the frame closed while its generator is suspended, and a generator dropped
    with fastread.StreamedFrame(path, 0, block_atoms=10) as s:
        blocks = s.blocks()
        next(blocks)
    assert not _threads("atominfo-read-ahead")
    with fastread.StreamedFrame(path, 0, block_atoms=10) as s:
        for block in s.blocks():
            if block.start == 50:
                break
    assert not _threads("atominfo-read-ahead")
    assert time.perf_counter() - t0 < 10


def test_read_ahead_paused_anywhere_loses_nothing(tmp_path, monkeypatch, gzip_module):
    """Stopping the read-ahead thread keeps what it read: reading goes on where it was."""
    monkeypatch.setattr(flines, "BLOCK_BYTES", 20_000)
    monkeypatch.setattr(flines, "READ_CHUNK", 4099)
    monkeypatch.setattr(flines, "READ_AHEAD", 3)
    text = _xyz_text(30_000, 6).encode()  # more than the header's first read
    path = tmp_path / "t.extxyz.gz"
    path.write_bytes(gzip.compress(text, compresslevel=1))
    rng = np.random.default_rng(0)
    with fastread.StreamedFrame(path, 0) as s:  # its header read
        lines = s._lines
        got = []
        while True:
            if rng.random() < 0.5:
                lines.read_ahead()
            if rng.random() < 0.3:
                got.append(lines.readline())
            else:
                block, count = lines.lines_block(int(rng.integers(1, 500)))
                got.append(block.tobytes())
                if count == 0:
                    break
            if rng.random() < 0.5:
                lines.pause()
                assert not _threads("atominfo-read-ahead")
    assert not _threads("atominfo-read-ahead")
    head = text.split(b"\n", 2)
    assert b"".join(got) == head[2]
