"""The descriptor kernel: neighbour search and descriptor rows of one structure.

Neighbour search and descriptor are one numba kernel, parallel over atoms:
periodic images within the cutoff are added as ghost atoms (per periodic
direction, any number of images, so small and triclinic cells are exact),
then a cell list finds each atom's neighbours.
"""

from __future__ import annotations

import numba
import numpy as np
from ase import Atoms

from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.errors import InputError
from atominfo.params import MIN_VOLUME_PER_ATOM
from atominfo.structures.geometry import complete_cell


# error_model="numpy": coincident atoms give inf instead of raising inside the
# kernel; they are reported as an InputError afterwards.
@numba.njit(cache=True, error_model="numpy")
def _environment_row(
    a,
    centre,
    ghosts,
    bin_start,
    bin_atoms,
    origin,
    bin_size,
    n_bins,
    k,
    cutoff,
    network,
    d2_buf,
    vec_buf,
    order,
    vec,
    sw,
    mat,
    lanes,
    out,
):
    """Descriptor of atom `a` into `out[a]`; returns -1 or the index of a coincident ghost."""
    rc2 = cutoff * cutoff
    bx = int((centre[0] - origin[0]) / bin_size)
    by = int((centre[1] - origin[1]) / bin_size)
    bz = int((centre[2] - origin[2]) / bin_size)
    count = 0
    coincident = -1
    for ix in range(max(bx - 1, 0), min(bx + 2, n_bins[0])):
        for iy in range(max(by - 1, 0), min(by + 2, n_bins[1])):
            for iz in range(max(bz - 1, 0), min(bz + 2, n_bins[2])):
                b = (ix * n_bins[1] + iy) * n_bins[2] + iz
                for q in range(bin_start[b], bin_start[b + 1]):
                    g = bin_atoms[q]
                    if g == a:  # the atom itself (ghosts of images come after originals)
                        continue
                    dx = ghosts[g, 0] - centre[0]
                    dy = ghosts[g, 1] - centre[1]
                    dz = ghosts[g, 2] - centre[2]
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 < rc2:
                        if d2 < 1e-12:
                            coincident = g
                        if count == d2_buf.shape[0]:
                            continue  # cannot happen: buffer sized from bin counts
                        d2_buf[count] = d2
                        vec_buf[count, 0] = dx
                        vec_buf[count, 1] = dy
                        vec_buf[count, 2] = dz
                        count += 1
    # Candidates sorted by distance, stably (equal distances keep their scan
    # order): insertion sort for the usual few dozen, merge sort beyond, so a
    # dense or tiny periodic cell with many thousands of candidates stays fast.
    if count > 256:
        sorted_idx = np.argsort(d2_buf[:count], kind="mergesort")
        for p in range(count):
            order[p] = sorted_idx[p]
    else:
        for p in range(count):
            order[p] = p
        for p in range(1, count):
            key = order[p]
            kd = d2_buf[key]
            q = p - 1
            while q >= 0 and d2_buf[order[q]] > kd:
                order[q + 1] = order[q]
                q -= 1
            order[q + 1] = key
    m = min(count, k)
    inv_rc2 = 1.0 / rc2
    for j in range(m):
        src = order[j]
        d2 = d2_buf[src]
        vec[j, 0] = vec_buf[src, 0]
        vec[j, 1] = vec_buf[src, 1]
        vec[j, 2] = vec_buf[src, 2]
        s = 1.0 - d2 * inv_rc2  # sqrt of the smooth cutoff w
        sw[j] = s
        out[a, j] = s * s / np.sqrt(d2)
    for j in range(m, k):
        out[a, j] = 0.0
    for j in range(m):
        mat[j, j] = 0.0
        for l in range(j + 1, m):
            dx = vec[j, 0] - vec[l, 0]
            dy = vec[j, 1] - vec[l, 1]
            dz = vec[j, 2] - vec[l, 2]
            v = sw[j] * sw[l] / np.sqrt(dx * dx + dy * dy + dz * dz)
            mat[j, l] = v
            mat[l, j] = v
    # Each row of M sorted descending, then summed column-wise. Rows are laid
    # out as the columns of `lanes` so that one sorting network sorts all k
    # rows at once, branch-free and vectorised; virtual rows are zero and the
    # padding entries (-1) sort below every real value.
    n_pad = lanes.shape[0]
    for p in range(n_pad):
        for j in range(k):
            lanes[p, j] = -1.0
    for j in range(k):
        for p in range(k - 1):
            lanes[p, j] = 0.0
    for j in range(m):
        for p in range(j):
            lanes[p, j] = mat[p, j]
        for p in range(j, m - 1):
            lanes[p, j] = mat[p + 1, j]
    for c in range(network.shape[0]):
        hi = network[c, 0]
        lo = network[c, 1]
        for j in range(k):
            x = lanes[hi, j]
            y = lanes[lo, j]
            lanes[hi, j] = x if x > y else y
            lanes[lo, j] = y if x > y else x
    inv_k = 1.0 / k
    for n in range(k - 1):
        total = 0.0
        for j in range(m):
            total += lanes[n, j]
        out[a, k + n] = total * inv_k
    return coincident


