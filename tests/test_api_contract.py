"""One set of conventions, checked on every public information function.

In the spirit of scikit-learn's common estimator checks: each public entry
point (functions of `atominfo` and `Reference` methods) takes descriptor
arrays and a bandwidth h, and must

* follow the shape rule: scalar h -> a float or an array (m,); a sequence
  of h -> a leading axis of that length, whose entries equal the scalar calls;
* refuse NaN, empty, zero-width, 1-D, boolean, complex and object arrays,
  a wrong descriptor width and bad bandwidths with an InputError;
* accept float32 and integer arrays, with the same result as their float64 copy;
* leave its inputs unchanged.
"""

import numpy as np
import pytest

import atominfo
from atominfo import InputError, Reference

H, H2 = 0.05, [0.05, 0.2]
RNG = np.random.default_rng(42)
REF = RNG.normal(scale=0.05, size=(60, 5))
QUERY = np.concatenate(
    [REF[:6] + RNG.normal(scale=0.01, size=(6, 5)), RNG.normal(scale=0.3, size=(6, 5))]
)

# name -> (call(A, h) with A the array under test, "value" (one float per h) or
# "rows" (one value per row of A), whether A is compared against a reference
# of another width)
CALLS = {
    "entropy": (lambda A, h: atominfo.entropy(A, h), "value", False),
    "diversity": (lambda A, h: atominfo.diversity(A, h), "value", False),
    "entropy_and_diversity[H]": (
        lambda A, h: atominfo.entropy_and_diversity(A, h)[0],
        "value",
        False,
    ),
    "entropy_and_diversity[D]": (
        lambda A, h: atominfo.entropy_and_diversity(A, h)[1],
        "value",
        False,
    ),
    "sampled_entropy": (
        lambda A, h: atominfo.sampled_entropy(A, h, n_samples=5).entropy,
        "value",
        False,
    ),
    "delta_entropy": (lambda A, h: atominfo.delta_entropy(A, REF, h), "rows", True),
    "delta_entropy[reference X]": (lambda A, h: atominfo.delta_entropy(QUERY, A, h), "query", True),
    "delta_entropy[approximate]": (
        lambda A, h: atominfo.delta_entropy(A, REF, h, method="approximate", n_neighbors=8),
        "rows",
        True,
    ),
    "inside_domain[exact]": (
        lambda A, h: atominfo.inside_domain(A, REF, h, method="exact"),
        "rows",
        True,
    ),
    "inside_domain[classify]": (
        lambda A, h: atominfo.inside_domain(A, REF, h, method="classify"),
        "rows",
        True,
    ),
    "overlap": (lambda A, h: atominfo.overlap(A, REF, h), "value", True),
    "novelty": (lambda A, h: atominfo.novelty(A, REF, h), "value", True),
    "Reference.delta_entropy": (lambda A, h: Reference(REF, h).delta_entropy(A), "rows", True),
    "Reference(X).delta_entropy": (
        lambda A, h: Reference(A, h).delta_entropy(QUERY),
        "query",
        True,
    ),
    "Reference.delta_entropy[approximate]": (
        lambda A, h: Reference(REF, h).delta_entropy(A, method="approximate", n_neighbors=8),
        "rows",
        True,
    ),
    "Reference.inside": (lambda A, h: Reference(REF, h).inside(A), "rows", True),
    "Reference.overlap": (lambda A, h: Reference(REF, h).overlap(A), "value", True),
    "Reference.novelty": (lambda A, h: Reference(REF, h).novelty(A), "value", True),
}
NAMES = sorted(CALLS)


def call(name, A, h):
    return CALLS[name][0](A, h)


def expected_shape(name, A, n_h=None):
    kind = CALLS[name][1]
    rows = {"value": (), "rows": (len(A),), "query": (len(QUERY),)}[kind]
    return rows if n_h is None else (n_h, *rows)


@pytest.mark.parametrize("name", NAMES)
def test_shape_rule(name):
    A = QUERY.copy()
    one = call(name, A, H)
    if expected_shape(name, A) == ():
        assert isinstance(one, float)
    else:
        assert isinstance(one, np.ndarray) and one.shape == expected_shape(name, A)
    several = call(name, A, H2)
    assert isinstance(several, np.ndarray) and several.shape == expected_shape(name, A, len(H2))
    np.testing.assert_array_equal(several[0], one)
    np.testing.assert_array_equal(several[1], call(name, A, H2[1]))
    np.testing.assert_array_equal(A, QUERY)  # input unchanged


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "bad, what",
    [
        (np.full((3, 5), np.nan), "NaN"),
        (np.concatenate([QUERY[:2], [[0, 0, np.inf, 0, 0]]]), "NaN or infinite"),
        (np.empty((0, 5)), "no environments"),
        (np.empty((3, 0)), "width 0"),
        (QUERY[0], "1-D"),
        (QUERY[None], "2-D"),
        (QUERY > 0, "boolean"),
        (QUERY.astype(complex), "complex"),
        (QUERY.astype(object), "object"),
        ([[0.1, 0.2], [0.3]], "descriptor array"),
    ],
)
def test_bad_arrays_are_input_errors(name, bad, what):
    with pytest.raises(InputError, match=what):
        call(name, bad, H)


