"""Small built-in datasets made on the fly with ASE's EMT potential (no downloads).

Used by the demo, the tests and the benchmarks: an FCC Cu crystal sampled by
Langevin MD at a given temperature, a Cu melt, and L1_2 Cu3Au.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.build import bulk

CU_LATTICE = 3.61  # Å, EMT Cu


def fcc_cu(repeat=3, lattice: float = CU_LATTICE) -> Atoms:
    """A perfect cubic FCC Cu supercell: `repeat` (int or 3 ints) cubic 4-atom cells."""
    reps = (repeat,) * 3 if np.ndim(repeat) == 0 else tuple(repeat)
    return bulk("Cu", "fcc", a=lattice, cubic=True).repeat(reps)


def rattled_fcc_cu(repeat, sigma: float = 0.1, seed: int = 0, lattice: float = CU_LATTICE) -> Atoms:
    """FCC Cu with Gaussian displacements of `sigma` Å: a cheap stand-in for a thermal crystal."""
    atoms = fcc_cu(repeat, lattice)
    atoms.rattle(sigma, seed=seed)
    return atoms


def cu3au(repeat=2, ordered: bool = True, seed: int = 0, lattice: float = 3.75) -> Atoms:
    """L1_2 Cu3Au (Au on the cube corners of `repeat` cubic cells), or with `ordered`
    False the same sites with the species shuffled (seeded): same composition."""
    reps = (repeat,) * 3 if np.ndim(repeat) == 0 else tuple(repeat)
    atoms = bulk("Cu", "fcc", a=lattice, cubic=True)
    atoms.set_chemical_symbols(["Au", "Cu", "Cu", "Cu"])
    atoms = atoms.repeat(reps)
    if not ordered:
        symbols = np.array(atoms.get_chemical_symbols())
        np.random.default_rng(seed).shuffle(symbols)
        atoms.set_chemical_symbols(list(symbols))
    return atoms


def md_frames(
    atoms: Atoms,
    temperature: float,
    n_frames: int,
    interval: int = 20,
    equilibration: int = 100,
    seed: int = 0,
    timestep_fs: float = 2.0,
    friction: float = 0.02,
) -> list[Atoms]:
    """Snapshots of Langevin MD with EMT at `temperature` K (copies, with no calculator)."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin

    try:  # ASE >= 3.29 deprecates MaxwellBoltzmannDistribution for this name
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE: the same draw under its former name
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    atoms = atoms.copy()
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature,
        friction=friction,
        rng=rng,
        fixcm=False,
    )
    dyn.run(equilibration)
    frames = []
    for _ in range(n_frames):
        dyn.run(interval)
        snap = atoms.copy()
        snap.calc = None
        frames.append(snap)
    return frames


def cu_melt(
    repeat: int = 3,
    n_frames: int = 5,
    seed: int = 0,
    temperature: float = 2500.0,
    melt_steps: int = 400,
    interval: int = 20,
) -> list[Atoms]:
    """Snapshots of liquid Cu: an FCC cell melted at `temperature` K (EMT), at
    the liquid density (the cell expanded by 5% in volume)."""
    atoms = fcc_cu(repeat, CU_LATTICE * 1.05 ** (1 / 3))
    return md_frames(
        atoms, temperature, n_frames, interval=interval, equilibration=melt_steps, seed=seed
    )


# Supercells of the cubic FCC cell with 32 to 96 atoms.
VARIED_REPEATS = [(2, 2, 2), (2, 2, 3), (2, 2, 4), (2, 3, 3), (2, 3, 4)]


def varied_fcc_cu(
    n_structures: int,
    seed: int = 0,
    sigma=(0.01, 0.3),
    strain: float = 0.03,
    vacancy_probability: float = 0.3,
) -> list[Atoms]:
    """`n_structures` distorted FCC Cu cells of 32-96 atoms, for compression benchmarks.

    Each structure: a random supercell of `VARIED_REPEATS`, a random isotropic
    strain in [-strain, strain], Gaussian displacements with a standard
    deviation drawn log-uniformly in `sigma` (Å), and one vacancy with
    probability `vacancy_probability`. Weakly rattled cells are near-duplicates
    (a redundant dataset); strongly rattled ones are diverse. The draws are
    recorded in ``atoms.info`` (``sigma``, ``strain``, ``vacancy``, ``seed``).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_structures):
        repeat = VARIED_REPEATS[rng.integers(len(VARIED_REPEATS))]
        eps = float(rng.uniform(-strain, strain))
        s = float(np.exp(rng.uniform(np.log(sigma[0]), np.log(sigma[1]))))
        atoms = fcc_cu(repeat, CU_LATTICE * (1.0 + eps))
        vacancy = bool(rng.random() < vacancy_probability)
        if vacancy:
            del atoms[int(rng.integers(len(atoms)))]
        structure_seed = int(rng.integers(2**31))
        atoms.rattle(s, seed=structure_seed)
        atoms.info.update(
            {
                "sigma": s,
                "strain": eps,
                "vacancy": vacancy,
                "seed": structure_seed,
                "config_type": "weak" if s < 0.05 else "strong",
            }
        )
        frames.append(atoms)
    return frames
