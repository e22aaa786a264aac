import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.structures.frameset import from_descriptors


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    frames = varied_fcc_cu(6, seed=1)
    for i, atoms in enumerate(frames):
        atoms.info["generation"] = [10, 2, 1, 2, 10, 1][i]
    path = tmp_path_factory.mktemp("fs") / "set.extxyz"
    ase.io.write(path, frames)
    return path


def test_load_frames_matches_descriptors(labelled):
    data = load_frames(labelled)
    X, idx = atominfo.descriptors(labelled, return_index=True)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.frame_of_row, idx.frame)
    assert len(data) == 6 and data.sizes.sum() == len(X)
    np.testing.assert_array_equal(data.environments([2]), X[idx.frame == 2])
    assert data.where(3) == f"{labelled}: frame 3"


def test_groups_by_info_key_sorted_numerically(labelled):
    data = load_frames(labelled)
    groups = data.groups("generation", sort=True)
    assert list(groups) == ["1", "2", "10"]
    np.testing.assert_array_equal(groups["2"], [1, 3])
    assert list(data.groups("generation")) == ["10", "2", "1"]  # first appearance
    assert list(data.groups()) == [str(labelled)]  # by file


def test_missing_key_names_first_frame(tmp_path):
    frames = varied_fcc_cu(4, seed=1)
    for atoms in frames[:2]:
        atoms.info["stage"] = "bulk"
    path = tmp_path / "partial.extxyz"
    ase.io.write(path, frames)
    with pytest.raises(InputError, match=r"partial.extxyz: frame 2: info key 'stage'"):
        load_frames(path).groups("stage")


def test_rescale_volume_changes_descriptors_not_structures(labelled):
    plain = load_frames(labelled)
    scaled = load_frames(labelled, rescale_volume=15.8)
    assert not np.allclose(plain.X, scaled.X)
    np.testing.assert_array_equal(plain.atoms[0].positions, scaled.atoms[0].positions)
    np.testing.assert_allclose(
        scaled.X, atominfo.descriptors(labelled, rescale_volume=15.8), atol=0
    )


def test_from_descriptors():
    data = from_descriptors([np.zeros((3, 5)), np.ones((2, 5))])
    assert list(data.offsets) == [0, 3, 5]
    with pytest.raises(InputError):
        from_descriptors([np.zeros((0, 5))])
