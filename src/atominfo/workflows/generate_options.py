"""The settings of a generation campaign (`atominfo.workflows.generate`), validated once.

`GenerateOptions` bundles the Monte Carlo knobs (schedule, moves,
objective, constraints, seed); `CampaignFiles` says what a campaign writes.
Each is checked when made, through `atominfo.params` (the ranges the
command line also uses); `ordered_pair` and `below_cutoff` are the rules
that relate two values, shared with the command line, which names its
options in their messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atominfo import params
from atominfo.errors import InputError

DEFAULT_TARGET = (1.0, 5.0)  # nats: new (dH > 0) but within a few bandwidths of the data
DEFAULT_TEMPERATURE = (1.0, 0.01)  # nats (units of the objective), start and end
CANDIDATE_SUFFIXES = (".extxyz", ".xyz")
SUMMARY_SUFFIXES = (".json",)


def ordered_pair(low, high, low_name: str, high_name: str, unit: str = "") -> None:
    """Refuse a range whose low end exceeds its high end (`unit` ends the message)."""
    if low is not None and high is not None and low > high:
        raise InputError(f"{low_name} {low:g} exceeds {high_name} {high:g}{unit}")


def below_cutoff(
    min_distance, cutoff: float, name: str = "min_distance", cutoff_name: str = "the cutoff"
) -> None:
    """Refuse a minimum distance at or beyond the cutoff (no pair could be measured)."""
    if min_distance is not None and min_distance >= cutoff:
        raise InputError(f"{name} {min_distance:g} Å must be below {cutoff_name} {cutoff:g} Å")


@dataclass(frozen=True)
class GenerateOptions:
    """The Monte Carlo knobs of a generation campaign.

    Parameters
    ----------
    generations : int, rounds; each is judged against the dataset and all
        earlier candidates.
    steps : int, most Monte Carlo steps per candidate.
    objective : "target" (max dH into `target`) or "entropy" (maximise the
        dataset's entropy gain).
    target : (low, high), nats, range of the structure's largest dH ("target").
    temperature : (start, end), nats, geometric annealing schedule of the
        Metropolis criterion (units of the objective's energy).
    moves : "single" (one atom displaced at random per step, or the cell
        strained) or "gradient" (every atom, and the cell of a periodic
        structure, moved at once along the energy's gradient plus noise:
        `atominfo.workflows.generate_gradient`); the same constraints and
        Metropolis criterion either way.
    step_size : float, Å, standard deviation of a displacement (per
        coordinate); for "gradient" moves the displacement along the gradient
        of the atom that moves most.
    strain : float, standard deviation of a cell-strain component (periodic
        cells only; 0 disables cell moves); for "gradient" moves the size
        (Frobenius norm) of the strain along the gradient.
    strain_probability : float, chance that a move is a cell strain ("single").
    noise : float, "gradient" moves: standard deviation of the random part per
        coordinate (and strain component), as a fraction of `step_size` (`strain`).
    min_distance : float or None, Å, smallest interatomic distance allowed
        (default: 0.8 x each seed's own smallest distance); must be below the cutoff.
    density : (low, high) in g/cm³, or None (default: each seed's +- 10%,
        periodic seeds); a bound may be None.
    seed : int, random seed: the same inputs and seed give the same candidates.
    local : bool, recompute only the descriptors of atoms near a moved atom
        (False: all of them; same results, slower: for measuring the gain).

    Raises
    ------
    InputError
        For a value out of its range (`atominfo.params`) or a range whose low
        end exceeds its high end.
    """

    generations: int = 1
    steps: int = 2000
    objective: str = "target"
    target: tuple[float, float] = DEFAULT_TARGET
    temperature: tuple[float, float] = DEFAULT_TEMPERATURE
    step_size: float = 0.1
    strain: float = 0.01
    strain_probability: float = 0.05
    min_distance: float | None = None
    density: tuple[float | None, float | None] | None = None
    seed: int = 0
    local: bool = True
    moves: str = "single"
    noise: float = 0.1

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {
            "generations": params.check("generations", self.generations),
            "steps": params.check("mc_steps", self.steps),
            "objective": params.check("objective", self.objective),
            "seed": params.check("seed", self.seed),
            "step_size": params.check("step_size", self.step_size),
            "strain": params.check("mc_strain", self.strain),
            "strain_probability": params.check(
                "probability", self.strain_probability, label="strain_probability"
            ),
            "local": bool(self.local),
            "moves": params.check("moves", self.moves),
            "noise": params.check("gradient_noise", self.noise, label="noise"),
        }
        try:
            lo, hi = (params.check("target_dh", v, label="target") for v in self.target)
            t0, t1 = (
                params.check("mc_temperature", v, label="temperature") for v in self.temperature
            )
        except (TypeError, ValueError):
            raise InputError("target and temperature must each be a pair (low, high)") from None
        ordered_pair(lo, hi, "target low", "target high", " nats")
        checked["target"], checked["temperature"] = (lo, hi), (t0, t1)
        checked["min_distance"] = params.check_optional("min_distance", self.min_distance)
        checked["density"] = _density_range(self.density)
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def options_from_command_line(args) -> GenerateOptions:
    """`GenerateOptions` from the parsed command line of ``atominfo generate``; the rules
    relating two options are checked here, naming the options."""
    ordered_pair(args.target_low, args.target_high, "--target-low", "--target-high")
    below_cutoff(args.min_distance, args.cutoff, "--min-distance", "--cutoff")
    density = (args.density_min, args.density_max)
    ordered_pair(*density, "--density-min", "--density-max")
    same = ("generations", "steps", "objective", "moves", "step_size", "strain", "noise")
    return GenerateOptions(
        target=(args.target_low, args.target_high),
        temperature=(args.temperature_start, args.temperature_end),
        density=None if density == (None, None) else density,
        min_distance=args.min_distance,
        seed=args.seed,
        **{name: getattr(args, name) for name in same},
    )


def _density_range(density) -> tuple[float | None, float | None] | None:
    if density is None:
        return None
    try:
        lo, hi = (params.check_optional("density", v, label="density") for v in density)
    except (TypeError, ValueError):
        raise InputError("density must be a pair (low, high) in g/cm³") from None
    ordered_pair(lo, hi, "density low", "density high", " g/cm³")
    return (lo, hi)


@dataclass(frozen=True)
class CampaignFiles:
    """What a campaign writes, committed all or none (`atominfo.runs.guard.OutputGuard`).

    Parameters
    ----------
    output : path, the candidates as .extxyz (or .xyz): provenance in
        ``info``, per-atom ``dH`` array.
    summary : path or None, the campaign summary as .json (what
        `Campaign.to_dict` holds).
    reference_files : the files a `Reference` given as the reference was read
        from: recorded in the summary, and no output may be one of them
        (reference files given as paths are recorded and guarded anyway).
    """

    output: Path
    summary: Path | None = None
    reference_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        if self.summary is not None:
            object.__setattr__(self, "summary", Path(self.summary))
        object.__setattr__(self, "reference_files", tuple(map(str, self.reference_files)))

    def outputs(self) -> list[tuple[Path | None, tuple[str, ...]]]:
        """(path, allowed suffixes) of each output, as `OutputGuard` takes them."""
        return [(self.output, CANDIDATE_SUFFIXES), (self.summary, SUMMARY_SUFFIXES)]
