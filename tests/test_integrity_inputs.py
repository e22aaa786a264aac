"""Inputs that used to give silently wrong numbers or take forever (issue 19).

Saved descriptors carry their parameters and are refused when they differ from
the run's; species are never ignored without a word; a cutoff under which no
atom has a neighbour, and matter denser than any, are refused quickly; small
frames do not pay for the thread pool.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

import atominfo
from atominfo.cli import main
from atominfo.descriptor import structure_descriptors
from atominfo.descriptor.kernel import describe_points
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.saved import UncheckedDescriptorsWarning, load_descriptors

DATA = Path(__file__).parent / "data"
FCC = DATA / "cu_fcc_108.extxyz"
HOT = DATA / "cu_hot_32.extxyz"
BENZENE = DATA / "benzene_12.extxyz"


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(rc, err, *fragments):
    """Exit 2 with one `atominfo: error:` line holding every fragment, no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("atominfo: error:")]
    assert rc == 2 and len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def overlap(capsys, *args):
    rc, out, err = cli(capsys, "overlap", *args, "--json", "-q")
    assert rc == 0, err
    import json

    return json.loads(out)["overlap"], err


def alloy(path, symbols, seed, rattle=0.05):
    """A rattled 32-atom fcc cell with some atoms replaced: (index, symbol) pairs."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.rattle(rattle, seed=seed)
    names = atoms.get_chemical_symbols()
    for i, s in symbols:
        names[i] = s
    atoms.set_chemical_symbols(names)
    ase.io.write(path, atoms)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """cu_fcc_108's descriptors (k=32, rc=5) as .npz and .npy, written by the command."""
    d = tmp_path_factory.mktemp("saved")
    for name in ("ref.npz", "ref.npy"):
        assert main(["descriptors", str(FCC), "-o", str(d / name), "-q"]) == 0
    return d


# -- 1. saved descriptors carry their parameters ---------------------------------------


def test_npz_records_its_parameters(saved):
    X, provenance = load_descriptors(saved / "ref.npz")
    assert X.shape == (108, 63)
    assert provenance["format_version"] == 1
    assert provenance["k"] == 32 and provenance["cutoff"] == 5.0
    assert np.isnan(provenance["rescale_volume"])  # not rescaled
    assert list(provenance["species"]) == [] and list(provenance["elements"]) == ["Cu"]


@pytest.mark.parametrize(
    "option,fragment",
    [
        (["-c", "3"], "descriptors were computed with cutoff 5 Å, this run uses 3 Å"),
        (["-k", "16"], "descriptors were computed with k=32, this run uses k=16"),
        (
            ["--rescale-volume", "12"],
            "with no --rescale-volume, this run uses --rescale-volume 12 Å^3/atom",
        ),
    ],
)
def test_a_parameter_mismatch_is_refused(capsys, saved, option, fragment):
    rc, _, err = cli(capsys, "overlap", HOT, "--ref", saved / "ref.npz", *option)
    one_error(rc, err, "ref.npz: ", fragment)


def test_saved_and_structures_give_the_same_numbers(capsys, saved):
    from_structures, _ = overlap(capsys, HOT, "--ref", FCC, "-c", "5", "-b", "0.5")
    from_npz, err = overlap(capsys, HOT, "--ref", saved / "ref.npz", "-b", "0.5")
    assert from_npz == from_structures and "record no parameters" not in err
    assert from_npz > 0  # a bandwidth at which the hot crystal overlaps the cold one


def test_npy_is_accepted_with_a_warning(capsys, saved):
    value, err = overlap(capsys, HOT, "--ref", saved / "ref.npy", "-b", "0.5")
    assert value == overlap(capsys, HOT, "--ref", saved / "ref.npz", "-b", "0.5")[0]
    warning = [line for line in err.splitlines() if "record no parameters" in line]
    assert len(warning) == 1 and warning[0].startswith("atominfo: warning: ")
    assert "ref.npy" in warning[0] and "save them as .npz" in warning[0]


