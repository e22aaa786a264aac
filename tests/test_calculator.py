"""`atominfo.NoveltyCalculator`: any ASE calculator with dH in its results, and what survives ASE."""

import json

import ase.io
import numpy as np
import pytest
from ase import units
from ase.calculators.calculator import all_properties
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.trajectory import Trajectory
from ase.md.verlet import VelocityVerlet

import atominfo
from atominfo.errors import InputError
from atominfo.structures.datasets import rattled_fcc_cu
from atominfo.workflows.monitor_calculator import NOVELTY_PROPERTIES, NoveltyHalt


@pytest.fixture(scope="module")
def reference():
    return atominfo.Reference.from_structures(
        [rattled_fcc_cu(3, 0.05, seed=s) for s in range(4)], h=0.015
    )


@pytest.fixture(scope="module")
def mixed():
    """108 Cu atoms of which some, not all, lie outside the reference's domain."""
    return rattled_fcc_cu(3, 0.08, seed=11)


def exact_dH(reference, atoms):
    return reference.delta_entropy(atominfo.descriptors(atoms, reference.k, reference.cutoff))


def test_results_are_the_exact_dh_of_the_novel_atoms(reference, mixed):
    atoms = mixed.copy()
    atoms.calc = atominfo.NoveltyCalculator(EMT(), reference)
    exact = exact_dH(reference, atoms)
    novel = exact > 0
    assert 0 < novel.sum() < len(atoms)  # the case that needs both paths
    results = atoms.calc.get_property("dH", atoms), atoms.calc.results
    dH, res = results
    assert np.array_equal(np.isfinite(dH), novel)  # NaN: inside, dH <= 0 not computed
    # within dh_tol above exact, never below (beyond rounding)
    assert np.all(dH[novel] - exact[novel] >= -(1e-9 + 1e-13 * np.abs(exact[novel])))
    assert np.all(dH[novel] - exact[novel] <= 1e-9 + 1e-9 * np.abs(exact[novel]))
    assert res["novelty"] == pytest.approx(novel.mean())
    assert res["max_dH"] == pytest.approx(exact.max(), abs=1e-8)


def test_dh_all_scores_every_atom(reference, mixed):
    atoms = mixed.copy()
    atoms.calc = atominfo.NoveltyCalculator(EMT(), reference, dh="all")
    atoms.get_forces()
    exact = exact_dH(reference, atoms)
    np.testing.assert_allclose(atoms.calc.results["dH"], exact, rtol=1e-9, atol=1e-9)
    assert atoms.calc.last.mean_dH == pytest.approx(exact.mean())


def test_p_values_are_the_references_conformal_p_values(reference, mixed, tmp_path):
    atoms = mixed.copy()
    atoms.calc = atominfo.NoveltyCalculator(EMT(), reference, p_values=True)
    p = atoms.calc.get_property("p_value", atoms)
    Y = atominfo.descriptors(atoms, reference.k, reference.cutoff)
    np.testing.assert_array_equal(p, reference.p_values(Y))
    assert np.all((p > 0) & (p <= 1))
    ase.io.write(tmp_path / "p.extxyz", atoms, format="extxyz")
    back = ase.io.read(tmp_path / "p.extxyz", format="extxyz")
    np.testing.assert_allclose(back.arrays["p_value"], p, rtol=0, atol=5e-9)


def test_properties_come_from_the_wrapped_calculator_unchanged(reference, mixed):
    atoms, bare = mixed.copy(), mixed.copy()
    atoms.calc, bare.calc = atominfo.NoveltyCalculator(EMT(), reference), EMT()
    assert atoms.get_potential_energy() == bare.get_potential_energy()
    assert np.array_equal(atoms.get_forces(), bare.get_forces())
    assert np.array_equal(atoms.get_stress(), bare.get_stress())
    assert set(atoms.calc.implemented_properties) == {
        *EMT.implemented_properties,
        "dH",
        "novelty",
        "max_dH",
    }


