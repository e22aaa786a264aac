"""Generate candidate structures whose environments are new to a dataset (Monte Carlo).

From seed structures, simulated annealing over single-atom displacements and
(for fully periodic cells) small cell strains drives each structure towards
environments the dataset does not cover:

* objective ``"target"`` (default): bring the largest per-atom dH of the
  structure (nats, against the reference) into ``[target_low, target_high]``.
  The energy minimised is the distance of ``max dH`` from that range (zero
  inside it); a candidate is accepted as soon as it lies in the range, so it
  is new (dH > 0 where ``target_low > 0``) without being absurdly far from
  the data;
* objective ``"entropy"``: maximise the entropy gain ``H(R + s) - H(R)`` of
  the reference R when the structure s is added (energy
  ``-(n_R + n_s) * gain``, i.e. the gain in total nats); the best state of the
  run is kept when its gain is positive and some atom has dH > 0.

Physical constraints hold for every accepted state (a move violating one is
rejected before its dH is computed, and the seed must satisfy them): a minimum
interatomic distance (periodic images included), a density range (g/cm³,
periodic cells), and a fixed composition (moves never change species).

Diversity: candidates are made one after the other, each against the
reference *plus every candidate accepted before it*, so two candidates never
fill the same gap. ``generations`` repeats this; generation g is judged
against the dataset and all earlier generations.

Speed: a displacement changes the descriptors only of atoms within the cutoff
of the moved atom's old or new position (periodic images included, see
docs/method.md, section 1.1); only those rows are recomputed (with the
library's own descriptor kernel, bit for bit the full result) and only their
kernel sums re-evaluated against the reference, with the exact log-sum fold
of `atominfo.engine.fold`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import (
    _ghost_atoms,
    describe_points,
    min_distance,
    structure_descriptors,
)
from atominfo.engine.fold import centre, fold_block, inverse_two_h2
from atominfo.errors import InputError
from atominfo.information import DEFAULT_BANDWIDTH, as_descriptor_matrix, check_widths
from atominfo.results import Result

DEFAULT_TARGET = (1.0, 5.0)  # nats: new (dH > 0) but within a few bandwidths of the data
DEFAULT_TEMPERATURE = (1.0, 0.01)  # nats (units of the objective), start and end
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3
MIN_DISTANCE_FRACTION = 0.8  # default minimum distance: this share of the seed's smallest
DENSITY_FRACTION = 0.1  # default density range: the seed's density +- 10%


# -- descriptors of some atoms only --------------------------------------------------------


def local_descriptors(
    atoms: Atoms,
    rows,
    X: np.ndarray,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    ghosts=None,
) -> np.ndarray:
    """`X` with the descriptor rows of atoms `rows` recomputed for `atoms`.

    Parameters
    ----------
    atoms : the structure (n atoms).
    rows : int array (r,), atoms whose descriptors to recompute.
    X : array (n, 2k-1), current descriptors, 1/Å; not modified.
    k, cutoff : descriptor settings (cutoff in Å).
    ghosts : array (g, 3) or None, `atoms`' periodic images (from
        `descriptor.kernel._ghost_atoms`), when already built.

    Returns
    -------
    array (n, 2k-1): equal, bit for bit, to ``structure_descriptors(atoms)`` on
    `rows` when every other row is unaffected.
    """
    if ghosts is None:
        ghosts, _ = _ghost_atoms(atoms, cutoff)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.array(X, dtype=np.float64, copy=True)
    coincident = describe_points(ghosts, rows, k, cutoff, out)
    if (coincident >= 0).any():
        raise InputError(f"two atoms at the same position (atom {int(rows[coincident >= 0][0])})")
    return out


def _near(ghosts, owner, point, radius) -> np.ndarray:
    """Original atoms with an image within `radius` of `point`: sorted int array."""
    d2 = ((ghosts - point) ** 2).sum(axis=1)
    return np.unique(owner[d2 < radius * radius])


# -- the growing reference -----------------------------------------------------------------


class _Sums:
    """Exact log kernel sums against a reference that grows by whole candidates.

    Centred once on the initial reference (`engine.fold.centre`), then each
    query block goes through the engine's fold (`engine.fold.fold_block`).
    """

    def __init__(self, X: np.ndarray, h: float):
        self.mu = centre(X)
        self.Xc = np.ascontiguousarray(X - self.mu)
        self.x_sq = np.einsum("ij,ij->i", self.Xc, self.Xc)
        self.inv = inverse_two_h2(h)

    def __len__(self) -> int:
        return len(self.Xc)

    def add(self, Y: np.ndarray) -> None:
        Yc = np.ascontiguousarray(Y - self.mu)
        self.Xc = np.concatenate([self.Xc, Yc])
        self.x_sq = np.concatenate([self.x_sq, np.einsum("ij,ij->i", Yc, Yc)])

    def log_sums(self, Y: np.ndarray) -> np.ndarray:
        """log sum_j K_h(Y_i, R_j), (m,), nats."""
        Yc = np.ascontiguousarray(Y - self.mu)
        y_sq = np.einsum("ij,ij->i", Yc, Yc)
        G = Yc @ self.Xc.T
        run_max = np.full((1, len(Yc)), -np.inf)
        run_sum = np.zeros((1, len(Yc)))
        fold_block(G, y_sq, self.x_sq, self.inv, run_max, run_sum)
        with np.errstate(divide="ignore"):
            return (run_max + np.log(run_sum))[0]

    def reference_sums(self, Y: np.ndarray) -> np.ndarray:
        """log sum_i K_h(R_j, Y_i) for every reference row j, (n_R,), nats."""
        Yc = np.ascontiguousarray(Y - self.mu)
        y_sq = np.einsum("ij,ij->i", Yc, Yc)
        G = self.Xc @ Yc.T
        run_max = np.full((1, len(self.Xc)), -np.inf)
        run_sum = np.zeros((1, len(self.Xc)))
        fold_block(G, self.x_sq, y_sq, self.inv, run_max, run_sum)
        with np.errstate(divide="ignore"):
            return (run_max + np.log(run_sum))[0]


def _self_log_sums(Y: np.ndarray, h: float) -> np.ndarray:
    return _Sums(Y, h).log_sums(Y)


# -- constraints ---------------------------------------------------------------------------


def mass_density(atoms: Atoms) -> float:
    """Mass density of a periodic structure, g/cm³."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


