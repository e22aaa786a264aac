"""Analytic gradients of the descriptor, dH and the entropy gain against central finite
differences (step 1e-6 Å, float64), to 1e-5 relative.

Every structure is rattled (or thermal) so that no two neighbour distances, and no two
entries of a row of M, are within the finite-difference step of a tie: at a tie the
analytic result is one-sided (the piece chosen by the tie-break) and a central
difference straddles two pieces, so there is nothing to compare.
"""

import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

from atominfo import entropy
from atominfo.descriptor.gradient import DescriptorJacobian
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.errors import InputError
from atominfo.information_gradient import OBJECTIVES, novelty_gradient
from atominfo.structures.datasets import md_frames

STEP = 1e-6  # Å
K, RC = 12, 4.5  # small k keeps the finite differences fast; the defaults are checked once


@pytest.fixture(scope="module")
def reference():
    frames = md_frames(bulk("Cu", cubic=True) * (2, 2, 2), 300.0, 3, interval=10)
    return np.concatenate([structure_descriptors(f, K, RC) for f in frames])


def _crystal():
    a = bulk("Cu", cubic=True) * (2, 2, 2)
    a.rattle(0.05, seed=1)
    return a


def _melt():
    return md_frames(bulk("Cu", cubic=True) * (2, 2, 2), 3000.0, 1, equilibration=100)[0]


def _slab():
    a = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    assert a.pbc.tolist() == [True, True, False]
    a.rattle(0.05, seed=2)
    return a


def _molecule():
    a = molecule("CH3CH2OH")  # its methyl hydrogens tie exactly until rattled
    a.rattle(0.02, seed=3)
    return a


STRUCTURES = {"crystal": _crystal, "melt": _melt, "slab": _slab, "molecule": _molecule}


def _finite_difference(f, atoms):
    num = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for x in range(3):
            values = []
            for sign in (1.0, -1.0):
                moved = atoms.copy()
                moved.positions[i, x] += sign * STEP
                values.append(f(moved))
            num[i, x] = (values[0] - values[1]) / (2 * STEP)
    return num


def _relative_error(num, ana):
    return float(np.abs(num - ana).max() / np.abs(ana).max())


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_descriptor_jacobian_matches_descriptor_and_finite_differences(name):
    atoms = STRUCTURES[name]()
    jac = DescriptorJacobian(atoms, K, RC)
    np.testing.assert_allclose(jac.X, structure_descriptors(atoms, K, RC), rtol=0, atol=1e-14)
    G = np.random.default_rng(0).normal(size=jac.X.shape)
    num = _finite_difference(lambda a: float((G * DescriptorJacobian(a, K, RC).X).sum()), atoms)
    assert _relative_error(num, jac.vjp(G)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRUCTURES))
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_novelty_gradient_matches_finite_differences(name, objective, reference):
    atoms = STRUCTURES[name]()
    result = novelty_gradient(atoms, reference, 0.015, k=K, cutoff=RC, objective=objective)
    assert np.isfinite(result.value) and result.gradient.shape == (len(atoms), 3)

    def value(a):
        return novelty_gradient(a, reference, 0.015, k=K, cutoff=RC, objective=objective).value

    assert _relative_error(_finite_difference(value, atoms), result.gradient) < 1e-5


@pytest.mark.slow
def test_default_settings_gradient_on_the_crystal():
    atoms = _crystal()
    reference = structure_descriptors(md_frames(atoms, 300.0, 1)[0])
    result = novelty_gradient(atoms, reference)
    idx = [(0, 0), (5, 1), (17, 2), (31, 0)]  # a sample of coordinates: k = 32 is slower
    for i, x in idx:
        moved = [atoms.copy(), atoms.copy()]
        moved[0].positions[i, x] += STEP
        moved[1].positions[i, x] -= STEP
        up, down = (novelty_gradient(m, reference).value for m in moved)
        num = (up - down) / (2 * STEP)
        assert abs(num - result.gradient[i, x]) <= 1e-5 * np.abs(result.gradient).max()