@numba.njit(cache=True)
def _padded_size(n):
    size = 1
    while size < n:
        size *= 2
    return size


_NETWORKS: dict[int, np.ndarray] = {}


def _sorting_network(n: int) -> np.ndarray:
    """Comparators (high, low) of Batcher's odd-even merge sort for `n` items,
    padded to a power of two; applying them leaves the items in descending order.

    The padding items (rows n and beyond, -1: below every real value) stay at the
    bottom, so a comparator with its low row among them never moves anything and
    is left out (for k = 20 half of the 191, for k = 32 five).
    """
    size = int(_padded_size(max(n, 1)))
    if n not in _NETWORKS:
        pairs = []
        p = 1
        while p < size:
            kk = p
            while kk >= 1:
                for j in range(kk % p, size - kk, 2 * kk):
                    for i in range(min(kk, size - j - kk)):
                        if (i + j) // (2 * p) == (i + j + kk) // (2 * p):
                            pairs.append((i + j, i + j + kk))
                kk //= 2
            p *= 2
        network = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        _NETWORKS[n] = np.ascontiguousarray(network[network[:, 1] < max(n, 1)])
    return _NETWORKS[n]


@numba.njit(cache=True, error_model="numpy")
def _describe_rows(
    lo,
    hi,
    rows,
    ghosts,
    bin_start,
    bin_atoms,
    origin,
    bin_size,
    n_bins,
    capacity,
    k,
    cutoff,
    network,
    out,
    coincident,
):
    """Descriptors of the points `rows[lo:hi]` into `out`, with their own work buffers;
    per row, `coincident` gets -1 or the index of a point at the same position."""
    d2_buf = np.empty(capacity)
    vec_buf = np.empty((capacity, 3))
    order = np.empty(capacity, dtype=np.int64)
    vec = np.empty((k, 3))
    sw = np.empty(k)
    mat = np.empty((k, k))
    lanes = np.empty((_padded_size(k - 1), k))
    for r in range(lo, hi):
        a = rows[r]
        coincident[r] = _environment_row(
            a,
            ghosts[a],
            ghosts,
            bin_start,
            bin_atoms,
            origin,
            bin_size,
            n_bins,
            k,
            cutoff,
            network,
            d2_buf,
            vec_buf,
            order,
            vec,
            sw,
            mat,
            lanes,
            out,
        )


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _descriptor_kernel(
    rows,
    ghosts,
    bin_start,
    bin_atoms,
    origin,
    bin_size,
    n_bins,
    capacity,
    k,
    cutoff,
    network,
    out,
    coincident,
    n_chunks,
):
    """`_describe_rows` of all `rows`, in `n_chunks` chunks over threads."""
    n_rows = rows.shape[0]
    for c in numba.prange(n_chunks):
        _describe_rows(
            c * n_rows // n_chunks,
            (c + 1) * n_rows // n_chunks,
            rows,
            ghosts,
            bin_start,
            bin_atoms,
            origin,
            bin_size,
            n_bins,
            capacity,
            k,
            cutoff,
            network,
            out,
            coincident,
        )


