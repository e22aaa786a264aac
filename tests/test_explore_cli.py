"""`atominfo explore` and `workflows.explore_run`: snapshots, contract, resume after a kill."""

import json
import signal
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

import atominfo.runs.checkpoint as checkpoint
import atominfo.workflows.explore_run as explore_module
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.settings import Reading
from atominfo.structures.datasets import md_frames
from atominfo.workflows.explore import ExploreOptions
from atominfo.workflows.explore_run import explore_run
from tests.test_outputs_contract import Killed, KillingOs

CELL = bulk("Cu", cubic=True) * (2, 2, 2)  # 32 atoms
# Few steps at 1200 K against a 300 K reference, a target every check reaches (-5 nats).
FAST = ["--temperature", "1200", "--steps", "4", "--interval", "2", "--seed", "3", "-q"]
# A checkpoint inside every walk (at step 2), where the calculators are reset and the
# walk's state saved: what a resume continues from.
FAST += ["--target-dH", "-5", "--checkpoint-every", "2"]
OPTIONS = ExploreOptions(temperature=1200, steps=4, interval=2, seed=3, target=-5.0)
explore = partial(explore_run, checkpoint_every=2)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("explore")
    ase.io.write(d / "train.xyz", md_frames(CELL, 300.0, 3), format="extxyz")
    second = CELL.copy()
    second.rattle(0.02, seed=1)
    ase.io.write(d / "seeds.xyz", [CELL, second], format="extxyz")
    return d


@pytest.fixture(scope="module")
def clean(inputs, tmp_path_factory):
    """The bytes of an uninterrupted API run (OPTIONS)."""
    out = tmp_path_factory.mktemp("clean") / "explored.extxyz"
    result = explore(inputs / "seeds.xyz", inputs / "train.xyz", out, options=OPTIONS)
    return out.read_bytes(), result


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def cli(args, capsys):
    code = main(["explore", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_api_bytes_with_forces_bias_and_dh_apart(inputs, clean, tmp_path, capsys):
    out = tmp_path / "explored.extxyz"
    code, stdout, err = cli(
        [inputs / "seeds.xyz", "--ref", inputs / "train.xyz", "-o", out, *FAST, "--json"], capsys
    )
    assert code == 0 and err == ""  # no progress in a pipe, no warning
    assert out.read_bytes() == clean[0]
    summary = json.loads(stdout)
    result = clean[1]
    assert summary["snapshots"] == result.snapshots > 0
    assert summary["seeds"] == 2 and summary["steps"] == result.steps
    assert summary["max_dH"] == pytest.approx(result.max_dH)
    snapshots = ase.io.read(out, ":")
    assert len(snapshots) == result.snapshots
    for i, s in enumerate(snapshots):
        assert s.info["snapshot"] == i and s.info["max_dH"] >= -5.0
        assert s.info["calculator"] == "emt" and len(s.info["reference_sha256"]) == 64
        assert s.info["seed_frame"] in (0, 1) and s.info["step"] % 2 == 0
        assert s.info["weight"] == 0.1 and s.info["temperature"] == 1200.0
        assert np.isfinite(s.info["unbiased_energy"])
        # objective "max": the biased energy is E - weight x (largest dH)
        assert s.info["bias_energy"] == pytest.approx(-0.1 * s.info["max_dH"])
        forces, bias = s.arrays["unbiased_forces"], s.arrays["bias_forces"]
        assert forces.shape == bias.shape == (32, 3) and np.abs(bias).max() > 0
        assert s.arrays["dH"].max() == pytest.approx(s.info["max_dH"])
        # the bias is the weight times the novelty's gradient: never more than its cap
        assert np.linalg.norm(bias, axis=1).max() <= 1.0 + 1e-6  # (written to 8 decimals)


def test_text_summary(inputs, tmp_path, capsys):
    out = tmp_path / "e.extxyz"
    code, stdout, _ = cli(
        [inputs / "seeds.xyz", "--ref", inputs / "train.xyz", "-o", out, *FAST, "--snapshots", "1"],
        capsys,
    )
    assert code == 0
    assert "2 snapshots from 2 seed structure(s)" in stdout
    assert "largest dH reached" in stdout and "MD steps in" in stdout
    assert len(ase.io.read(out, ":")) == 2  # one per seed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
        (["--timestep", "-1"], "--timestep must be a finite number > 0"),
        (["--steps", "0"], "--steps must be an integer >= 1"),
        (["--weight", "-1"], "--weight must be a finite number >= 0"),
        (["--calculator", "nonsense"], "calculator 'nonsense': give emt, or module:name"),
        (["--calculator", "os:getcwd"], "str is not an ASE calculator"),
        (["--calculator", "no_such_module_x:EMT"], "ModuleNotFoundError"),
        (["--target-dH", "1e3"], "no snapshot reached the target of 1000 nats"),
        (["--objective", "best"], "--objective must be one of"),
        (["--resume", "--restart"], "not allowed with argument"),
    ],
)
def test_bad_options_exit_2_with_one_line(inputs, tmp_path, capsys, extra, message):
    out = tmp_path / "e.extxyz"
    code, stdout, err = cli(
        [inputs / "seeds.xyz", "--ref", inputs / "train.xyz", "-o", out, *FAST, *extra], capsys
    )
    assert code == 2 and stdout == ""
    assert err.startswith("atominfo: error: ") and err.count("\n") == 1 and message in err
    assert listing(tmp_path) == []  # nothing written, nothing hidden left


