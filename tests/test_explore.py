"""Biased exploration (atominfo.workflows.explore) on EMT Cu against a 300 K reference."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from atominfo.descriptor.kernel import min_distance, structure_descriptors
from atominfo.errors import InputError
from atominfo.structures.datasets import md_frames
from atominfo.workflows.explore import BiasedCalculator, BiasOptions, ExploreOptions, explore

CELL = bulk("Cu", cubic=True) * (2, 2, 2)


@pytest.fixture(scope="module")
def reference():
    return np.concatenate([structure_descriptors(f) for f in md_frames(CELL, 300.0, 5)])


@pytest.fixture(scope="module")
def runs(reference):
    def run(weight):
        bias = BiasOptions(weight=weight)
        options = ExploreOptions(steps=200, interval=10, target=0.0, seed=2, bias=bias)
        return explore(CELL, EMT(), reference, options)

    return run(0.0), run(0.1)


def test_bias_is_recorded_apart_and_is_the_gradient_of_the_biased_energy(reference):
    atoms = CELL.copy()
    atoms.rattle(0.05, seed=4)
    # an uncapped bias: the force is then exactly minus the biased energy's gradient
    atoms.calc = BiasedCalculator(EMT(), reference, BiasOptions(weight=0.1, max_bias_force=1e9))
    forces = atoms.get_forces()
    results = atoms.calc.results
    np.testing.assert_allclose(forces, results["unbiased_forces"] + results["bias_forces"])
    assert np.abs(results["bias_forces"]).max() > 0
    step, (i, x) = 1e-6, (3, 1)
    energies = []
    for sign in (1.0, -1.0):
        moved = atoms.copy()
        moved.positions[i, x] += sign * step
        moved.calc = BiasedCalculator(EMT(), reference, BiasOptions(weight=0.1, max_bias_force=1e9))
        energies.append(moved.get_potential_energy())
    assert -(energies[0] - energies[1]) / (2 * step) == pytest.approx(forces[i, x], rel=1e-5)


def test_bias_force_is_capped(reference):
    atoms = CELL.copy()
    atoms.rattle(0.05, seed=4)
    atoms.calc = BiasedCalculator(EMT(), reference, BiasOptions(weight=10.0, max_bias_force=0.5))
    atoms.get_forces()
    assert np.linalg.norm(atoms.calc.results["bias_forces"], axis=1).max() <= 0.5 + 1e-12


@pytest.mark.slow
def test_biased_md_reaches_higher_dh_than_plain_md_and_stays_sensible(runs):
    plain, biased = runs
    assert plain.steps_run == biased.steps_run == 200
    assert biased.max_dH.max() > plain.max_dH.max() + 1.0
    assert biased.n_snapshots > plain.n_snapshots
    for snap in biased.snapshots:
        assert min_distance(snap) > 1.8
        assert snap.info["max_dH"] >= 0.0
        assert np.linalg.norm(snap.arrays["bias_forces"], axis=1).max() <= 1.0 + 1e-12
        assert snap.arrays["unbiased_forces"].shape == (len(snap), 3)
        assert snap.arrays["dH"].max() == pytest.approx(snap.info["max_dH"])
    assert plain.to_pandas().shape == (20, 2)


def test_bad_options_are_refused(reference):
    with pytest.raises(InputError):
        BiasOptions(weight=-1.0)
    with pytest.raises(InputError):
        BiasOptions(objective="median")
    for bad in ({"steps": 0}, {"steps": "ten"}, {"interval": 0}, {"target": float("nan")}):
        with pytest.raises(InputError):
            ExploreOptions(**bad)
    for bad in ({"temperature": -1.0}, {"timestep_fs": float("inf")}, {"max_snapshots": 0}):
        with pytest.raises(InputError):
            ExploreOptions(**bad)
    with pytest.raises(InputError):
        BiasOptions(max_bias_force="big")
    with pytest.raises(InputError):
        explore("not atoms", EMT(), reference)
    with pytest.raises(InputError):  # a reference computed with another k
        BiasedCalculator(EMT(), reference, BiasOptions(k=12))


def test_any_ase_calculator_can_be_wrapped(reference):
    from ase.calculators.lj import LennardJones

    atoms = CELL.copy()
    atoms.rattle(0.05, seed=6)
    lj = LennardJones(sigma=2.3, epsilon=0.4, rc=5.0)
    atoms.calc = BiasedCalculator(lj, reference)
    forces = atoms.get_forces()
    plain = CELL.copy()
    plain.rattle(0.05, seed=6)
    plain.calc = LennardJones(sigma=2.3, epsilon=0.4, rc=5.0)
    np.testing.assert_allclose(atoms.calc.results["unbiased_forces"], plain.get_forces())
    np.testing.assert_allclose(forces - atoms.calc.results["bias_forces"], plain.get_forces())


def test_max_snapshots_stops_the_run_and_progress_counts_steps(reference):
    done = []
    bias = BiasOptions(weight=0.0)
    options = ExploreOptions(steps=100, interval=10, target=-1e9, max_snapshots=2, bias=bias)
    run = explore(CELL, EMT(), reference, options, progress=done.append)
    assert run.steps_run == 20 and run.n_snapshots == 2 and done == [10, 20]
    assert [s.info["step"] for s in run.snapshots] == [10, 20]
    # plain MD (weight 0 here): the bias is recorded as zero
    assert not any(s.arrays["bias_forces"].any() for s in run.snapshots)
