"""The command line's contract, tested on cases generated from its own parsers.

For every command and option: exit 0 on success; 2 on any bad input, bad
option value, usage error or environmental failure, with exactly one line
``atominfo: error: ...`` on stderr naming the option, file, frame or atom;
never a traceback, exit 1 or a signal; never a hang; inputs unchanged; no
leftover file after an error, and only the outputs asked for after success.

Cases are generated: bad option values from each option's `atominfo.params`
constraint (found through ``parser._actions``), bad files from valid seeds
(tests/data and a hand-written LAMMPS dump), bad output paths for every
output option. Most run in this process through `atominfo.cli.main` (fast); a
seeded sample runs again through ``python -m atominfo``, as does the
kill-and-resume test. Random choices are seeded (hypothesis derandomized),
so every run checks the same cases.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from atominfo import params
from atominfo.cli import COMMANDS, UsageError

from .contract import badfiles
from .contract.cases import (
    BASE,
    BASE_OUTPUT_DESTS,
    BASE_OUTPUTS,
    INPUT_SLOTS,
    OUTPUT_SUFFIXES,
    base_argv,
    fill,
    make_inputs,
)
from .contract.cli import (
    COMPANIONS,
    FREE_TEXT,
    INPUT_DESTS,
    ONCE_ENDS,
    OUTPUT_DESTS,
    RUN_LEVEL_BAD,
    bad_values,
    options_of,
    parser_of,
    range_ends,
    unrun_reason,
)
from .contract.run import COUNTS, Expect, check, count, run_inprocess, run_subprocess, snapshot

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PARSE_SECONDS = 2.0  # an option refused by argparse: no work at all
RUN_SECONDS = 60.0  # any in-process run (tiny inputs)
SUBPROCESS_SECONDS = 60.0
# no shrinking: a failure is reported as found, so a failing run stays as short as a passing one
HYPOTHESIS = settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module", autouse=True)
def report_case_counts(request):
    """Print how many generated cases ran, by kind, after the module."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and COUNTS:
        total = sum(COUNTS.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"cli contract: {total} generated command lines run ({detail})")


# -- cases -------------------------------------------------------------------------------


@dataclass
class Case:
    """One command line: `build(directory)` creates its files and returns
    (argv without 'atominfo', Expect, input paths, files that must not be read)."""

    id: str
    build: Callable
    kind: str


def run_case(case: Case, directory: Path, runner: str = "inprocess", timeout=None):
    directory.mkdir(parents=True, exist_ok=True)
    argv, expect, inputs, refuse = case.build(directory)
    before = snapshot(directory)
    if runner == "inprocess":
        result = run_inprocess(argv, directory, timeout or RUN_SECONDS, refuse_reading=refuse)
    else:
        result = run_subprocess(argv, directory, timeout or SUBPROCESS_SECONDS)
    after = snapshot(directory)
    count(f"{case.kind} ({runner})")
    check(result, expect, before, after, inputs)
    return result


def _names(opt) -> tuple:
    words = [re.escape(n) for n in opt.names] + [rf"\b{re.escape(opt.dest)}\b"]
    if isinstance(opt.action.metavar, str):
        words.append(rf"\b{re.escape(opt.action.metavar)}\b")
    return tuple(words)


def _input_paths(inputs: dict) -> list[Path]:
    return list(inputs.values())


def option_value_cases(later: int = 4) -> list[Case]:
    """Bad values of every option with a value, of every command: all of them where
    an option (flag and constraint) first appears, a seeded sample of `later` where
    another command shares it (the same parsing code)."""
    rng = random.Random(5)
    seen = set()
    cases = []
    for command in COMMANDS:
        for opt in options_of(command):
            values = bad_values(opt)
            key = (opt.flag, opt.kind, opt.constraint)
            if key in seen:
                values = rng.sample(values, min(later, len(values)))
            seen.add(key)
            for value in values:
                argparse_level = opt.kind != "text"

                def build(d, command=command, opt=opt, value=value, argparse_level=argparse_level):
                    inputs = make_inputs(d)
                    argv = base_argv(command, d, inputs) + [f"{opt.flag}={value}"]
                    expect = Expect(
                        codes=(2,),
                        names=[_names(opt)],
                        max_seconds=PARSE_SECONDS if argparse_level else None,
                    )
                    return argv, expect, _input_paths(inputs), ()

                kind = "bad option value" if argparse_level else "bad option value (run)"
                cases.append(Case(f"{command} {opt.flag}={value!r}", build, kind))
    return cases


