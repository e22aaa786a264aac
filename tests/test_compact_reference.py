"""Compact references: "is my system inside this dataset?" (atominfo.workflows.compact_reference)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.settings import DescriptorSpec
from atominfo.structures.datasets import cu3au, md_frames
from atominfo.structures.saved import DescriptorParameters, save_compact
from atominfo.workflows.compact_reference import CompactReference
from atominfo.workflows.species import AbsentSpeciesWarning, species_delta_entropy
from atominfo.workflows.species_run import describe_with_species

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    """Cu3Au MD at 600 K (reference), an independent 600 K run and a 900 K run (queries)."""
    a = cu3au(lattice=3.7)
    return {
        "ref": md_frames(a, 600, 24, seed=1),
        "same": md_frames(a, 600, 6, seed=7),
        "hot": md_frames(a, 900, 6, seed=2),
    }


@pytest.fixture(scope="module")
def compact(data):
    return CompactReference.build(data["ref"], per_species_size=40, held_out=0.2)


def exact_dh(reference, test):
    X, zx = describe_with_species(reference, ["Au", "Cu"])
    Y, zy = describe_with_species(test, ["Au", "Cu"])
    return species_delta_entropy(Y, zy, X, zx).dH, zy


def test_interval_holds_and_error_is_stated(compact, data):
    """The rigorous interval holds for every query (also at another temperature); on an
    independent run like the reference's, the estimate keeps within the stated error."""
    for errors in compact.errors.values():
        assert errors.n > 0 and errors.bounds_held == 1.0
    for name in ("same", "hot"):
        result = compact.dh(data[name])
        exact, z = exact_dh(data["ref"], data[name])
        assert np.all(result.dH_lower <= exact) and np.all(exact <= result.dH_upper)
        # where the interval decides the flag, it is the exact flag
        decided = (result.dH_lower > 0) | (result.dH_upper <= 0)
        np.testing.assert_array_equal((exact > 0)[decided], (result.dH > 0)[decided])
        if name == "same":
            for s, stated in compact.errors.items():
                error = np.abs(result.dH - exact)[z == s]
                assert np.quantile(error, 0.95) <= stated.max


def test_all_environments_kept_give_the_exact_dh(data):
    """A size at least the species' environments keeps each one: dH is the exact value
    (to the rounding of float32 centres)."""
    full = CompactReference.build(data["ref"][:4], per_species_size=10_000, held_out=0.0)
    result = full.dh(data["hot"][:2])
    exact, _ = exact_dh(data["ref"][:4], data["hot"][:2])
    np.testing.assert_allclose(result.dH, exact, atol=1e-4)
    assert all(e.line().startswith("exact") for e in full.errors.values())


def test_save_load_round_trip_is_bit_identical(compact, data, tmp_path):
    written = compact.save(tmp_path / "ref.npz")
    assert written.bytes == (tmp_path / "ref.npz").stat().st_size
    assert 0 < written.ratio < 1 and written.full_bytes > written.bytes
    loaded = CompactReference.load(tmp_path / "ref.npz")
    before, after = compact.arrays(), loaded.arrays()
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].dtype == after[key].dtype
        np.testing.assert_array_equal(before[key], after[key])
    assert loaded.parameters == compact.parameters
    a, b = compact.dh(data["hot"][:2]), loaded.dh(data["hot"][:2])
    for field in ("dH", "dH_lower", "dH_upper", "novel"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_mismatched_settings_and_damage_are_refused(compact, tmp_path):
    path = tmp_path / "ref.npz"
    compact.save(path)
    with pytest.raises(InputError, match="k=32, this run uses k=16"):
        CompactReference.load(path, spec=DescriptorSpec(k=16))
    with pytest.raises(InputError, match="cutoff"):
        CompactReference.load(path, spec=DescriptorSpec(cutoff=4.0))
    arrays = compact.arrays()
    newer = tmp_path / "newer.npz"
    with open(newer, "wb") as fh:
        np.savez(fh, **{**compact.parameters.arrays(), **arrays, "compact_version": 99})
    with pytest.raises(InputError, match="version 99"):
        CompactReference.load(newer)
    damaged = tmp_path / "damaged.npz"
    with open(damaged, "wb") as fh:
        save_compact(fh, {**arrays, "offsets": arrays["offsets"][:-1]}, compact.parameters)
    with pytest.raises(InputError, match="inconsistent"):
        CompactReference.load(damaged)
    wrong = DescriptorParameters(k=16, cutoff=5.0, species=("Au", "Cu"))
    with open(damaged, "wb") as fh:  # centres 3 x 63 wide, parameters say 3 x 31
        save_compact(fh, arrays, wrong)
    with pytest.raises(InputError, match="inconsistent"):
        CompactReference.load(damaged)


def test_absent_species_is_novel_by_construction(data):
    cu = md_frames(bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2), 600, 4, seed=3)
    reference = CompactReference.build(cu, per_species_size=20, held_out=0.0)
    with pytest.warns(AbsentSpeciesWarning, match="Au"):
        result = reference.dh(data["hot"][:1])
    gold = np.array(data["hot"][0].get_chemical_symbols()) == "Au"
    assert np.all(np.isnan(result.dH[gold])) and np.all(result.novel[gold])
    assert np.all(result.absent == gold) and np.all(np.isfinite(result.dH[~gold]))
    assert result.status[result.species.index("Au")].startswith("absent")


