"""What to label next: novel environments cut out as DFT-ready structures.

From a trajectory (or any set of structures) and a reference (the training
set), every atom with dH > `min_dh` against the reference is a *candidate*:
an environment the training set does not cover (docs/method.md, section 3.3).
This module

1. finds the candidates (`find_novel`), streaming the frames, keeping only
   their descriptor rows and where they came from;
2. optionally deduplicates them (`deduplicate`): greedy maximum dH against
   the reference plus the candidates already picked, so 500 copies of one new
   environment become one structure and each pick fills a different gap;
3. cuts each chosen environment out of its frame as a small structure a DFT
   code can label (`cut_cluster`, `cut_cell`), with its provenance in
   ``info`` and a check that the centre atom's descriptor is unchanged.

Cut-outs
--------
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

Labels (``info`` and per-atom arrays whose name contains energy, force,
stress or virial, and calculator results) describe the whole source frame,
not the cut-out, and are not copied. Every other ``info`` entry and per-atom
array of the source frame is kept (per-atom arrays for the atoms kept).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result, jsonable

# Names of labels that hold for the whole source frame only (matched case-insensitively
# as substrings of info keys and array names): not copied into cut-outs.
LABEL_WORDS = ("energy", "force", "stress", "virial")
# A cut-out with more atoms than this is refused (buffer or cutoff far too large).
MAX_CUT_ATOMS = 200_000
# Periodic images examined per cut-out (atoms x lattice shifts) before refusing.
MAX_IMAGE_WORK = 50_000_000
# Keys this module writes into info (a source entry of the same name is replaced).
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

# Ranges of this module's parameters (same form as `atominfo.params`).
# -- geometry ------------------------------------------------------------------------------


def _cell_and_heights(atoms: Atoms):
    """(cell with degenerate non-periodic vectors completed, heights, pbc)."""
    from atominfo.descriptor.kernel import _complete_cell

    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return np.eye(3), np.full(3, np.inf), pbc
    cell = _complete_cell(np.asarray(atoms.cell[:], dtype=float), pbc)
    volume = abs(np.linalg.det(cell))
    heights = np.array(
        [volume / np.linalg.norm(np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])) for d in range(3)]
    )
    return cell, heights, pbc


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
    if pbc.all():  # atoms expected in the sphere, from the density: refuse at once
        expected = n * (4.0 / 3.0) * math.pi * radius**3 / abs(np.linalg.det(cell))
        if expected > 1.5 * MAX_CUT_ATOMS:
            raise InputError(
                f"a cut-out of radius {radius:g} Å would hold more than "
                f"{MAX_CUT_ATOMS:,} atoms (about {expected:,.0f}); use a "
                "smaller buffer or cutoff"
            )
    n_shifts = int(np.prod(2 * reach + 1))
    if n_shifts * n > MAX_IMAGE_WORK:
        raise InputError(
            f"cutting {radius:g} Å around an atom of this cell needs "
            f"{n_shifts:,} periodic images of {n:,} atoms; use a smaller buffer "
            "or cutoff"
        )
    owners, disps = [], []
    r2 = radius * radius
    for shift in itertools.product(*(range(-r, r + 1) for r in reach)):
        d = base + np.asarray(shift, dtype=float) @ cell if any(shift) else base
        keep = np.flatnonzero(np.einsum("ij,ij->i", d, d) <= r2)
        owners.append(keep)
        disps.append(d[keep])
        if sum(len(o) for o in owners) > MAX_CUT_ATOMS:
            raise InputError(
                f"a cut-out of radius {radius:g} Å would hold more than "
                f"{MAX_CUT_ATOMS:,} atoms; use a smaller buffer or cutoff"
            )
    owner = np.concatenate(owners)
    disp = np.concatenate(disps)
    dist = np.einsum("ij,ij->i", disp, disp)
    is_centre = (owner == centre) & (dist == 0.0)
    order = np.lexsort((np.arange(len(owner)), dist, ~is_centre))
    return owner[order], disp[order]


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


# -- candidates ----------------------------------------------------------------------------


@dataclass
class NovelEnvironments(Result):
    """Environments with dH > `min_dh` against a reference, and where they are.

    Attributes
    ----------
    X : ndarray, shape (n, d), 1/Å
        Descriptor of each candidate environment.
    dH : ndarray, shape (n,), nats
        Its dH against the reference.
    frame : ndarray of int, shape (n,)
        Frame number over all inputs, from 0.
    atom : ndarray of int, shape (n,)
        Atom index within its frame.
    frames : dict
        Per frame number holding a candidate: source, source_frame, timestep, time.
    bandwidth : float, 1/Å;  k, cutoff : descriptor settings;  min_dh : threshold, nats.
    total_frames, total_environments : how many were scanned.
    reference : dict, what the dH was measured against (environments, sha256, files).
    """

    X: np.ndarray = field(repr=False)
    dH: np.ndarray = field(repr=False)
    frame: np.ndarray = field(repr=False)
    atom: np.ndarray = field(repr=False)
    frames: dict = field(repr=False)
    bandwidth: float
    k: int
    cutoff: float
    min_dh: float
    total_frames: int
    total_environments: int
    reference: dict = field(default_factory=dict, repr=False)

    _fields_shown = ("total_frames", "total_environments", "min_dh", "bandwidth")

    def __len__(self) -> int:
        return len(self.dH)

    def to_dict(self) -> dict:
        """JSON-ready summary (the descriptors are left out)."""
        return jsonable(
            {
                "candidates": len(self),
                "frames_with_candidates": len(self.frames),
                "total_frames": self.total_frames,
                "total_environments": self.total_environments,
                "min_dH": self.min_dh,
                "max_dH": float(self.dH.max()) if len(self) else None,
                "bandwidth": self.bandwidth,
                "k": self.k,
                "cutoff": self.cutoff,
                "reference": self.reference,
            }
        )


def reference_fingerprint(X) -> str:
    """First 16 hex digits of the SHA-256 of a descriptor matrix (float64, C order)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    digest = hashlib.sha256(str(X.shape).encode())
    digest.update(X.tobytes())
    return digest.hexdigest()[:16]