@dataclass(frozen=True)
class Constraints:
    """Physical constraints every accepted structure satisfies.

    Attributes
    ----------
    min_distance : float, Å, smallest allowed interatomic distance (images included).
    density : (low, high), g/cm³, or None (non-periodic structures).
    composition : chemical formula that must not change (e.g. 'Cu32').
    """

    min_distance: float
    density: tuple[float, float] | None
    composition: str

    def violations(self, atoms: Atoms, cutoff: float) -> list[str]:
        """What `atoms` violates: a list of sentences (empty when it satisfies all)."""
        out = []
        d = min_distance(atoms, cutoff)
        if d < self.min_distance:
            out.append(f"interatomic distance {d:.4g} Å < minimum {self.min_distance:.4g} Å")
        if self.density is not None:
            rho = mass_density(atoms)
            if not self.density[0] <= rho <= self.density[1]:
                out.append(
                    f"density {rho:.4g} g/cm³ outside [{self.density[0]:.4g}, "
                    f"{self.density[1]:.4g}]"
                )
        if atoms.get_chemical_formula() != self.composition:
            out.append(f"composition {atoms.get_chemical_formula()} != {self.composition}")
        return out


def constraints_for(seed: Atoms, cutoff: float, min_dist=None, density_range=None) -> Constraints:
    """The constraints of one seed: user values, or defaults from the seed itself.

    Defaults: minimum distance 0.8 x the seed's smallest distance; density the
    seed's +- 10% (periodic seeds only).
    """
    periodic = bool(np.all(seed.pbc))
    if min_dist is None:
        d0 = min_distance(seed, cutoff)
        min_dist = MIN_DISTANCE_FRACTION * d0 if np.isfinite(d0) else 0.0
    rho_range = None
    if density_range is not None:
        if not periodic:
            raise InputError("a density range needs fully periodic seed structures")
        lo, hi = density_range
        rho_range = (0.0 if lo is None else float(lo), np.inf if hi is None else float(hi))
    elif periodic:
        rho = mass_density(seed)
        rho_range = (rho * (1 - DENSITY_FRACTION), rho * (1 + DENSITY_FRACTION))
    return Constraints(float(min_dist), rho_range, seed.get_chemical_formula())


# -- results --------------------------------------------------------------------------------


