"""The per-atom property ``d_<name>`` of `LammpsMonitor`: what it holds, and how per-atom
values of every MPI rank travel through it to every rank (``gather``).
"""

from __future__ import annotations

import numpy as np

from atominfo.errors import InputError
from atominfo.workflows.lammps_options import MonitorOptions

__all__ = ["by_id", "gather", "store_meaning", "stored"]


def stored(dH: np.ndarray) -> np.ndarray:
    """dH as d_<name> holds it: 0 where not computed (NaN: inside the domain, dH <= 0).

    LAMMPS computes with per-atom properties (``compute reduce``, atom-style
    variables, ``dump_modify thresh``), and a NaN there poisons every such sum
    or comparison; 0 is the least value a novel atom's dH exceeds.
    """
    return np.where(np.isnan(dH), 0.0, dH)


def store_meaning(options: MonitorOptions, species: bool = False) -> str:
    """What d_<name> holds, as the LAMMPS log says it (a dump cannot); no single quote
    (LAMMPS would parse it). `species`: each atom against its own species, +inf for a
    species absent from the reference (`atominfo.workflows.lammps_species`)."""
    if options.all_exact:
        text = "dH (nats) of every atom at its latest check"
    else:
        text = (
            "dH (nats) of the novel atoms at their latest check; 0 for the atoms inside the "
            "domain of the reference (dH <= 0, not computed)"
        )
    if species:
        text += "; each atom against its own species, inf for a species the reference lacks"
    return text


def by_id(local: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Values of this process's atoms (local order) ordered by ID (`rows`: each one's row)."""
    out = np.empty(len(rows), dtype=local.dtype)
    out[rows] = local
    return out


def gather(lmp, name: str, local: np.ndarray) -> np.ndarray:
    """Each rank's `local` values (of its atoms, in LAMMPS's local order), gathered
    through ``d_<name>`` into one array ordered by ID, on every rank (collective:
    every rank calls it at the same point; atom IDs 1 to N)."""
    if len(local):
        lmp.numpy.extract_atom(f"d_{name}")[: len(local)] = local
    gathered = lmp.gather(f"d_{name}", 1, 1)
    if gathered is None:
        raise InputError(f"LAMMPS could not gather d_{name} (atom IDs must be 1 to N)")
    return np.array(np.ctypeslib.as_array(gathered), dtype=float)
