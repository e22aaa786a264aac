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


# -- the campaign verdict -----------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign():
    """Four generations re-sampling one 100 K crystal (MD), and a melt (a new phase)."""
    from atominfo.structures.datasets import cu_melt, fcc_cu, md_frames

    crystal = md_frames(fcc_cu(2), 100.0, 12, seed=0)
    melt = cu_melt(2, n_frames=3, seed=1)
    return [crystal[3 * i : 3 * i + 3] for i in range(4)], melt


@pytest.mark.slow
def test_verdict_converged_when_the_crystal_is_resampled(campaign):
    from atominfo.workflows.generations import campaign_verdict

    gens, _ = campaign
    X = {str(g + 1): load_frames(f).X for g, f in enumerate(gens)}
    rows = generation_report(X, H, gap=True)
    assert rows[0].entropy_gain is None
    assert rows[2].entropy_gain == pytest.approx(
        rows[2].cumulative_entropy - rows[1].cumulative_entropy
    )
    v = campaign_verdict(rows, max_gap=0.05)
    assert v.converged and v.verdict == "converged", v.reason
    assert [d["label"] for d in v.values] == ["3", "4"]
    for d in v.values:
        assert d["novelty"] - d["novelty_resampled"] < 0.01
        assert d["entropy_gain"] - d["gain_resampled"] < 0.05
    assert rows[-1].gap_status != "not computed"
    assert "last 2 generation(s)" in v.rule and "0.05 nats" in v.rule
    d = v.to_dict()
    assert d["verdict"] == "converged" and d["max_novelty"] == 0.01 and d["max_gap"] == 0.05
    assert d["resamples"] == 199 and d["confidence"] == 0.95 and d["production"] is None


@pytest.mark.slow
def test_verdict_not_converged_when_a_melt_comes_last(campaign):
    from atominfo.workflows.generations import campaign_verdict

    gens, melt = campaign
    X = {"1": load_frames(gens[0]).X, "2": load_frames(gens[1]).X, "3": load_frames(melt).X}
    rows = generation_report(X, H)
    v = campaign_verdict(rows)
    assert not v.converged and v.verdict == "not converged"
    assert rows[2].novelty > 0.5 and "generation 3 novelty" in v.reason
    assert rows[2].gap_status == "not computed" and rows[2].gap is None


@pytest.mark.slow
def test_verdict_rule_needs_enough_generations_and_valid_thresholds(campaign):
    from atominfo.workflows.generations import campaign_verdict

    gens, _ = campaign
    rows = generation_report({"1": load_frames(gens[0]).X, "2": load_frames(gens[1]).X}, H)
    v = campaign_verdict(rows, window=2)
    assert not v.converged and v.verdict == "undetermined" and "the rule needs 3" in v.reason
    with pytest.raises(InputError, match="max_novelty"):
        campaign_verdict(rows, max_novelty=1.5)
    with pytest.raises(InputError, match="verdict window"):
        campaign_verdict(rows, window=0)
    with pytest.raises(InputError, match="gap=True"):
        campaign_verdict(rows, max_gap=0.05)