@dataclass
class Campaign(Result):
    """Candidates of a generation campaign and what each generation added.

    Attributes
    ----------
    candidates : list of ase.Atoms, in the order made; ``info`` holds the
        provenance (seed_file, seed_frame, generation, candidate, objective,
        steps, accepted_moves, temperature_start/_end (nats), step_size (Å),
        max_dH/mean_dH (nats), novelty, entropy_gain (nats), min_distance (Å),
        density (g/cm³)), ``arrays['dH']`` the per-atom dH (nats) against the
        reference plus the earlier candidates.
    generations : list of dict, one per generation: candidates, attempts,
        novelty (fraction of the generation's environments with dH > 0 against
        the dataset and all earlier generations), entropy_before/_after (nats,
        H of the dataset with the earlier / with these generations), entropy_gain.
    requested : candidates asked for per generation.
    steps : Monte Carlo steps run in total.
    seconds : wall time, s (set-up and summaries included).
    seconds_per_step : time in Monte Carlo steps / steps, s (NaN for no step).
    objective, target, temperature, seed : the settings used.
    """

    _fields_shown = (
        "requested",
        "n_candidates",
        "steps",
        "seconds_per_step",
        "objective",
        "target",
        "generations",
    )
    candidates: list = field(repr=False)
    generations: list
    requested: int
    steps: int
    seconds: float
    seconds_per_step: float
    objective: str
    target: tuple
    temperature: tuple
    seed: int

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def to_dict(self) -> dict:
        from atominfo.results import jsonable

        out = {
            f: getattr(self, f)
            for f in (
                "requested",
                "steps",
                "seconds",
                "seconds_per_step",
                "objective",
                "target",
                "temperature",
                "seed",
                "generations",
            )
        }
        out["n_candidates"] = len(self.candidates)
        out["candidates"] = [{k: v for k, v in a.info.items()} for a in self.candidates]
        return jsonable(out)


# -- Monte Carlo ----------------------------------------------------------------------------


@dataclass
class _Walker:
    atoms: Atoms
    ghosts: np.ndarray
    owner: np.ndarray
    X: np.ndarray
    L: np.ndarray  # log kernel sums of each atom against the reference (-dH)


def _start(atoms: Atoms, k: int, cutoff: float, sums: _Sums) -> _Walker:
    ghosts, owner = _ghost_atoms(atoms, cutoff)
    X = structure_descriptors(atoms, k, cutoff)
    return _Walker(atoms, ghosts, owner, X, sums.log_sums(X))


def _energy(w: _Walker, objective, target, sums, ref_self, h) -> tuple[float, float]:
    """(energy, entropy gain) of a state; the gain is computed for "entropy" only."""
    if objective == "target":
        s = float(-w.L.min())
        return max(target[0] - s, 0.0) + max(s - target[1], 0.0), float("nan")
    gain = _entropy_gain(w.X, w.L, sums, ref_self, h)
    return -(len(sums) + len(w.X)) * gain, gain


def _entropy_gain(Y, L, sums: _Sums, ref_self: np.ndarray, h: float) -> float:
    """H(R + Y) - H(R), nats; `ref_self` are the log sums of R against itself."""
    n, m = len(ref_self), len(Y)
    old = np.logaddexp(ref_self, sums.reference_sums(Y))
    new = np.logaddexp(L, _self_log_sums(Y, h))
    H_after = np.log(n + m) - (old.sum() + new.sum()) / (n + m)
    H_before = np.log(n) - ref_self.mean()
    return float(H_after - H_before)