def usage_error_cases() -> list[Case]:
    """Unknown options, options missing their value, required arguments left out."""
    cases = []
    for command in COMMANDS:

        def unknown(d, command=command):
            inputs = make_inputs(d)
            return (
                base_argv(command, d, inputs) + ["--no-such-option"],
                Expect(codes=(2,), names=[r"--no-such-option"], max_seconds=PARSE_SECONDS),
                _input_paths(inputs),
                (),
            )

        cases.append(Case(f"{command} --no-such-option", unknown, "usage error"))
        for opt in options_of(command):
            if opt.kind == "flag" or not opt.flag:
                continue

            def no_value(d, command=command, opt=opt):
                inputs = make_inputs(d)
                return (
                    base_argv(command, d, inputs) + [opt.flag],
                    Expect(codes=(2,), names=[_names(opt)], max_seconds=PARSE_SECONDS),
                    _input_paths(inputs),
                    (),
                )

            cases.append(Case(f"{command} {opt.flag} <no value>", no_value, "usage error"))
        required = [o for o in options_of(command) if o.required]
        for opt in required:

            def drop(d, command=command, opt=opt):
                inputs = make_inputs(d)
                argv = base_argv(command, d, inputs)
                if opt.flag:  # a required option: drop it and its value
                    i = next(i for i, a in enumerate(argv) if a in opt.names)
                    argv = argv[:i] + argv[i + 2 :]
                else:  # a positional: keep only the options
                    argv = [command] + [
                        a for i, a in enumerate(argv[1:], 1) if not _is_positional_value(argv, i)
                    ]
                return (
                    argv,
                    Expect(codes=(2,), names=[_names(opt)], max_seconds=PARSE_SECONDS),
                    _input_paths(inputs),
                    (),
                )

            cases.append(Case(f"{command} without {opt.flag or opt.dest}", drop, "usage error"))
    return cases


def _is_positional_value(argv, i) -> bool:
    """Whether argv[i] is a positional (not an option nor an option's value)."""
    a = argv[i]
    if a.startswith("-"):
        return False
    prev = argv[i - 1] if i > 1 else ""
    if prev.startswith("-") and "=" not in prev:
        command = argv[0]
        parser, _ = parser_of(command)
        action = parser._option_string_actions.get(prev)
        if action is not None and action.nargs != 0:
            return False
    return True


def range_end_cases() -> list:
    """Every numeric option of every command at both ends of its declared range
    (`range_ends`): a finite answer or one clean error line, never an internal
    error, a traceback or a hang. The error need not name the option: at a range
    end the data may be what is refused (dH beyond float64 at a tiny bandwidth).

    An end in ONCE_ENDS runs in the first command offering it; one in UNRUN_ENDS
    is listed as skipped, with its reason."""
    cases = []
    once_seen = set()
    for command in COMMANDS:
        for opt in options_of(command):
            for value in range_ends(opt):
                if (opt.flag, value) in ONCE_ENDS:
                    if (opt.flag, value) in once_seen:
                        continue
                    once_seen.add((opt.flag, value))
                extra, extra_outputs = COMPANIONS.get((command, opt.dest), ([], ()))

                def build(
                    d, command=command, opt=opt, value=value, extra=extra, outs=extra_outputs
                ):
                    inputs = make_inputs(d)
                    argv = base_argv(command, d, inputs) + [f"{opt.flag}={value}"]
                    argv += fill(extra, {"dir": str(d)})
                    outputs = tuple(BASE_OUTPUTS.get(command, ())) + outs
                    return argv, Expect(codes=(0, 2), outputs=outputs), _input_paths(inputs), ()

                case = Case(f"{command} {opt.flag}={value}", build, "range end")
                reason = unrun_reason(opt, value)
                marks = [pytest.mark.skip(reason=f"not run: {reason}")] if reason else []
                cases.append(pytest.param(case, id=case.id, marks=marks))
    return cases