def test_command_line(data, tmp_path, capsys):
    write(tmp_path / "ref.xyz", data["ref"][:8])
    write(tmp_path / "new.xyz", data["hot"][:2])
    ref, new, out = tmp_path / "ref.xyz", tmp_path / "new.xyz", tmp_path / "ref.npz"
    assert main(["reference", str(ref), "-o", str(out), "--size", "30", "-q"]) == 0
    assert "of the full descriptors" in capsys.readouterr().out
    assert main(["inside", str(new), "--ref", str(out), "--json"]) == 0
    assert '"total_novelty"' in capsys.readouterr().out
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    descriptors = tmp_path / "X.npz"
    assert main(["descriptors", str(ref), "-o", str(descriptors), "-q"]) == 0
    for argv in (
        ["inside", str(new), "--ref", str(truncated)],  # damaged
        ["inside", str(new), "--ref", str(descriptors)],  # descriptors, not a compact reference
        ["inside", str(new), "--ref", str(tmp_path / "missing.npz")],
        ["inside", str(new), "--ref", str(out), "-k", "16"],  # mismatch
        ["dh", str(new), "--ref", str(out)],  # not descriptors
        ["inside", str(new), "--ref", str(ref)],  # not a compact reference
        ["reference", str(ref), "-o", str(tmp_path / "x.txt")],  # suffix
        ["reference", str(ref), "-o", str(tmp_path / "y.npz"), "--size", "0"],
        ["reference"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("atominfo: error: ") and "Traceback" not in "".join(err)


def test_no_partial_file_on_failure(tmp_path, capsys):
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\n\nCu 0 0 0\nCu 1 1\n")
    out = tmp_path / "ref.npz"
    assert main(["reference", str(bad), "-o", str(out), "-q"]) == 2
    assert "atominfo: error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xyz"]


@pytest.mark.parametrize("descriptor", ["plain", "multicomponent"])
def test_query_with_an_element_the_reference_lacks(data, descriptor):
    """A query holding a new element: its atoms are absent; the other atoms (with the new
    element among their neighbours) are scored, exact dH inside their interval."""
    reference = data["ref"][:4]
    compact = CompactReference.build(reference, 10, descriptor=descriptor, held_out=0.0)
    query = data["hot"][0].copy()
    symbols = query.get_chemical_symbols()
    symbols[1] = "Ni"
    query.set_chemical_symbols(symbols)
    with pytest.warns(AbsentSpeciesWarning, match="Ni"):
        result = compact.dh([query])
    X, zx = describe_with_species(reference, ["Au", "Cu", "Ni"], descriptor=descriptor)
    Y, zy = describe_with_species([query], ["Au", "Cu", "Ni"], descriptor=descriptor)
    with pytest.warns(AbsentSpeciesWarning):
        exact = species_delta_entropy(Y, zy, X, zx).dH
    scored = zy != "Ni"
    assert np.array_equal(result.absent, ~scored)
    assert np.all(result.dH_lower[scored] <= exact[scored])
    assert np.all(exact[scored] <= result.dH_upper[scored])