@numba.njit(cache=True)
def _bin_ghosts(ghosts, origin, bin_size, n_bins):
    """Cell list: CSR of ghost indices per bin, the largest 27-bin population, and the
    bin whose 27-bin neighbourhood holds it."""
    n_total = n_bins[0] * n_bins[1] * n_bins[2]
    start = np.zeros(n_total + 1, dtype=np.int64)
    which = np.empty(ghosts.shape[0], dtype=np.int64)
    for g in range(ghosts.shape[0]):
        bx = min(int((ghosts[g, 0] - origin[0]) / bin_size), n_bins[0] - 1)
        by = min(int((ghosts[g, 1] - origin[1]) / bin_size), n_bins[1] - 1)
        bz = min(int((ghosts[g, 2] - origin[2]) / bin_size), n_bins[2] - 1)
        b = (bx * n_bins[1] + by) * n_bins[2] + bz
        which[g] = b
        start[b + 1] += 1
    counts = start[1:].copy()
    for b in range(n_total):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    atoms = np.empty(ghosts.shape[0], dtype=np.int64)
    for g in range(ghosts.shape[0]):  # ghosts in order, so originals come first per bin
        atoms[fill[which[g]]] = g
        fill[which[g]] += 1
    capacity = 1
    densest = 0
    for ix in range(n_bins[0]):
        for iy in range(n_bins[1]):
            for iz in range(n_bins[2]):
                total = 0
                for jx in range(max(ix - 1, 0), min(ix + 2, n_bins[0])):
                    for jy in range(max(iy - 1, 0), min(iy + 2, n_bins[1])):
                        for jz in range(max(iz - 1, 0), min(iz + 2, n_bins[2])):
                            total += counts[(jx * n_bins[1] + jy) * n_bins[2] + jz]
                if total > capacity:
                    capacity = total
                    densest = (ix * n_bins[1] + iy) * n_bins[2] + iz
    return start, atoms, capacity, densest


# Bounds that keep a tiny periodic cell from exploding into periodic images.
# A cell at least as tall as the cutoff needs at most 27 images per atom; a
# smaller one needs about (1 + 2 rc / height)^3, so a 0.1 Å cell with a 5 Å
# cutoff would need a million images of each atom and a 1e-3 Å cell 10^12.
MAX_EXTRA_GHOSTS = 4_000_000  # periodic images allowed beyond 27 per atom
# An atom this many cell lengths away from the cell cannot be wrapped into it
# without losing its position (float64 keeps ~16 digits: 1e6 cells leave
# ~1e-9 of a cell; 1e17 Å in a 10 Å cell leaves nothing).
MAX_CELL_LENGTHS = 1e6
# Largest |coordinate| in Å: beyond it distances lose all precision.
MAX_COORDINATE = 1e9
# No matter holds more than 1 / MIN_VOLUME_PER_ATOM atoms per Å^3. A block of the
# cell list (sides s, s, s Å) holding more than that times (s + 1 Å)^3 atoms is
# refused: the 1 Å allows for atoms' own size in blocks smaller than a few bonds.
DENSITY_PAD = 1.0  # Å
# Rows below which the descriptor kernel runs on the calling thread: starting the
# thread pool costs more than a small frame's work.
SERIAL_ROWS = 64


def _ghost_limit(n: int) -> int:
    return 27 * n + MAX_EXTRA_GHOSTS


