"""Cell geometry shared by the readers, the descriptor and the workflows."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from atominfo.errors import InputError
from atominfo.structures.geometry import (
    MAX_COORDINATE,
    cell_heights,
    check_coordinates,
    check_periodic_cell,
    complete_cell,
)


def test_heights_of_an_orthorhombic_cell_are_its_edges():
    np.testing.assert_allclose(cell_heights(np.diag([2.0, 3.0, 5.0])), [2.0, 3.0, 5.0])


@pytest.mark.parametrize("name", ["Mg", "Cu", "Ta"])
def test_heights_are_distances_between_opposite_faces(name):
    cell = np.asarray(bulk(name).cell[:], dtype=float)  # hcp, fcc and bcc primitive cells
    heights = cell_heights(cell)
    reciprocal = np.linalg.inv(cell).T  # rows b_i with a_i . b_j = delta_ij
    np.testing.assert_allclose(heights, 1.0 / np.linalg.norm(reciprocal, axis=1), rtol=1e-12)
    for d in range(3):  # the face spanned by the two other vectors, and a_d's reach from it
        normal = np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])
        assert heights[d] == pytest.approx(abs(cell[d] @ normal) / np.linalg.norm(normal))


def test_heights_of_a_flat_cell_are_refused():
    with pytest.raises(InputError, match="zero volume"):
        cell_heights(np.diag([2.0, 3.0, 0.0]))


def test_complete_cell_fills_degenerate_non_periodic_vectors():
    cell = np.array([[4.0, 0, 0], [1.0, 4.0, 0], [0, 0, 0]])
    full = complete_cell(cell, np.array([True, True, False]))
    np.testing.assert_array_equal(full[:2], cell[:2])
    assert abs(np.linalg.det(full)) > 1  # fractional coordinates exist
    np.testing.assert_allclose(full[2] @ cell[0], 0, atol=1e-12)
    assert cell[2].tolist() == [0, 0, 0]  # the input is not changed
    np.testing.assert_allclose(cell_heights(full)[:2], [16 / np.sqrt(17), 4.0])


def test_periodic_cell_checks_name_the_frame():
    check_periodic_cell(np.zeros((3, 3)), np.zeros(3, bool), source="a.xyz", frame=2)  # molecule
    with pytest.raises(InputError, match=r"a\.xyz: frame 2: cell is NaN or infinite"):
        check_periodic_cell(np.diag([1.0, np.nan, 1.0]), np.ones(3, bool), source="a.xyz", frame=2)
    with pytest.raises(InputError, match=r"zero volume \(pbc=\(True, True, False\)\)"):
        check_periodic_cell(
            np.diag([1.0, 0.0, 1.0]), np.array([1, 1, 0], bool), source="a", frame=0
        )


def test_coordinate_checks_name_the_atom():
    pos = np.zeros((5, 3))
    check_coordinates(pos, source="a.xyz", frame=1)
    pos[3, 1] = np.inf
    with pytest.raises(InputError, match=r"frame 1: atom 13: coordinate is NaN or infinite"):
        check_coordinates(pos, source="a.xyz", frame=1, first_atom=10)
    pos[3, 1] = -2 * MAX_COORDINATE
    with pytest.raises(InputError, match=r"atom 3: coordinate 2e\+09 Å is beyond 1e\+09 Å"):
        check_coordinates(pos, source="a.xyz", frame=1)