def _anneal(
    seed_atoms: Atoms,
    sums: _Sums,
    ref_self,
    cons: Constraints,
    rng,
    *,
    k,
    cutoff,
    h,
    steps,
    objective,
    target,
    temperature,
    step_size,
    strain,
    strain_probability,
    local,
    counter,
):
    """One candidate: (atoms, walker, steps run, moves accepted, gain) or None."""
    w = _start(seed_atoms.copy(), k, cutoff, sums)
    E, gain = _energy(w, objective, target, sums, ref_self, h)
    best = (E, w, gain)
    n = len(w.atoms)
    periodic = bool(np.all(w.atoms.pbc))
    t0, t1 = temperature
    accepted = 0
    done = 0
    clock = time.perf_counter()
    for step in range(steps):
        if objective == "target" and E == 0.0:
            break
        T = t0 * (t1 / t0) ** (step / max(steps - 1, 1))
        done += 1
        counter[0] += 1
        atoms = w.atoms.copy()
        cell_move = periodic and strain > 0 and rng.random() < strain_probability
        if cell_move:
            eps = rng.normal(scale=strain, size=(3, 3))
            eps = 0.5 * (eps + eps.T)
            atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            if cons.violations(atoms, cutoff):
                continue
            ghosts, owner = _ghost_atoms(atoms, cutoff)
            X = structure_descriptors(atoms, k, cutoff)
            L = sums.log_sums(X)
        else:
            a = int(rng.integers(n))
            old = w.ghosts[a].copy()
            atoms.positions[a] += rng.normal(scale=step_size, size=3)
            ghosts, owner = _ghost_atoms(atoms, cutoff)
            d2 = ((ghosts - ghosts[a]) ** 2).sum(axis=1)
            d2[a] = np.inf
            if d2.min() < cons.min_distance**2:
                continue
            if local:
                rows = np.union1d(
                    _near(w.ghosts, w.owner, old, cutoff), _near(ghosts, owner, ghosts[a], cutoff)
                )
                X = local_descriptors(atoms, rows, w.X, k, cutoff, ghosts=ghosts)
                L = w.L.copy()
                L[rows] = sums.log_sums(X[rows])
            else:
                X = structure_descriptors(atoms, k, cutoff)
                L = sums.log_sums(X)
        trial = _Walker(atoms, ghosts, owner, X, L)
        E_new, gain_new = _energy(trial, objective, target, sums, ref_self, h)
        dE = E_new - E
        if dE <= 0 or rng.random() < np.exp(-dE / T):
            w, E, gain = trial, E_new, gain_new
            accepted += 1
            if E < best[0]:
                best = (E, w, gain)
    counter[1] += time.perf_counter() - clock
    if objective == "target":
        if E != 0.0:
            return None
        return w, done, accepted, float("nan")
    E, w, gain = best
    if not gain > 0 or not (-w.L).max() > 0:
        return None
    return w, done, accepted, gain


def _read_seeds(seeds, index, format, type_map) -> list[tuple[Atoms, str, int]]:
    from atominfo.structures.frames import iter_frames

    if isinstance(seeds, Atoms):
        seeds = [seeds]
    out = [
        (f.atoms, f.source, f.index)
        for f in iter_frames(seeds, index=index, format=format, type_map=type_map)
    ]
    if not out:
        raise InputError("no seed structures")
    return out


def _reference_matrix(reference, h, k, cutoff, format):
    """(X, h) of the reference: a Reference, a descriptor array, or structure files."""
    from atominfo.reference import Reference

    if isinstance(reference, Reference):
        if not np.isscalar(reference.h):
            raise InputError("generate needs a reference with one bandwidth")
        return reference.X, float(reference.h)
    if isinstance(reference, (str, Path)) or (
        isinstance(reference, (list, tuple)) and reference and isinstance(reference[0], (str, Path))
    ):
        ref = Reference.from_files(reference, h, k=k, cutoff=cutoff)
        return ref.X, float(h)
    if isinstance(reference, (Atoms, list, tuple)):
        ref = Reference.from_structures(reference, h, k, cutoff)
        return ref.X, float(h)
    return as_descriptor_matrix(reference, "reference"), float(h)


