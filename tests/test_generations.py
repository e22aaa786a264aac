import numpy as np
import pytest

import atominfo
from atominfo.descriptor import load_frames
from atominfo.errors import InputError
from atominfo.structures.datasets import varied_fcc_cu
from atominfo.workflows.generations import generation_report

H = 0.015


def test_generation_report_matches_public_api():
    g1 = load_frames(varied_fcc_cu(4, seed=1, sigma=(0.01, 0.02))).X
    g2 = load_frames(varied_fcc_cu(4, seed=2, sigma=(0.01, 0.02))).X
    g3 = load_frames(varied_fcc_cu(3, seed=3, sigma=(0.2, 0.3))).X
    rows = generation_report({"1": g1, "2": g2, "3": g3}, H, structures={"1": 4, "2": 4, "3": 3})
    assert [r.label for r in rows] == ["1", "2", "3"]
    assert rows[0].novelty is None and rows[0].mean_dH is None
    assert rows[1].novelty == pytest.approx(atominfo.novelty(g2, g1, H))
    assert rows[2].novelty == pytest.approx(atominfo.novelty(g3, np.concatenate([g1, g2]), H))
    assert rows[2].novelty > 0.9 > rows[1].novelty  # the disordered batch is new
    H3, D3 = atominfo.entropy_and_diversity(np.concatenate([g1, g2, g3]), H)
    assert rows[2].cumulative_entropy == pytest.approx(H3, abs=1e-10)
    assert rows[2].cumulative_diversity == pytest.approx(D3, abs=1e-10)
    assert rows[2].cumulative_environments == len(g1) + len(g2) + len(g3)
    assert [r.structures for r in rows] == [4, 4, 3]
    assert rows[2].to_dict()["environments"] == len(g3)


def test_generation_report_bad_input():
    with pytest.raises(InputError):
        generation_report({}, H)
    with pytest.raises(InputError, match="one bandwidth"):
        generation_report({"1": np.zeros((2, 3))}, [0.1, 0.2])


def test_generation_rows_are_json_ready():
    import json

    g1 = load_frames(varied_fcc_cu(2, seed=1, sigma=(0.01, 0.02))).X
    g2 = load_frames(varied_fcc_cu(2, seed=2, sigma=(0.01, 0.02))).X
    rows = generation_report({"1": g1, "2": g2}, H)
    d = json.loads(json.dumps([r.to_dict() for r in rows], allow_nan=False))
    assert d[0]["novelty"] is None and d[1]["novelty"] == pytest.approx(rows[1].novelty)
    assert repr(rows[1]).startswith("Generation(") and "<table>" in rows[1]._repr_html_()
