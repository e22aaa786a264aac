"""The campaign of `atominfo.workflows.generate`: candidates one after the other, and its files.

Candidates are made one after the other, each against the reference *plus
every candidate accepted before it*, so two candidates never fill the same
gap; generation g is judged against the dataset and all earlier
generations. `Campaign` is the result (candidates with their provenance,
one summary row per generation); `write_candidates` and `write_summary`
write it through `atominfo.runs.atomic.atomic_output`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo.errors import InputError
from atominfo.results import Result, jsonable
from atominfo.workflows.generate_anneal import Annealed, StepClock, anneal
from atominfo.workflows.generate_constraints import Constraints, mass_density, min_distance_value
from atominfo.workflows.generate_gradient import GradientMover
from atominfo.workflows.generate_moves import Mover
from atominfo.workflows.generate_objective import ReferenceSums, reference_entropy, self_log_sums
from atominfo.workflows.generate_options import GenerateOptions


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
        H of the dataset with the earlier / with these generations), entropy_gain
        (`to_pandas` gives them as a table).
    requested : candidates asked for per generation.
    steps : Monte Carlo steps run in total.
    seconds : wall time, s (set-up and summaries included).
    seconds_per_step : time in Monte Carlo steps / steps, s (NaN for no step).
    objective, target, temperature, seed : the settings used.
    seeds : the seed files (None for structures given in memory).
    reference : the reference's files (None for a reference given in memory).
    output, summary : the files written (None where not asked for).
    reference_environments : environments of the dataset.
    """

    _fields_shown = (
        "requested",
        "n_candidates",
        "steps",
        "seconds_per_step",
        "objective",
        "target",
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
    seeds: list | None = None
    reference: list | None = None
    output: Path | None = None
    summary: Path | None = None
    reference_environments: int = 0

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def to_dict(self) -> dict:
        """The summary as plain JSON types (what ``--summary`` and ``--json`` hold)."""
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
        for f in ("seeds", "reference", "output", "reference_environments"):
            out[f] = getattr(self, f)
        return jsonable(out)

    def to_pandas(self):
        """`generations` as a `pandas.DataFrame`, one row per generation (indexed by its
        number). Needs pandas (an InputError says so without it)."""
        try:
            import pandas as pd
        except ImportError:
            raise InputError("Campaign.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.generations).set_index("generation")


class CampaignLoop:
    """The generation loop: the growing reference, the random generator, the candidates.

    Parameters
    ----------
    frames : (Atoms, source, frame) of each seed, used in turn.
    cons : the `Constraints` of each seed.
    X_ref : array (n, 2k-1), the dataset's descriptors, 1/Å.
    h : float, bandwidth, 1/Å.
    k, cutoff : descriptor settings (cutoff in Å).
    options : the campaign's `GenerateOptions` (validated).
    """

    def __init__(self, frames, cons, X_ref, h, k, cutoff, options: GenerateOptions):
        self.frames, self.cons, self.options = frames, cons, options
        self.h, self.k, self.cutoff = h, k, cutoff
        self.n_dataset = len(X_ref)
        self.rng = np.random.default_rng(options.seed)
        self.sums = ReferenceSums(X_ref, h)
        # the "entropy" objective updates the reference's own sums as it grows
        self.ref_self = self.sums.log_sums(X_ref) if options.objective == "entropy" else None
        self.mover: Mover | GradientMover = Mover(
            self.sums,
            k,
            cutoff,
            options.step_size,
            options.strain,
            options.strain_probability,
            options.local,
        )
        if options.moves == "gradient":
            self.mover = GradientMover(self.mover, options.objective, options.target, options.noise)
        self.clock = StepClock()
        self.candidates: list[Atoms] = []
        self.rows: list[dict] = []

    def run(self, n_candidates: int, progress: Callable[[int], None] | None) -> None:
        """Every generation of `n_candidates` attempts; warns when some were not made."""
        for g in range(self.options.generations):
            self._generation(g, n_candidates, progress)
        total = n_candidates * self.options.generations
        if len(self.candidates) < total:
            warnings.warn(
                f"only {len(self.candidates)} of {total} candidates reached the objective "
                f"within {self.options.steps} steps; raise the steps, widen the target or "
                "lower the temperature",
                stacklevel=2,
            )

    def _generation(self, g: int, n_candidates: int, progress) -> None:
        gen_first = len(self.sums)
        H_before = reference_entropy(self.sums)
        made = 0
        for c in range(n_candidates):
            i = (g * n_candidates + c) % len(self.frames)
            steps_before = self.clock.steps
            out = anneal(
                self.frames[i][0],
                self.cons[i],
                self.mover,
                self.options,
                self.ref_self,
                self.rng,
                self.clock,
            )
            if progress is not None:
                progress(self.clock.steps - steps_before)
            if out is not None and self._accept(out, i, g):
                made += 1
        gen_X = self.sums.rows(gen_first)
        novelty = float("nan")
        if len(gen_X):
            earlier = ReferenceSums(self.sums.rows(0, gen_first), self.h)
            novelty = float((earlier.log_sums(gen_X) < 0).mean())
        H_after = reference_entropy(self.sums)
        self.rows.append(
            {
                "generation": g + 1,
                "candidates": made,
                "attempts": n_candidates,
                "novelty": novelty,
                "entropy_before": H_before,
                "entropy_after": H_after,
                "entropy_gain": H_after - H_before,
                "environments": len(self.sums) - self.n_dataset,
            }
        )

    def _accept(self, out: Annealed, i: int, g: int) -> bool:
        """Add the walk's candidate to the campaign and to the reference."""
        w, cons = out.walker, self.cons[i]
        atoms = w.atoms
        if cons.violations(atoms, self.cutoff):  # never expected: every move was checked
            return False
        atoms.wrap()
        dH = -w.L
        atoms.arrays["dH"] = dH.copy()
        info = self._provenance(out, dH, i, g, cons)
        atoms.info.clear()
        atoms.info.update(info)
        for key in ("energy", "forces", "stress"):
            atoms.arrays.pop(key, None)
        atoms.calc = None
        if self.ref_self is not None:
            new_self = np.logaddexp(-dH, self_log_sums(w.X, self.h))
            self.ref_self = np.concatenate(
                [np.logaddexp(self.ref_self, self.sums.reference_sums(w.X)), new_self]
            )
        self.sums.add(w.X)
        self.candidates.append(atoms)
        return True

    def _provenance(self, out: Annealed, dH, i: int, g: int, cons: Constraints) -> dict:
        """The candidate's ``info``: where it came from, the settings, what it reached."""
        o = self.options
        atoms = out.walker.atoms
        info = {
            "seed_file": self.frames[i][1],
            "seed_frame": int(self.frames[i][2]),
            "generation": g + 1,
            "candidate": len(self.candidates),
            "objective": o.objective,
            "steps": int(out.steps),
            "accepted_moves": int(out.accepted),
            "temperature_start": o.temperature[0],
            "temperature_end": o.temperature[1],
            "temperature_schedule": "geometric",
            "moves": o.moves,
            "step_size": o.step_size,
            "strain": o.strain,
            "target_low": o.target[0],
            "target_high": o.target[1],
            "max_dH": float(dH.max()),
            "mean_dH": float(dH.mean()),
            "novelty": float((dH > 0).mean()),
            "min_distance": min_distance_value(atoms, self.cutoff),
            "min_distance_allowed": cons.min_distance,
            "bandwidth": self.h,
            "k": self.k,
            "cutoff": self.cutoff,
            "seed": o.seed,
        }
        if cons.density is not None:
            info["density"] = mass_density(atoms)
        if o.moves == "gradient":
            info["noise"] = o.noise
        if o.objective == "entropy":
            info["entropy_gain"] = out.gain
        return info


def write_candidates(campaign: Campaign, path) -> None:
    """Write the candidates as extxyz (provenance in info, per-atom dH in arrays)."""
    import ase.io

    from atominfo.runs.atomic import atomic_output

    if not campaign.candidates:
        raise InputError("no candidate to write", source=str(path))
    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for atoms in campaign.candidates:
                ase.io.write(fh, atoms, format="extxyz")


def write_summary(campaign: Campaign, path) -> None:
    """Write `campaign.to_dict()` as indented JSON (no NaN: null)."""
    from atominfo.runs.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(campaign.to_dict(), indent=2, allow_nan=False) + "\n")
