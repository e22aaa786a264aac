"""Candidate generation (workflows.generate, `atominfo generate`): constraints always hold,
output reproduces byte for byte, candidates are new against the dataset and earlier
candidates, and the local descriptor update equals the full computation."""

import json

import ase.io
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atominfo
from atominfo.cli import main
from atominfo.descriptor.kernel import ghost_atoms, structure_descriptors
from atominfo.errors import InputError
from atominfo.workflows.generate import (
    generate,
    local_descriptors,
    mass_density,
    min_distance,
    write_candidates,
)
from atominfo.workflows.generate_moves import atoms_near

from .conftest import DATA

HOT = DATA / "cu_hot_32.extxyz"
FCC = DATA / "cu_fcc_108.extxyz"


@pytest.fixture(scope="module")
def ref_X():
    return atominfo.descriptors(HOT)


def test_local_update_equals_full_descriptors():
    """Only atoms within the cutoff of the moved atom's old or new position change,
    and recomputing just those rows gives the full result bit for bit."""
    atoms = ase.io.read(FCC)
    atoms.positions += np.random.default_rng(0).normal(scale=0.03, size=atoms.positions.shape)
    X = structure_descriptors(atoms)
    ghosts, owner = ghost_atoms(atoms, 5.0)
    moved = atoms.copy()
    moved.positions[7] += [0.12, -0.08, 0.05]
    g2, o2 = ghost_atoms(moved, 5.0)
    rows = np.union1d(atoms_near(ghosts, owner, ghosts[7], 5.0), atoms_near(g2, o2, g2[7], 5.0))
    full = structure_descriptors(moved)
    assert 7 in rows and len(rows) < len(atoms)  # a real saving on 108 atoms
    changed = np.flatnonzero((full != X).any(axis=1))
    assert set(changed) <= set(rows)
    assert np.array_equal(local_descriptors(moved, rows, X, ghosts=g2), full)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_constraints_hold_on_every_candidate(seed, ref_X):
    """Large displacements and frequent strains push against every constraint."""
    seed_atoms = ase.io.read(HOT)
    campaign = generate(
        HOT,
        ref_X,
        3,
        steps=60,
        seed=seed,
        step_size=0.4,
        strain=0.05,
        strain_probability=0.5,
        target=(2.0, 400.0),
        min_distance=1.3,
        density=(8.5, 9.4),
    )
    assert campaign.candidates
    for atoms in campaign.candidates:
        assert min_distance(atoms) >= 1.3
        assert 8.5 <= mass_density(atoms) <= 9.4
        assert atoms.get_chemical_formula() == seed_atoms.get_chemical_formula()
        assert atoms.info["min_distance"] >= atoms.info["min_distance_allowed"] == 1.3


def test_default_constraints_come_from_the_seed(ref_X):
    seed_atoms = ase.io.read(HOT)
    c = generate(
        HOT, ref_X, 2, steps=100, seed=3, strain=0.05, strain_probability=0.5, target=(3.0, 400.0)
    )
    rho0 = mass_density(seed_atoms)
    for atoms in c.candidates:
        assert atoms.info["min_distance_allowed"] == pytest.approx(0.8 * min_distance(seed_atoms))
        assert 0.9 * rho0 <= mass_density(atoms) <= 1.1 * rho0


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, ref_X):
    paths = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        c = generate(HOT, ref_X, 2, steps=100, seed=seed, generations=2, step_size=0.02)
        path = tmp_path / f"{name}.extxyz"
        write_candidates(c, path)
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_local_and_full_recomputation_give_the_same_candidates(tmp_path, ref_X):
    out = []
    for local in (True, False):
        c = generate(
            FCC,
            ref_X,
            2,
            steps=100,
            seed=2,
            local=local,
            strain_probability=0.2,
            target=(1.0, 400.0),
        )
        write_candidates(c, tmp_path / f"{local}.extxyz")
        out.append((tmp_path / f"{local}.extxyz").read_bytes())
    assert out[0] == out[1]