@pytest.mark.parametrize("name", [n for n in NAMES if CALLS[n][2]])
def test_wrong_width(name):
    with pytest.raises(InputError, match="widths differ"):
        call(name, np.concatenate([QUERY, QUERY[:, :1]], axis=1), H)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "h", [0, -1, float("nan"), float("inf"), "x", True, None, [], [0.05, 0.0], [[0.05]]]
)
def test_bad_bandwidths(name, h):
    with pytest.raises(InputError, match="bandwidth"):
        call(name, QUERY, h)


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_int_inputs_match_float64(name):
    # integer descriptors with the other operand (REF or QUERY) on the same scale
    for A, h, scale in (
        (QUERY.astype(np.float32), H, 1.0),
        ((QUERY * 20).round().astype(np.int64), 2.0, 20.0),
    ):
        got = _scaled_call(name, A, h, scale)
        np.testing.assert_array_equal(got, _scaled_call(name, A.astype(np.float64), h, scale))


def _scaled_call(name, A, h, scale):
    global REF, QUERY
    saved = REF, QUERY
    if scale != 1:
        REF, QUERY = (REF * scale).round(), (QUERY * scale).round()
    try:
        return call(name, A, h)
    finally:
        REF, QUERY = saved


def test_reference_copies_its_descriptors():
    X = REF.copy()
    ref = Reference(X, H)
    before = ref.delta_entropy(QUERY)
    X[:] = 10.0
    np.testing.assert_array_equal(ref.delta_entropy(QUERY), before)
    with pytest.raises(ValueError):
        ref.X[0, 0] = 1.0  # read-only view, not the caller's array


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(method="nope"),
        dict(seed=-1),
        dict(seed=1.5),
        dict(n_neighbors=0),
        dict(method="approximate", n_neighbors="x"),
    ],
)
def test_bad_options_of_delta_entropy(kwargs):
    with pytest.raises(InputError):
        atominfo.delta_entropy(QUERY, REF, H, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(n_samples=1), dict(n_samples=2.5), dict(seed=-3)])
def test_bad_options_of_sampled_entropy(kwargs):
    with pytest.raises(InputError):
        atominfo.sampled_entropy(REF, H, **kwargs)


def test_engine_options_are_validated():
    with pytest.raises(InputError, match="unknown engine option 'memroy_bytes'.*memory_bytes"):
        atominfo.EngineOptions.from_kwargs(memroy_bytes=2**20)
    for bad in (
        dict(backend="gpu"),
        dict(threads=0),
        dict(memory_bytes=10),
        dict(precision="float16"),
        dict(precision="float32"),
        dict(device="cpu"),
        dict(chunk_rows=5),
        dict(progress=3),
        dict(backend="dask", client="local:2"),
    ):
        with pytest.raises(InputError):
            atominfo.EngineOptions(**bad)
    with pytest.raises(InputError, match="EngineOptions"):
        atominfo.entropy(REF, H, engine="cpu")
    with pytest.raises(TypeError):
        atominfo.entropy(REF, H, memory_bytes=2**20)  # engine options go in engine=


def test_progress_counts_every_query():
    seen = []
    atominfo.delta_entropy(QUERY, REF, H, progress=seen.append)
    assert sum(seen) == len(QUERY)
    seen.clear()
    atominfo.entropy(REF, H, engine=atominfo.EngineOptions(threads=1), progress=seen.append)
    assert sum(seen) == len(REF)


def test_descriptors_feed_every_function():
    from .conftest import DATA

    X = atominfo.descriptors(DATA / "cu_fcc_108.extxyz", k=8, cutoff=4.0)
    assert X.dtype == np.float64 and X.ndim == 2 and np.isfinite(X).all()
    assert 0 <= atominfo.entropy(X, H) <= np.log(len(X)) + 1e-12
    assert atominfo.delta_entropy(X[:3], X, H).shape == (3,)
    with pytest.raises(InputError):
        atominfo.descriptors(DATA / "cu_fcc_108.extxyz", k=1)


def test_results_are_json_safe():
    import json

    est = atominfo.sampled_entropy(REF, H2, n_samples=5)
    text = json.dumps(est.to_dict())
    assert "NaN" not in text and "Infinity" not in text
    assert est.to_dict()["entropy"] == pytest.approx(list(est.entropy))
    assert repr(est).startswith("SampledEntropy(entropy=[")
    assert "<table>" in est._repr_html_() and "half_width" in est._repr_html_()
