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
  atom in the parallelepiped centred on the centre atom; PBC on. The carved
  faces are not commensurate with the structure: an atom just inside one face
  can land on the periodic image of an atom just inside the opposite face (a
  clash: measured 0.02-1.5 Å apart in EMT Cu melts and crystals whose closest
  atoms are 2.0-2.3 Å apart). So the carved directions that a clash crosses
  are lengthened, step by step (an eighth of the bound below per step), until
  no two atoms, periodic images included, are closer than ``CLASH_RATIO``
  (0.9) times the source's smallest interatomic distance;
  ``info['cell_margin']`` (Å, per cell vector) says by how much. The margin
  never needs to exceed that bound ``g``: an image across a face lengthened
  by ``g`` is at least ``g`` from every atom of the cell (its distance along
  the face normal is), and atoms within the
  cell, or images across uncarved directions, are at source distances. The
  centre atom's descriptor is exact (an image across a carved face is more
  than ``R`` from it), and so are those of the atoms marked
  ``complete_environment``. The faces remain artificial surfaces, denser or
  sparser than the structure: prefer clusters for molecules, surfaces and
  liquids; cells for dense solids whose code needs PBC.

Both record ``info['min_distance']`` (the smallest interatomic distance in
the cut-out, periodic images included for cells) and
``info['source_min_distance']`` (the same in the whole source frame,
`source_min_distance`). `cut_out` cuts several atoms of one frame at once.

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
# Smallest interatomic distance a cut-out may hold, as a fraction of its source's.
CLASH_RATIO = 0.9
# A carved cell's margin grows in steps of 1/PAD_STEPS of the bound that always suffices.
PAD_STEPS = 8
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
    "cell_margin",
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


def _min_distance(atoms: Atoms, guess: float = 1.0) -> float:
    """Smallest distance between two atoms, Å, periodic images included as in `atoms.pbc`.

    `guess` (Å) is a first search radius for periodic images, doubled until the
    distance found lies within it (then no farther image can be closer).
    """
    from atominfo.descriptor.kernel import min_distance

    radius = max(guess, 0.1)
    while True:
        d = min_distance(atoms, radius)
        if not atoms.pbc.any() or d <= radius:
            return d
        radius *= 2.0


def source_min_distance(atoms: Atoms) -> float:
    """Smallest interatomic distance of a structure, Å, periodic images included as in
    ``atoms.pbc`` (inf for a single atom without periodic images).

    A cell periodic in all three directions is searched once, within the largest
    distance its density allows (no packing of spheres fills more than pi / sqrt(18)
    of space); other structures within a radius doubled until the distance is found.
    """
    cell, _, pbc = _cell_and_heights(atoms)  # refuses a flat periodic cell
    atoms = Atoms(positions=atoms.positions, cell=cell, pbc=pbc)
    guess = 1.0
    if pbc.all() and len(atoms):
        volume = abs(float(np.linalg.det(cell)))
        packing = math.pi / math.sqrt(18.0)
        guess = 2.0 * (3.0 * packing * volume / (4.0 * math.pi * len(atoms))) ** (1.0 / 3.0)
        guess = guess * (1.0 + 1e-9) + 1e-9
    return _min_distance(atoms, guess)


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


def cut_out(
    atoms: Atoms,
    centres,
    cutoff: float,
    buffer: float = 2.0,
    vacuum: float = 6.0,
    mode: str = "cluster",
) -> list[Atoms]:
    """The environments of atoms `centres` of one structure, cut out to be labelled.

    The one call for "cut out around these atoms of this frame": the source's
    smallest interatomic distance (the bound of the cells' clash check) is
    measured once for all of them.

    Parameters
    ----------
    atoms : ase.Atoms, the source structure (any cell, any periodicity).
    centres : atom indices, the atoms whose environments are cut out.
    cutoff : float, descriptor cutoff rc, Å.
    buffer : float, Å, >= 0. Extra shell kept around the cutoff sphere.
    vacuum : float, Å, > 0, between a cluster and each face of its box.
    mode : "cluster" (`cut_cluster`), "cell" (`cut_cell`) or "both".

    Returns
    -------
    list of ase.Atoms: per centre, in order, its cluster then its cell (as `mode`
    asks), each with ``info['mode']``.

    Raises
    ------
    InputError
        For bad parameters, a missing atom, and a cut-out of more than
        ``atominfo.params.MAX_CUT_ATOMS`` atoms (refused before it is built).
    """
    cutoff = params.check("cutoff", cutoff)
    buffer = params.check("buffer", buffer)
    vacuum = params.check("vacuum", vacuum)
    mode = params.check("extract_mode", mode)
    kinds = ("cluster", "cell") if mode == "both" else (mode,)
    source = source_min_distance(atoms)
    out = []
    for centre in centres:
        for kind in kinds:
            if kind == "cluster":
                piece = _cluster(atoms, int(centre), cutoff + buffer, buffer, vacuum)
            else:
                piece = _cell(atoms, int(centre), cutoff + buffer, buffer, source)
            piece.info["mode"] = kind
            piece.info["source_min_distance"] = source
            out.append(piece)
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
    cutoff sphere is inside the cut); ``info['min_distance']`` (Å, the
    cluster's, at least the source's) and ``info['source_min_distance']``; the
    source's other info and arrays (labels excepted, see the module docstring).

    Raises
    ------
    InputError
        For bad parameters, and for a cluster of more than
        ``atominfo.params.MAX_CUT_ATOMS`` atoms (refused before it is built).
    """
    return cut_out(atoms, [centre], cutoff, buffer, vacuum, "cluster")[0]


def _cluster(atoms: Atoms, centre: int, radius: float, buffer: float, vacuum: float) -> Atoms:
    owner, disp = images_within(atoms, centre, radius)
    half = np.abs(disp).max(axis=0) + vacuum
    out = _cut(
        atoms, owner, disp + half, np.diag(2 * half), False, np.linalg.norm(disp, axis=1) <= buffer
    )
    out.info["min_distance"] = _min_distance(out)
    return out


def cut_cell(atoms: Atoms, centre: int, cutoff: float, buffer: float = 2.0) -> Atoms:
    """Periodic cell carved around atom `centre`, each height ``2 (cutoff + buffer)``, each
    carved direction lengthened so that no two atoms clash across its faces.

    See the module docstring for the construction: no two atoms, periodic
    images included, closer than ``CLASH_RATIO`` times the source's smallest
    interatomic distance (``info['min_distance']``, ``info['source_min_distance']``),
    ``info['cell_margin']`` the lengthening of each cell vector's height, Å.

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
    return cut_out(atoms, [centre], cutoff, buffer, mode="cell")[0]