def bad_file_cases(sample_ref: int = 6) -> list[Case]:
    """Every bad file in the first input slot of every reading command; a seeded
    sample of them in the other slots (--ref)."""
    rng = random.Random(7)
    cases = []
    for command, slots in INPUT_SLOTS.items():
        has_type_map = any(o.dest == "type_map" for o in options_of(command))
        for n, (placeholder, dest) in enumerate(slots):
            names = [k for k in badfiles.ALL_CASES if has_type_map or not k.startswith("lammps")]
            if n > 0:
                names = sorted(rng.sample(names, min(sample_ref, len(names))))
            for name in names:

                def build(d, command=command, placeholder=placeholder, name=name):
                    inputs = make_inputs(d)
                    bad = badfiles.write_case(d, name)
                    argv = base_argv(command, d, inputs, **{placeholder: bad})
                    if name.startswith("lammps"):
                        argv += ["--type-map", "1=Cu"]
                    must = badfiles.ALL_CASES[name][2]
                    names_ = [re.escape(bad.name)] + ([must] if must else [])
                    return (
                        argv,
                        Expect(codes=(2,), names=names_),
                        _input_paths(inputs) + [bad],
                        (),
                    )

                cases.append(Case(f"{command} {dest}={name}", build, "bad file"))
    return cases


def _output_options(command):
    return [o for o in options_of(command) if o.kind == "path" and o.dest in OUTPUT_DESTS]


def _has_format(command) -> bool:
    return any(o.dest == "format" for o in options_of(command))


