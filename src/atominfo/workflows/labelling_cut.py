"""Cut-outs: an atom's environment cut out of its structure as a small structure to label.

Let ``R = cutoff + buffer``. The descriptor of an atom depends only on the
atoms within ``cutoff`` of it (docs/method.md, section 1.1), so any cut-out
that keeps every atom within ``R >= cutoff`` of the centre atom, and brings
no other atom within ``cutoff`` of it, gives the centre atom exactly its
original descriptor. Atoms within ``buffer`` of the centre keep theirs too:
their whole cutoff sphere lies inside the cut (per-atom array
``complete_environment``). The other atoms sit at an artificial surface;
the buffer keeps that surface away from the environment being labelled.

* **cluster** (`cut_cluster`): every atom, and every periodic image, within
  ``R`` of the centre atom, unwrapped across periodic boundaries for any cell
  shape (also cells smaller than ``2R``, where one atom appears as several
  images), placed with the centre atom in the middle of an orthorhombic box
  with at least ``vacuum`` Å between the outermost atoms and each face
  (exactly ``vacuum`` on the side of the farthest atom); non-periodic.
  Periodic images of the box (for plane-wave codes) are at least
  ``2 vacuum`` apart.
* **cell** (`cut_cell`): a periodic cell carved around the centre atom. For
  a source periodic in all three directions its vectors are the source cell
  vectors, each shortened so that its height is ``2R`` (kept whole where the
  source cell is no taller than ``2R``: that direction keeps its true
  periodicity); otherwise a cube of side ``2R``. It holds one image of every
  atom in the parallelepiped centred on the centre atom; PBC on. The centre
  atom's descriptor is exact (every image across a carved face is more than
  ``R`` from it), but the carved faces are not commensurate with the
  structure: atoms facing each other across a face can be too close or too
  far apart, so the density and the environments near the faces are
  artefacts. ``info['min_distance']`` (the smallest interatomic distance in
  the carved cell, PBC included) next to ``info['source_min_distance']``
  (the same in the source, over the atoms kept) shows a face clash. Prefer
  clusters for molecules, surfaces and liquids; cells for dense solids whose
  code needs PBC.

A cut-out may hold at most ``atominfo.params.MAX_CUT_ATOMS`` atoms (a larger
structure is beyond what a DFT code labels); its size is estimated from the
density, or counted, before it is built.

Labels (``info`` and per-atom arrays whose name contains energy, force,
stress or virial, and calculator results) describe the whole source frame,
not the cut-out, and are not copied. Every other ``info`` entry and per-atom
array of the source frame is kept (per-atom arrays for the atoms kept).
"""

from __future__ import annotations

import itertools
import math
from typing import cast

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError

# Names of labels that hold for the whole source frame only (matched case-insensitively
# as substrings of info keys and array names): not copied into cut-outs.
LABEL_WORDS = ("energy", "force", "stress", "virial")
# Periodic images examined per cut-out (atoms x lattice shifts) before refusing.
MAX_IMAGE_WORK = 50_000_000
# Keys `atominfo.workflows.labelling.extract` writes into info (a source entry of
# the same name is not carried over).
PROVENANCE = (
    "mode",
    "source",
    "source_frame",
    "frame",
    "timestep",
    "time",
    "centre_atom",
    "centre_index",
    "dH",
    "dH_at_pick",
    "pick",
    "bandwidth",
    "k",
    "cutoff",
    "buffer",
    "cut_radius",
    "vacuum",
    "reference",
    "reference_environments",
    "reference_sha256",
    "descriptor_error",
    "min_distance",
    "source_min_distance",
)


def _cell_and_heights(atoms: Atoms):
    """(cell with degenerate non-periodic vectors completed, heights, pbc)."""
    from atominfo.structures.geometry import cell_heights, complete_cell

    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return np.eye(3), np.full(3, np.inf), pbc
    cell = complete_cell(np.asarray(atoms.cell[:], dtype=float), pbc)
    return cell, cell_heights(cell), pbc


def _too_many_atoms(radius: float, about: float | None = None) -> InputError:
    """The refusal of a cut-out of `radius` Å holding more than `MAX_CUT_ATOMS` atoms."""
    limit = params.MAX_CUT_ATOMS
    reason = cast(params.Interval, params.CONSTRAINTS["cut_atoms"]).limit_reason
    size = (
        f"about {about:,.0f} atoms, more than the {limit:,}"
        if about
        else f"more than the {limit:,}"
    )
    return InputError(
        f"a cut-out of radius {radius:g} Å (cutoff + buffer) would hold {size} atoms "
        f"allowed ({reason}); use a smaller buffer or cutoff"
    )


def _check_size(n: int, radius: float, cell, pbc, n_shifts: int) -> None:
    """Refuse a cut-out too large to label, from the density where the cell is periodic,
    and a search over too many periodic images, before any image is made."""
    limit = params.MAX_CUT_ATOMS
    if pbc.all():  # atoms expected in the sphere, from the density
        expected = n * (4.0 / 3.0) * math.pi * radius**3 / abs(np.linalg.det(cell))
        if expected > 1.5 * limit:  # (well above: the exact count decides near the limit)
            raise _too_many_atoms(radius, expected)
    if n_shifts * n > MAX_IMAGE_WORK:
        raise InputError(
            f"cutting {radius:g} Å around an atom of this cell needs "
            f"{n_shifts:,} periodic images of {n:,} atoms; use a smaller buffer "
            "or cutoff"
        )