def test_entropy_gain_value_is_the_entropy_difference(reference):
    atoms = _melt()
    result = novelty_gradient(atoms, reference, 0.015, k=K, cutoff=RC, objective="entropy_gain")
    Y = structure_descriptors(atoms, K, RC)
    expected = entropy(np.concatenate([reference, Y]), 0.015) - entropy(reference, 0.015)
    assert result.value == pytest.approx(expected, abs=1e-10)
    dH = novelty_gradient(atoms, reference, 0.015, k=K, cutoff=RC, objective="max")
    assert dH.value == pytest.approx(float(dH.dH.max()))


def test_far_outlier_gradient_is_finite(reference):
    # A molecule against a metal reference: dH of hundreds of nats, weights still finite.
    result = novelty_gradient(_molecule(), reference, 0.015, k=K, cutoff=RC)
    assert result.dH.min() > 50 and np.isfinite(result.gradient).all()


def test_bad_inputs_are_refused(reference):
    with pytest.raises(InputError):
        novelty_gradient(_crystal(), reference, 0.015, k=K, cutoff=RC, objective="median")
    with pytest.raises(InputError):  # the reference was computed with another k
        novelty_gradient(_crystal(), reference, 0.015, k=K + 1, cutoff=RC)
    with pytest.raises(InputError):
        novelty_gradient(_crystal(), reference, -1.0, k=K, cutoff=RC)
    with pytest.raises(InputError):
        novelty_gradient("not atoms", reference, 0.015, k=K, cutoff=RC)
    broken = _crystal()
    broken.positions[3, 0] = np.nan
    with pytest.raises(InputError):
        novelty_gradient(broken, reference, 0.015, k=K, cutoff=RC)
    clash = _crystal()
    clash.positions[1] = clash.positions[0]
    with pytest.raises(InputError):
        novelty_gradient(clash, reference, 0.015, k=K, cutoff=RC)


def test_lone_atom_and_isolated_atoms_have_zero_gradient(reference):
    from ase import Atoms

    for atoms in (
        Atoms("Cu", positions=[[0, 0, 0]]),
        Atoms("Cu2", positions=[[0, 0, 0], [9, 0, 0]]),
    ):
        result = novelty_gradient(atoms, reference, 0.015, k=K, cutoff=RC)
        assert np.isfinite(result.dH).all()
        assert not result.gradient.any()


def test_blocks_of_centres_give_the_same_result(monkeypatch):
    import atominfo.descriptor.gradient as gradient

    atoms = bulk("Cu", cubic=True) * (3, 3, 3)
    atoms.rattle(0.05, seed=5)
    G = np.random.default_rng(1).normal(size=(len(atoms), 2 * K - 1))
    whole = gradient.DescriptorJacobian(atoms, K, RC)
    monkeypatch.setattr(gradient, "BLOCK", 7)
    blocks = gradient.DescriptorJacobian(atoms, K, RC)
    np.testing.assert_array_equal(blocks.X, whole.X)
    np.testing.assert_allclose(blocks.vjp(G), whole.vjp(G), rtol=0, atol=1e-12)


def _strained(atoms, a, b, step):
    F = np.eye(3)
    F[a, b] += step
    out = atoms.copy()
    out.positions = atoms.positions @ F.T
    out.set_cell(atoms.cell[:] @ F.T, scale_atoms=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_strain_gradient_matches_finite_differences(name, reference):
    atoms = STRUCTURES[name]()
    result = novelty_gradient(atoms, reference, 0.015, k=K, cutoff=RC, objective="entropy_gain")
    num = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            up, down = (
                novelty_gradient(
                    _strained(atoms, a, b, sign * STEP),
                    reference,
                    0.015,
                    k=K,
                    cutoff=RC,
                    objective="entropy_gain",
                ).value
                for sign in (1.0, -1.0)
            )
            num[a, b] = (up - down) / (2 * STEP)
    assert _relative_error(num, result.strain_gradient) < 1e-5