def test_candidates_are_new_against_dataset_and_earlier_candidates(ref_X):
    lo, hi = 1.0, 5.0
    c = generate(HOT, ref_X, 3, steps=400, seed=1, generations=2, target=(lo, hi), step_size=0.02)
    assert len(c.candidates) == 6
    known = ref_X
    for atoms in c.candidates:
        X = atominfo.descriptors(atoms)
        dH = atominfo.delta_entropy(X, known)
        assert np.allclose(atoms.arrays["dH"], dH, atol=1e-8)
        assert lo <= dH.max() <= hi  # new (dH > 0), within the target range
        assert atoms.info["max_dH"] == pytest.approx(dH.max())
        known = np.concatenate([known, X])
    # the campaign summary: H of the dataset with each generation, exact
    g1 = np.concatenate([ref_X] + [atominfo.descriptors(a) for a in c.candidates[:3]])
    assert c.generations[0]["entropy_after"] == pytest.approx(atominfo.entropy(g1), abs=1e-9)
    assert c.generations[0]["entropy_before"] == pytest.approx(atominfo.entropy(ref_X), abs=1e-9)
    X2 = np.concatenate([atominfo.descriptors(a) for a in c.candidates[3:]])
    assert c.generations[1]["novelty"] == pytest.approx(atominfo.novelty(X2, g1, method="exact"))
    info = c.candidates[4].info
    assert (info["seed_file"], info["seed_frame"], info["generation"], info["candidate"]) == (
        str(HOT),
        0,
        2,
        4,
    )
    assert info["steps"] >= 1 and 0 <= info["accepted_moves"] <= info["steps"]


def test_entropy_objective_gain_is_the_exact_entropy_gain(ref_X):
    c = generate(HOT, ref_X, 1, steps=40, seed=0, objective="entropy")
    atoms = c.candidates[0]
    X = atominfo.descriptors(atoms)
    gain = atominfo.entropy(np.concatenate([ref_X, X])) - atominfo.entropy(ref_X)
    assert gain > 0
    assert atoms.info["entropy_gain"] == pytest.approx(gain, abs=1e-9)


def test_fewer_candidates_warn(ref_X):
    with pytest.warns(UserWarning, match="only 0 of 1"):
        c = generate(HOT, ref_X, 1, steps=3, seed=0, target=(1e3, 2e3), step_size=0.01)
    assert c.candidates == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": (5.0, 1.0)}, "target low"),
        ({"min_distance": 6.0}, "below the cutoff"),
        ({"min_distance": 2.0}, "seed violates"),
        ({"density": (1.0, 2.0)}, "density"),
        ({"objective": "fast"}, "objective"),
        ({"steps": 0}, "mc_steps"),
    ],
)
def test_bad_arguments_are_input_errors(kwargs, match, ref_X):
    with pytest.raises(InputError, match=match):
        generate(HOT, ref_X, 1, **kwargs)


def test_cli_writes_candidates_and_summary(tmp_path, capsys):
    out, summary = tmp_path / "c.extxyz", tmp_path / "s.json"
    code = main(
        [
            "generate",
            str(HOT),
            "--ref",
            str(HOT),
            "-n",
            "2",
            "--generations",
            "2",
            "--step-size",
            "0.02",
            "-o",
            str(out),
            "--summary",
            str(summary),
            "-q",
            "--seed",
            "4",
        ]
    )
    assert code == 0
    frames = ase.io.read(out, ":")
    s = json.loads(summary.read_text())
    assert len(frames) == s["n_candidates"] == 4
    assert [g["candidates"] for g in s["generations"]] == [2, 2]
    assert "H gain" in capsys.readouterr().out