def bad_output_cases() -> list[Case]:
    """Every bad output path of every output option: each must be refused before any
    input is read, leaving the directory as it was."""
    cases = []
    for command in COMMANDS:
        outs = _output_options(command)
        if not outs:
            continue
        first = INPUT_SLOTS[command][0][0]
        ref = next((p for p, dest in INPUT_SLOTS[command] if dest == "ref"), None)
        for opt in outs:
            suffixes = OUTPUT_SUFFIXES[(command, opt.dest)]
            s = suffixes[0]

            def make(
                variant, command=command, opt=opt, s=s, suffixes=suffixes, first=first, ref=ref
            ):
                def build(d):
                    inputs = make_inputs(d)
                    replace, extra, inputs_too = {}, [], []
                    src = inputs[first]
                    if variant == "same_as_input":
                        out = src
                    elif variant == "same_as_input_renamed":
                        out = d / f"data{s}"
                        shutil.copyfile(src, out)
                        replace[first], extra = out, ["--format", "extxyz"]
                        inputs_too.append(out)
                    elif variant == "same_as_ref_renamed":
                        out = d / f"refdata{s}"
                        shutil.copyfile(inputs[ref], out)
                        replace[ref], extra = out, ["--format", "extxyz"]
                        inputs_too.append(out)
                    elif variant == "symlink_to_input":
                        out = d / f"link{s}"
                        out.symlink_to(src.name)
                    elif variant == "symlink_elsewhere_to_input":
                        (d / "sub").mkdir()
                        out = d / "sub" / f"link{s}"
                        out.symlink_to(src)
                    elif variant == "hardlink_to_input":
                        out = d / f"hard{s}"
                        os.link(src, out)
                    elif variant == "input_via_symlink":
                        link = d / "in_link.extxyz"
                        link.symlink_to(src.name)
                        replace[first], out = link, src
                    elif variant == "unknown_suffix":
                        out = d / "out.txt"
                    elif variant == "no_suffix":
                        out = d / "out"
                    elif variant == "missing_directory":
                        out = d / "no_such_dir" / f"out{s}"
                    elif variant == "directory":
                        out = d / f"outdir{s}"
                        out.mkdir()
                    elif variant == "unwritable_directory":
                        (d / "ro").mkdir()
                        out = d / "ro" / f"out{s}"
                        os.chmod(d / "ro", 0o555)
                    else:
                        raise AssertionError(variant)
                    argv = base_argv(command, d, inputs, **replace) + extra + [opt.flag, str(out)]
                    names = [
                        (
                            re.escape(out.name),
                            re.escape(src.name),
                            re.escape(Path(replace.get(first, src)).name),
                        )
                    ]
                    refuse = _input_paths(inputs) + inputs_too
                    return argv, Expect(codes=(2,), names=names), refuse, refuse

                return build

            variants = [
                "same_as_input",
                "symlink_to_input",
                "symlink_elsewhere_to_input",
                "hardlink_to_input",
                "unknown_suffix",
                "no_suffix",
                "missing_directory",
                "directory",
            ]
            if _has_format(command):
                variants.append("same_as_input_renamed")
                if ref is not None:
                    variants.append("same_as_ref_renamed")
            if ".extxyz" in suffixes:
                variants.append("input_via_symlink")
            if not IS_ROOT:
                variants.append("unwritable_directory")
            for v in variants:
                cases.append(Case(f"{command} {opt.flag} {v}", make(v), "bad output"))
        # two outputs of one run on the same path
        for a in outs:
            for b in outs:
                common = [
                    x
                    for x in OUTPUT_SUFFIXES[(command, a.dest)]
                    if x in OUTPUT_SUFFIXES[(command, b.dest)]
                ]
                if a.dest >= b.dest or not common:
                    continue

                def both(d, command=command, a=a, b=b, s=common[0]):
                    inputs = make_inputs(d)
                    out = d / f"same{s}"
                    argv = base_argv(command, d, inputs) + [a.flag, str(out), b.flag, str(out)]
                    refuse = _input_paths(inputs)
                    return argv, Expect(codes=(2,), names=[re.escape(out.name)]), refuse, refuse

                cases.append(Case(f"{command} {a.flag} = {b.flag}", both, "bad output"))

    def summary_collides(d):
        # compress's default summary is the output with .json: here an input's name
        inputs = make_inputs(d)
        data = d / "sel.json"
        shutil.copyfile(inputs["hot"], data)
        argv = base_argv("compress", d, inputs, hot=data) + ["--format", "extxyz"]
        refuse = _input_paths(inputs) + [data]
        return argv, Expect(codes=(2,), names=[re.escape("sel.json")]), refuse, refuse

    cases.append(Case("compress default --summary = an input", summary_collides, "bad output"))
    return cases


OPTION_CASES = option_value_cases()
USAGE_CASES = usage_error_cases()
RANGE_END_CASES = range_end_cases()
FILE_CASES = bad_file_cases()
OUTPUT_CASES = bad_output_cases()


def ids(cases):
    return [c.id for c in cases]


# -- the suite covers every command and option --------------------------------------------


def test_every_command_has_a_valid_base_command_line():
    assert set(BASE) == set(COMMANDS)


def test_every_option_is_covered():
    """A new option fails here until the suite knows how to generate its bad values."""
    problems = []
    for command in COMMANDS:
        for opt in options_of(command):
            where = f"{command} {opt.flag or opt.dest}"
            if opt.kind.startswith("unknown"):
                problems.append(f"{where}: {opt.kind}")
            elif opt.kind == "path":
                if opt.dest in OUTPUT_DESTS:
                    if (command, opt.dest) not in OUTPUT_SUFFIXES:
                        problems.append(f"{where}: output without suffixes in OUTPUT_SUFFIXES")
                elif opt.dest not in INPUT_DESTS:
                    problems.append(f"{where}: path neither input nor output")
                elif opt.dest != "dh" and command not in INPUT_SLOTS:
                    problems.append(f"{where}: input without INPUT_SLOTS")
            elif opt.kind == "text" and opt.dest not in RUN_LEVEL_BAD and opt.dest not in FREE_TEXT:
                problems.append(f"{where}: text option without bad values in RUN_LEVEL_BAD")
            elif opt.kind in ("typed", "bandwidths", "type_map") and not bad_values(opt):
                problems.append(f"{where}: no bad values generated")
    assert not problems, "\n".join(problems)