def test_npy_of_another_width_is_refused(capsys, saved):
    rc, _, err = cli(capsys, "overlap", HOT, "--ref", saved / "ref.npy", "-k", "16")
    one_error(rc, err, "ref.npy: ", "63 columns, this run's have 31")


def test_every_ref_reads_saved_descriptors(capsys, saved, tmp_path):
    frames = []
    for seed in range(4):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        atoms.rattle(0.1, seed=seed)
        frames.append(atoms)
    pool = tmp_path / "pool.extxyz"
    ase.io.write(pool, frames)
    for ref in ("ref.npy", "ref.npz"):
        out = tmp_path / f"kept_{ref}.extxyz"
        rc, _, err = cli(capsys, "compress", pool, "-s", "2", "--ref", saved / ref, "-o", out, "-q")
        assert rc == 0, err
        assert len(ase.io.read(out, ":")) == 2
    rc, _, err = cli(
        capsys, "compress", pool, "-s", "2", "--ref", saved / "ref.npz", "-c", "4", "-o", out
    )
    one_error(rc, err, "ref.npz: ", "cutoff 5 Å, this run uses 4 Å")


def test_reference_from_files_checks_parameters(saved):
    with pytest.raises(InputError, match=r"ref\.npz: descriptors were computed with cutoff 5 Å"):
        Reference.from_files([saved / "ref.npz"], cutoff=4.0)
    ref = Reference.from_files([saved / "ref.npz"])
    assert ref.elements == {"Cu"} and ref.k == 32 and ref.cutoff == 5.0
    with pytest.warns(UncheckedDescriptorsWarning, match="ref.npy"):
        assert Reference.from_files([saved / "ref.npy"]).elements is None


def _bad_files(d: Path, X: np.ndarray):
    (d / "garbage.npz").write_bytes(b"garbage\n")
    np.savez(d / "no_x.npz", Y=X)
    np.savez(d / "ok.npz", X=X)
    (d / "truncated.npz").write_bytes((d / "ok.npz").read_bytes()[:200])
    np.savez(d / "newer.npz", X=X, format_version=99)
    np.savez(d / "incomplete.npz", X=X, format_version=1, k=32)
    np.savez(
        d / "bad_value.npz",
        X=X,
        format_version=1,
        k="many",
        cutoff=5.0,
        rescale_volume=np.nan,
        species=np.array([], dtype=str),
        elements=np.array(["Cu"]),
    )
    with zipfile.ZipFile(d / "not_numpy_inside.npz", "w") as z:
        z.writestr("X.npy", b"not an array")


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("garbage.npz", "not a NumPy .npz file"),
        ("no_x.npz", "no array 'X'"),
        ("truncated.npz", "cannot read saved descriptors (BadZipFile: "),
        ("newer.npz", "format version 99"),
        ("incomplete.npz", "parameters are incomplete (no cutoff, rescale_volume"),
        ("bad_value.npz", "parameters are not readable (invalid literal"),
        ("not_numpy_inside.npz", "descriptors must be real numbers, got dtype |S12"),
    ],
)
def test_bad_npz_gives_a_located_line(capsys, tmp_path, name, fragment):
    _bad_files(tmp_path, np.zeros((3, 63)))
    rc, _, err = cli(capsys, "overlap", HOT, "--ref", tmp_path / name)
    line = one_error(rc, err, f"{name}: ", fragment)
    for bare in ("(ValueError)", "(KeyError)", "AssertionError"):
        assert bare not in line