def _stored_dh(atoms: Atoms, name: str, source: str, frame: int) -> np.ndarray:
    if name not in atoms.arrays:
        raise InputError(
            f"no per-atom {name!r} array: give a reference (--ref), or the "
            f"output of `atominfo dh -o FILE.extxyz`",
            source=source,
            frame=frame,
        )
    dH = np.asarray(atoms.arrays[name], dtype=float).reshape(-1)
    if len(dH) != len(atoms):
        raise InputError(
            f"per-atom {name!r} array has {len(dH)} values for {len(atoms)} atoms",
            source=source,
            frame=frame,
        )
    bad = ~np.isfinite(dH)
    if bad.any():
        raise InputError(
            f"{name!r} is not a finite number", source=source, frame=frame, atom=int(np.argmax(bad))
        )
    return dH


def find_novel(
    structures,
    reference=None,
    *,
    min_dh: float = 0.0,
    top: int | None = None,
    h: float | None = None,
    dh_array: str = "dH",
    index=":",
    format=None,
    type_map=None,
    k: int | None = None,
    cutoff: float | None = None,
    rescale_volume: float | None = None,
    species: Sequence[str] | None = None,
    reference_files: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> NovelEnvironments:
    """Every environment of `structures` with dH > `min_dh`, streamed frame by frame.

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths.
    reference : Reference or None
        The training set (one bandwidth). None: the frames must carry a
        per-atom `dh_array` (``atominfo dh -o flagged.extxyz`` writes one),
        computed with bandwidth `h` and descriptor settings `k`, `cutoff`.
    min_dh : float, nats. Threshold: environments with dH > min_dh are kept.
    top : int, optional. Keep only the `top` largest dH (memory stays bounded).
    h : float, 1/Å, only without a reference (default 0.015).
    dh_array : name of the stored per-atom dH array (without a reference).
    index, format, type_map : reading options (see `atominfo.descriptors`).
    k, cutoff : descriptor settings; default to the reference's, else 32 and 5 Å.
    rescale_volume, species : as `atominfo.descriptors` (rescaled descriptors
        cannot be checked against an unscaled cut-out; see `extract`).
    reference_files : file names recorded as provenance.
    progress : called with the atoms of each frame done.

    Returns
    -------
    NovelEnvironments (descriptors and dH of the candidates, frames they are in).
    """
    from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, frame_descriptors
    from atominfo.information import DEFAULT_BANDWIDTH
    from atominfo.structures.frames import iter_frames
    from atominfo.workflows.trajectory import frame_time

    min_dh = params.check("min_dh", min_dh, label="min_dh")
    top = None if top is None else params.check("top", top)
    if reference is not None:
        if not np.ndim(reference.h) == 0:
            raise InputError("extracting novel environments takes one bandwidth")
        h = float(reference.h)
        k = int(k if k is not None else (reference.k or DEFAULT_K))
        cutoff = float(cutoff if cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF))
        ref_info = {
            "environments": len(reference),
            "sha256": reference_fingerprint(reference.X),
            "files": [str(f) for f in reference_files],
        }
    else:
        h = params.check("bandwidth", DEFAULT_BANDWIDTH if h is None else h, label="bandwidth")
        k = int(k if k is not None else DEFAULT_K)
        cutoff = float(cutoff if cutoff is not None else DEFAULT_CUTOFF)
        ref_info = {"environments": None, "sha256": None, "files": [], "dH_array": dh_array}
    params.check("k", k)
    params.check("cutoff", cutoff)
    rescale_volume = params.check_optional("rescale_volume", rescale_volume)
    rows, dhs, frame_of, atom_of, frames = [], [], [], [], {}
    kept = 0
    total_frames = total_envs = 0
    threshold = min_dh
    for number, fr in enumerate(
        iter_frames(structures, index=index, format=format, type_map=type_map)
    ):
        total_frames += 1
        total_envs += len(fr.atoms)
        Y = frame_descriptors(fr, k, cutoff, species=species, rescale_volume=rescale_volume)
        if reference is not None:
            try:
                dH = np.asarray(reference.delta_entropy(Y), dtype=float)
            except InputError as exc:
                raise exc.located(fr.source, fr.index) from None
        else:
            dH = _stored_dh(fr.atoms, dh_array, fr.source, fr.index)
        hit = np.flatnonzero(dH > threshold)
        if hit.size:
            rows.append(Y[hit])
            dhs.append(dH[hit])
            frame_of.append(np.full(hit.size, number))
            atom_of.append(hit)
            step, time = frame_time(fr.atoms)
            frames[number] = {
                "source": fr.source,
                "source_frame": fr.index,
                "timestep": step,
                "time": time,
            }
            kept += hit.size
            if top is not None and kept > 2 * top:  # trim: memory stays O(top)
                rows, dhs, frame_of, atom_of = _trim(rows, dhs, frame_of, atom_of, top)
                kept = top
                threshold = max(min_dh, float(dhs[0].min()))
        if progress is not None:
            progress(len(fr.atoms))
    if total_frames == 0:
        raise InputError("no structures given")
    if rows:
        if top is not None:
            rows, dhs, frame_of, atom_of = _trim(rows, dhs, frame_of, atom_of, top)
        X, dH = np.concatenate(rows), np.concatenate(dhs)
        frame, atom = np.concatenate(frame_of), np.concatenate(atom_of)
    else:
        width = frame_descriptors(
            fr, k, cutoff, species=species, rescale_volume=rescale_volume
        ).shape[1]
        X, dH = np.zeros((0, width)), np.zeros(0)
        frame = atom = np.zeros(0, dtype=np.int64)
    used = set(int(f) for f in frame)
    frames = {f: v for f, v in frames.items() if f in used}
    return NovelEnvironments(
        X,
        dH,
        frame.astype(np.int64),
        atom.astype(np.int64),
        frames,
        float(h),
        k,
        cutoff,
        float(min_dh),
        total_frames,
        total_envs,
        ref_info,
    )


