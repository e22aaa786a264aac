"""`extract` owns its run (outputs all or none, the same files as the command) and takes
its knobs as value objects (and their keywords)."""

import json
import os
from pathlib import Path

import pytest

from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec, Reading
from atominfo.workflows.labelling import ExtractOptions, extract
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
        extract(HOT, ref, k=K, cutoff=RC, buffer=100.0, output=out, summary=tmp_path / "s.json")
    assert sorted(os.listdir(tmp_path)) == []
