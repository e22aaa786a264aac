"""What `atominfo.workflows.generate` minimises: kernel sums against a growing reference.

`ReferenceSums` holds the reference (the dataset plus every candidate
accepted so far) and gives exact log kernel sums against it, through the
engine's fold (`atominfo.engine.fold`). `energy` turns a state's sums into
the annealing energy of either objective; the entropies it and the
campaign summary need are formed by `atominfo.information.surprisals`, the
one place H is formed from kernel sums.
"""

from __future__ import annotations

import numpy as np

from atominfo.engine.fold import centre, fold_block, inverse_two_h2
from atominfo.information import surprisals


class ReferenceSums:
    """Exact log kernel sums against a reference that grows by whole candidates.

    Centred once on the initial reference (`engine.fold.centre`), then each
    query block goes through the engine's fold (`engine.fold.fold_block`).

    Parameters
    ----------
    X : array (n, d), the initial reference, 1/Å.
    h : float, bandwidth, 1/Å.
    """

    def __init__(self, X: np.ndarray, h: float):
        self.h = h
        self.mu = centre(X)
        self.Xc = np.ascontiguousarray(X - self.mu)
        self.x_sq = np.einsum("ij,ij->i", self.Xc, self.Xc)
        self.inv = inverse_two_h2(h)

    def __len__(self) -> int:
        return len(self.Xc)

    def rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Reference rows `start:stop` as given (not centred), 1/Å."""
        return self.Xc[start:stop] + self.mu

    def add(self, Y: np.ndarray) -> None:
        """Append the rows `Y` (a candidate's descriptors) to the reference."""
        Yc = np.ascontiguousarray(Y - self.mu)
        self.Xc = np.concatenate([self.Xc, Yc])
        self.x_sq = np.concatenate([self.x_sq, np.einsum("ij,ij->i", Yc, Yc)])

    def log_sums(self, Y: np.ndarray) -> np.ndarray:
        """log sum_j K_h(Y_i, R_j), (m,), nats."""
        Yc = np.ascontiguousarray(Y - self.mu)
        y_sq = np.einsum("ij,ij->i", Yc, Yc)
        return self._fold(Yc @ self.Xc.T, y_sq, self.x_sq)

    def reference_sums(self, Y: np.ndarray) -> np.ndarray:
        """log sum_i K_h(R_j, Y_i) for every reference row j, (n_R,), nats."""
        Yc = np.ascontiguousarray(Y - self.mu)
        y_sq = np.einsum("ij,ij->i", Yc, Yc)
        return self._fold(self.Xc @ Yc.T, self.x_sq, y_sq)

    def _fold(self, G: np.ndarray, row_sq: np.ndarray, col_sq: np.ndarray) -> np.ndarray:
        """Log of each row's kernel sum, from the Gram block `G` and the squared norms."""
        run_max = np.full((1, len(G)), -np.inf)
        run_sum = np.zeros((1, len(G)))
        fold_block(G, row_sq, col_sq, self.inv, run_max, run_sum)
        with np.errstate(divide="ignore"):
            return (run_max + np.log(run_sum))[0]


def self_log_sums(Y: np.ndarray, h: float) -> np.ndarray:
    """log sum_j K_h(Y_i, Y_j) of a block against itself, (m,), nats."""
    return ReferenceSums(Y, h).log_sums(Y)


def reference_entropy(sums: ReferenceSums) -> float:
    """H of the current reference (dataset + candidates), nats."""
    X = sums.rows()
    return float(surprisals(self_log_sums(X, sums.h), len(X)).mean())


def entropy_gain(Y: np.ndarray, L: np.ndarray, sums: ReferenceSums, ref_self: np.ndarray) -> float:
    """H(R + Y) - H(R), nats, for the block `Y` whose log sums against R are `L`.

    `ref_self` are the log sums of R against itself. The sums of R + Y are
    updated from them (R against Y, Y against itself), never recomputed; H
    is then formed from the sums by `surprisals`, as everywhere else.
    """
    n, m = len(ref_self), len(Y)
    old = np.logaddexp(ref_self, sums.reference_sums(Y))
    new = np.logaddexp(L, self_log_sums(Y, sums.h))
    H_after = surprisals(np.concatenate([old, new]), n + m).mean()
    H_before = surprisals(ref_self, n).mean()
    return float(H_after - H_before)


def energy(
    X: np.ndarray,
    L: np.ndarray,
    objective: str,
    target: tuple[float, float],
    sums: ReferenceSums,
    ref_self: np.ndarray | None,
) -> tuple[float, float]:
    """(energy, entropy gain) of a state with descriptors `X` and log sums `L` against R.

    "target": the distance of the largest dH (= -L) from the `target` range
    (0 inside it); "entropy": minus the gain in total nats,
    ``-(n_R + n_s) * gain``. The gain is computed for "entropy" only (NaN else).
    """
    if objective == "target":
        s = float(-L.min())
        return max(target[0] - s, 0.0) + max(s - target[1], 0.0), float("nan")
    assert ref_self is not None  # the "entropy" objective keeps R's own sums
    gain = entropy_gain(X, L, sums, ref_self)
    return -(len(sums) + len(X)) * gain, gain