def test_option_types_name_their_constraint():
    """Typed options are named after a params constraint, so their range is known."""
    for command in COMMANDS:
        for opt in options_of(command):
            if opt.kind == "typed":
                assert opt.constraint in params.CONSTRAINTS


# -- positive controls: the base command lines succeed -------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
def test_base_command_line_succeeds(command, tmp_path):
    def build(d):
        inputs = make_inputs(d)
        return (
            base_argv(command, d, inputs),
            Expect(codes=(0,), outputs=tuple(BASE_OUTPUTS.get(command, ()))),
            _input_paths(inputs),
            (),
        )

    run_case(Case(command, build, "valid"), tmp_path)


@pytest.mark.parametrize("command", [c for c in COMMANDS if _output_options(c)])
def test_every_output_asked_for_is_written_and_nothing_else(command, tmp_path):
    def build(d):
        inputs = make_inputs(d)
        argv = base_argv(command, d, inputs)
        outputs = dict(BASE_OUTPUT_DESTS.get(command, {}))
        for opt in _output_options(command):
            name = f"asked_{opt.dest}{OUTPUT_SUFFIXES[(command, opt.dest)][0]}"
            argv += [opt.flag, str(d / name)]
            outputs[opt.dest] = name
        outputs = set(outputs.values())
        return argv, Expect(codes=(0,), outputs=tuple(sorted(outputs))), _input_paths(inputs), ()

    run_case(Case(command, build, "valid"), tmp_path)


@pytest.mark.parametrize(
    "command", [c for c in INPUT_SLOTS if any(o.dest == "type_map" for o in options_of(c))]
)
def test_lammps_dump_seed_is_read(command, tmp_path):
    """The hand-written LAMMPS dump that the bad LAMMPS cases derive from is valid."""

    def build(d):
        inputs = make_inputs(d)
        dump = d / "traj.lammpstrj"
        dump.write_bytes(badfiles.lammps_dump(n_frames=2))
        argv = base_argv(command, d, inputs, hot=dump) + ["--type-map", "1=Cu"]
        return (
            argv,
            Expect(codes=(0,), outputs=tuple(BASE_OUTPUTS.get(command, ()))),
            _input_paths(inputs) + [dump],
            (),
        )

    run_case(Case(command, build, "valid"), tmp_path)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"]] + [[c, "--help"] for c in COMMANDS],
    ids=lambda a: " ".join(a),
)
def test_help_and_version_succeed(argv, tmp_path):
    result = run_inprocess(argv, tmp_path, PARSE_SECONDS * 5)
    count("help (inprocess)")
    check(result, Expect(codes=(0,)), {}, snapshot(tmp_path))
    assert result.stdout.strip()


# -- 1. bad option values and usage errors (in process) ------------------------------------


def run_group(cases, directory: Path) -> None:
    """Run `cases` one after the other in one directory; report every failure."""
    failures = []
    for case in cases:
        try:
            result = run_case(case, directory)
            if case.kind == "bad option value":  # refused by argparse, before any work
                parser, _ = parser_of(result.argv[0])
                try:
                    parser.parse_args(result.argv[1:])
                    failures.append(f"[{case.id}] accepted by the parser")
                except UsageError:
                    pass
        except AssertionError as exc:
            failures.append(f"[{case.id}] {exc}")
    assert not failures, f"{len(failures)} of {len(cases)} cases fail:\n" + "\n".join(failures)


def _groups(cases, key):
    out: dict = {}
    for c in cases:
        out.setdefault(key(c), []).append(c)
    return out


OPTION_GROUPS = _groups(OPTION_CASES, lambda c: c.id.split("=", 1)[0])
USAGE_GROUPS = _groups(USAGE_CASES, lambda c: c.id.split(" ", 1)[0])


