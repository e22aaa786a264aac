import numpy as np
import pytest
from ase.build import bulk

import atominfo
from atominfo.structures.rescale import volume_per_atom


def test_fcc_calibration_matches_paper_distance():
    cal = atominfo.fcc_calibration()
    # The paper gives 0.0309 1/Å for 3.58 vs 3.54 Å; perfect FCC has ties at
    # the k-th neighbour (which 14 of 24 third-shell atoms are kept), so the
    # value depends on tie order: 0.0305 here, 0.0303-0.0313 over rotations.
    assert cal["distance"] == pytest.approx(0.0305, abs=0.0001)
    assert cal["distance"] == pytest.approx(0.0309, abs=0.001)
    assert cal["h"] == pytest.approx(cal["distance"] / 2)
    assert cal["h"] == pytest.approx(0.015, abs=0.0006)


def test_volume_rules():
    assert atominfo.volume_bandwidth(10.896) == pytest.approx(0.0897141 * np.exp(-0.5) + 0.0119417)
    # cutoff rule: at ln(V)^2 >= rc the smooth cutoff is zero -> 0.016
    assert atominfo.volume_bandwidth(40.0, "cutoff") == pytest.approx(0.016)
    assert atominfo.volume_bandwidth(1.0, "cutoff") == pytest.approx(0.086164 + 0.016)
    with pytest.raises(atominfo.InputError):
        atominfo.volume_bandwidth(10.0, "other")


def test_rescale_to_volume():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    scaled = atominfo.rescale_to_volume(atoms, 15.8)
    assert volume_per_atom(scaled) == pytest.approx(15.8)
    # a compressed copy gives the same descriptors once both are rescaled
    # (rattled: a perfect FCC has ties at the k-th neighbour)
    atoms.rattle(0.05, seed=2)
    other = atoms.copy()
    other.set_cell(atoms.cell[:] * 0.93, scale_atoms=True)
    X1 = atominfo.descriptors(atoms, rescale_volume=15.8)
    X2 = atominfo.descriptors(other, rescale_volume=15.8)
    np.testing.assert_allclose(X1, X2, atol=1e-12)
