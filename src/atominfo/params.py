"""Every user-facing parameter and its valid range, checked in one place.

The Python API calls `check(name, value)` on entry; the command line turns
the same table into argparse types (`atominfo.cli.options`), so an option
and its keyword argument accept exactly the same values and fail with the
same message. Ranges are stated once, here, in the spirit of
scikit-learn's ``_parameter_constraints``.

This module imports nothing heavy: the command line loads it at start-up.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from atominfo.errors import InputError


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]`` (or open at either end); `integer` for counts.

    `limit_reason`, when given, says why `high` exists (e.g. the work it
    bounds), and is added to the message of a value above it.
    """

    kind: type  # int or float
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"
    limit_reason: str = ""

    def describe(self) -> str:
        lo_open = self.closed in ("right", "neither")
        hi_open = self.closed in ("left", "neither")
        what = "an integer" if self.kind is int else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if lo_open else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if hi_open else '<='} {_num(self.high)}")
        return what + (" " + " and ".join(parts) if parts else "")

    def validate(self, name: str, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            number = _as_number(name, value, self)
        else:
            number = value
        number = float(number) if self.kind is float else number
        if isinstance(number, float) and not math.isfinite(number):
            raise InputError(f"{name} must be {self.describe()}, got {value!r}")
        if self.kind is int:
            if float(number) != math.floor(float(number)):
                raise InputError(f"{name} must be {self.describe()}, got {value!r}")
            number = int(number)
        lo_open = self.closed in ("right", "neither")
        hi_open = self.closed in ("left", "neither")
        too_low = self.low is not None and (number <= self.low if lo_open else number < self.low)
        too_high = self.high is not None and (
            number >= self.high if hi_open else number > self.high
        )
        if too_low or too_high:
            reason = f" ({self.limit_reason})" if too_high and self.limit_reason else ""
            raise InputError(f"{name} must be {self.describe()}, got {value!r}{reason}")
        return number


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def validate(self, name: str, value):
        if not isinstance(value, str) or value not in self.choices:
            raise InputError(f"{name} must be {self.describe()}, got {value!r}")
        return value


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _as_number(name, value, constraint):
    """Numbers given as text (command line) or numpy scalars; nothing else."""
    import numpy as np

    if isinstance(value, np.generic) and np.isrealobj(value) and not isinstance(value, np.bool_):
        return value.item()
    if isinstance(value, str):
        try:
            return (
                int(value)
                if constraint.kind is int and value.strip().lstrip("+-").isdigit()
                else float(value)
            )
        except ValueError:
            pass
    raise InputError(f"{name} must be {constraint.describe()}, got {value!r}")


# Largest cutoff, in Å: beyond it a dense system has tens of thousands of
# neighbours per atom and the descriptor's work explodes.
MAX_CUTOFF = 50.0
# Largest k: the per-atom matrix is k x k, and no cutoff sphere holds more atoms in practice.
MAX_K = 1024
# Smallest volume per atom (Å^3) and lattice constant (Å): ten times denser and
# shorter than any condensed matter (about 1 Å^3/atom, 0.74 Å bonds, at TPa
# pressures). Above 0 they keep cells, rescalings and r* finite: at 5e-324 a
# cell's determinant underflows and the latent heat per volume overflows.
MIN_VOLUME_PER_ATOM = 0.1
MIN_LATTICE = 0.5

CONSTRAINTS: dict[str, Interval | OneOf] = {
    "k": Interval(int, 2, MAX_K, limit_reason="the per-atom work grows as k^2"),
    "cutoff": Interval(
        float, 0.0, MAX_CUTOFF, closed="right", limit_reason="the neighbour count grows as cutoff^3"
    ),
    "bandwidth": Interval(float, 0.0, None, closed="neither"),
    "seed": Interval(int, 0, 2**32 - 1),
    "threads": Interval(int, 1, 4096),
    "memory_bytes": Interval(int, 1 << 20, None),
    "n_samples": Interval(int, 2, None),
    "n_neighbors": Interval(int, 1, 1_000_000),
    "n_sizes": Interval(int, 1, 10_000),
    "n_seeds": Interval(int, 1, 10_000),
    "drop": Interval(int, 0, None),  # smallest learning-curve sizes left out of a fit
    "saturation_tolerance": Interval(float, 0.0, None, closed="neither"),
    "lattice": Interval(float, MIN_LATTICE, 100.0),
    "strain": Interval(float, 0.0, 1.0, closed="neither"),
    "volume": Interval(float, MIN_VOLUME_PER_ATOM, 1e6),
    "rescale_volume": Interval(float, MIN_VOLUME_PER_ATOM, 1e6),
    "edge_length": Interval(
        float, 0.0, MAX_CUTOFF, closed="right", limit_reason="the neighbour count grows as edge^3"
    ),
    "min_size": Interval(int, 1, None),
    "poll": Interval(float, 0.0, 86400.0, closed="right"),
    "idle_timeout": Interval(float, 0.0, 30 * 86400.0),
    "max_frames": Interval(int, 0, None),
    "coverage": Interval(float, 0.0, 1.0, closed="neither"),
    "test_fraction": Interval(float, 0.0, 1.0, closed="neither"),
    # classical nucleation theory: physical ranges, so that r* and n* stay finite
    "gamma": Interval(float, 0.0, 100.0, closed="right"),  # J/m^2
    "melting_temperature": Interval(float, 0.0, 1e5, closed="right"),  # K
    "latent_heat": Interval(float, 0.0, 1e4, closed="right"),  # kJ/mol
    "undercooling": Interval(float, 0.0, 1e5, closed="right"),  # K
    "atomic_volume": Interval(float, MIN_VOLUME_PER_ATOM, 1e4),  # Å^3
    "alarm_novelty": Interval(float, 0.0, 1.0),
    "alarm_dh": Interval(float, None, None),
    "method_exact": OneOf(("exact", "approximate")),
    "novelty_objective": OneOf(("sum", "mean", "max", "entropy_gain")),
    "method_inside": OneOf(("auto", "classify", "exact")),
    "species_descriptor": OneOf(("multicomponent", "plain")),
    "backend": OneOf(("cpu", "dask", "torch")),
    "precision": OneOf(("float64", "float32")),
    "by": OneOf(("structures", "environments")),
    "compression_method": OneOf(("msc", "fps", "kmeans", "random")),
    "volume_rule": OneOf(("gaussian", "cutoff")),
    "chunk_rows": Interval(int, 1, None),
    "n_boot": Interval(int, 0, 100_000, limit_reason="each bootstrap replicate is one refit"),
    "worker_backend": OneOf(("cpu", "torch")),
    "skip": Interval(int, 0, None),
    "interval": Interval(int, 1, None),
    "cluster_method": OneOf(("biconnected", "2-edge-connected", "connected")),
    "n_bins": Interval(int, 1, 100_000),
    "window": Interval(float, 0.0, None, closed="neither"),
    "calibration_fraction": Interval(float, 0.0, 1.0, closed="neither"),
}


def check(name: str, value, *, label: str | None = None):
    """`value` converted and validated against the constraint of `name`.

    Raises InputError naming the parameter (`label`, e.g. ``--cutoff`` on the
    command line, defaults to `name`) and its valid range.

    Examples
    --------
    >>> from atominfo import params
    >>> params.check("k", "32")
    32
    >>> params.check("cutoff", 0)
    Traceback (most recent call last):
    ...
    atominfo.errors.InputError: cutoff must be a finite number > 0 and <= 50, got 0
    """
    return CONSTRAINTS[name].validate(label or name, value)


def check_optional(name: str, value, *, label: str | None = None):
    """`check`, letting None through (an option left unset)."""
    return None if value is None else check(name, value, label=label)


# Appended by the command line: counts and sizes it takes as options.
CONSTRAINTS.update(
    {
        "n_star": Interval(float, 0.0, 1e12, closed="right"),
        "subset_size": Interval(int, 1, 10**12),
        "n_frames": Interval(int, 1, 100_000),
        "repeat": Interval(int, 1, 20, limit_reason="4 repeat^3 atoms per frame"),
    }
)

# Candidate generation (workflows.generate), duplicates, kernel regression.
CONSTRAINTS.update(
    {
        "n_candidates": Interval(
            int, 1, 100_000, limit_reason="each candidate is one annealing run"
        ),
        "generations": Interval(int, 1, 1000),
        "mc_steps": Interval(int, 1, 10**7),
        "objective": OneOf(("target", "entropy")),
        "target_dh": Interval(float, -1e4, 1e4),  # nats
        "mc_temperature": Interval(float, 0.0, 1e6, closed="right"),  # nats
        "step_size": Interval(float, 0.0, 2.0, closed="right"),  # Å
        "mc_strain": Interval(float, 0.0, 0.2),
        "probability": Interval(float, 0.0, 1.0),
        # single-atom random displacements, or collective moves along the objective's gradient
        "moves": OneOf(("single", "gradient")),
        "gradient_noise": Interval(float, 0.0, 10.0),  # x step_size, per coordinate
        "min_distance": Interval(float, 0.0, MAX_CUTOFF),  # Å
        "density": Interval(float, 0.0, 100.0, closed="right"),  # g/cm^3
        "duplicate_tol": Interval(float, 0.0, 10.0),  # 1/Å
        "max_dh": Interval(float, -1e4, 1e4),  # nats
    }
)

# Biased MD (`atominfo explore`, `atominfo.workflows.explore`). The upper ends keep
# Langevin MD stable (friction x timestep <= 2 keeps its coefficients positive).
CONSTRAINTS.update(
    {
        "md_temperature": Interval(float, 0.0, 1e5),  # K
        "md_steps": Interval(int, 1, 10**9, limit_reason="each step is one force evaluation"),
        "md_timestep": Interval(float, 0.0, 20.0, closed="right"),  # fs
        "md_friction": Interval(float, 0.0, 1.0),  # ASE's inverse time unit
        "bias_weight": Interval(float, 0.0, 1e3),  # eV per nat
        "max_bias_force": Interval(float, 0.0, None, closed="neither"),  # eV/Å
    }
)

# Labelling (`atominfo extract`, `atominfo.workflows.labelling`).
# Most atoms in one cut-out (cutoff + buffer = R: about 0.35 R^3 atoms in a metal's
# cluster, 8 R^3 / V_atom in its cell); refused, counted first, before it is built.
MAX_CUT_ATOMS = 20_000
CONSTRAINTS.update(
    {
        "buffer": Interval(float, 0.0, 100.0, limit_reason="atoms per cut-out grow as R^3"),
        "cut_atoms": Interval(
            int, 1, MAX_CUT_ATOMS, limit_reason="a larger structure is beyond DFT labelling"
        ),
        "vacuum": Interval(float, 0.0, 1000.0, closed="right"),
        "min_dh": Interval(float, None, None),
        "max_picks": Interval(int, 1, None),
        "max_per_frame": Interval(int, 1, None),
        "top": Interval(int, 1, None),
        "duplicate_distance": Interval(float, 0.0, None),
        "extract_mode": OneOf(("cluster", "cell", "both")),
    }
)

# One huge snapshot (`atominfo snapshot`, `atominfo.workflows.snapshot`).
CONSTRAINTS.update(
    {
        "frame_number": Interval(int, 0, None),
        "chunk_atoms": Interval(int, 1, 10**9),
        "snapshot_dh": OneOf(("novel", "all", "none")),
        # nats: dH at most this far above exact (the terms left out, relative)
        "dh_tol": Interval(float, 0.0, 1.0, closed="right"),
    }
)

# Nucleation clusters (`atominfo clusters`): warn when a single solid reference
# calls more than this fraction of the first frame's atoms solid-like (1: never).
CONSTRAINTS.update({"solid_fraction_warning": Interval(float, 0.0, 1.0, closed="right")})
# ... and when random atoms in the proportion the solid reference calls solid-like
# already form clusters of this many atoms (what a crystal-free melt would show).
CONSTRAINTS.update({"chance_cluster_warning": Interval(int, 1, None)})

# Campaign verdict (`atominfo generations`, `atominfo.workflows.generations.campaign_verdict`).
CONSTRAINTS.update(
    {
        "verdict_window": Interval(int, 1, 1000),
        "max_novelty": Interval(float, 0.0, 1.0),  # fraction of environments
        "max_gain": Interval(float, 0.0, 1e4),  # nats
        "max_gap": Interval(float, 0.0, 1e4),  # nats
        # random re-splits per generation; 19 is the fewest with a 95% quantile
        "verdict_resamples": Interval(
            int, 19, 10_000, limit_reason="each re-split sums every environment's kernel terms"
        ),
    }
)

# Novelty at a stated false-alarm rate (`--false-alarm`, `atominfo.reference.conformal`):
# the chance that an environment drawn like the reference's is flagged.
CONSTRAINTS.update({"false_alarm": Interval(float, 0.0, 1.0, closed="neither")})
