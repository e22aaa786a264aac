"""`extract` owns its run (outputs all or none, the same files as the command), takes its
knobs as value objects (and their keywords), and refuses cut-outs too large to label
before building them; the centre check describes one atom, to the last bit."""

import json
import os
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest

from atominfo import params
from atominfo.cli import main
from atominfo.descriptor import structure_descriptors
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec, Reading
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.labelling import ExtractOptions, extract
from atominfo.workflows.labelling_cut import centre_descriptor, cut_cell, cut_cluster
from atominfo.workflows.labelling_novel import find_novel

DATA = Path(__file__).parent / "data"
HOT, FCC = str(DATA / "cu_hot_32.extxyz"), str(DATA / "cu_fcc_108.extxyz")
K, RC, H = 16, 4.0, 0.015


@pytest.fixture(scope="module")
def ref():
    return Reference.from_files([FCC], H, k=K, cutoff=RC)


def test_the_workflow_writes_what_the_command_writes(ref, tmp_path, capsys):
    argv = ["extract", HOT, "--ref", FCC, "-k", str(K), "-c", str(RC), "--mode", "both"]
    argv += ["--dedupe", "--max", "3", "--buffer", "1.5", "--json", "-q"]
    cli_out, cli_summary = tmp_path / "cli.extxyz", tmp_path / "cli.json"
    assert main([*argv, "-o", str(cli_out), "--summary", str(cli_summary)]) == 0
    printed = json.loads(capsys.readouterr().out)
    out, summary = tmp_path / "api.extxyz", tmp_path / "api.json"
    result = extract(
        [HOT],
        ref,
        ExtractOptions(mode="both", buffer=1.5, dedupe=True, max_picks=3),
        spec=DescriptorSpec(K, RC),
        output=out,
        summary=summary,
        reference_files=[FCC],
    )
    assert out.read_bytes() == cli_out.read_bytes()
    written = json.loads(summary.read_text())
    assert written == {**json.loads(cli_summary.read_text()), "output": str(out)}
    assert printed == json.loads(cli_summary.read_text())
    assert written["input"] == [HOT] and result.output == out and result.summary == summary
    assert len(result.structures) == 6


def test_keywords_fold_into_the_value_objects(ref):
    bundled = extract(
        HOT,
        ref,
        ExtractOptions(max_picks=2, buffer=1.0),
        reading=Reading(index=":"),
        spec=DescriptorSpec(k=K, cutoff=RC),
    )
    loose = extract(HOT, ref, max_picks=2, buffer=1.0, index=":", k=K, cutoff=RC)
    assert loose.chosen == bundled.chosen and loose.to_dict() == bundled.to_dict()
    assert loose.to_dict()["input"] == [HOT] and loose.to_dict()["output"] is None
    # a keyword overrides its field of a bundle given beside it
    assert extract(HOT, ref, ExtractOptions(max_picks=2), max_picks=1, k=K, cutoff=RC).chosen == [
        bundled.chosen[0]
    ]
    novel = find_novel(HOT, ref, k=K, cutoff=RC, index="0")
    assert len(novel) == len(find_novel(HOT, ref, spec=DescriptorSpec(K, RC)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'buffr'"):
        extract(HOT, ref, buffr=1.0)
    with pytest.raises(InputError, match="k must be"):
        find_novel(HOT, ref, k=1)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(mode="sphere"), "extract_mode must be one of"),
        (dict(buffer=-1.0), "buffer must be"),
        (dict(vacuum=0.0), "vacuum must be"),
        (dict(max_picks=0), "max_picks must be"),
        (dict(top=0), "top must be"),
        (dict(duplicate_distance=-1.0), "duplicate_distance must be"),
        (dict(h=0.0), "bandwidth must be"),
    ],
)
def test_extract_options_are_validated_when_made(bad, message):
    with pytest.raises(InputError, match=message):
        ExtractOptions(**bad)
    options = ExtractOptions(buffer="1.5", max_picks="3")  # text, as on the command line
    assert options.buffer == 1.5 and options.max_picks == 3
    with pytest.raises(AttributeError):
        options.buffer = 2.0  # type: ignore[misc]


def test_outputs_are_all_or_none(ref, tmp_path):
    out, summary = tmp_path / "cand.extxyz", tmp_path / "missing" / "cand.json"
    with pytest.raises(InputError, match="output directory does not exist"):
        extract(HOT, ref, k=K, cutoff=RC, output=out, summary=summary)
    assert not out.exists()
    with pytest.raises(InputError, match="same file as the input"):
        extract(HOT, ref, k=K, cutoff=RC, output=HOT, summary=tmp_path / "s.json")
    # a failure after the scoring pass (a cut-out refused) leaves no file either
    with pytest.raises(InputError, match="would hold"):
        extract(HOT, ref, k=K, cutoff=RC, buffer=60.0, output=out, summary=tmp_path / "s.json")
    assert sorted(os.listdir(tmp_path)) == []


def test_a_cut_out_too_large_to_label_is_refused_before_it_is_built():
    atoms = rattled_fcc_cu(3, 0.05, seed=1)
    limit = f"{params.MAX_CUT_ATOMS:,}"
    started = time.perf_counter()
    with pytest.raises(InputError, match=rf"would hold about [\d,]+ atoms, more than the {limit}"):
        cut_cluster(atoms, 0, 50.0, 2.0)
    assert time.perf_counter() - started < 5.0  # estimated from the density, not built
    # a cell taller than the source's is the source cell: nothing to refuse
    assert len(cut_cell(atoms, 0, 50.0, 2.0)) == len(atoms)
    # without a density (a slab), the images are counted up to the limit
    slab = atoms.copy()
    slab.pbc = (True, True, False)
    with pytest.raises(InputError, match=f"would hold more than the {limit} atoms allowed"):
        cut_cluster(slab, 0, 50.0, 100.0)
    assert len(cut_cluster(atoms, 0, 5.0, 2.0)) < params.MAX_CUT_ATOMS


def test_the_range_end_cutoff_is_refused_in_one_clean_line(tmp_path, capsys):
    out = tmp_path / "cand.extxyz"
    assert main(["extract", HOT, "--ref", FCC, "-o", str(out), "-q", "--cutoff=50.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would hold about" in err[0] and "atoms allowed" in err[0]
    assert not out.exists()


def test_the_centre_check_describes_one_atom_to_the_last_bit():
    atoms = ase.io.read(HOT)
    cluster = cut_cluster(atoms, 5, RC, 3.0)
    for k in (4, K):
        full = structure_descriptors(cluster, k, RC)[0]
        np.testing.assert_array_equal(centre_descriptor(cluster, k, RC), full)
    cell = cut_cell(atoms, 5, RC, 1.0)
    np.testing.assert_array_equal(
        centre_descriptor(cell, K, RC), structure_descriptors(cell, K, RC)[0]
    )
