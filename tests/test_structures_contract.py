"""Reading structures at the edges: LAMMPS dumps, cut and malformed trajectories,
frame numbers, absurd headers and cells, saved descriptors, the file follower,
and the descriptor's frame/row model."""

import io
import time
import warnings

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

import atominfo
from atominfo.descriptor import (
    load_frames,
    padded_environments,
    padding_note,
    resolve_species,
    structure_descriptors,
)
from atominfo.errors import InputError
from atominfo.structures.follow import follow_frames
from atominfo.structures.frames import iter_frames
from atominfo.structures.frameset import FrameSet
from atominfo.structures.lammps import UntypedDumpWarning, parse_type_map
from atominfo.structures.saved import load_descriptors
from atominfo.structures.scan import TruncatedFrameWarning, count_atoms

from .conftest import DATA


def lammps_dump(n_frames=3, n_atoms=4, *, element=False, claim=None, seed=0) -> str:
    """A LAMMPS text dump; `claim` maps frame -> a wrong NUMBER OF ATOMS."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(n_frames):
        out.append(
            f"ITEM: TIMESTEP\n{f * 100}\nITEM: NUMBER OF ATOMS\n"
            f"{(claim or {}).get(f, n_atoms)}\n"
            "ITEM: BOX BOUNDS pp pp pp\n0 8\n0 8\n0 8\n"
            f"ITEM: ATOMS id type x y z{' element' if element else ''}\n"
        )
        grid = np.array([[0, 0, 0], [4, 0, 0], [0, 4, 0], [0, 0, 4], [4, 4, 0], [4, 0, 4]])
        for i in range(n_atoms):
            p = grid[i % len(grid)] + rng.normal(scale=0.1, size=3) + 2
            sym = " Cu" if i % 2 == 0 else " O"
            out.append(
                f"{i + 1} {1 + i % 2} {p[0]:.5f} {p[1]:.5f} {p[2]:.5f}{sym if element else ''}\n"
            )
    return "".join(out)


def frames_of(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(iter_frames(path, **kw))


@pytest.fixture
def six_frames(tmp_path):
    path = tmp_path / "six.extxyz"
    ase.io.write(path, [bulk("Cu", "fcc", a=3.61).repeat((1, 1, i + 1)) for i in range(6)])
    return path


# -- one model of frames and rows ------------------------------------------------


def test_return_index_is_a_frameset_locating_rows():
    files = [DATA / "cu_hot_32.extxyz", DATA / "benzene_12.extxyz"]
    X, index = atominfo.descriptors(files, return_index=True)
    assert isinstance(index, FrameSet) and index.X is X and not index.atoms
    assert index.n_rows == len(X) == 44 and len(index) == 2
    np.testing.assert_array_equal(index.frame, np.repeat([0, 1], [32, 12]))
    np.testing.assert_array_equal(index.atom, np.r_[np.arange(32), np.arange(12)])
    assert index.sources == [str(f) for f in files] and index.source_frames == [0, 0]
    assert index.locate(40) == (str(files[1]), 0, 8)
    assert index.locate(-1) == (str(files[1]), 0, 11)
    with pytest.raises(InputError, match="row 44 does not exist"):
        index.locate(44)


def test_locate_gives_true_frame_numbers_for_reversed_index(six_frames):
    X, index = atominfo.descriptors(six_frames, index="::-1", return_index=True)
    assert index.source_frames == [5, 4, 3, 2, 1, 0]
    assert index.locate(0) == (str(six_frames), 5, 0)
    assert index.locate(len(X) - 1) == (str(six_frames), 0, 0)
    assert load_frames(six_frames, index="-3:").source_frames == [3, 4, 5]


def test_resolve_species_one_place():
    frames = [molecule_atoms("CO2"), molecule_atoms("H2O")]
    assert resolve_species(frames, True) == ["C", "H", "O"]
    assert resolve_species(frames, False) is None
    assert resolve_species(None, "O,H") == ["O", "H"]
    for bad in (["Cu", "Cu"], [], ["Xx"], 3):
        with pytest.raises(InputError):
            resolve_species(frames, bad)


def molecule_atoms(name):
    from ase.build import molecule

    return molecule(name)


# -- LAMMPS types ----------------------------------------------------------------


def test_type_map_parser():
    assert parse_type_map("1=Cu, 2=O") == {1: "Cu", 2: "O"}
    assert parse_type_map({2: "O"}) == {2: "O"}
    assert parse_type_map(None) is None
    for bad in ("1:Cu", "0=Cu", "1=Cu,1=O", "1=Qq", "a=Cu"):
        with pytest.raises(InputError, match="type map"):
            parse_type_map(bad)


def test_untyped_dump_warns_once_and_type_map_names_species(tmp_path):
    path = tmp_path / "md.lammpstrj"
    path.write_text(lammps_dump())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = list(iter_frames(path))
    untyped = [w for w in caught if issubclass(w.category, UntypedDumpWarning)]
    assert len(untyped) == 1 and str(path) in str(untyped[0].message)
    # without a map ASE reads type 1 as H and type 2 as He
    assert frames[0].atoms.get_chemical_symbols()[:2] == ["H", "He"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a map: no warning at all
        mapped = list(iter_frames(path, type_map="1=Cu,2=O"))
    assert mapped[0].atoms.get_chemical_symbols()[:2] == ["Cu", "O"]
    assert frames[0].atoms.get_chemical_symbols()[0] == "H"  # the input is not changed
    X = atominfo.descriptors(path, multicomponent=True, type_map={1: "Cu", 2: "O"})
    assert X.shape[1] == 3 * 63
    with pytest.raises(InputError, match=r"frame 0: atom 1: LAMMPS type 2 is not in the type map"):
        frames_of(path, type_map={1: "Cu"})


def test_dump_with_element_column_does_not_warn(tmp_path):
    path = tmp_path / "el.dump"
    path.write_text(lammps_dump(element=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = list(iter_frames(path))
    assert frames[0].atoms.get_chemical_symbols()[:2] == ["Cu", "O"]


# -- atom counts that disagree, cut files ------------------------------------------


@pytest.mark.parametrize(
    "claim,fragment",
    [(3, "says 3 but more atom lines follow"), (5, "says 5 but only 4 atom lines follow")],
)
def test_dump_number_of_atoms_disagrees(tmp_path, claim, fragment):
    path = tmp_path / "bad.dump"
    path.write_text(lammps_dump(claim={1: claim}))
    with pytest.raises(InputError, match=rf"bad.dump: frame 1: ITEM: NUMBER OF ATOMS {fragment}"):
        frames_of(path)


def test_xyz_count_disagrees_in_the_middle(six_frames, tmp_path):
    lines = six_frames.read_text().splitlines(keepends=True)
    assert lines[3].strip() == "2"  # count line of frame 1
    lines[3] = "3\n"
    bad = tmp_path / "bad.extxyz"
    bad.write_text("".join(lines))
    with pytest.raises(InputError, match="bad.extxyz: frame 1: atom count 3 disagrees"):
        frames_of(bad)
    lines[3] = "two\n"
    bad.write_text("".join(lines))
    with pytest.raises(InputError, match="bad.extxyz: frame 1: atom-count line is not an integer"):
        frames_of(bad)


@pytest.mark.parametrize("cut", [3, 25, 60])
def test_cut_last_frame_warns_once_and_reads_the_rest(tmp_path, cut):
    text = lammps_dump(n_frames=4)
    path = tmp_path / "running.dump"
    path.write_text(text[:-cut])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = list(iter_frames(path, index="-1", type_map="1=Cu,2=O"))
    cut_warnings = [w for w in caught if issubclass(w.category, TruncatedFrameWarning)]
    assert len(cut_warnings) == 1
    assert f"{path}: frame 3 is incomplete" in str(cut_warnings[0].message)
    assert [f.index for f in frames] == [2]  # -1: the last complete frame


def test_cut_extxyz_and_cut_first_frame(six_frames, tmp_path):
    path = tmp_path / "cut.extxyz"
    path.write_text(six_frames.read_text()[:-30])
    with pytest.warns(TruncatedFrameWarning, match="frame 5 is incomplete"):
        assert [f.index for f in iter_frames(path)] == [0, 1, 2, 3, 4]
    one = tmp_path / "one.extxyz"
    one.write_text(six_frames.read_text().split("\n2\n")[0][:-10])
    with pytest.raises(InputError, match="frame 0 is incomplete"):
        frames_of(one)


@pytest.mark.parametrize(
    "index,expected",
    [
        ("-1", [5]),
        (-1, [5]),
        ("::-1", [5, 4, 3, 2, 1, 0]),
        ("-3:", [3, 4, 5]),
        ("1::2", [1, 3, 5]),
        (slice(-2, None), [4, 5]),
        (2, [2]),
    ],
)
@pytest.mark.parametrize("suffix", [".extxyz", ".dump", ".traj"])
def test_true_frame_numbers(tmp_path, index, expected, suffix):
    path = tmp_path / f"six{suffix}"
    if suffix == ".dump":
        path.write_text(lammps_dump(n_frames=6, element=True))
    else:
        ase.io.write(path, [bulk("Cu", "fcc", a=3.61).repeat((1, 1, i + 1)) for i in range(6)])
    frames = frames_of(path, index=index)
    assert [f.index for f in frames] == expected
    if suffix != ".dump":  # frame f has f + 1 atoms
        assert [len(f.atoms) for f in frames] == [i + 1 for i in expected]


def test_frame_out_of_range_is_named(six_frames):
    with pytest.raises(InputError, match="selects frame 6, which does not exist"):
        frames_of(six_frames, index="6")
    with pytest.raises(InputError, match="step of 0"):
        frames_of(six_frames, index="::0")


def test_absurd_atom_count_fails_fast(tmp_path):
    path = tmp_path / "huge.extxyz"
    path.write_text('100000000000\nLattice="5 0 0 0 5 0 0 0 5"\nCu 0 0 0\n')
    start = time.perf_counter()
    with pytest.raises(
        InputError, match="huge.extxyz: frame 0: cannot read: declares 100000000000 atoms"
    ):
        frames_of(path)
    assert time.perf_counter() - start < 1.0
    dump = tmp_path / "huge.dump"
    dump.write_text(lammps_dump(claim={0: 10**11}))
    with pytest.raises(InputError, match="frame 0: cannot read: declares 100000000000 atoms"):
        frames_of(dump)


def test_count_atoms_by_scan(six_frames):
    assert count_atoms([six_frames]) == 21
    assert count_atoms([six_frames], index="-2:") == 11
    assert count_atoms([six_frames], index="::-2") == 6 + 4 + 2
    assert count_atoms([DATA / "cu_fcc_108.extxyz"], format="vasp") is None


# -- coordinates and cells that cannot be computed on -------------------------------


def test_coordinate_too_large_to_wrap():
    atoms = Atoms("Cu2", positions=[[1, 1, 1], [1e17, 2, 2]], cell=[10, 10, 10], pbc=True)
    with pytest.raises(InputError, match="atom 1: coordinate 1e\\+17"):
        structure_descriptors(atoms)
    far = Atoms("Cu2", positions=[[1, 1, 1], [3e8, 2, 2]], cell=[10, 10, 10], pbc=True)
    with pytest.raises(InputError, match="atom 1: atom is 3e\\+07 cell lengths outside"):
        structure_descriptors(far)


@pytest.mark.parametrize("edge", [1e-3, 1e-6])
def test_tiny_cell_is_refused_quickly(edge):
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[edge] * 3, pbc=True)
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"periodic cell too small for the cutoff.*limit"):
        structure_descriptors(atoms, cutoff=5.0)
    assert time.perf_counter() - start < 2.0


def test_small_cell_is_a_bounded_computation():
    # 0.5 Å (the densest cell allowed is 0.1 Å^3 per atom): about 9,000 images of the
    # atom within 5 Å, well under the limit
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[0.5] * 3, pbc=True)
    start = time.perf_counter()
    X = structure_descriptors(atoms, k=4, cutoff=5.0)
    assert time.perf_counter() - start < 10.0
    w = (1 - (0.5 / 5) ** 2) ** 2
    np.testing.assert_allclose(X[0, :4], w / 0.5)  # the 6 nearest images at 0.5 Å
    rng = np.random.default_rng(0)
    flat = Atoms(
        "Cu5000",
        positions=np.c_[rng.uniform(0, 40, (5000, 2)), np.zeros(5000)],
        cell=[40, 40, 0.01],
        pbc=True,
    )
    with pytest.raises(InputError, match="smallest height is 0.01 Å"):
        structure_descriptors(flat)


def test_many_candidates_match_brute_force():
    """A dense neighbourhood (hundreds of atoms within rc) takes the merge-sort path."""
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 9, size=(400, 3))
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    pos = pos[[i for i in range(len(pos)) if d[i, :i].min(initial=np.inf) > 0.3]]
    atoms = Atoms(f"Cu{len(pos)}", positions=pos)
    k, rc = 6, 12.0
    X = structure_descriptors(atoms, k, rc)
    i = 0
    r = np.linalg.norm(np.delete(pos, i, axis=0) - pos[i], axis=1)
    assert np.count_nonzero(r < rc) > 256
    nearest = np.sort(r)[:k]
    np.testing.assert_allclose(X[i, :k], (1 - (nearest / rc) ** 2) ** 2 / nearest, rtol=1e-12)


# -- fewer than k neighbours ----------------------------------------------------------


def test_padded_environments_counted():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    X = structure_descriptors(atoms, k=32, cutoff=3.0)  # 12 neighbours within 3 Å
    assert padded_environments(X, 32) == 108
    assert padding_note(X, 32, 3.0) == (
        "108 of 108 environments have fewer than k=32 neighbours within rc=3 Å (padded with zeros)"
    )
    X = structure_descriptors(atoms, k=12, cutoff=3.0)
    assert padded_environments(X, 12) == 0 and padding_note(X, 12, 3.0) is None
    with pytest.raises(InputError, match="not computed with k=40"):
        padded_environments(X, 40)


# -- saved descriptors ----------------------------------------------------------------


def test_load_descriptors(tmp_path):
    X = np.random.default_rng(0).random((5, 63))
    np.save(tmp_path / "x.npy", X)
    got, prov = load_descriptors(tmp_path / "x.npy")
    np.testing.assert_array_equal(got, X)
    assert prov is None
    np.savez(tmp_path / "x.npz", X=X, source=np.array(["a.xyz"] * 5), k=32)
    got, prov = load_descriptors(tmp_path / "x.npz")
    np.testing.assert_array_equal(got, X)
    assert prov["k"] == 32 and list(prov["source"]) == ["a.xyz"] * 5


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: np.save(p / "d.npy", np.array(["a", "b"])), "real numbers, got dtype <U1"),
        (lambda p: np.save(p / "d.npy", np.zeros(63)), "2-D array"),
        (lambda p: np.save(p / "d.npy", np.array([[0.1, np.nan]])), "row 0 is NaN"),
        (
            lambda p: np.save(p / "d.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True),
            "pickled Python objects",
        ),
        (lambda p: np.save(p / "d.npy", np.zeros((0, 63))), "empty"),
        (lambda p: (p / "d.npy").write_bytes(b"garbage bytes"), "d.npy: "),
        (lambda p: np.savez(p / "d.npz", Y=np.zeros((2, 3))), "no array 'X'"),
    ],
)
def test_load_descriptors_errors(tmp_path, make, fragment):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        load_descriptors(path)


# -- the file follower ------------------------------------------------------------------


class Clock:
    """A fake clock whose sleep runs a callback (writing to the file) and advances time."""

    def __init__(self, on_sleep=None):
        self.now, self.on_sleep, self.sleeps = 0.0, on_sleep, 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1
        if self.on_sleep:
            self.on_sleep(self.sleeps)


def test_follow_waits_for_the_file_to_appear(tmp_path):
    path = tmp_path / "later.extxyz"
    text = io.StringIO()
    ase.io.write(text, [bulk("Cu", "fcc", a=3.61)] * 2, format="extxyz")

    def write(n):
        if n == 3:
            path.write_text(text.getvalue())

    clock = Clock(write)
    got = list(follow_frames(path, poll=1.0, idle_timeout=10, sleep=clock.sleep, clock=clock))
    assert [n for n, _ in got] == [0, 1]
    with pytest.raises(InputError, match="never.extxyz: file not found \\(waited 5 s"):
        never = Clock()
        list(
            follow_frames(
                tmp_path / "never.extxyz", poll=1.0, idle_timeout=5, sleep=never.sleep, clock=never
            )
        )


def test_follow_utf8_split_across_polls_and_garbage(tmp_path):
    frame = '1\nProperties=species:S:1:pos:R:3 comment="Å"\nCu 0 0 0\n'.encode()
    path = tmp_path / "f.xyz"
    split = frame.index("Å".encode()) + 1  # inside the two bytes of Å
    path.write_bytes(frame[:split])

    def grow(n):
        if n == 1:
            with open(path, "ab") as fh:
                fh.write(frame[split:])

    clock = Clock(grow)
    got = list(
        follow_frames(
            path, format="extxyz", poll=0.5, idle_timeout=3, sleep=clock.sleep, clock=clock
        )
    )
    assert len(got) == 1 and got[0][1].info["comment"] == "Å"
    bad = tmp_path / "bad.xyz"
    bad.write_bytes(frame + b"\xff\xfe garbage\n")
    with pytest.raises(InputError, match="bad.xyz: frame 1: not UTF-8 text"):
        list(follow_frames(bad, format="extxyz", poll=0.5, idle_timeout=1, sleep=Clock().sleep))


def test_follow_non_numeric_count_names_frame(tmp_path):
    path = tmp_path / "run.dump"
    head, first, rest = lammps_dump(n_frames=3, element=True).partition("ITEM: TIMESTEP\n100\n")
    rest = rest.replace("ITEM: NUMBER OF ATOMS\n4\n", "ITEM: NUMBER OF ATOMS\nfour\n", 1)
    path.write_text(head + first + rest)
    clock = Clock()
    with pytest.raises(
        InputError, match="run.dump: frame 1: ITEM: NUMBER OF ATOMS is not an integer: 'four'"
    ):
        list(follow_frames(path, poll=0.5, idle_timeout=1, sleep=clock.sleep, clock=clock))
    with pytest.raises(
        InputError, match="run.dump: frame 1: ITEM: NUMBER OF ATOMS is not an integer: 'four'"
    ):
        frames_of(path)


@pytest.mark.parametrize(
    "kw,fragment",
    [
        ({"poll": float("nan")}, "poll"),
        ({"poll": float("inf")}, "poll"),
        ({"poll": 0}, "poll"),
        ({"poll": -1}, "poll"),
        ({"idle_timeout": float("nan")}, "idle_timeout"),
    ],
)
def test_follow_rejects_bad_timing(tmp_path, kw, fragment):
    with pytest.raises(InputError, match=fragment):
        next(follow_frames(tmp_path / "x.extxyz", **kw))


# -- science -----------------------------------------------------------------------------


def test_single_species_multicomponent_is_the_plain_descriptor():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    plain = atominfo.descriptors(atoms)
    np.testing.assert_array_equal(atominfo.descriptors(atoms, multicomponent=True), plain)
    np.testing.assert_array_equal(atominfo.descriptors(atoms, multicomponent=["Cu"]), plain)
    two = atominfo.descriptors(atoms, multicomponent=["Cu", "O"])
    assert two.shape[1] == 3 * 63
    # scaled by 1/sqrt(2): the Cu block repeats the plain one, and distances stay plain's
    np.testing.assert_allclose(two[:, :63], plain / np.sqrt(2), rtol=1e-15)
    np.testing.assert_allclose(two[:, 63:126], plain / np.sqrt(2), rtol=1e-15)
    d_plain = np.linalg.norm(plain[0] - plain[1])
    np.testing.assert_allclose(np.linalg.norm(two[0] - two[1]), d_plain, rtol=1e-12)


def _max_rotation_change(atoms, k, n=5):
    X = structure_descriptors(atoms, k, 5.0)
    worst = 0.0
    for seed in range(n):
        moved = atoms.copy()
        moved.set_cell(
            atoms.cell[:] @ Rotation.random(random_state=seed).as_matrix().T, scale_atoms=True
        )
        worst = max(worst, np.abs(structure_descriptors(moved, k, 5.0) - X).max())
    return worst


def test_rotation_invariance_needs_no_lattice_vector_within_the_cutoff():
    """Thermal noise removes ties between different atoms, never between an atom's
    own images at +L and -L: with |L| < rc they stay exact ties, and where such a
    pair straddles the k-th neighbour the row depends on the orientation."""
    ta = bulk("Ta", "bcc", a=3.30, cubic=True)  # 2 atoms, |L| = 3.30 Å < rc
    small = ta.copy()
    small.rattle(0.05, seed=3)
    assert _max_rotation_change(small, k=10) > 1e-3  # the 6 self-images are ranks 9-14
    big = ta.repeat(2)  # |L| = 6.6 Å > rc (but < 2 rc)
    big.rattle(0.05, seed=3)
    assert _max_rotation_change(big, k=10) < 1e-12
