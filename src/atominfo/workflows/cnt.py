"""Classical nucleation theory: the critical radius r* and size n* of a nucleus.

See docs/method.md, section 6 (`atominfo cnt`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result

AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class CriticalNucleus(Result):
    """What `critical_nucleus` computed, with the inputs it used.

    Attributes
    ----------
    r_star : critical radius, Å. n_star : critical size, atoms.
    latent_heat_per_volume : J/m^3.
    gamma (J/m^2), melting_temperature (K), latent_heat (kJ/mol),
    undercooling (K), atomic_volume (Å^3): the inputs.
    """

    _fields_shown = ("r_star", "n_star", "undercooling")
    r_star: float
    n_star: float
    latent_heat_per_volume: float
    gamma: float
    melting_temperature: float
    latent_heat: float
    undercooling: float
    atomic_volume: float


def critical_nucleus(
    gamma: float,
    melting_temperature: float,
    latent_heat: float,
    undercooling: float,
    atomic_volume: float,
) -> CriticalNucleus:
    """Classical nucleation theory: critical radius r* and size n*.

    ``r* = 2 gamma T_m / (dH_m dT)``, with dH_m the latent heat per volume, and
    ``n* = (4/3) pi r*^3 / v_atom``.

    Parameters
    ----------
    gamma : float
        Solid-liquid interface free energy, J/m^2.
    melting_temperature : float
        T_m, K.
    latent_heat : float
        Latent heat of melting, kJ/mol.
    undercooling : float
        dT = T_m - T, K.
    atomic_volume : float
        Volume per atom of the solid, Å^3 (converts the latent heat to J/m^3).

    Returns
    -------
    CriticalNucleus: 'r_star' (Å), 'n_star' (atoms), 'latent_heat_per_volume'
    (J/m^3) and the inputs.

    Raises
    ------
    InputError
        For a value that is not a finite positive number, an undercooling
        not below the melting temperature (the temperature T = T_m - dT must be > 0 K),
        or a result (r*, n*, the latent heat per volume) beyond the range of a
        normal float64, naming the input that pushes it there.
    """
    gamma = params.check("gamma", gamma)
    melting_temperature = params.check("melting_temperature", melting_temperature)
    latent_heat = params.check("latent_heat", latent_heat)
    undercooling = params.check("undercooling", undercooling)
    atomic_volume = params.check("atomic_volume", atomic_volume)
    if undercooling >= melting_temperature:
        raise InputError(
            f"undercooling must be below the melting temperature "
            f"({melting_temperature:g} K), got {undercooling:g}"
        )
    inputs = {
        "gamma": gamma,
        "melting_temperature": melting_temperature,
        "latent_heat": latent_heat,
        "undercooling": undercooling,
        "atomic_volume": atomic_volume,
    }
    # In logs: every input is a positive float, but a product such as
    # latent_heat * undercooling can underflow to 0 (or r* overflow) inside the
    # declared ranges; the logs are always finite, so an unrepresentable
    # result is refused by name instead of raising OverflowError.
    log_of = {name: math.log(value) for name, value in inputs.items()}
    log_per_volume = (
        log_of["latent_heat"] + math.log(1e3 / AVOGADRO) - log_of["atomic_volume"] - math.log(1e-30)
    )  # J/m^3
    log_r_star = (  # Å
        math.log(2.0)
        + log_of["gamma"]
        + log_of["melting_temperature"]
        - log_per_volume
        - log_of["undercooling"]
        + math.log(1e10)
    )
    log_n_star = math.log(4.0 / 3.0 * math.pi) + 3.0 * log_r_star - log_of["atomic_volume"]
    for quantity, log_value, unit in (
        ("latent heat per volume", log_per_volume, "J/m^3"),
        ("critical radius r*", log_r_star, "Å"),
        ("critical size n*", log_n_star, "atoms"),
    ):
        _check_representable(quantity, log_value, unit, inputs, log_of)
    return CriticalNucleus(
        r_star=math.exp(log_r_star),
        n_star=math.exp(log_n_star),
        latent_heat_per_volume=math.exp(log_per_volume),
        **inputs,
    )


# The paper's Cu values (the `atominfo cnt` defaults), and how each result
# scales with each input (its exponent): the input that pushes a result out
# of float64 furthest from these values is the one an error message names.
_TYPICAL_CNT = {
    "gamma": ("gamma", 0.177, "J/m^2"),
    "melting_temperature": ("melting temperature", 1323.0, "K"),
    "latent_heat": ("latent heat", 11.99, "kJ/mol"),
    "undercooling": ("undercooling", 420.0, "K"),
    "atomic_volume": ("volume per atom", 12.893, "Å^3"),
}
_CNT_EXPONENTS = {
    "latent heat per volume": {"latent_heat": 1, "atomic_volume": -1},
    "critical radius r*": {
        "gamma": 1,
        "melting_temperature": 1,
        "latent_heat": -1,
        "undercooling": -1,
        "atomic_volume": 1,
    },
    "critical size n*": {
        "gamma": 3,
        "melting_temperature": 3,
        "latent_heat": -3,
        "undercooling": -3,
        "atomic_volume": 2,
    },
}
# Positive normal float64: below it precision is lost, above it is inf.
_LOG_SMALLEST = math.log(sys.float_info.min)
_LOG_LARGEST = math.log(sys.float_info.max)


def _check_representable(quantity, log_value, unit, inputs, log_of) -> None:
    """InputError naming the input to blame when exp(log_value) is not a normal float64."""
    if _LOG_SMALLEST <= log_value <= _LOG_LARGEST:
        return
    direction = 1 if log_value > _LOG_LARGEST else -1
    exponents = _CNT_EXPONENTS[quantity]

    def push(name):  # how far `name` moves the result towards the side it left by
        return direction * exponents[name] * (log_of[name] - math.log(_TYPICAL_CNT[name][1]))

    culprit = max(exponents, key=push)
    words, _, unit_in = _TYPICAL_CNT[culprit]
    typical = ", ".join(f"{w} {v:g} {u}" for w, v, u in _TYPICAL_CNT.values())
    raise InputError(
        f"{quantity} {'overflows' if direction > 0 else 'underflows'} float64 "
        f"(about 10^{log_value / math.log(10):.0f} {unit}) at {words} "
        f"{inputs[culprit]:g} {unit_in}; use physical values (Cu: {typical})"
    )
