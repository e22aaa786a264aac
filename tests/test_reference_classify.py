"""`Reference.classify`: the exact label of every environment, dH only where asked for."""

import numpy as np
import pytest
from ase.build import bulk

import atominfo
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.structures.datasets import md_frames


@pytest.fixture(scope="module")
def data():
    cu = bulk("Cu", cubic=True) * (2, 2, 2)
    X = atominfo.descriptors(md_frames(cu, 300.0, 2, seed=0))
    Y = atominfo.descriptors(md_frames(cu, 1200.0, 1, seed=1))  # hotter: some novel
    Y = np.concatenate([Y, 1.2 * Y[:8]])  # and a few far from the reference
    return Reference(X, 0.015), Y


def test_labels_are_exact_and_dh_is_computed_where_asked(data):
    ref, Y = data
    exact = ref.delta_entropy(Y)
    assert (exact > 0).any() and (exact <= 0).any()
    for dh, tol in (("novel", None), ("novel", 1e-9), ("all", None), ("none", None)):
        found = ref.classify(Y, dh=dh, dh_tol=tol)
        np.testing.assert_array_equal(found.novel, ~ref.inside(Y))
        np.testing.assert_array_equal(found.novel, exact > 0)
        computed = {"novel": found.novel, "all": np.ones(len(Y), bool)}.get(
            dh, np.zeros(len(Y), bool)
        )
        np.testing.assert_array_equal(found.computed, computed)
        assert np.isnan(found.dH[~computed]).all()  # inside and not asked for: not computed
        if tol is None:
            np.testing.assert_array_equal(found.dH[computed], exact[computed])
        else:  # bounded: never below exact dH, at most log(1 + tol) above
            gap = found.dH[computed] - exact[computed]
            assert (gap >= -1e-12).all() and (gap <= tol + 1e-12).all()
        assert found.fraction == ref.novelty(Y)
        if computed.any():
            assert found.max_dH == pytest.approx(exact[computed].max(), abs=1e-9)
        else:
            assert np.isnan(found.max_dH)
        assert np.isnan(found.mean_dH) != (dh == "all")
        assert list(found.to_pandas().columns) == ["novel", "dH"]


def test_bad_arguments_are_refused(data):
    ref, Y = data
    with pytest.raises(InputError, match="dh"):
        ref.classify(Y, dh="some")
    with pytest.raises(InputError, match="dh_tol"):
        ref.classify(Y, dh_tol=0.0)
    with pytest.raises(InputError, match="single bandwidth"):
        Reference(ref.X, [0.015, 0.03]).classify(Y)
    with pytest.raises(InputError):
        ref.classify(Y[:, :3])