def _trim(rows, dhs, frame_of, atom_of, top):
    """The `top` largest dH (ties: earliest), as one block each."""
    X, dH = np.concatenate(rows), np.concatenate(dhs)
    frame, atom = np.concatenate(frame_of), np.concatenate(atom_of)
    order = np.lexsort((np.arange(len(dH)), -dH))[:top]
    order.sort()  # keep the trajectory order
    return [X[order]], [dH[order]], [frame[order]], [atom[order]]


# -- deduplication -------------------------------------------------------------------------


@dataclass
class Deduplication(Result):
    """Greedy picks among candidate environments.

    Attributes
    ----------
    picks : list of int, candidate numbers in pick order.
    dH_at_pick : list of float, nats: each pick's dH against the reference plus the
        earlier picks (non-increasing).
    duplicates : int, candidates not picked because they lie within
        `duplicate_distance` bandwidths of a pick.
    remaining_max_dH : float, nats: the largest dH left among the other candidates
        (neither picked nor duplicates), against the reference plus all picks:
        <= min_dh unless stopped by `max_picks` (NaN when none is left).
    stopped_by : "coverage" (nothing left above min_dh) or "max_picks".
    """

    picks: list[int]
    dH_at_pick: list[float]
    duplicates: int
    remaining_max_dH: float
    stopped_by: str
    candidates: int
    min_dh: float
    duplicate_distance: float
    bandwidth: float

    _fields_shown = (
        "candidates",
        "duplicates",
        "stopped_by",
        "remaining_max_dH",
        "min_dh",
        "bandwidth",
    )

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return jsonable(
            {
                "candidates": self.candidates,
                "picked": len(self.picks),
                "picks": list(self.picks),
                "dH_at_pick": list(self.dH_at_pick),
                "duplicates": self.duplicates,
                "remaining_max_dH": self.remaining_max_dH,
                "stopped_by": self.stopped_by,
                "min_dH": self.min_dh,
                "duplicate_distance": self.duplicate_distance,
                "bandwidth": self.bandwidth,
            }
        )