def generate(
    seeds,
    reference,
    n_candidates: int = 10,
    *,
    h: float = DEFAULT_BANDWIDTH,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    generations: int = 1,
    steps: int = 2000,
    objective: str = "target",
    target=DEFAULT_TARGET,
    temperature=DEFAULT_TEMPERATURE,
    step_size: float = 0.1,
    strain: float = 0.01,
    strain_probability: float = 0.05,
    min_distance: float | None = None,
    density: tuple | None = None,
    seed: int = 0,
    local: bool = True,
    index=":",
    format=None,
    type_map=None,
    progress=None,
) -> Campaign:
    """Make candidate structures whose environments are new to `reference`.

    Parameters
    ----------
    seeds : structure file path(s), ase.Atoms or list of Atoms: starting
        structures, used in turn (candidate i starts from seed i mod n_seeds).
    reference : a `Reference` (one bandwidth), a descriptor array (n, 2k-1)
        in 1/Å, structure file path(s), or Atoms: the dataset.
    n_candidates : int, candidates per generation.
    h : float, bandwidth, 1/Å (ignored for a `Reference`, which has its own).
    k, cutoff : descriptor settings (cutoff in Å); must match the reference.
    generations : int, rounds; each is judged against the dataset and all
        earlier candidates.
    steps : int, most Monte Carlo steps per candidate.
    objective : "target" (max dH into `target`) or "entropy" (maximise the
        dataset's entropy gain).
    target : (low, high), nats, range of the structure's largest dH ("target").
    temperature : (start, end), nats, geometric annealing schedule of the
        Metropolis criterion (units of the objective's energy).
    step_size : float, Å, standard deviation of a displacement (per coordinate).
    strain : float, standard deviation of a cell-strain component (periodic
        cells only; 0 disables cell moves).
    strain_probability : float, chance that a move is a cell strain.
    min_distance : float or None, Å, smallest interatomic distance allowed
        (default: 0.8 x each seed's own smallest distance); must be below `cutoff`.
    density : (low, high) in g/cm³, or None (default: each seed's +- 10%,
        periodic seeds); a bound may be None.
    seed : int, random seed: the same inputs and seed give the same candidates.
    local : bool, recompute only the descriptors of atoms near a moved atom
        (False: all of them; same results, slower: for measuring the gain).
    index, format, type_map : frame selection, ASE format and LAMMPS type map
        ({1: 'Cu'}) of seed files.
    progress : callable or None, called with 1 after each Monte Carlo step.

    Returns
    -------
    Campaign. Fewer candidates than asked for (a warning says so) where a
    run does not reach its objective within `steps`.
    """
    n_candidates = params.check("n_candidates", n_candidates)
    generations = params.check("generations", generations)
    steps = params.check("mc_steps", steps)
    objective = params.check("objective", objective)
    k = params.check("k", k)
    cutoff = params.check("cutoff", cutoff)
    seed = params.check("seed", seed)
    step_size = params.check("step_size", step_size)
    strain = params.check("mc_strain", strain)
    strain_probability = params.check("probability", strain_probability, label="strain_probability")
    try:
        lo, hi = (params.check("target_dh", v, label="target") for v in target)
        t0, t1 = (params.check("mc_temperature", v, label="temperature") for v in temperature)
    except (TypeError, ValueError):
        raise InputError("target and temperature must each be a pair (low, high)") from None
    if lo > hi:
        raise InputError(f"target low {lo:g} exceeds target high {hi:g} nats")
    if min_distance is not None:
        min_distance = params.check("min_distance", min_distance)
        if min_distance >= cutoff:
            raise InputError(
                f"min_distance {min_distance:g} Å must be below the cutoff {cutoff:g} Å"
            )
    if density is not None:
        try:
            d_lo, d_hi = (
                None if v is None else params.check("density", v, label="density") for v in density
            )
        except (TypeError, ValueError):
            raise InputError("density must be a pair (low, high) in g/cm³") from None
        if d_lo is not None and d_hi is not None and d_lo > d_hi:
            raise InputError(f"density low {d_lo:g} exceeds density high {d_hi:g} g/cm³")
        density = (d_lo, d_hi)
    frames = _read_seeds(seeds, index, format, type_map)
    X_ref, h = _reference_matrix(reference, h, k, cutoff, format)
    h = params.check("bandwidth", h)
    if X_ref.shape[1] != 2 * k - 1:
        check_widths(np.zeros((1, 2 * k - 1)), X_ref)
    cons = []
    for atoms, source, frame in frames:
        structure_descriptors(atoms, k, cutoff, source=source, frame=frame)  # coincident atoms
        c = constraints_for(atoms, cutoff, min_distance, density)
        bad = c.violations(atoms, cutoff)
        if bad:
            raise InputError(f"seed violates the constraints: {bad[0]}", source=source, frame=frame)
        cons.append(c)

    from threadpoolctl import threadpool_limits

    # small matrix products, one after the other: a multi-threaded BLAS only spins
    with threadpool_limits(1, user_api="blas"):
        return _campaign(
            frames,
            X_ref,
            h,
            cons,
            n_candidates,
            generations,
            steps,
            objective,
            (lo, hi),
            (t0, t1),
            step_size,
            strain,
            strain_probability,
            local,
            k,
            cutoff,
            seed,
            progress,
        )


