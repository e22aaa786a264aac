"""`NoveltyCalculator` with a `SpeciesReference`: each atom of an evaluated structure
against the reference atoms of its own species (EMT Cu3Au, L1_2 order)."""

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from atominfo.errors import InputError
from atominfo.structures.datasets import cu3au
from atominfo.workflows.monitor_calculator import NoveltyCalculator, NoveltyHalt
from atominfo.workflows.species_dh import SpeciesReference


def _cu3au(seed: int, rattle: float = 0.05, random: bool = False):
    atoms = cu3au(2, ordered=not random, seed=seed)
    atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cu3au")
    ordered = folder / "ordered.extxyz"
    ase.io.write(ordered, [_cu3au(seed) for seed in range(4)])
    copper = folder / "cu.extxyz"
    frames = [bulk("Cu", "fcc", a=3.75, cubic=True) * (2, 2, 2) for _ in range(2)]
    for seed, atoms in enumerate(frames):
        atoms.rattle(0.05, seed=seed)
    ase.io.write(copper, frames)
    return ordered, copper


def test_each_atom_against_its_own_species(files):
    ref = SpeciesReference.from_files(str(files[0]), [], 0.05)
    calc = NoveltyCalculator(EMT(), ref, dh="all")
    atoms = _cu3au(10, rattle=0.1, random=True)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    plain = atoms.copy()
    plain.calc = EMT()
    assert energy == plain.get_potential_energy()  # the wrapped calculator's, unchanged
    symbols = np.array(atoms.get_chemical_symbols())
    from atominfo.descriptor import frame_descriptors
    from atominfo.structures.frames import Frame

    Y = frame_descriptors(Frame(atoms, "x", 0), ref.k, ref.cutoff, species=ref.species)
    expected = ref.delta_entropy(Y, symbols)
    np.testing.assert_allclose(calc.results["dH"], expected, rtol=0, atol=1e-9)
    record = calc.last
    assert record.absent == 0
    for s in ("Au", "Cu"):
        assert record.species[s] == pytest.approx(float(np.mean(expected[symbols == s] > 0)))
    assert record.novelty == pytest.approx(float(np.mean(expected > 0)))
    assert record.novelty > 0  # the random alloy is outside the ordered one's domain


def test_p_values_against_the_calibration_of_each_species(files):
    ref = SpeciesReference.from_files(str(files[0]), [], 0.05)
    atoms = _cu3au(12, rattle=0.1, random=True)
    calc = NoveltyCalculator(EMT(), ref, p_values=True)
    calc.get_property("energy", atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    from atominfo.descriptor import frame_descriptors
    from atominfo.structures.frames import Frame

    Y = frame_descriptors(Frame(atoms, "x", 0), ref.k, ref.cutoff, species=ref.species)
    np.testing.assert_array_equal(calc.results["p_value"], ref.p_values(Y, symbols))
    assert np.array_equal(atoms.arrays["p_value"], calc.results["p_value"])


def test_default_dh_novel_labels_as_dh_all(files):
    ref = SpeciesReference.from_files(str(files[0]), [], 0.05)
    atoms = _cu3au(11, rattle=0.1, random=True)
    every = NoveltyCalculator(EMT(), ref, dh="all")
    novel = NoveltyCalculator(EMT(), ref)
    every.get_property("energy", atoms)
    novel.get_property("energy", atoms.copy())
    dH = every.results["dH"]
    inside = np.isnan(novel.results["dH"])
    np.testing.assert_array_equal(inside, dH <= 0)
    np.testing.assert_allclose(novel.results["dH"][~inside], dH[~inside], rtol=0, atol=1e-9)


def test_an_atom_of_an_absent_species_is_novel_and_halts(files):
    ref = SpeciesReference.from_files(str(files[1]), [], 0.05, also=("Au",))
    assert ref.n_reference("Au") == 0
    atoms = _cu3au(3)
    gold = np.array(atoms.get_chemical_symbols()) == "Au"
    calc = NoveltyCalculator(EMT(), ref, max_dH=1e3)
    with pytest.raises(NoveltyHalt) as halt:
        calc.get_property("energy", atoms)
    record = halt.value.record
    assert record.absent == gold.sum() and record.species["Au"] == 1.0
    assert np.isposinf(halt.value.dH[gold]).all()
    assert not np.isposinf(halt.value.dH[~gold]).any()
    assert record.novelty >= gold.mean()


def test_refusals(files):
    ref = SpeciesReference.from_files(str(files[0]), [], 0.05)
    with pytest.raises(InputError, match="cutoff"):
        NoveltyCalculator(EMT(), ref, cutoff=4.0)
    calc = NoveltyCalculator(EMT(), ref)
    other = bulk("Ni", "fcc", a=3.52, cubic=True)  # Ni: outside the descriptor's species
    with pytest.raises(InputError, match="Ni"):
        calc.get_property("energy", other)
