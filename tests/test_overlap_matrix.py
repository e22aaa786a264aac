import numpy as np
import pytest

import atominfo
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.workflows.overlap_matrix import overlap_matrix

H = 0.015


@pytest.fixture(scope="module")
def subsets():
    weak = load_frames(varied_fcc_cu(6, seed=1, sigma=(0.01, 0.02))).X
    strong = load_frames(varied_fcc_cu(4, seed=2, sigma=(0.2, 0.3))).X
    return {"weak": weak, "weak part": weak[:40], "strong": strong}


def test_overlap_matrix_values_and_asymmetry(subsets):
    m = overlap_matrix(subsets, H)
    assert m.labels == ["weak", "weak part", "strong"]
    np.testing.assert_array_equal(np.diag(m.values), 1.0)  # each environment counts itself
    for i, a in enumerate(subsets):
        for j, b in enumerate(subsets):
            assert m.values[i, j] == pytest.approx(atominfo.overlap(subsets[a], subsets[b], H))
    assert m.values[1, 0] == 1.0  # a part lies inside the whole...
    assert m.values[0, 1] < 1.0  # ...but not the whole inside the part: not symmetric
    assert m.values[2, 0] < 0.05 and m.values[0, 2] < 0.05
    d = m.to_dict()
    assert d["environments"] == [len(v) for v in subsets.values()]


def test_overlap_matrix_progress_and_bad_input(subsets):
    calls = []
    overlap_matrix(subsets, H, progress=calls.append)
    assert sum(calls) == 9
    with pytest.raises(InputError, match="two subsets"):
        overlap_matrix({"a": subsets["weak"]}, H)
    with pytest.raises(InputError, match="widths"):
        overlap_matrix({"a": subsets["weak"], "b": np.zeros((3, 5))}, H)


def test_overlap_matrix_result_is_json_ready_and_readable(subsets):
    import json

    m = overlap_matrix(subsets, H)
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert d["labels"] == m.labels and d["overlap"] == m.values.tolist()
    assert repr(m).startswith("OverlapMatrix(") and "<table>" in m._repr_html_()