def _campaign(
    frames,
    X_ref,
    h,
    cons,
    n_candidates,
    generations,
    steps,
    objective,
    target,
    temperature,
    step_size,
    strain,
    strain_probability,
    local,
    k,
    cutoff,
    seed,
    progress,
) -> Campaign:
    """The generation loop of `generate` (arguments validated)."""
    (lo, hi), (t0, t1) = target, temperature
    rng = np.random.default_rng(seed)
    sums = _Sums(X_ref, h)
    ref_self = sums.log_sums(X_ref) if objective == "entropy" else None
    n_dataset = len(X_ref)
    candidates: list[Atoms] = []
    rows: list[dict] = []
    counter = [0, 0.0]  # Monte Carlo steps run, seconds spent in them
    start = time.perf_counter()
    for g in range(generations):
        gen_first = len(sums)
        H_before = _entropy_of(sums)
        made, attempts = [], 0
        for c in range(n_candidates):
            i = (g * n_candidates + c) % len(frames)
            attempts += 1
            steps_before = counter[0]
            out = _anneal(
                frames[i][0],
                sums,
                ref_self,
                cons[i],
                rng,
                k=k,
                cutoff=cutoff,
                h=h,
                steps=steps,
                objective=objective,
                target=(lo, hi),
                temperature=(t0, t1),
                step_size=step_size,
                strain=strain,
                strain_probability=strain_probability,
                local=local,
                counter=counter,
            )
            if progress is not None:
                progress(counter[0] - steps_before)
            if out is None:
                continue
            w, done, acc, gain = out
            atoms = w.atoms
            if cons[i].violations(atoms, cutoff):  # never expected: every move was checked
                continue
            atoms.wrap()
            dH = -w.L
            atoms.arrays["dH"] = dH.copy()
            info = {
                "seed_file": frames[i][1],
                "seed_frame": int(frames[i][2]),
                "generation": g + 1,
                "candidate": len(candidates),
                "objective": objective,
                "steps": int(done),
                "accepted_moves": int(acc),
                "temperature_start": t0,
                "temperature_end": t1,
                "temperature_schedule": "geometric",
                "step_size": step_size,
                "strain": strain,
                "target_low": lo,
                "target_high": hi,
                "max_dH": float(dH.max()),
                "mean_dH": float(dH.mean()),
                "novelty": float((dH > 0).mean()),
                "min_distance": min_distance_value(atoms, cutoff),
                "min_distance_allowed": cons[i].min_distance,
                "bandwidth": h,
                "k": k,
                "cutoff": cutoff,
                "seed": seed,
            }
            if cons[i].density is not None:
                info["density"] = mass_density(atoms)
            if objective == "entropy":
                info["entropy_gain"] = gain
            atoms.info.clear()
            atoms.info.update(info)
            for key in ("energy", "forces", "stress"):
                atoms.arrays.pop(key, None)
            atoms.calc = None
            if ref_self is not None:
                new_self = np.logaddexp(-dH, _self_log_sums(w.X, h))
                ref_self = np.concatenate(
                    [np.logaddexp(ref_self, sums.reference_sums(w.X)), new_self]
                )
            sums.add(w.X)
            candidates.append(atoms)
            made.append(atoms)
        gen_X = sums.Xc[gen_first:] + sums.mu
        novelty = float("nan")
        if len(gen_X):
            earlier = _Sums(sums.Xc[:gen_first] + sums.mu, h)
            novelty = float((earlier.log_sums(gen_X) < 0).mean())
        H_after = _entropy_of(sums)
        rows.append(
            {
                "generation": g + 1,
                "candidates": len(made),
                "attempts": attempts,
                "novelty": novelty,
                "entropy_before": H_before,
                "entropy_after": H_after,
                "entropy_gain": H_after - H_before,
                "environments": len(sums) - n_dataset,
            }
        )
    seconds = time.perf_counter() - start
    total = n_candidates * generations
    if len(candidates) < total:
        import warnings

        warnings.warn(
            f"only {len(candidates)} of {total} candidates reached the objective "
            f"within {steps} steps; raise the steps, widen the target or lower the "
            "temperature",
            stacklevel=2,
        )
    return Campaign(
        candidates,
        rows,
        n_candidates,
        int(counter[0]),
        seconds,
        counter[1] / counter[0] if counter[0] else float("nan"),
        objective,
        (lo, hi),
        (t0, t1),
        seed,
    )


def min_distance_value(atoms: Atoms, cutoff: float) -> float:
    d = min_distance(atoms, cutoff)
    return float(d) if np.isfinite(d) else float("nan")


def _entropy_of(sums: _Sums) -> float:
    """H of the current reference (dataset + candidates), nats."""
    X = sums.Xc + sums.mu
    L = _Sums(X, float(np.sqrt(0.5 / sums.inv[0]))).log_sums(X)
    return float(np.log(len(X)) - L.mean())


def write_candidates(campaign: Campaign, path) -> None:
    """Write the candidates as extxyz (provenance in info, per-atom dH in arrays)."""
    import ase.io

    from atominfo.outputs.atomic import atomic_output

    if not campaign.candidates:
        raise InputError("no candidate to write", source=str(path))
    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for atoms in campaign.candidates:
                ase.io.write(fh, atoms, format="extxyz")