@pytest.mark.parametrize("group", list(OPTION_GROUPS))
def test_bad_option_value(group, tmp_path):
    run_group(OPTION_GROUPS[group], tmp_path)


@pytest.mark.parametrize("group", list(USAGE_GROUPS))
def test_usage_error(group, tmp_path):
    run_group(USAGE_GROUPS[group], tmp_path)


def test_no_command(tmp_path):
    result = run_inprocess([], tmp_path, PARSE_SECONDS)
    count("usage error (inprocess)")
    check(result, Expect(codes=(2,), names=["no command given"]), {}, snapshot(tmp_path))


def test_unknown_command(tmp_path):
    result = run_inprocess(["no-such-command"], tmp_path, PARSE_SECONDS)
    count("usage error (inprocess)")
    check(result, Expect(codes=(2,), names=["no-such-command"]), {}, snapshot(tmp_path))


@pytest.mark.parametrize("case", RANGE_END_CASES)
def test_range_end(case, tmp_path):
    result = run_case(case, tmp_path)
    if result.returncode == 0:  # an answer, then: a finite one
        assert not re.search(r"\b(inf|nan|infinity)\b", result.stdout, re.I), (
            f"non-finite result printed by {result.command()}:\n{result.stdout}"
        )


@pytest.mark.parametrize("command", ["dh", "overlap"])  # those reporting the reference size
def test_index_selects_test_frames_not_reference_frames(command, tmp_path):
    """--index picks frames of the test files; the reference is every frame of --ref."""
    import json

    inputs = make_inputs(tmp_path)
    ref = tmp_path / "ref2.extxyz"  # two frames: 108 + 32 environments
    ref.write_bytes(inputs["fcc"].read_bytes() + inputs["hot"].read_bytes())
    sizes = {}
    for index in (":", "-1"):
        argv = base_argv(command, tmp_path, inputs, fcc=ref) + [f"--index={index}", "--json"]
        result = run_inprocess(argv, tmp_path)
        count("valid (inprocess)")
        check(result, Expect(codes=(0,)), {}, {})
        sizes[index] = json.loads(result.stdout)["reference_environments"]
    assert sizes == {":": 140, "-1": 140}


# -- 2. bad files (in process) ---------------------------------------------------------------


@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_bad_file(case, tmp_path):
    run_case(case, tmp_path)


def _fuzz_case(command, content: bytes, expect: Expect, label: str) -> Case:
    placeholder = INPUT_SLOTS[command][0][0]

    def build(d):
        inputs = make_inputs(d)
        bad = d / "fuzz.extxyz"
        bad.write_bytes(content)
        argv = base_argv(command, d, inputs, **{placeholder: bad})
        if expect.codes == (2,) and not expect.names:
            expect.names = [re.escape(bad.name)]
        return argv, expect, _input_paths(inputs) + [bad], ()

    return Case(f"{command} {label}", build, "fuzzed file")


_FUZZ_COMMANDS = list(INPUT_SLOTS)
_TRAJ = badfiles.HOT * 3  # three frames: cuts in frame 0, 1 or 2


@pytest.mark.parametrize("command", _FUZZ_COMMANDS)
@HYPOTHESIS
@given(offset=st.integers(0, len(_TRAJ) - 1))
def test_truncated_extxyz(command, offset, tmp_path_factory):
    """A trajectory cut at a random byte: frame 0 cut is an error; a later frame cut
    reads the complete frames and warns."""
    kind = badfiles.truncation_kind(_TRAJ, offset)
    outputs = tuple(BASE_OUTPUTS.get(command, ()))
    if command == "calibrate":  # errors from an extxyz without forces: never valid
        expect = Expect(codes=(2,))
    elif kind in ("empty", "first"):  # no complete frame: nothing to read (watch too)
        expect = Expect(codes=(2,))
    elif kind == "complete":
        expect = Expect(codes=(0,), outputs=outputs)
    elif kind == "later" or command == "watch":  # watch reads files still being written
        expect = Expect(
            codes=(0, 2),
            outputs=outputs,
            warn_if_success="fuzz.extxyz" if command != "watch" else None,
        )
    else:  # ambiguous: every line present
        expect = Expect(codes=(0, 2), outputs=outputs)
    run_case(
        _fuzz_case(command, _TRAJ[:offset], expect, f"cut at {offset} ({kind})"),
        tmp_path_factory.mktemp("cut"),
    )