def deduplicate(
    Y,
    dH,
    h: float,
    *,
    min_dh: float = 0.0,
    max_picks: int | None = None,
    duplicate_distance: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> Deduplication:
    """Few diverse environments out of many candidates: greedy maximum dH.

    Pick the candidate with the largest dH against the reference; then, again
    and again, the candidate with the largest dH against the reference plus
    the candidates picked so far, stopping when no candidate has dH > `min_dh`
    any more (or after `max_picks`). Since
    ``dH(y | ref + S) = -log(exp(-dH(y | ref)) + sum_{s in S} K_h(y, s))``
    (docs/method.md, section 3.3), only the candidates' own kernel sums are
    updated after each pick (exactly, in log space); the reference is not
    needed again. Each pick fills a different gap.

    A pick covers itself (its dH becomes <= 0) but not, by this criterion
    alone, a copy at any distance d > 0 from it (its dH is d^2 / 2h^2 > 0
    until a second pick lands nearby): tight near-copies would cost two picks.
    Candidates within ``duplicate_distance * h`` of a pick (kernel >=
    exp(-duplicate_distance^2 / 2)) are therefore duplicates of it and no
    longer picked; 0 gives the pure coverage criterion.

    Parameters
    ----------
    Y : array, shape (n, d), 1/Å. Candidate descriptors.
    dH : array, shape (n,), nats. Their dH against the reference.
    h : float, 1/Å, the bandwidth `dH` was computed with.
    min_dh : float, nats. Stop when no candidate is above it.
    max_picks : int, optional. At most this many picks.
    duplicate_distance : float >= 0, in bandwidths (default 1).
    progress : called with 1 after each pick.
    """
    from threadpoolctl import threadpool_limits

    from atominfo.engine.fold import centre
    from atominfo.information import as_descriptor_matrix
    from atominfo.workflows.compression import update_log_sums

    h = params.check("bandwidth", h, label="bandwidth")
    min_dh = params.check("min_dh", min_dh, label="min_dh")
    max_picks = None if max_picks is None else params.check("max_picks", max_picks)
    duplicate_distance = params.check("duplicate_distance", duplicate_distance)
    dH = np.asarray(dH, dtype=float).reshape(-1)
    if len(dH) == 0:
        return Deduplication(
            [],
            [],
            0,
            float("nan"),
            "coverage",
            0,
            float(min_dh),
            float(duplicate_distance),
            float(h),
        )
    Y = as_descriptor_matrix(Y, "candidates")
    if len(Y) != len(dH):
        raise InputError(f"{len(Y)} candidate descriptors but {len(dH)} dH values")
    if np.isnan(dH).any():
        raise InputError("dH holds NaN", atom=int(np.argmax(np.isnan(dH))))
    X = np.ascontiguousarray(Y - centre(Y))
    x_sq = np.einsum("ij,ij->i", X, X)
    log_sums = -dH.copy()  # log sum of kernels against the reference (+inf dH: -inf)
    open_ = np.ones(len(dH), dtype=bool)  # neither picked nor a duplicate of a pick
    # a product, not **: a distance too large to square is inf (everything is
    # a duplicate) where float ** raises OverflowError
    radius = duplicate_distance * h
    radius2 = radius * radius
    picks: list[int] = []
    gains: list[float] = []
    stopped = "coverage"
    with threadpool_limits(1, user_api="blas"):
        while open_.any():
            scores = np.where(open_, log_sums, np.inf)
            best = int(np.argmin(scores))  # largest dH; ties: first
            gain = -float(log_sums[best])
            if not gain > min_dh:
                break
            if max_picks is not None and len(picks) == max_picks:
                stopped = "max_picks"
                break
            picks.append(best)
            gains.append(gain)
            p = X[best : best + 1]
            update_log_sums(log_sums, X, x_sq, p, h)
            d2 = x_sq + x_sq[best] - 2.0 * (X @ p[0])
            open_ &= d2 > radius2
            open_[best] = False
            if progress is not None:
                progress(1)
    picked = np.zeros(len(dH), dtype=bool)
    picked[picks] = True
    remaining = -float(log_sums[open_].min()) if open_.any() else float("nan")
    duplicates = int((~open_ & ~picked).sum())
    return Deduplication(
        picks,
        gains,
        duplicates,
        remaining,
        stopped,
        len(dH),
        float(min_dh),
        float(duplicate_distance),
        float(h),
    )


# -- extraction ----------------------------------------------------------------------------


@dataclass
class Extraction(Result):
    """Cut-out structures ready for labelling, with what they came from.

    Attributes
    ----------
    structures : list of ase.Atoms, in pick order (cluster before cell for mode "both").
    candidates : NovelEnvironments, all environments above the threshold.
    chosen : list of int, candidate numbers cut out, in pick order.
    deduplication : Deduplication or None.
    mode : "cluster", "cell" or "both";  buffer, vacuum : Å.
    max_descriptor_error : float, 1/Å: largest |descriptor of the centre atom in a
        cut-out - its descriptor in the source| (NaN where not checked: rescaled
        descriptors).
    """

    structures: list = field(repr=False)
    candidates: NovelEnvironments = field(repr=False)
    chosen: list[int] = field(repr=False)
    deduplication: Deduplication | None = field(repr=False)
    mode: str
    buffer: float
    vacuum: float
    max_descriptor_error: float

    _fields_shown = ("mode", "buffer", "vacuum", "max_descriptor_error")

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        c = self.candidates
        out = {
            **c.to_dict(),
            "chosen": len(self.chosen),
            "structures": len(self.structures),
            "atoms": [len(a) for a in self.structures],
            "mode": self.mode,
            "buffer": self.buffer,
            "vacuum": self.vacuum,
            "max_descriptor_error": self.max_descriptor_error,
            "deduplication": None if self.deduplication is None else self.deduplication.to_dict(),
        }
        return jsonable(out)


def _info_value(value):
    """A provenance value extxyz writes and reads back as it is (None -> omitted)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value


def extract(
    structures,
    reference=None,
    *,
    mode: str = "cluster",
    buffer: float = 2.0,
    vacuum: float = 6.0,
    min_dh: float = 0.0,
    top: int | None = None,
    dedupe: bool = False,
    max_picks: int | None = None,
    duplicate_distance: float = 1.0,
    h: float | None = None,
    dh_array: str = "dH",
    index=":",
    format=None,
    type_map=None,
    k: int | None = None,
    cutoff: float | None = None,
    rescale_volume: float | None = None,
    species: Sequence[str] | None = None,
    reference_files: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> Extraction:
    """Novel environments of `structures`, cut out as structures to label.

    Finds the environments with dH > `min_dh` (`find_novel`), keeps the `top`
    largest, optionally deduplicates them (`deduplicate`), keeps at most
    `max_picks` (largest dH first without deduplication), and cuts each out
    (`cut_cluster`, `cut_cell`). The frames are read twice: once to score,
    once to cut (only the frames holding a chosen environment are kept).

    Each cut-out's ``info`` holds: mode, source, source_frame, frame (over all
    inputs), timestep and time (where the input gives them), centre_atom
    (index in the source frame), centre_index (0), dH (against the reference,
    nats), dH_at_pick (after deduplication), pick (rank), bandwidth, k,
    cutoff, buffer, cut_radius, vacuum (clusters), reference (file names),
    reference_environments, reference_sha256 (`reference_fingerprint`),
    descriptor_error (1/Å, see `Extraction`), min_distance and
    source_min_distance (Å).

    Parameters are those of `find_novel`, `deduplicate`, `cut_cluster` and
    `cut_cell`; `mode` is "cluster", "cell" or "both".

    Raises
    ------
    InputError
        For bad parameters or inputs, and when a frame read the second time
        is not the frame scored the first time (the input changed meanwhile).
    """
    from atominfo.descriptor import frame_descriptors
    from atominfo.structures.frames import Frame, iter_frames

    mode = params.check("extract_mode", mode)
    buffer = params.check("buffer", buffer)
    vacuum = params.check("vacuum", vacuum)
    max_picks = None if max_picks is None else params.check("max_picks", max_picks)
    if isinstance(structures, Atoms):
        structures = [structures]
    elif not isinstance(structures, (str, bytes)) and not hasattr(structures, "__fspath__"):
        structures = list(structures)  # read twice: a generator would be used up
    cand = find_novel(
        structures,
        reference,
        min_dh=min_dh,
        top=top,
        h=h,
        dh_array=dh_array,
        index=index,
        format=format,
        type_map=type_map,
        k=k,
        cutoff=cutoff,
        rescale_volume=rescale_volume,
        species=species,
        reference_files=reference_files,
        progress=progress,
    )
    dedup = None
    if dedupe:
        dedup = deduplicate(
            cand.X,
            cand.dH,
            cand.bandwidth,
            min_dh=min_dh,
            max_picks=max_picks,
            duplicate_distance=duplicate_distance,
        )
        chosen, at_pick = list(dedup.picks), list(dedup.dH_at_pick)
    else:
        order = np.lexsort((np.arange(len(cand)), -cand.dH))
        chosen = [int(i) for i in order[:max_picks]]
        at_pick = [float(cand.dH[i]) for i in chosen]
    wanted: dict[int, list[int]] = {}
    for rank, c in enumerate(chosen):
        wanted.setdefault(int(cand.frame[c]), []).append(rank)
    cut: dict[int, list[Atoms]] = {}
    errors = []
    check_rows = rescale_volume is None
    for number, fr in enumerate(
        iter_frames(structures, index=index, format=format, type_map=type_map)
    ):
        if number not in wanted:
            continue
        meta = cand.frames[number]
        if (fr.source, fr.index) != (meta["source"], meta["source_frame"]):
            raise InputError(
                "the input changed while it was being read (frame "
                f"{number} is now {fr.source}: frame {fr.index})",
                source=meta["source"],
                frame=meta["source_frame"],
            )
        for rank in wanted[number]:
            c = chosen[rank]
            a = int(cand.atom[c])
            if a >= len(fr.atoms):
                raise InputError(
                    "the input changed while it was being read (the atom is gone)",
                    source=fr.source,
                    frame=fr.index,
                    atom=a,
                )
            pieces = []
            if mode in ("cluster", "both"):
                pieces.append(("cluster", cut_cluster(fr.atoms, a, cand.cutoff, buffer, vacuum)))
            if mode in ("cell", "both"):
                pieces.append(("cell", cut_cell(fr.atoms, a, cand.cutoff, buffer)))
            out = []
            for kind, piece in pieces:
                error = float("nan")
                if check_rows:
                    row = frame_descriptors(
                        Frame(piece, fr.source, fr.index), cand.k, cand.cutoff, species=species
                    )[0]
                    error = float(np.abs(row - cand.X[c]).max())
                    errors.append(error)
                info = {
                    "mode": kind,
                    "source": fr.source,
                    "source_frame": fr.index,
                    "frame": number,
                    "timestep": meta["timestep"],
                    "time": meta["time"],
                    "centre_atom": a,
                    "centre_index": 0,
                    "dH": float(cand.dH[c]),
                    "dH_at_pick": at_pick[rank],
                    "pick": rank,
                    "bandwidth": cand.bandwidth,
                    "k": cand.k,
                    "cutoff": cand.cutoff,
                    "buffer": buffer,
                    "cut_radius": cand.cutoff + buffer,
                    "vacuum": vacuum if kind == "cluster" else None,
                    "reference": ",".join(cand.reference.get("files") or []) or None,
                    "reference_environments": cand.reference.get("environments"),
                    "reference_sha256": cand.reference.get("sha256"),
                    "descriptor_error": error if math.isfinite(error) else None,
                }
                for key, value in info.items():
                    if value is None:
                        piece.info.pop(key, None)
                    else:
                        piece.info[key] = _info_value(value)
                out.append(piece)
            cut[rank] = out
    if len(cut) != len(chosen):
        raise InputError("the input changed while it was being read (fewer frames the second time)")
    structures_out = [piece for rank in range(len(chosen)) for piece in cut[rank]]
    max_error = float(max(errors)) if errors else float("nan")
    return Extraction(
        structures_out, cand, chosen, dedup, mode, float(buffer), float(vacuum), max_error
    )


def write_structures(structures: Sequence[Atoms], path) -> None:
    """Write cut-outs as extxyz, atomically (the file appears only when complete)."""
    import ase.io

    from atominfo.outputs.atomic import atomic_output

    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for atoms in structures:
                ase.io.write(fh, atoms, format="extxyz")