def _cell(atoms: Atoms, centre: int, radius: float, buffer: float, source: float) -> Atoms:
    from atominfo.structures.geometry import cell_heights

    cell, heights, pbc = _cell_and_heights(atoms)
    if pbc.all():
        scale = np.minimum(1.0, 2 * radius / heights)
        new_cell = cell * scale[:, None]
        carved = scale < 1.0
    else:
        new_cell = np.eye(3) * 2 * radius
        carved = np.ones(3, dtype=bool)
    circumradius = 0.5 * max(
        np.linalg.norm(np.asarray(signs) @ new_cell)
        for signs in itertools.product((-1, 1), repeat=3)
    )
    owner, disp = images_within(atoms, centre, circumradius * (1 + 1e-9) + 1e-9)
    frac = disp @ np.linalg.inv(new_cell)
    inside = np.all((frac >= -0.5) & (frac < 0.5), axis=1)
    inside[0] = True
    owner, disp = owner[inside], disp[inside]
    margin = _clash_margin(disp, new_cell, carved, CLASH_RATIO * source)
    padded = new_cell * ((cell_heights(new_cell) + margin) / cell_heights(new_cell))[:, None]
    middle = 0.5 * padded.sum(axis=0)
    out = _cut(atoms, owner, disp + middle, padded, True, np.linalg.norm(disp, axis=1) <= buffer)
    out.info["min_distance"] = _min_distance(out, source if math.isfinite(source) else 1.0)
    out.info["cell_margin"] = margin
    return out


def _clash_margin(disp, cell, carved, bound: float) -> np.ndarray:
    """Height, Å, to add to each carved direction of `cell` so that no two atoms at `disp`
    (from the centre, inside the cell) or their images are closer than `bound`.

    Each direction that a clash crosses grows by ``bound / PAD_STEPS`` until no clash
    is left; at ``bound`` (slightly above, against rounding) a direction can hold no
    clash across its faces, so this ends within PAD_STEPS rounds.
    """
    from atominfo.structures.geometry import cell_heights

    margin = np.zeros(3)
    if not (carved.any() and math.isfinite(bound) and bound > 0):
        return margin
    cap = bound * (1.0 + 1e-6)
    heights = cell_heights(cell)
    while True:
        padded = cell * ((heights + margin) / heights)[:, None]
        grow = carved & _crossed(disp, padded, heights + margin, bound) & (margin < cap)
        if not grow.any():
            return margin
        margin[grow] = np.minimum(margin[grow] + cap / PAD_STEPS, cap)


def _crossed(points, cell, heights, bound: float) -> np.ndarray:
    """Which cell directions a pair closer than `bound` crosses: an atom and a periodic
    image of an atom (shift != 0), shape (3,) bool. Pairs within the cell are not seen."""
    from scipy.spatial import cKDTree

    reach = np.ceil(bound / heights).astype(np.int64)
    shifts = np.array(
        [s for s in itertools.product(*(range(-r, r + 1) for r in reach)) if any(s)], dtype=float
    )
    images = (points[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    d, _ = cKDTree(points).query(images, distance_upper_bound=bound)
    close = np.isfinite(d) & (d < bound)
    return (shifts[np.flatnonzero(close) // len(points)] != 0).any(axis=0)


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