def images_within(atoms: Atoms, centre: int, radius: float):
    """Every atom and periodic image within `radius` of atom `centre`, unwrapped.

    Works for any cell shape and size: a cell smaller than ``2 radius`` gives
    several images of the same atom, as in the infinite periodic structure.
    Periodic only in the directions of ``atoms.pbc``.

    Parameters
    ----------
    atoms : ase.Atoms
    centre : int, atom index.
    radius : float, Å.

    Returns
    -------
    owner : ndarray of int, shape (m,)
        Source atom of each image; ``owner[0] == centre``.
    displacement : ndarray, shape (m, 3), Å
        Position of each image relative to the centre atom (row 0 is zero),
        ordered by distance, ties by atom then lattice shift.

    Raises
    ------
    InputError
        For a missing atom, and for more than ``params.MAX_CUT_ATOMS`` images
        (estimated from the density first, then counted).
    """
    n = len(atoms)
    if not 0 <= centre < n:
        raise InputError(f"atom {centre} does not exist ({n} atoms)")
    pos = np.asarray(atoms.positions, dtype=float)
    delta = pos - pos[centre]
    cell, heights, pbc = _cell_and_heights(atoms)
    reach = np.zeros(3, dtype=np.int64)
    base = delta
    if pbc.any():
        frac = delta @ np.linalg.inv(cell)
        nearest = np.where(pbc, np.round(frac), 0.0)
        base = delta - nearest @ cell  # minimum image in fractional terms, |frac| <= 1/2
        # an image within `radius` has |fractional offset| <= radius / height
        reach = np.where(pbc, np.ceil(radius / np.where(pbc, heights, 1.0) + 0.5), 0)
        reach = reach.astype(np.int64)
    _check_size(n, radius, cell, pbc, int(np.prod(2 * reach + 1)))
    owner, disp = _images(base, cell, reach, radius)
    dist = np.einsum("ij,ij->i", disp, disp)
    is_centre = (owner == centre) & (dist == 0.0)
    order = np.lexsort((np.arange(len(owner)), dist, ~is_centre))
    return owner[order], disp[order]


def _images(base, cell, reach, radius: float):
    """(owner, displacement) of the images within `radius`, shift after shift (shifts in
    lexicographic order, atoms in order within a shift); refused beyond MAX_CUT_ATOMS."""
    limit = params.MAX_CUT_ATOMS
    owners, disps = [], []
    found = 0
    r2 = radius * radius
    for shift in itertools.product(*(range(-r, r + 1) for r in reach)):
        d = base + np.asarray(shift, dtype=float) @ cell if any(shift) else base
        keep = np.flatnonzero(np.einsum("ij,ij->i", d, d) <= r2)
        if keep.size:
            owners.append(keep)
            disps.append(d[keep])
            found += keep.size
            if found > limit:
                raise _too_many_atoms(radius)
    return np.concatenate(owners), np.concatenate(disps)


def _min_distance(positions, cell=None, guess: float = 1.0) -> float:
    """Smallest distance between two atoms, Å; periodic images included when `cell` is given.

    `guess` (Å) is a first search radius for periodic images, doubled until the
    distance found lies within it (then no farther image can be closer).
    """
    from atominfo.descriptor.kernel import min_distance

    atoms = Atoms(positions=positions, cell=cell, pbc=cell is not None)
    radius = max(guess, 0.1)
    while True:
        d = min_distance(atoms, radius)
        if cell is None or d <= radius:
            return d
        radius *= 2.0


def _is_label(name: str) -> bool:
    lower = name.lower()
    return any(word in lower for word in LABEL_WORDS)


def _carry_over(source: Atoms, out: Atoms, owner: np.ndarray) -> None:
    """Copy the source's info and per-atom arrays (of atoms `owner`) that still apply."""
    for key, value in source.info.items():
        if not _is_label(key) and key not in PROVENANCE:
            out.info[key] = value
    for name, values in source.arrays.items():
        if name in ("numbers", "positions") or _is_label(name) or name in out.arrays:
            continue
        out.arrays[name] = np.asarray(values)[owner].copy()


def _cut(source: Atoms, owner, positions, cell, pbc, complete) -> Atoms:
    out = Atoms(numbers=source.numbers[owner], positions=positions, cell=cell, pbc=pbc)
    out.set_array("source_atom", owner.astype(np.int64))
    out.set_array("complete_environment", complete)
    _carry_over(source, out, owner)
    return out