def test_cli_no_candidate_is_an_error(tmp_path, capsys):
    out = tmp_path / "c.extxyz"
    code = main(
        ["generate", str(HOT), "--ref", str(FCC), "-n", "1", "--steps", "3", "-o", str(out), "-q"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no candidate" in err[0]
    assert not out.exists()


# -- the workflow owns its run: value objects, files inside its guard -----------------------


def test_keywords_fold_into_the_value_objects(tmp_path, ref_X):
    """The former keywords and the explicit objects give the same candidates, byte for byte."""
    from atominfo.settings import DescriptorSpec
    from atominfo.workflows.generate import GenerateOptions

    by_keywords = generate(HOT, ref_X, 2, steps=60, seed=5, step_size=0.02, k=32, cutoff=5.0)
    options = GenerateOptions(steps=60, seed=5, step_size=0.02)
    by_objects = generate(HOT, ref_X, 2, options=options, spec=DescriptorSpec(32, 5.0))
    paths = [tmp_path / "keywords.extxyz", tmp_path / "objects.extxyz"]
    for campaign, path in zip((by_keywords, by_objects), paths):
        write_candidates(campaign, path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with pytest.raises(TypeError, match="'stepz'"):
        generate(HOT, ref_X, 1, stepz=10)


def test_options_are_validated_once_and_frozen():
    import dataclasses

    from atominfo.workflows.generate import GenerateOptions

    with pytest.raises(InputError, match="mc_steps"):
        GenerateOptions(steps=0)
    with pytest.raises(InputError, match="target low 5 exceeds target high 1 nats"):
        GenerateOptions(target=(5, 1))
    with pytest.raises(InputError, match="density low 9 exceeds density high 8"):
        GenerateOptions(density=(9.0, 8.0))
    options = GenerateOptions(steps="7", target=(1, 2))  # converted as the command line's are
    assert (options.steps, options.target) == (7, (1.0, 2.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.steps = 8  # type: ignore[misc]


def test_generate_writes_candidates_and_summary_in_its_guard(tmp_path, ref_X):
    out, summary = tmp_path / "c.extxyz", tmp_path / "s.json"
    c = generate(HOT, ref_X, 2, steps=100, seed=4, step_size=0.02, output=out, summary=summary)
    assert (c.output, c.summary) == (out, summary)
    assert len(ase.io.read(out, ":")) == c.n_candidates == 2
    s = json.loads(summary.read_text())
    assert s == json.loads(json.dumps(c.to_dict()))
    assert s["seeds"] == [str(HOT)] and s["reference"] is None and s["output"] == str(out)
    assert s["reference_environments"] == len(ref_X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.extxyz", "s.json"]


def test_campaign_table_is_one_row_per_generation(ref_X, monkeypatch):
    import sys

    c = generate(HOT, ref_X, 1, steps=40, seed=4, generations=2, step_size=0.02)
    html = c._repr_html_()
    assert "[{" not in html  # no list of dicts in one cell
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(InputError, match="pip install pandas"):
        c.to_pandas()
    monkeypatch.undo()
    pd = pytest.importorskip("pandas")
    table = c.to_pandas()
    assert isinstance(table, pd.DataFrame) and list(table.index) == [1, 2]
    assert list(table["candidates"]) == [g["candidates"] for g in c.generations]


def test_generate_refuses_an_output_over_an_input_and_writes_nothing(tmp_path, ref_X):
    seed = tmp_path / "seed.extxyz"
    seed.write_bytes(HOT.read_bytes())
    with pytest.raises(InputError, match="same file as the input"):
        generate(seed, ref_X, 1, steps=10, output=seed)
    assert seed.read_bytes() == HOT.read_bytes()
    out = tmp_path / "c.extxyz"
    with (
        pytest.raises(InputError, match="no candidate reached the objective"),
        pytest.warns(UserWarning, match="only 0 of 1 candidates reached the objective"),
    ):
        generate(
            seed, ref_X, 1, steps=3, target=(1e3, 2e3), output=out, summary=tmp_path / "s.json"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.extxyz"]  # all or none


def test_reference_entropy_is_formed_by_surprisals():
    """H of the growing reference is `information.entropy`'s: exactly 0 for identical
    environments (never a tiny negative number), and the gain of a block is the exact one."""
    from atominfo.workflows.generate_objective import (
        ReferenceSums,
        entropy_gain,
        reference_entropy,
        self_log_sums,
    )

    X = atominfo.descriptors(HOT)
    h = 0.015
    assert reference_entropy(ReferenceSums(np.repeat(X[:1], 7, axis=0), h)) == 0.0
    assert reference_entropy(ReferenceSums(X, h)) == pytest.approx(
        atominfo.entropy(X, h), abs=1e-12
    )
    R, Y = X[:20], X[20:]
    sums = ReferenceSums(R, h)
    gain = entropy_gain(Y, sums.log_sums(Y), sums, self_log_sums(R, h))
    exact = atominfo.entropy(X, h) - atominfo.entropy(R, h)
    assert gain == pytest.approx(exact, abs=1e-12)