def test_one_check_per_structure_and_no_stale_results(reference, mixed):
    atoms = mixed.copy()
    calc = atominfo.NoveltyCalculator(EMT(), reference)
    atoms.calc = calc
    before = atoms.get_potential_energy()
    atoms.get_forces(), atoms.get_stress()
    assert calc.checks == 1
    atoms.positions[0] += 0.05
    # novelty first: the wrapped results of the previous structure must not be reused
    calc.get_property("novelty", atoms)
    assert calc.checks == 2
    fresh = atoms.copy()
    fresh.calc = EMT()
    after = atoms.get_potential_energy()
    assert after == pytest.approx(fresh.get_potential_energy(), rel=1e-12)
    assert abs(after - before) > 1e-3
    assert calc.checks == 2


def md(reference, temperature, **options):
    atoms = rattled_fcc_cu(3, 0.02, seed=3)
    atoms.calc = atominfo.NoveltyCalculator(EMT(), reference, **options)
    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution for this name
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(0))
    return atoms, VelocityVerlet(atoms, 5 * units.fs)


def test_halt_by_exception_carries_the_step_and_atoms(reference):
    atoms, dyn = md(reference, 3000, max_novelty=0.2)
    with pytest.raises(NoveltyHalt) as caught:
        dyn.run(200)
    halt = caught.value
    assert isinstance(halt, InputError)  # atominfo's error base
    assert halt.record.novelty > 0.2 and halt.step == halt.record.step > 0
    assert halt.step == atoms.calc.last.step and dyn.nsteps < 200
    assert str(halt).startswith(f"<calculator>: frame {halt.step}: atom ")
    # a copy of the structure at the halt, with its novelty, unchanged by what follows
    np.testing.assert_array_equal(halt.atoms.positions, atoms.positions)
    np.testing.assert_array_equal(halt.atoms.arrays["dH"], halt.dH)
    assert halt.atoms.info["novelty"] == halt.record.novelty
    assert halt.atom == int(np.nanargmax(halt.dH))


@pytest.mark.slow
def test_callback_is_told_and_the_run_goes_on(reference):
    seen = []
    atoms, dyn = md(reference, 3000, max_dH=0.0, on_alarm=lambda r, dH: seen.append((r, dH)))
    dyn.run(12)
    assert seen and atoms.calc.checks == 13  # one check per step and the initial forces
    assert all(r.max_dH > 0 and dH.shape == (108,) for r, dH in seen)
    assert [r.step for r, _ in seen] == sorted({r.step for r, _ in seen})


def test_novelty_survives_extxyz_trajectory_and_single_point(reference, mixed, tmp_path):
    atoms = mixed.copy()
    atoms.calc = atominfo.NoveltyCalculator(EMT(), reference)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    dH, novelty, max_dH = (atoms.calc.results[k] for k in NOVELTY_PROPERTIES)

    # extxyz: per-atom dH (NaN included; ASE writes 8 decimals), both scalars, and
    # ASE's own results
    ase.io.write(tmp_path / "a.extxyz", atoms, format="extxyz")
    back = ase.io.read(tmp_path / "a.extxyz", format="extxyz")
    np.testing.assert_allclose(back.arrays["dH"], dH, rtol=0, atol=5e-9)
    assert np.array_equal(np.isnan(back.arrays["dH"]), np.isnan(dH))
    assert back.info["novelty"] == novelty and back.info["max_dH"] == max_dH
    assert back.get_potential_energy() == pytest.approx(energy)
    np.testing.assert_allclose(back.get_forces(), forces, rtol=0, atol=5e-9)

    # ASE trajectory: the scalars (info) and ASE's own results; the calculator's
    # parameters are stored as JSON
    with Trajectory(tmp_path / "a.traj", "w") as traj:
        traj.write(atoms)
    back = ase.io.read(tmp_path / "a.traj")
    assert back.info["novelty"] == novelty and back.info["max_dH"] == max_dH
    assert back.get_potential_energy() == pytest.approx(energy)
    assert back.calc.name == "atominfo-novelty"
    json.dumps(atoms.calc.todict())

    # SinglePointCalculator: built from ASE's properties (as ASE's writers do), the
    # novelty stays on the atoms; ASE refuses any other result name
    standard = {k: v for k, v in atoms.calc.results.items() if k in all_properties}
    atoms.calc = SinglePointCalculator(atoms, **standard)
    np.testing.assert_array_equal(atoms.arrays["dH"], dH)
    assert atoms.info["max_dH"] == max_dH
    with pytest.raises(AssertionError):
        SinglePointCalculator(atoms, dH=dH)