def cut_cluster(
    atoms: Atoms, centre: int, cutoff: float, buffer: float = 2.0, vacuum: float = 6.0
) -> Atoms:
    """Non-periodic cluster of every atom within ``cutoff + buffer`` of atom `centre`.

    Parameters
    ----------
    atoms : ase.Atoms, the source structure (any cell, any periodicity).
    centre : int, the atom whose environment is cut out.
    cutoff : float, descriptor cutoff rc, Å.
    buffer : float, Å, >= 0. Extra shell kept around the cutoff sphere.
    vacuum : float, Å, > 0. Smallest empty space between the atoms and each face
        of the box (the box is orthorhombic, the centre atom in its middle).

    Returns
    -------
    ase.Atoms with ``pbc = False``; atom 0 is the centre atom, the others follow
    by distance. Per-atom arrays ``source_atom`` (index in `atoms`) and
    ``complete_environment`` (True within `buffer` of the centre: the whole
    cutoff sphere is inside the cut); ``info['min_distance']`` and
    ``info['source_min_distance']`` (Å, equal for a cluster); the source's
    other info and arrays (labels excepted, see the module docstring).

    Raises
    ------
    InputError
        For bad parameters, and for a cluster of more than
        ``atominfo.params.MAX_CUT_ATOMS`` atoms (refused before it is built).
    """
    cutoff = params.check("cutoff", cutoff)
    buffer = params.check("buffer", buffer)
    vacuum = params.check("vacuum", vacuum)
    radius = cutoff + buffer
    owner, disp = images_within(atoms, int(centre), radius)
    half = np.abs(disp).max(axis=0) + vacuum
    out = _cut(
        atoms, owner, disp + half, np.diag(2 * half), False, np.linalg.norm(disp, axis=1) <= buffer
    )
    out.info["min_distance"] = out.info["source_min_distance"] = _min_distance(out.positions)
    return out


def cut_cell(atoms: Atoms, centre: int, cutoff: float, buffer: float = 2.0) -> Atoms:
    """Periodic cell carved around atom `centre`, each height ``2 (cutoff + buffer)``.

    See the module docstring for the construction and its limits (face
    artefacts: check ``info['min_distance']`` against
    ``info['source_min_distance']``).

    Parameters
    ----------
    atoms : ase.Atoms, the source structure.
    centre : int, the atom whose environment is cut out.
    cutoff : float, descriptor cutoff rc, Å.
    buffer : float, Å, >= 0.

    Returns
    -------
    ase.Atoms with ``pbc = True``, the centre atom (index 0) at the middle of
    the cell; arrays ``source_atom`` and ``complete_environment`` as in
    `cut_cluster`.

    Raises
    ------
    InputError
        As `cut_cluster` (the limit on atoms applies to the sphere around the
        carved cell, counted before it is built).
    """
    cutoff = params.check("cutoff", cutoff)
    buffer = params.check("buffer", buffer)
    radius = cutoff + buffer
    cell, heights, pbc = _cell_and_heights(atoms)
    if pbc.all():
        scale = np.minimum(1.0, 2 * radius / heights)
        new_cell = cell * scale[:, None]
    else:
        new_cell = np.eye(3) * 2 * radius
    circumradius = 0.5 * max(
        np.linalg.norm(np.asarray(signs) @ new_cell)
        for signs in itertools.product((-1, 1), repeat=3)
    )
    owner, disp = images_within(atoms, int(centre), circumradius * (1 + 1e-9) + 1e-9)
    frac = disp @ np.linalg.inv(new_cell)
    inside = np.all((frac >= -0.5) & (frac < 0.5), axis=1)
    inside[0] = True
    owner, disp = owner[inside], disp[inside]
    middle = 0.5 * new_cell.sum(axis=0)
    out = _cut(atoms, owner, disp + middle, new_cell, True, np.linalg.norm(disp, axis=1) <= buffer)
    source_min = _min_distance(disp)
    out.info["source_min_distance"] = source_min
    out.info["min_distance"] = _min_distance(
        out.positions, new_cell, source_min if math.isfinite(source_min) else 1.0
    )
    return out


def centre_descriptor(
    cut: Atoms, k: int, cutoff: float, *, species=None, source: str = "<memory>", frame: int = 0
) -> np.ndarray:
    """Descriptor row of atom 0 of a cut-out, 1/Å: the check that it is the source's.

    A cluster (no periodicity, plain descriptor) describes its centre atom
    alone, among all its atoms: the very row, to the last bit, of describing
    every atom, at a fraction of the work (a cut-out holds thousands of atoms
    at a large cutoff or buffer). Cells and species blocks describe every atom.
    `source` and `frame` name the source frame in an error.
    """
    from atominfo.descriptor import frame_descriptors
    from atominfo.descriptor.kernel import describe_points
    from atominfo.structures.frames import Frame

    if species is not None or cut.pbc.any():
        return frame_descriptors(Frame(cut, source, frame), k, cutoff, species=species)[0]
    row = np.empty((1, 2 * k - 1))
    points = np.array(cut.positions, dtype=float)
    try:
        coincident = describe_points(points, np.zeros(1, dtype=np.int64), k, cutoff, row)
    except InputError as exc:
        raise exc.located(source, frame) from None
    if coincident[0] >= 0:
        raise InputError(
            f"two atoms at the same position (atoms 0 and {int(coincident[0])}) in a cut-out",
            source=source,
            frame=frame,
        )
    return row[0]
