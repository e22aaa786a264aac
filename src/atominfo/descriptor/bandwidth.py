"""Kernel bandwidth: the default, the FCC calibration and the volume rules."""

from __future__ import annotations

import numpy as np

from atominfo.errors import InputError, check_positive

DEFAULT_BANDWIDTH = 0.015  # 1/Å


def fcc_calibration(
    lattice: float = 3.58, strain: float | None = None, k: int = 32, cutoff: float = 5.0
) -> dict:
    """Descriptor distance between perfect FCC crystals at `lattice` and
    `lattice * (1 - strain)`; the bandwidth is half of it.

    The default strain is the paper's pair of lattices, 3.58 and 3.54 Å
    (strain 0.0112). Returns ``{"lattice", "strained_lattice", "strain",
    "distance", "h"}`` (Å, 1/Å).

    With the defaults the distance here is 0.0305 1/Å (h = 0.0153), where
    the paper gives 0.0309 1/Å. The difference is not an error: with k = 32
    and rc = 5 Å the 32nd neighbour of a perfect FCC atom lies in the third
    shell, 24 atoms at exactly the same distance, and which 14 of them are
    kept is arbitrary (it depends on the order in which ties are met). The
    neighbour-neighbour terms depend on that choice: over random rotations of
    the two crystals the distance ranges from 0.0303 to 0.0313 1/Å, and the
    paper's 0.0309 lies in that range.
    """
    if strain is None:
        strain = 1.0 - 3.54 / 3.58
    from ase.build import bulk

    from atominfo.descriptor.kernel import structure_descriptors

    check_positive("lattice", lattice)
    if not 0 < strain < 1:
        raise InputError(f"strain must be in (0, 1), got {strain!r}")
    strained = lattice * (1.0 - strain)
    # One-atom primitive cells: every atom is equivalent, so one row is the crystal.
    x = structure_descriptors(bulk("Cu", "fcc", a=lattice), k, cutoff)[0]
    y = structure_descriptors(bulk("Cu", "fcc", a=strained), k, cutoff)[0]
    distance = float(np.linalg.norm(x - y))
    return {
        "lattice": lattice,
        "strained_lattice": strained,
        "strain": strain,
        "distance": distance,
        "h": distance / 2.0,
    }


def _smooth_cutoff(r, rc):
    r = np.minimum(np.asarray(r, dtype=float), rc)
    return (1.0 - (r / rc) ** 2) ** 2


def volume_bandwidth(volume, rule: str = "gaussian"):
    """Density-dependent bandwidth h(V) for elemental systems, V in Å^3/atom.

    ``"gaussian"``: ``0.0897141 exp(-0.5 (V/10.896)^2) + 0.0119417``;
    ``"cutoff"``: ``0.086164 w(ln(V)^2; rc=11.61172) + 0.016``.
    """
    check_positive("volume", volume)
    v = np.asarray(volume, dtype=float)
    if rule == "gaussian":
        h = 0.0897141 * np.exp(-0.5 * (v / 10.896) ** 2) + 0.0119417
    elif rule == "cutoff":
        h = 0.086164 * _smooth_cutoff(np.log(v) ** 2, 11.61172) + 0.016
    else:
        raise InputError(f"unknown volume rule {rule!r}: use 'gaussian' or 'cutoff'")
    return float(h) if h.ndim == 0 else h