def test_multicomponent_blocks_move_to_the_run_species(tmp_path):
    cuo = alloy(tmp_path / "cuo.extxyz", [(0, "O"), (5, "O")], seed=1)
    cu = alloy(tmp_path / "cu.extxyz", [], seed=2)
    test = alloy(tmp_path / "cunio.extxyz", [(3, "Ni"), (7, "O")], seed=3, rattle=0.08)
    for src, out in ((cuo, "cuo.npz"), (cu, "cu.npz")):
        assert main(["descriptors", str(src), "--multicomponent", "-o", str(tmp_path / out)]) == 0
    run = ["Cu", "Ni", "O"]
    for src, out in ((cuo, "cuo.npz"), (cu, "cu.npz")):
        from_saved = Reference.from_files([tmp_path / out], multicomponent=run).X
        from_structures = Reference.from_files([src], multicomponent=run).X
        np.testing.assert_array_equal(from_saved, from_structures)
    # a plain run cannot use species blocks; a species list without O cannot hold them
    with pytest.raises(InputError, match=r"cuo\.npz: .*--multicomponent \(species Cu, O\), "):
        Reference.from_files([tmp_path / "cuo.npz"])
    with pytest.raises(InputError, match=r"\(no O\)"):
        Reference.from_files([tmp_path / "cuo.npz"], multicomponent=["Cu", "Ni"])
    # the command line takes the saved reference's species into its list
    rc = main(["overlap", str(test), "--ref", str(tmp_path / "cuo.npz"), "--multicomponent"])
    assert rc == 0


# -- 2. species ------------------------------------------------------------------------------


def test_other_elements_warn_that_species_are_ignored(capsys, saved):
    _, err = overlap(capsys, BENZENE, "--ref", FCC)
    lines = [line for line in err.splitlines() if "ignore species" in line]
    assert len(lines) == 1 and lines[0].startswith("atominfo: warning: ")
    assert "holds C, H but the reference holds Cu" in lines[0] and "--multicomponent" in lines[0]
    _, err = overlap(capsys, BENZENE, "--ref", saved / "ref.npz")  # recorded elements
    assert "ignore species" in err
    _, err = overlap(capsys, BENZENE, "--ref", FCC, "--multicomponent")
    assert "ignore species" not in err
    _, err = overlap(capsys, HOT, "--ref", FCC)
    assert "ignore species" not in err


def test_a_files_entropy_does_not_depend_on_the_other_files(capsys, tmp_path):
    import json

    cuo = alloy(tmp_path / "cuo.extxyz", [(0, "O"), (5, "O")], seed=1)
    other = alloy(tmp_path / "nacl.extxyz", [(1, "Na"), (2, "Cl")], seed=4)

    def entropies(*files):
        rc, out, err = cli(capsys, "entropy", *files, "--multicomponent", "--json", "-q")
        assert rc == 0, err
        return {r["set"]: r["entropy"] for r in json.loads(out)["results"]}

    alone = {**entropies(HOT), **entropies(cuo)}
    together = entropies(HOT, cuo, other)
    for f in (HOT, cuo):
        assert together[str(f)] == pytest.approx(alone[str(f)], rel=1e-12, abs=1e-12)
    # one species: the multicomponent descriptor has the plain one's distances
    plain = atominfo.descriptors(HOT)
    mixed = atominfo.descriptors(HOT, multicomponent=["Cu", "Na", "O"])
    d = np.linalg.norm(plain[0] - plain[1:], axis=1)
    np.testing.assert_allclose(np.linalg.norm(mixed[0] - mixed[1:], axis=1), d, rtol=1e-12)


# -- 3. a cutoff under which no atom has a neighbour -------------------------------------------


def test_a_cutoff_below_every_bond_is_refused(capsys):
    rc, _, err = cli(capsys, "dh", HOT, "--ref", FCC, "-c", "0.5", "-q")
    one_error(
        rc,
        err,
        "cu_fcc_108.extxyz: ",
        "no atom of the 1 structures has a neighbour within the cutoff 0.5 Å",
        "frame 0: no atom has a neighbour",
        "the smallest interatomic distance is 2.",
    )


