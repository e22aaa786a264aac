"""Species-resolved mode: the decomposition H = H(species) + sum p H(X|z), chemical order
seen by the species-resolved entropy, species absent from the reference flagged."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk

from atominfo import InputError, descriptors, entropy
from atominfo.structures import datasets
from atominfo.workflows.species import (
    ABSENT,
    AbsentSpeciesWarning,
    species_delta_entropy,
    species_entropy,
)
from atominfo.workflows.species_run import (
    data_species,
    describe_with_species,
    species_entropy_table,
    species_novelty,
)

H = 0.015


def cu3au(ordered: bool, seed: int, rep: int = 3, rattle: float = 0.03):
    """L1_2 Cu3Au (Au on the cube corners), or the same sites with the species shuffled;
    the same Gaussian displacements for both (seeded), so the geometry is identical."""
    atoms = datasets.cu3au(rep, ordered, seed)
    atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def alloys():
    """Per seed: (element-blind H, species-resolved H) of the ordered and random alloy."""
    out = {True: [], False: []}
    for seed in range(5):
        for ordered in (True, False):
            atoms = cu3au(ordered, seed)
            z = atoms.get_chemical_symbols()
            X = descriptors(atoms, multicomponent=["Au", "Cu"])
            out[ordered].append((entropy(descriptors(atoms), H), species_entropy(X, z, H).total))
    return {k: np.array(v) for k, v in out.items()}


def separation(a, b) -> float:
    """|mean a - mean b| in units of the spread of one difference, sqrt(sd_a^2 + sd_b^2)."""
    sd = np.hypot(np.std(a, ddof=1), np.std(b, ddof=1))
    gap = abs(np.mean(a) - np.mean(b))
    return np.inf if sd == 0 and gap > 0 else (0.0 if gap == 0 else gap / sd)


@pytest.mark.slow
def test_chemical_order_seen_only_species_resolved(alloys):
    ordered, random = alloys[True], alloys[False]
    # same geometry: the element-blind entropy cannot tell the two apart
    assert separation(ordered[:, 0], random[:, 0]) < 5
    np.testing.assert_allclose(ordered[:, 0], random[:, 0], rtol=0, atol=1e-12)
    # the species-resolved one does, by more than 5 standard deviations
    assert separation(ordered[:, 1], random[:, 1]) >= 5
    assert np.mean(random[:, 1]) > np.mean(ordered[:, 1])


def test_decomposition_identity():
    rng = np.random.default_rng(1)
    X = rng.normal(scale=0.02, size=(60, 5))
    z = rng.choice(["Li", "P", "S"], size=60, p=[0.5, 0.2, 0.3])
    r = species_entropy(X, z, H)
    assert abs(r.total - (r.chemical + r.conditional)) < 1e-10
    p = np.array([np.mean(z == s) for s in r.species])
    assert abs(r.chemical + np.sum(p * np.log(p))) < 1e-12
    for s, Hs in zip(r.species, r.entropy):  # each H(X|z) is the plain entropy of its rows
        assert abs(Hs - entropy(X[z == s], H)) < 1e-12
    # the joint diversity adds up the species' effective sizes
    assert abs(np.exp(r.total_diversity) - np.sum(np.exp(r.diversity))) < 1e-9
    assert 0 <= r.total <= np.log(len(X)) + 1e-12


def test_one_species_is_the_plain_entropy():
    X = np.random.default_rng(2).normal(scale=0.02, size=(30, 4))
    r = species_entropy(X, ["Cu"] * 30, H)
    assert r.chemical == 0.0
    assert abs(r.total - entropy(X, H)) < 1e-12


def test_atomic_numbers_and_bad_labels():
    X = np.zeros((3, 2))
    assert species_entropy(X, [29, 29, 79], H).species == ["Au", "Cu"]
    with pytest.raises(InputError, match="chemical symbol"):
        species_entropy(X, ["Cu", "Xx", "Cu"], H)
    with pytest.raises(InputError, match="one chemical symbol per row"):
        species_entropy(X, ["Cu", "Cu"], H)
    with pytest.raises(InputError, match="no atomic number"):
        species_entropy(X, [29, 0, 29], H)


def test_absent_species_is_novel_with_warning():
    rng = np.random.default_rng(3)
    X = rng.normal(scale=0.02, size=(20, 3))
    Y = X[:6] + 1e-4
    zy = ["Cu", "Cu", "Cu", "O", "O", "Na"]
    with pytest.warns(AbsentSpeciesWarning, match="O"):
        r = species_delta_entropy(Y, zy, X, ["Cu"] * 10 + ["Na"] * 10, H)
    assert r.species == ["Cu", "Na", "O"]
    assert r.status == ["scored", "scored", ABSENT]
    assert list(r.absent) == [False, False, False, True, True, False]
    assert r.novel[3] and r.novel[4]
    assert np.isnan(r.dH[3:5]).all() and np.isfinite(r.dH[[0, 1, 2, 5]]).all()
    assert r.novelty[2] == 1.0 and r.mean_dH[2] is None
    # the scored species are dH against their own species only
    from atominfo import delta_entropy

    np.testing.assert_allclose(r.dH[:3], delta_entropy(Y[:3], X[:10], H), rtol=1e-12)
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert doc["status"][2] == ABSENT and doc["max_dH"][2] is None
    assert list(r.to_pandas()["species"]) == ["Cu", "Na", "O"]
    assert "SpeciesNovelty" in r._repr_html_()


def test_no_warning_when_every_species_is_known():
    X = np.random.default_rng(4).normal(scale=0.02, size=(10, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = species_delta_entropy(X, ["Cu"] * 10, X, ["Cu"] * 10, H)
    assert not r.absent.any() and np.all(r.dH <= 0)


def test_structures_species_from_the_data(tmp_path):
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)
    assert data_species([cu], [nacl]) == ["Cl", "Cu", "Na"]
    X, z = describe_with_species([nacl], ["Cl", "Cu", "Na"])
    assert len(X) == len(z) == len(nacl) and set(z) == {"Na", "Cl"}
    # a file's numbers do not depend on the other files of the run
    alone = species_entropy_table([[nacl]], H)
    both = species_entropy_table([[nacl], [cu]], H)
    assert alone.sets[0][1].total == pytest.approx(both.sets[0][1].total, abs=1e-12)
    assert [name for name, _ in both.sets] == ["set 0", "set 1", "all"]
    assert "total" in both.columns()["species"]
    json.dumps(both.to_dict(), allow_nan=False)
    # NaCl against a Cu reference: every atom novel by construction, said so
    with pytest.warns(AbsentSpeciesWarning):
        r = species_novelty([nacl], [cu], H)
    assert r.total_novelty == 1.0 and r.absent.all()
    with pytest.raises(InputError, match="descriptor"):
        species_novelty([nacl], [cu], H, descriptor="blind")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from ase.io import write

    root = tmp_path_factory.mktemp("species")
    paths = {}
    for name, atoms in (
        ("ordered", cu3au(True, 0, rep=2)),
        ("random", cu3au(False, 0, rep=2)),
        ("nacl", bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)),
        ("cu", bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)),
    ):
        paths[name] = str(root / f"{name}.extxyz")
        write(paths[name], atoms)
    return paths


def test_cli_entropy_species(files, capsys):
    from atominfo.cli import main

    assert main(["entropy", files["ordered"], files["random"], "--species", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["species"] == ["Au", "Cu"] and doc["descriptor"] == "multicomponent"
    assert [r["set"] for r in doc["results"]] == [files["ordered"], files["random"], "all"]
    for r in doc["results"]:
        assert abs(r["total"] - r["chemical"] - r["conditional"]) < 1e-10
    api = species_entropy_table([files["ordered"]], H).sets[0][1]
    assert doc["results"][0]["total"] == pytest.approx(api.total, abs=1e-12)
    assert main(["entropy", files["ordered"], "--species"]) == 0
    text = capsys.readouterr().out
    assert "chemical" in text and "Au" in text and "total" in text


def test_cli_overlap_species_absent(files, capsys):
    from atominfo.cli import main

    args = ["overlap", files["nacl"], files["cu"], "--ref", files["cu"], "--species", "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["status"] == [ABSENT, "scored", ABSENT]
    assert doc["novelty"][0] == 1.0 and doc["novelty"][1] == 0.0
    assert "reference lacks" in captured.err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--multicomponent"], "--multicomponent"),
        (["-b", "0.01,0.02"], "one bandwidth"),
        (["--species-descriptor", "blind"], "must be one of"),
    ],
)
def test_cli_species_refusals(files, capsys, extra, message):
    from atominfo.cli import main

    assert main(["entropy", files["ordered"], "--species", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atominfo: error:") and message in err and "Traceback" not in err


@pytest.mark.slow
def test_chemical_order_emt_md():
    """Ordered and random Cu3Au sampled by EMT MD at 800 K (5 seeds): the random alloy's
    relaxations leave a trace in the element-blind entropy, below 5 standard deviations;
    the species-resolved entropy separates them by more."""
    from atominfo.structures.datasets import md_frames

    values = {True: [], False: []}
    for seed in range(5):
        for ordered in (True, False):
            frames = md_frames(cu3au(ordered, seed, rep=2, rattle=0.0), 800, 4, seed=seed)
            z = np.concatenate([f.get_chemical_symbols() for f in frames])
            blind = entropy(descriptors(frames), H)
            X = descriptors(frames, multicomponent=["Au", "Cu"])
            values[ordered].append((blind, species_entropy(X, z, H).total))
    ordered, random = np.array(values[True]), np.array(values[False])
    assert separation(ordered[:, 0], random[:, 0]) < 5
    assert separation(ordered[:, 1], random[:, 1]) >= 5


def test_dh_beyond_float64_names_the_test_row():
    X = np.zeros((3, 2))
    Y = np.array([[0.0, 0.0], [0.0, 0.0], [1e200, 0.0]])
    with pytest.raises(InputError, match="Y row 2"):
        species_delta_entropy(Y, ["O", "Cu", "Cu"], X, ["Cu", "Cu", "O"], H)


def test_cli_species_descriptor_needs_species(files, capsys):
    from atominfo.cli import main

    assert main(["entropy", files["ordered"], "--species-descriptor", "plain"]) == 2
    assert "needs --species" in capsys.readouterr().err
    assert main(["entropy", files["ordered"], "--species", "--species-descriptor", "plain"]) == 0


def test_entropy_of_a_multi_element_file_says_that_it_pools_species(files, capsys):
    """The element-blind descriptor pools the elements of a file: `entropy` said nothing
    (an audit case); now one warning line names the file, its elements and --species."""
    from atominfo.cli import main

    assert main(["entropy", files["ordered"], files["cu"], "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    pooled = [line for line in err if "element-blind descriptor pools them" in line]
    assert len(pooled) == 1 and "(Au, Cu)" in pooled[0] and "--species" in pooled[0]
    assert files["ordered"] in pooled[0]
    # a single-element file, or the species-resolved modes: no such warning
    assert main(["entropy", files["cu"], "-q"]) == 0
    assert "pools them" not in capsys.readouterr().err
    assert main(["entropy", files["ordered"], "--multicomponent", "-q"]) == 0
    assert "pools them" not in capsys.readouterr().err