@pytest.mark.parametrize("command", _FUZZ_COMMANDS)
@HYPOTHESIS
@given(noise=st.binary(min_size=0, max_size=400))
def test_binary_noise(command, noise, tmp_path_factory):
    run_case(
        _fuzz_case(command, noise, Expect(codes=(2,)), f"noise {noise[:16]!r}"),
        tmp_path_factory.mktemp("noise"),
    )


@pytest.mark.parametrize("command", _FUZZ_COMMANDS)
@HYPOTHESIS
@given(
    offset=st.integers(0, len(badfiles.HOT)),
    byte=st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80"]),
)
def test_non_utf8_byte(command, offset, byte, tmp_path_factory):
    content = badfiles.HOT[:offset] + byte + badfiles.HOT[offset:]
    run_case(
        _fuzz_case(command, content, Expect(codes=(2,)), f"{byte!r} at {offset}"),
        tmp_path_factory.mktemp("utf8"),
    )


# -- 3. bad output paths (in process) --------------------------------------------------------


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=ids(OUTPUT_CASES))
def test_bad_output(case, tmp_path):
    run_case(case, tmp_path)
    for root, dirs, _ in os.walk(tmp_path):  # let pytest clean up
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)


# -- 4. a seeded sample again through a real subprocess --------------------------------------


def _sample(cases, n, seed):
    return sorted(random.Random(seed).sample(cases, min(n, len(cases))), key=lambda c: c.id)


SUBPROCESS_CASES = (
    _sample([c for c in OPTION_CASES if c.kind == "bad option value"], 10, 1)
    + _sample(USAGE_CASES, 3, 2)
    + _sample(FILE_CASES, 5, 3)
    + _sample(OUTPUT_CASES, 4, 4)
)


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=ids(SUBPROCESS_CASES))
@pytest.mark.slow
def test_subprocess_sample(case, tmp_path):
    run_case(case, tmp_path, runner="subprocess")


# -- 5. kill and resume ------------------------------------------------------------------------


def _trajectory(path: Path, frames: int = 30) -> None:
    """`frames` small frames: cu_hot_32 with seeded displacements (0.05 Å)."""
    import ase.io
    import numpy as np

    base = ase.io.read(badfiles.DATA / "cu_hot_32.extxyz")
    rng = np.random.default_rng(3)
    out = []
    for _ in range(frames):
        atoms = base.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        out.append(atoms)
    ase.io.write(path, out, format="extxyz")


def _dh_argv(d: Path, resume: bool) -> list[str]:
    return [
        "dh",
        str(d / "traj.extxyz"),
        "--ref",
        str(d / "ref.extxyz"),
        "-o",
        str(d / "out.npy"),
        "--table",
        str(d / "t.csv"),
        "-q",
    ] + (["--resume"] if resume else [])


