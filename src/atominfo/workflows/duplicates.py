"""Duplicate environments and structures, within a tolerance on descriptor distance.

Rules (greedy, in input order, so the first occurrence is always kept):

* environment i duplicates the earliest *kept* environment j < i with
  ``|X_i - X_j| <= tol`` (Euclidean descriptor distance, 1/Å);
* structure B duplicates an earlier kept structure A when both have the same
  composition and number of atoms and every environment of B lies within
  `tol` of some environment of A, and every environment of A within `tol` of
  some environment of B (a symmetric match of environments; atom order and
  periodic cell choice do not matter, as the descriptors ignore them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo import params
from atominfo.information import as_descriptor_matrix
from atominfo.results import Result
from atominfo.runs.atomic import atomic_output
from atominfo.runs.guard import OutputGuard
from atominfo.structures.frameset import FrameSet, from_descriptors

OUTPUT_SUFFIXES = (".extxyz", ".xyz", ".npy")


@dataclass
class Duplicates(Result):
    """Which rows (environments or structures) are duplicates.

    Attributes
    ----------
    keep : bool array (n,), True for the kept (first) occurrences.
    duplicate_of : int array (n,), index of the kept item each duplicate
        matches, -1 for kept items.
    tol : tolerance, 1/Å.
    by : "environments" or "structures".
    """

    _fields_shown = ("by", "tol", "n", "n_unique")
    keep: np.ndarray
    duplicate_of: np.ndarray
    tol: float
    by: str

    @property
    def n(self) -> int:
        return len(self.keep)

    @property
    def n_unique(self) -> int:
        return int(self.keep.sum())

    def to_dict(self) -> dict:
        from atominfo.results import jsonable

        return jsonable(
            {
                "by": self.by,
                "tol": self.tol,
                "n": self.n,
                "n_unique": self.n_unique,
                "duplicate_of": self.duplicate_of,
            }
        )


def duplicate_environments(X, tol: float = 1e-3) -> Duplicates:
    """Duplicate environments of X (see the module docstring for the rule).

    Parameters
    ----------
    X : array (n, d), descriptors, 1/Å.
    tol : float >= 0, largest descriptor distance of a duplicate, 1/Å.

    Returns
    -------
    Duplicates with ``by="environments"``.
    """
    from scipy.spatial import cKDTree

    X = as_descriptor_matrix(X)
    tol = params.check("duplicate_tol", tol, label="tol")
    n = len(X)
    dup = np.full(n, -1, dtype=np.int64)
    tree = cKDTree(X)
    chunk = 1024
    for start in range(0, n, chunk):  # neighbour lists a chunk at a time: bounded memory
        lists = tree.query_ball_point(X[start : start + chunk], tol, return_sorted=True)
        for offset, near in enumerate(lists):
            i = start + offset
            for j in near:  # ascending: the first kept earlier one is the earliest
                if j >= i:
                    break
                if dup[j] == -1:
                    dup[i] = j
                    break
    return Duplicates(dup == -1, dup, float(tol), "environments")


def _covered(A: np.ndarray, B: np.ndarray, tol: float) -> bool:
    """Whether every row of A lies within tol of some row of B."""
    from scipy.spatial import cKDTree

    d, _ = cKDTree(B).query(A, k=1, distance_upper_bound=tol * (1 + 1e-12) + 1e-300)
    return bool(np.all(d <= tol))


def duplicate_structures(data, tol: float = 1e-3) -> Duplicates:
    """Duplicate structures of a FrameSet (or a list of descriptor blocks).

    Parameters
    ----------
    data : `atominfo.structures.frameset.FrameSet` (structures kept: their
        compositions are compared), or a list of per-structure descriptor arrays.
    tol : float >= 0, 1/Å.

    Returns
    -------
    Duplicates with ``by="structures"``, one entry per structure.
    """
    tol = params.check("duplicate_tol", tol, label="tol")
    if not isinstance(data, FrameSet):
        data = from_descriptors(list(data))
    n = len(data)
    formulas = [a.get_chemical_formula() for a in data.atoms] if data.atoms else [""] * n
    blocks = [data.environments([f]) for f in range(n)]
    dup = np.full(n, -1, dtype=np.int64)
    kept: dict[tuple, list[int]] = {}
    for f in range(n):
        key = (formulas[f], len(blocks[f]))
        for g in kept.get(key, []):
            if _covered(blocks[f], blocks[g], tol) and _covered(blocks[g], blocks[f], tol):
                dup[f] = g
                break
        if dup[f] == -1:
            kept.setdefault(key, []).append(f)
    return Duplicates(dup == -1, dup, float(tol), "structures")


def kept_rows(data: FrameSet, duplicates: Duplicates) -> np.ndarray:
    """Descriptor rows of `data` that `duplicates` keeps (of the kept structures, or the
    kept environments)."""
    if duplicates.by == "structures":
        return data.rows(np.flatnonzero(duplicates.keep))
    return np.flatnonzero(duplicates.keep)


def run_dedupe(
    data: FrameSet, tol: float = 1e-3, by: str = "structures", *, output=None
) -> Duplicates:
    """`atominfo dedupe` as one function: the duplicates of `data` (structures or
    environments) and, with `output`, what is unique, inside the output guard.

    `output` (.extxyz or .xyz): by structures the kept frames, unchanged; by
    environments every frame with a per-atom ``duplicate_of`` array (-1 for kept
    environments). `output` .npy: the descriptors of the kept rows.
    """
    by = params.check("by", by, label="by")
    inputs = list(dict.fromkeys(data.sources))
    with OutputGuard(inputs=inputs, outputs=[(output, OUTPUT_SUFFIXES)]):
        if by == "structures":
            duplicates = duplicate_structures(data, tol)
        else:
            duplicates = duplicate_environments(data.X, tol)
        if output is not None and Path(output).suffix == ".npy":
            with atomic_output(output) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, data.X[kept_rows(data, duplicates)])
        elif output is not None:
            _write_frames(data, duplicates, output)
    return duplicates


def _write_frames(data: FrameSet, duplicates: Duplicates, path) -> None:
    import ase.io

    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for f, atoms in enumerate(data.atoms):
                if duplicates.by == "structures":
                    if duplicates.keep[f]:
                        ase.io.write(fh, atoms, format="extxyz")
                    continue
                atoms = atoms.copy()
                atoms.arrays["duplicate_of"] = duplicates.duplicate_of[
                    data.offsets[f] : data.offsets[f + 1]
                ]
                ase.io.write(fh, atoms, format="extxyz")