def ghost_atoms(atoms: Atoms, cutoff: float, *, source: str = "<memory>", frame: int = 0):
    """Positions wrapped into the cell, followed by every periodic image within the cutoff.

    Returns (ghosts, owner): ghosts[:n] are the originals; owner maps each
    ghost to its original atom. Periodicity is per direction. Images come
    shift after shift (shifts in lexicographic order), atoms in order within
    a shift: this order decides which of two equidistant neighbours is kept.

    Raises InputError for a coordinate too large to wrap into the cell, and
    for a cell so small against the cutoff that its images would exceed
    `_ghost_limit` (27 per atom plus `MAX_EXTRA_GHOSTS`).
    """
    pos = np.asarray(atoms.positions, dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    n = len(pos)
    far = np.abs(pos).max(axis=1) > MAX_COORDINATE
    if far.any():
        a = int(np.argmax(far))
        raise InputError(
            f"coordinate {np.abs(pos[a]).max():.3g} Å is beyond "
            f"{MAX_COORDINATE:.0e} Å: distances would lose all precision",
            source=source,
            frame=frame,
            atom=a,
        )
    if not pbc.any():
        return pos.copy(), np.arange(n)
    cell = complete_cell(atoms.cell[:], pbc)
    inv = np.linalg.inv(cell)
    frac = pos @ inv
    lost = np.abs(frac[:, pbc]).max(axis=1) > MAX_CELL_LENGTHS
    if lost.any():
        a = int(np.argmax(lost))
        raise InputError(
            f"atom is {np.abs(frac[a, pbc]).max():.3g} cell lengths outside the "
            f"periodic cell (limit {MAX_CELL_LENGTHS:.0e}): wrapping it into the "
            "cell would lose its position",
            source=source,
            frame=frame,
            atom=a,
        )
    frac[:, pbc] -= np.floor(frac[:, pbc])
    frac[:, pbc] %= 1.0  # floor can leave exactly 1.0 after rounding
    # Height of the cell along each direction: 1 / |reciprocal vector|.
    heights = 1.0 / np.sqrt((inv * inv).sum(axis=0))
    pad = np.where(pbc, cutoff / heights, 0.0)
    limit = _ghost_limit(n)
    # Estimate first, so that a 1e-3 Å cell is refused before anything is allocated.
    estimate = n * float(np.prod(1.0 + 2.0 * pad))
    if estimate > 2 * limit:
        raise _too_many_images(estimate, limit, heights, pbc, cutoff, source, frame)
    reps = np.ceil(pad).astype(np.int64)
    low, count = _image_ranges(frac, pbc, pad, reps)
    total = int(count.prod(axis=1).sum())
    if total > limit:
        raise _too_many_images(total, limit, heights, pbc, cutoff, source, frame)
    if pbc.all():
        volume = abs(float(np.linalg.det(cell)))
        if volume < n * MIN_VOLUME_PER_ATOM:
            raise InputError(
                f"{n} atoms in a periodic cell of {volume:.3g} Å^3: "
                f"{volume / n:.3g} Å^3 per atom is denser than any matter (at least "
                f"{MIN_VOLUME_PER_ATOM:g} Å^3 per atom); check the cell and its units",
                source=source,
                frame=frame,
            )
    owner, shift = _images(low, count, reps, total)
    ghosts = (frac[owner] + shift) @ cell
    return ghosts, owner


# Compiled: a frame of a few atoms would otherwise spend most of its time in the
# fixed cost of a dozen small numpy calls (20,000 one-atom frames: 1.7 ms each).
@numba.njit(cache=True)
def _image_ranges(frac, pbc, pad, reps):
    """Per atom and direction, the shifts that keep the atom within the cell padded by
    `pad` (fractional): a contiguous range [low, low + count); (0, 1) if not periodic."""
    n = frac.shape[0]
    low = np.zeros((n, 3), dtype=np.int64)
    count = np.ones((n, 3), dtype=np.int64)
    for d in range(3):
        if not pbc[d]:
            continue
        for a in range(n):
            first, kept = 0, 0
            for s in range(-reps[d], reps[d] + 1):
                fd = frac[a, d] + s
                if fd >= -pad[d] - 1e-12 and fd <= 1.0 + pad[d] + 1e-12:
                    if kept == 0:
                        first = s
                    kept += 1
            low[a, d] = first
            count[a, d] = kept
    return low, count


@numba.njit(cache=True)
def _images(low, count, reps, total):
    """(owner, shift) of the `total` images: the originals (shift 0) first, then shift
    after shift in lexicographic order, atoms in order within a shift."""
    n = low.shape[0]
    owner = np.empty(total, dtype=np.int64)
    shift = np.zeros((total, 3), dtype=np.int64)
    for a in range(n):
        owner[a] = a
    g = n
    for s0 in range(-reps[0], reps[0] + 1):
        for s1 in range(-reps[1], reps[1] + 1):
            for s2 in range(-reps[2], reps[2] + 1):
                if s0 == 0 and s1 == 0 and s2 == 0:
                    continue
                for a in range(n):
                    if (
                        low[a, 0] <= s0 < low[a, 0] + count[a, 0]
                        and low[a, 1] <= s1 < low[a, 1] + count[a, 1]
                        and low[a, 2] <= s2 < low[a, 2] + count[a, 2]
                    ):
                        owner[g] = a
                        shift[g, 0] = s0
                        shift[g, 1] = s1
                        shift[g, 2] = s2
                        g += 1
    return owner, shift


def _too_many_images(count, limit, heights, pbc, cutoff, source, frame) -> InputError:
    h = float(heights[pbc].min())
    return InputError(
        f"periodic cell too small for the cutoff: its smallest height is {h:.3g} Å "
        f"for a {cutoff:g} Å cutoff, which needs about {count:.3g} periodic images "
        f"(limit {limit:,}: 27 per atom + {MAX_EXTRA_GHOSTS:,}); use a larger cell "
        "(a supercell) or a smaller cutoff",
        source=source,
        frame=frame,
    )


def min_distance(atoms: Atoms, cutoff: float = DEFAULT_CUTOFF) -> float:
    """Smallest interatomic distance, periodic images included, Å (inf for < 2 atoms
    and no image within `cutoff`)."""
    from scipy.spatial import cKDTree

    ghosts, _ = ghost_atoms(atoms, cutoff)
    if len(ghosts) < 2:
        return float("inf")
    d, _ = cKDTree(ghosts).query(ghosts[: len(atoms)], k=2)
    return float(d[:, 1].min())


def describe_points(
    points: np.ndarray,
    rows: np.ndarray,
    k: int,
    cutoff: float,
    out: np.ndarray,
    *,
    owner: np.ndarray | None = None,
) -> np.ndarray:
    """Descriptor rows of the points `rows` into `out[rows]`, their neighbours taken among
    all `points`.

    Parameters
    ----------
    points : array (g, 3), Å: the atoms first, then their periodic images or halo (a
        centre never counts itself: its own index is skipped, its images are not).
    rows : int array (r,), the points to describe.
    k, cutoff : descriptor settings (cutoff in Å).
    out : array (>= max(rows) + 1, 2k-1), written in place, 1/Å.
    owner : int array (g,) or None, the atom of each point, to name it in an error.

    Returns
    -------
    int array (r,): -1, or for each row the index of a point at the same position.

    Raises
    ------
    InputError
        Before the neighbour search, for points denser than any matter (see
        `DENSITY_PAD`): their neighbour lists would hold up to all the points.
    """
    origin = points.min(axis=0) - 1e-9
    extent = points.max(axis=0) - origin + 1e-9
    # Bins at least rc wide (a 27-bin scan then finds every neighbour); widened
    # for sparse systems so the grid never has many more bins than atoms.
    bin_size = float(cutoff)
    while np.prod(np.maximum(np.ceil(extent / bin_size), 1)) > 8 * len(points) + 64:
        bin_size *= 1.5
    n_bins = np.maximum(np.ceil(extent / bin_size), 1).astype(np.int64)
    bin_start, bin_atoms, capacity, densest = _bin_ghosts(points, origin, bin_size, n_bins)
    # The densest 27-bin block lies within 3 bins, and within the points' extent.
    block = np.minimum(3.0 * bin_size, extent) + DENSITY_PAD
    if capacity * MIN_VOLUME_PER_ATOM > float(np.prod(block)):
        raise _too_dense(points, bin_atoms, bin_start, densest, capacity, block, owner)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    coincident = np.empty(len(rows), dtype=np.int64)
    work = (
        points,
        bin_start,
        bin_atoms,
        origin,
        bin_size,
        n_bins,
        int(capacity),
        int(k),
        float(cutoff),
        _sorting_network(k - 1),
        out,
        coincident,
    )
    if len(rows) < SERIAL_ROWS:
        _describe_rows(0, len(rows), rows, *work)
    else:
        _descriptor_kernel(rows, *work, min(len(rows), 64 * numba.get_num_threads()))
    return coincident


def _too_dense(points, bin_atoms, bin_start, densest, count, block, owner) -> InputError:
    """The error for `count` points in the 27-bin block around bin `densest`: names an
    atom there and its nearest neighbour's distance."""
    first = int(bin_atoms[bin_start[densest]]) if bin_start[densest + 1] > bin_start[densest] else 0
    d = np.sqrt(((points - points[first]) ** 2).sum(axis=1))
    d[first] = np.inf
    nearest = int(np.argmin(d))
    atom = None if owner is None else int(owner[first])
    other = f"atom {int(owner[nearest])}" if owner is not None else "another atom"
    sides = " x ".join(f"{b - DENSITY_PAD:.3g}" for b in block)
    return InputError(
        f"{count} atoms within a {sides} Å block: denser than any matter (at most "
        f"{1 / MIN_VOLUME_PER_ATOM:g} atoms per Å^3); {other} is {d[nearest]:.3g} Å from "
        f"{'this atom' if atom is not None else 'one of them'}: check the coordinates, "
        "cell and units",
        atom=atom,
    )


def structure_descriptors(
    atoms: Atoms,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    *,
    source: str = "<memory>",
    frame: int = 0,
) -> np.ndarray:
    """Descriptor matrix `(len(atoms), 2k-1)` of one structure, in 1/Å."""
    n = len(atoms)
    ghosts, owner = ghost_atoms(atoms, cutoff, source=source, frame=frame)
    out = np.empty((n, 2 * k - 1))
    try:
        coincident = describe_points(ghosts, np.arange(n), k, cutoff, out, owner=owner)
    except InputError as exc:
        raise exc.located(source, frame) from None
    bad = np.flatnonzero(coincident >= 0)
    if bad.size:
        a = int(bad[0])
        raise InputError(
            f"two atoms at the same position (atoms {a} and {int(owner[coincident[a]])})",
            source=source,
            frame=frame,
            atom=a,
        )
    return out