def _start(argv, cwd):
    from .contract.run import subprocess_env

    return subprocess.Popen(
        [sys.executable, "-m", "atominfo", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=subprocess_env(),
    )


def _checkpoints(d: Path) -> dict:
    """Partial outputs and checkpoints of a dh run in `d` (lock files excluded), with
    their mtimes: they change after every complete frame."""
    out = {}
    for n in os.listdir(d):
        if n.startswith(".") and n.endswith((".partial", ".resume.json")):
            try:
                out[n] = os.stat(d / n).st_mtime_ns
            except FileNotFoundError:
                pass
    return out


def _run_until(argv, d: Path, kill_at: float | None, in_loop: bool):
    """Start a run; SIGKILL it `kill_at` s after its start or, with `in_loop`, after it
    first completes a frame (its partial files or checkpoint change). Returns
    (finished, seconds from start to the first completed frame or None, seconds)."""
    initial = _checkpoints(d)
    proc = _start(argv, d)
    start = time.perf_counter()
    first_frame = None
    deadline = start + kill_at if kill_at is not None and not in_loop else None
    try:
        while proc.poll() is None:
            now = time.perf_counter()
            if first_frame is None:
                state = _checkpoints(d)
                if state and state != initial:
                    first_frame = now - start
                    if in_loop and kill_at is not None:
                        deadline = now + kill_at
            if deadline is not None and now >= deadline:
                proc.send_signal(signal.SIGKILL)
                break
            if now - start > SUBPROCESS_SECONDS:
                proc.send_signal(signal.SIGKILL)
                raise AssertionError(f"{argv} still running after {SUBPROCESS_SECONDS} s")
            time.sleep(0.002)
    finally:
        proc.wait()
        proc.communicate()
    return proc.returncode == 0, first_frame, time.perf_counter() - start


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    """SIGKILL at seeded random instants, then --resume: the outputs equal those of an
    uninterrupted run, byte for byte, and no partial or hidden file remains.

    Chain A kills once at a random instant of the whole run (start-up included);
    chain B kills three times in a row inside the frame loop (after the first
    partial file appears), resuming each time, then resumes to the end."""
    # one directory for every run: the table names the input files by their paths
    clean = tmp_path / "work"
    clean.mkdir()
    _trajectory(clean / "traj.extxyz")
    shutil.copyfile(badfiles.DATA / "cu_fcc_108.extxyz", clean / "ref.extxyz")
    inputs_before = snapshot(clean)
    finished, first_frame, seconds = _run_until(_dh_argv(clean, False), clean, None, False)
    count("kill and resume (subprocess)")
    after = snapshot(clean)
    assert finished and first_frame is not None, (
        f"the uninterrupted run failed or wrote no partial file: {sorted(after)}"
    )
    assert set(after) - set(inputs_before) == {"out.npy", "t.csv"}, sorted(after)
    expected = {n: (clean / n).read_bytes() for n in ("out.npy", "t.csv")}
    loop = max(seconds - first_frame, 0.01)

    rng = random.Random(11)
    chains = {
        "A": [(rng.uniform(0.1, 0.95) * seconds, False)],
        "B": [(rng.uniform(0.0, 0.9) * loop / 3, True) for _ in range(3)],
    }
    failures = []
    for name, kills in chains.items():
        d = clean
        for f in expected:
            (d / f).unlink(missing_ok=True)
        before = snapshot(d)
        log = []
        resume = done = False
        for instant, in_loop in kills:
            done, _, _ = _run_until(_dh_argv(d, resume), d, instant, in_loop)
            count("kill and resume (subprocess)")
            log.append(
                f"{'resumed, ' if resume else ''}killed {instant:.3f} s after "
                f"{'its first complete frame' if in_loop else 'its start'}"
                f"{' (had already finished)' if done else ''}"
            )
            resume = True
            if done:  # finished before the kill: nothing left to resume
                break
        try:
            if not done:
                result = run_subprocess(_dh_argv(d, True), d)
                count("kill and resume (subprocess)")
                check(
                    result,
                    Expect(codes=(0,), outputs=("out.npy", "t.csv")),
                    before,
                    snapshot(d),
                    [d / "traj.extxyz", d / "ref.extxyz"],
                )
            else:
                assert set(snapshot(d)) - set(before) == set(expected), sorted(snapshot(d))
            for f, data in expected.items():
                assert (d / f).read_bytes() == data, f"{f} differs from the uninterrupted run"
        except AssertionError as exc:
            failures.append(
                f"chain {name} ({'; '.join(log)}; uninterrupted run "
                f"{seconds:.2f} s, first frame complete at {first_frame:.2f} s): "
                f"{exc}"
            )
    assert not failures, "\n".join(failures)