def test_md_trajectory_written_every_step_keeps_the_novelty(reference, tmp_path):
    atoms, dyn = md(reference, 300)
    path = tmp_path / "md.extxyz"
    dyn.attach(lambda: ase.io.write(path, atoms, format="extxyz", append=True), interval=2)
    dyn.run(6)
    frames = ase.io.read(path, index=":", format="extxyz")
    assert len(frames) == 4
    for frame in frames:
        dH = exact_dH(reference, frame)
        assert np.array_equal(np.isfinite(frame.arrays["dH"]), dH > 0)
        assert frame.info["novelty"] == pytest.approx(np.mean(dH > 0))
        # no atom outside: max dH not determined, NaN, kept as NaN by the file
        assert np.isnan(frame.info["max_dH"]) == (frame.info["novelty"] == 0)
    assert any(np.isnan(frame.info["max_dH"]) for frame in frames)  # the case is met


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda ref: atominfo.NoveltyCalculator(EMT(), "train.xyz"),
            "reference must be a Reference",
        ),
        (
            lambda ref: atominfo.NoveltyCalculator(EMT(), atominfo.Reference(ref.X, [0.01, 0.02])),
            "single bandwidth",
        ),
        (lambda ref: atominfo.NoveltyCalculator(object(), ref), "calc must be an ASE calculator"),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, dh="some"), "dh must be one of"),
        (
            lambda ref: atominfo.NoveltyCalculator(EMT(), ref, dh="none"),
            "dh must be 'novel' or 'all'",
        ),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, max_novelty=2), "max_novelty"),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, max_dH=-1), "pass dh='all'"),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, on_alarm="print"), "on_alarm"),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, k=8), "width"),
        (lambda ref: atominfo.NoveltyCalculator(EMT(), ref, p_values="yes"), "p_values"),
    ],
)
def test_bad_construction_is_an_input_error(reference, build, message):
    with pytest.raises(InputError, match=message):
        build(reference)


def test_structures_the_reference_cannot_judge_are_located_errors(reference, mixed):
    calc = atominfo.NoveltyCalculator(EMT(), reference)
    alloy = mixed.copy()
    alloy.symbols[7] = "Ni"
    with pytest.raises(
        InputError,
        match=r"^<calculator>: frame 0: atom 7: element Ni is not in the reference \(Cu\)",
    ):
        calc.get_property("dH", alloy)
    broken = mixed.copy()
    broken.positions[5, 1] = np.nan
    with pytest.raises(InputError, match=r"^<calculator>: frame 0: atom 5: coordinate is NaN"):
        calc.get_property("dH", broken)
    crowded = mixed.copy()
    crowded.positions[9] = crowded.positions[4]
    with pytest.raises(
        InputError, match=r"^<calculator>: frame 0: atom 4: two atoms at the same position"
    ):
        calc.get_property("dH", crowded)
    assert calc.checks == 0  # nothing recorded for refused structures


def test_one_blas_thread_limits_and_restores_like_threadpool_limits():
    # the cached controller behind every engine call (its start-up cost was a third
    # of a 108-atom check)
    from threadpoolctl import threadpool_info, threadpool_limits

    from atominfo.engine.threads import one_blas_thread

    def blas():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    with threadpool_limits(2, user_api="blas"):
        outside = blas()
        for _ in range(2):  # the second use goes through the kept controller
            with one_blas_thread():
                assert set(blas()) == {1}
            assert blas() == outside