def test_lone_atoms_and_far_pairs_are_allowed_but_not_alone(tmp_path):
    lone = Atoms("Cu", positions=[[5, 5, 5]], cell=[10, 10, 10], pbc=False)
    crystal = bulk("Cu", "fcc", a=3.61)
    X = atominfo.descriptors([lone, crystal])  # an isolated-atom reference among crystals
    assert not X[0].any() and X[1, 0] > 0
    with pytest.raises(InputError, match="no atom of the 2 structures has a neighbour"):
        atominfo.descriptors([lone, lone.copy()])
    far_pair = Atoms("Cu2", positions=[[0, 0, 0], [7.5, 0, 0]])  # a dimer scan's last point
    with pytest.warns(UserWarning, match=r"frame 1: .*smallest interatomic distance is 7\.5 Å"):
        X = atominfo.descriptors([crystal, far_pair])
    assert not X[1:].any()
    with pytest.raises(InputError, match=r"frame 0: .*smallest interatomic distance is 7\.5 Å"):
        atominfo.descriptors([far_pair])


# -- 4. density -----------------------------------------------------------------------------


def _timed_refusal(call, match):
    structure_descriptors(bulk("Cu", "fcc", a=3.61))  # compiled kernels loaded
    start = time.perf_counter()
    with pytest.raises(InputError, match=match):
        call()
    assert time.perf_counter() - start < 1.0


def test_a_dense_periodic_box_is_refused_quickly():
    rng = np.random.default_rng(0)
    box = Atoms("Cu3000", positions=rng.random((3000, 3)) * 1.5, cell=[1.5] * 3, pbc=True)
    _timed_refusal(
        lambda: structure_descriptors(box),
        r"3000 atoms in a periodic cell of 3\.38 Å\^3: 0\.00112 Å\^3 per atom is denser "
        "than any matter",
    )


def test_a_dense_cluster_is_refused_quickly():
    rng = np.random.default_rng(0)
    cluster = Atoms("Cu3000", positions=rng.random((3000, 3)) * 1.5)
    _timed_refusal(
        lambda: structure_descriptors(cluster),
        r"atom \d+: 3000 atoms within a 1\.5 x 1\.5 x 1\.5 Å block: denser than any matter",
    )


def test_rescale_volume_is_bounded(capsys):
    start = time.perf_counter()
    rc, _, err = cli(capsys, "entropy", FCC, "--rescale-volume", "0.001")
    one_error(rc, err, "--rescale-volume must be a finite number >= 0.1")
    assert time.perf_counter() - start < 1.0
    with pytest.raises(InputError, match="rescale_volume must be"):
        atominfo.rescale_to_volume(bulk("Cu", "fcc", a=3.61), 0.01)


def test_a_rescaled_needle_cell_is_refused_quickly(tmp_path):
    # one atom in a 1e5 x 0.1 x 0.1 Å cell: at 0.1 Å^3 its heights are 5e-3 Å
    needle = Atoms("Cu", positions=[[0, 0, 0]], cell=[1e5, 0.1, 0.1], pbc=True)
    path = tmp_path / "needle.extxyz"
    ase.io.write(path, needle)
    _timed_refusal(
        lambda: atominfo.descriptors(path, rescale_volume=0.1),
        r"needle\.extxyz: frame 0: periodic cell too small for the cutoff.*"
        r"\(after --rescale-volume 0\.1 Å\^3/atom\)",
    )


# -- 5. small frames ---------------------------------------------------------------------------


def test_few_rows_on_the_calling_thread_equal_the_threaded_kernel():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)  # 108 atoms: threaded
    atoms.rattle(0.05, seed=0)
    whole = structure_descriptors(atoms, 12, 4.0)
    from atominfo.descriptor.kernel import ghost_atoms

    ghosts, owner = ghost_atoms(atoms, 4.0)
    out = np.zeros_like(whole)
    for start in range(0, len(atoms), 10):  # 10 rows at a time: the serial path
        rows = np.arange(start, min(start + 10, len(atoms)))
        assert (describe_points(ghosts, rows, 12, 4.0, out, owner=owner) < 0).all()
    np.testing.assert_array_equal(out, whole)
