"""Gradient moves of `atominfo generate` (``moves="gradient"``): the move raises the
objective to first order (against finite differences), constraints hold on every
candidate, seeded runs reproduce byte for byte, the option is validated, and the
Python and command-line paths write the same bytes."""

import ase.io
import numpy as np
import pytest

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.workflows.generate import generate, mass_density, min_distance, write_candidates
from atominfo.workflows.generate_campaign import CampaignLoop
from atominfo.workflows.generate_constraints import constraints_for
from atominfo.workflows.generate_gradient import GradientMover, moved
from atominfo.workflows.generate_objective import entropy_gain
from atominfo.workflows.generate_options import GenerateOptions

from .conftest import DATA

HOT = DATA / "cu_hot_32.extxyz"
FCC = DATA / "cu_fcc_108.extxyz"


@pytest.fixture(scope="module")
def ref_X():
    return atominfo.descriptors(HOT)


def _mover(ref_X, objective: str, target=(1.0, 5.0)) -> GradientMover:
    options = GenerateOptions(moves="gradient", objective=objective, target=target)
    atoms = ase.io.read(HOT)
    loop = CampaignLoop([(atoms, str(HOT), 0)], [constraints_for(atoms, 5.0)], ref_X, 0.015, 32,
                        5.0, options)  # fmt: skip
    assert isinstance(loop.mover, GradientMover)
    return loop.mover


def _away_from_reference(seed: int):
    atoms = ase.io.read(HOT)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.08, size=atoms.positions.shape)
    return atoms


@pytest.mark.parametrize("objective", ["target", "entropy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_move_raises_the_objective_to_first_order(objective, seed, ref_X):
    """Along the move's direction (no noise), the objective's central finite difference
    equals the predicted first-order rise g . u + S : e > 0, positions and strain together."""
    mover = _mover(ref_X, objective, target=(1e3, 2e3))  # far above: ascend the largest dH
    w = mover.start(_away_from_reference(seed))
    g, s = mover.ascent(w)
    u, e = g / np.linalg.norm(g), s / np.linalg.norm(s)
    rise = float((g * u).sum() + (s * e).sum())
    assert rise > 0

    def value(t: float) -> float:
        trial = mover.start(moved(w.atoms, t * u, t * e))
        if objective == "target":
            return float((-trial.L).max())
        ref_self = mover.sums.log_sums(mover.sums.rows())
        return entropy_gain(trial.X, trial.L, mover.sums, ref_self)

    t = 1e-5
    finite = (value(t) - value(-t)) / (2 * t)
    assert finite == pytest.approx(rise, rel=1e-4)
    assert value(1e-3) > value(0.0)


def test_flat_energy_falls_back_to_a_monte_carlo_move(ref_X):
    """A structure in the reference has no direction (its gradient is rounding): the move
    is the Monte Carlo one (one atom, or the cell), never rounding blown up to a step."""
    mover = _mover(ref_X, "target")
    atoms = ase.io.read(HOT)
    w = mover.start(atoms)
    g, s = mover.ascent(w)
    assert np.abs(g).max() < 1e-8 and np.abs(s).max() < 1e-8
    for seed in range(5):
        trial = mover.propose(w, constraints_for(atoms, 5.0), np.random.default_rng(seed))
        if trial is not None and np.array_equal(trial.atoms.cell, atoms.cell):
            assert (trial.atoms.positions != atoms.positions).any(axis=1).sum() == 1


@pytest.mark.parametrize("objective", ["target", "entropy"])
def test_constraints_hold_on_every_candidate(objective, ref_X):
    """Large collective steps and strains push against every constraint."""
    campaign = generate(
        HOT,
        ref_X,
        3,
        steps=40,
        seed=3,
        moves="gradient",
        objective=objective,
        step_size=0.5,
        strain=0.05,
        noise=0.5,
        target=(2.0, 400.0),
        min_distance=1.3,
        density=(8.5, 9.4),
    )
    assert campaign.candidates
    for atoms in campaign.candidates:
        assert min_distance(atoms) >= 1.3
        assert 8.5 <= mass_density(atoms) <= 9.4
        assert atoms.get_chemical_formula() == "Cu32"
        assert atoms.info["moves"] == "gradient" and atoms.info["noise"] == 0.5


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, ref_X):
    out = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        c = generate(HOT, ref_X, 2, steps=40, seed=seed, moves="gradient", generations=2, noise=0.2)
        write_candidates(c, tmp_path / f"{name}.extxyz")
        out.append((tmp_path / f"{name}.extxyz").read_bytes())
    assert out[0] == out[1]
    assert out[0] != out[2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"moves": "newton"}, "moves must be one of"), ({"noise": -0.1}, "noise")],
)
def test_bad_options_are_input_errors(kwargs, match, ref_X):
    with pytest.raises(InputError, match=match):
        generate(HOT, ref_X, 1, **kwargs)


@pytest.mark.parametrize(
    ("flag", "value"), [("--moves", "newton"), ("--noise", "-1"), ("--noise", "nan")]
)
def test_cli_refuses_bad_values_with_exit_2(flag, value, tmp_path, capsys):
    out = tmp_path / "c.extxyz"
    code = main(["generate", str(HOT), "--ref", str(HOT), "-o", str(out), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flag in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_python_and_cli_write_the_same_bytes(tmp_path, ref_X):
    args = dict(steps=40, seed=4, moves="gradient", generations=2, noise=0.2)
    write_candidates(generate(HOT, [HOT], 2, h=0.015, **args), tmp_path / "py.extxyz")
    cli = tmp_path / "cli.extxyz"
    code = main(
        ["generate", str(HOT), "--ref", str(HOT), "-n", "2", "--steps", "40", "--seed", "4"]
        + ["--moves", "gradient", "--generations", "2", "--noise", "0.2", "--bandwidth", "0.015"]
        + ["-o", str(cli), "-q"]
    )
    assert code == 0
    assert cli.read_bytes() == (tmp_path / "py.extxyz").read_bytes()