def test_bad_inputs_exit_2(inputs, tmp_path, capsys):
    seeds, ref = inputs / "seeds.xyz", inputs / "train.xyz"
    for args, message in (
        ([seeds, "--ref", ref, "-o", tmp_path / "e.npy"], "output must end in .extxyz, .xyz"),
        ([seeds, "--ref", ref, "-o", seeds], "output is the same file as the input"),
        ([tmp_path / "missing.xyz", "--ref", ref, "-o", tmp_path / "e.xyz"], "missing.xyz"),
    ):
        code, _, err = cli([*args, *FAST], capsys)
        assert code == 2 and err.startswith("atominfo: error: ") and message in err
        assert err.count("\n") == 1


def run_to_end(work: Path, inputs: Path, options=OPTIONS) -> None:
    """What a user does after a kill: run again with --resume (which starts afresh when
    the kill came before the first checkpoint, and does nothing when the run had finished)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explore(
            inputs / "seeds.xyz",
            inputs / "train.xyz",
            work / "explored.extxyz",
            options=options,
            resume=True,
        )


def test_interrupted_then_resumed_gives_the_same_bytes(inputs, clean, tmp_path):
    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 3:  # in the second seed's walk
            raise KeyboardInterrupt

    out = tmp_path / "explored.extxyz"
    with pytest.raises(KeyboardInterrupt):
        explore(
            inputs / "seeds.xyz", inputs / "train.xyz", out, options=OPTIONS, progress=interrupt
        )
    assert not out.exists() and ".explored.extxyz.resume.json" in listing(tmp_path)
    # a snapshot half-written after the last checkpoint: the resume drops it
    with open(tmp_path / ".explored.extxyz.partial", "ab") as fh:
        fh.write(b"32\nLattice=")
    # without --resume or --restart the interrupted run's work is refused, and kept
    hidden = listing(tmp_path)
    with pytest.raises(InputError, match="add --resume to continue it, or --restart"):
        explore(inputs / "seeds.xyz", inputs / "train.xyz", out, options=OPTIONS)
    # other options: refused, saying what differs, and nothing is deleted
    other = ExploreOptions(temperature=1000, steps=4, interval=2, seed=3, target=-5.0)
    # (named one by one: not the whole options of both runs)
    with pytest.raises(InputError, match=r"temperature: \S+ in the interrupted run, 1000\.0 now"):
        explore(inputs / "seeds.xyz", inputs / "train.xyz", out, options=other, resume=True)
    assert listing(tmp_path) == hidden
    done = []
    result = explore(
        inputs / "seeds.xyz",
        inputs / "train.xyz",
        out,
        options=OPTIONS,
        resume=True,
        progress=done.append,
    )
    assert result.resumed and sum(done) == clean[1].steps  # steps done before, then the rest
    assert out.read_bytes() == clean[0]
    assert listing(tmp_path) == ["explored.extxyz"]


@pytest.mark.slow
def test_killed_at_any_file_operation_resumes_to_the_same_bytes(inputs, tmp_path, monkeypatch):
    """Every file operation of the run and its checkpoint is a kill point (a SIGKILL
    simulated: nothing runs after it); killed there, killed again soon after the
    resume, then resumed to the end: the bytes of an uninterrupted run."""

    def kill_os(killer):
        monkeypatch.setattr(explore_module, "os", killer)
        monkeypatch.setattr(checkpoint, "os", killer)

    options = OPTIONS
    run_to_end(tmp_path, inputs, options)
    expected = (tmp_path / "explored.extxyz").read_bytes()
    probe = tmp_path / "probe"
    probe.mkdir()
    counter = KillingOs(at=0)
    kill_os(counter)
    run_to_end(probe, inputs, options)
    monkeypatch.undo()
    n_steps, names = counter.count, counter.names
    assert (probe / "explored.extxyz").read_bytes() == expected and n_steps > 10
    for at in range(1, n_steps + 1):
        for half in (False, True) if names[at - 1] == "write" else (False,):
            work = tmp_path / f"kill{at}{'h' if half else ''}"
            work.mkdir()
            for kill_at in (at, 1 + at // 3, None):
                killer = KillingOs(at=kill_at or 0, half=half)
                kill_os(killer)
                try:
                    run_to_end(work, inputs, options)
                except Killed:
                    pass
                finally:
                    killer.close_all()
                    monkeypatch.undo()
            assert (work / "explored.extxyz").read_bytes() == expected, (at, half)
            assert listing(work) == ["explored.extxyz"], (at, half)


@pytest.mark.slow
def test_sigkill_of_the_command_then_resume(inputs, tmp_path):
    """`atominfo explore` killed with SIGKILL at random instants, resumed with --resume."""
    import random

    args = [inputs / "seeds.xyz", "--ref", inputs / "train.xyz", *FAST, "--steps", "12"]
    command = [sys.executable, "-m", "atominfo", "explore", *map(str, args)]
    start = time.perf_counter()
    subprocess.run([*command, "-o", str(tmp_path / "clean.extxyz")], check=True)
    duration = time.perf_counter() - start
    expected = (tmp_path / "clean.extxyz").read_bytes()
    rng = random.Random(0)
    for trial in range(2):
        work = tmp_path / f"run{trial}"
        work.mkdir()
        out = str(work / "explored.extxyz")
        proc = subprocess.Popen([*command, "-o", out], stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = subprocess.run([*command, "-o", out, "--resume"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (work / "explored.extxyz").read_bytes() == expected
        assert listing(work) == ["explored.extxyz"]


def test_ctrl_c_leaves_a_resumable_checkpoint(inputs, clean, tmp_path, capsys, monkeypatch):
    from atominfo.workflows.explore import ExploreWalk

    advance, calls = ExploreWalk.advance, []

    def interrupted(walk, reset=False):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return advance(walk, reset)

    monkeypatch.setattr(ExploreWalk, "advance", interrupted)
    out = tmp_path / "explored.extxyz"
    args = [inputs / "seeds.xyz", "--ref", inputs / "train.xyz", "-o", out, *FAST]
    code, stdout, err = cli(args, capsys)
    assert code == 130 and stdout == "" and "run the same command with --resume" in err
    assert not out.exists() and ".explored.extxyz.resume.json" in listing(tmp_path)
    monkeypatch.undo()
    code, _, err = cli(args, capsys)  # neither --resume nor --restart: refused, work kept
    assert code == 2 and "add --resume to continue it, or --restart" in err
    code, _, err = cli([*args, "--resume"], capsys)
    assert code == 0 and err == ""
    assert out.read_bytes() == clean[0] and listing(tmp_path) == ["explored.extxyz"]
    code, _, err = cli([*args, "--resume"], capsys)  # finished: nothing to do, said once
    assert code == 0 and "nothing to resume" in err and out.read_bytes() == clean[0]
    code, _, _ = cli([*args, "--restart"], capsys)  # computed again: the same bytes
    assert code == 0 and out.read_bytes() == clean[0]


def test_one_seed_without_checkpoints_is_explore_in_memory(inputs, tmp_path):
    """With no checkpoint inside the walk, the file holds `explore`'s own snapshots."""
    from ase.calculators.emt import EMT

    from atominfo.reference import Reference
    from atominfo.workflows.explore import explore as explore_in_memory

    out = tmp_path / "e.extxyz"
    explore_run(
        inputs / "seeds.xyz", inputs / "train.xyz", out, options=OPTIONS, reading=Reading(index="1")
    )
    X = Reference.from_files([str(inputs / "train.xyz")], 0.015).X
    seed = ase.io.read(inputs / "seeds.xyz", index=1)
    run = explore_in_memory(seed, EMT(), X, OPTIONS)
    written = ase.io.read(out, ":")
    assert len(written) == run.n_snapshots > 0
    for a, b in zip(written, run.snapshots):
        assert a.info["step"] == b.info["step"]
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
        np.testing.assert_allclose(a.arrays["dH"], b.arrays["dH"], atol=1e-8)
        np.testing.assert_allclose(a.arrays["bias_forces"], b.arrays["bias_forces"], atol=1e-8)


def test_a_resume_with_other_seed_structures_in_memory_is_refused(inputs, tmp_path):
    def interrupt(n):
        raise KeyboardInterrupt

    out = tmp_path / "e.extxyz"
    seeds = [CELL.copy()]
    with pytest.raises(KeyboardInterrupt):
        explore(seeds, inputs / "train.xyz", out, options=OPTIONS, progress=interrupt)
    hidden = listing(tmp_path)
    moved = CELL.copy()
    moved.positions[0, 0] += 1e-9
    with pytest.raises(InputError, match="seed_structures"):
        explore([moved], inputs / "train.xyz", out, options=OPTIONS, resume=True)
    assert listing(tmp_path) == hidden
