"""The analysis of one spatial box of a huge snapshot: descriptors, labels, dH.

`BoxAnalyser` holds what every box needs (the reference, its cluster index
for the labels and its projected index for dH, the descriptor settings) and
is called with the positions of one box and its halo. It is a pure function
of those positions, so the same object runs the boxes one after another on
this machine (`atominfo.workflows.snapshot`) or is sent once to every Dask
worker, which then receives positions only (`atominfo.workflows.snapshot_dask`):
the results are the same either way.
"""

from __future__ import annotations

import time

import numpy as np

from atominfo.errors import InputError
from atominfo.reference.novelty import bounded_dh, judge

# Default bound on dH: each value is at most this many nats above exact dH.
DEFAULT_DH_TOL = 1e-9


class BoxAnalyser:
    """Per-atom labels and dH of a box of atoms, against one reference.

    Parameters
    ----------
    reference : `atominfo.Reference` with one bandwidth (its cluster index, and its
        projected index unless `dh` is 'none', are built here and kept, before the
        analyser is sent anywhere).
    k, cutoff : descriptor settings.
    dh : 'novel' (dH of the atoms with dH > 0), 'all' or 'none' (`Reference.classify`).
    dh_tol : float > 0, nats: each dH is at most ``log(1 + dh_tol) <= dh_tol``
        above exact dH, never below (see `atominfo.engine.index.projected`).
    """

    def __init__(self, reference, k: int, cutoff: float, dh: str, dh_tol: float = DEFAULT_DH_TOL):
        self.h = float(reference.h)
        self.k, self.cutoff, self.dh, self.dh_tol = int(k), float(cutoff), dh, float(dh_tol)
        # the indexes, not the reference (whose engine may hold a Dask client): built once
        self.labels = reference.index
        self.projected = reference.projected if dh != "none" else None
        self.threads: int | None = None  # None: numba's thread count

    def __call__(
        self, coords: np.ndarray, n_core: int, owner: np.ndarray, timings: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dH (n_core,), nats, NaN where not computed (inside: dH <= 0); novel (n_core,),
        bool) of the first `n_core` atoms, as `Reference.classify` (`judge`).

        `coords` (Å, non-periodic) holds the core atoms, then their halo (every
        atom or periodic image within the cutoff of a core atom); `owner` gives
        each row's atom number in the frame, to name atoms in errors.
        An InputError names the atom (the caller adds file and frame).
        """
        timings = {} if timings is None else timings
        t = time.perf_counter()
        Y = box_descriptors(coords, n_core, self.k, self.cutoff, owner)
        timings["descriptors"] = timings.get("descriptors", 0.0) + time.perf_counter() - t
        try:
            found = judge(Y, self._inside, self.dh, self._bounded)
        except InputError as exc:  # its atom is a row of Y: name the frame's atom
            atom = None if exc.atom is None else int(owner[exc.atom])
            raise InputError(exc.reason, atom=atom) from None
        for stage, seconds in found.seconds.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        return found.dH, found.novel

    def _inside(self, Y: np.ndarray) -> np.ndarray:
        return self.labels.classify(Y, np.array([self.h]), threads=self.threads)

    def _bounded(self, Y: np.ndarray) -> np.ndarray:
        return bounded_dh(self.projected, Y, self.h, self.dh_tol, self.threads)


def run_box(analyser, coords, n_core, owner, source, frame, timings):
    """``analyser(coords, n_core, owner, timings)``; an error names the file, frame and atom."""
    try:
        return analyser(coords, n_core, owner, timings)
    except InputError as exc:
        raise exc.located(source, frame) from None


def box_descriptors(
    coords: np.ndarray, n_core: int, k: int, cutoff: float, owner: np.ndarray
) -> np.ndarray:
    """Descriptors (n_core, 2k-1), 1/Å, of the first `n_core` of `coords` (Å, non-periodic).

    `coords` holds the core atoms, then their halo; `owner` gives each row's
    atom number in the frame, for the error naming two atoms at the same position.
    """
    from atominfo.descriptor.kernel import describe_points

    out = np.empty((n_core, 2 * k - 1))
    coincident = describe_points(coords, np.arange(n_core), k, cutoff, out)
    bad = np.flatnonzero(coincident >= 0)
    if bad.size:
        a = int(bad[0])
        raise InputError(
            f"two atoms at the same position (atoms {int(owner[a])} and "
            f"{int(owner[coincident[a]])})",
            atom=int(owner[a]),
        )
    return out
