"""Analytic derivatives of the descriptor with respect to atomic positions.

The descriptor (docs/method.md, section 1) is piecewise smooth in the positions:
which k atoms are the nearest neighbours, their order, and the descending order
of each row of M change only where two distances (or two entries of a row) are
equal. `DescriptorJacobian` holds that combinatorial state fixed at the
evaluation point and differentiates the active piece exactly: away from ties
the result is the gradient; at a tie it is the gradient of the piece chosen by
the tie-break (a one-sided derivative). An atom crossing the cutoff sphere is
smooth (w and w' vanish at rc); a k-th neighbour swapped for a farther atom is
where the descriptor itself is discontinuous, and there no derivative exists.

Only vector-Jacobian products are formed: ``G @ dX/dR`` for a gradient G
(n, 2k-1) with respect to the descriptor rows, which is all a chain rule
through a scalar (dH, an entropy) needs. Periodic images are mapped back to
the atom they are images of, so the result is the derivative with respect to
the positions of the atoms themselves.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from atominfo import params
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import ghost_atoms
from atominfo.errors import InputError
from atominfo.structures.frames import validate_atoms

__all__ = ["DescriptorJacobian"]


class DescriptorJacobian:
    """Descriptor rows of one structure and their derivative with respect to positions.

    Parameters
    ----------
    atoms : ase.Atoms (any periodicity per direction).
    k, cutoff : descriptor settings (cutoff in Å).

    Attributes
    ----------
    X : array (n, 2k-1), the descriptor rows, 1/Å (equal to
        `atominfo.descriptors` away from ties at the k-th neighbour).
    """

    def __init__(self, atoms: Atoms, k: int = DEFAULT_K, cutoff: float = DEFAULT_CUTOFF):
        if not isinstance(atoms, Atoms):
            raise InputError(f"expected an ase.Atoms structure, got {type(atoms).__name__}")
        validate_atoms(atoms, "<memory>", 0)
        self.k, self.cutoff = params.check("k", k), params.check("cutoff", cutoff)
        ghosts, owner = ghost_atoms(atoms, self.cutoff)
        n = len(atoms)
        self.n_atoms = n
        k = self.k
        # The k nearest points within the cutoff, sorted by distance; the centre itself
        # (distance 0, its own index) is dropped, its periodic images are kept.
        dist, idx = cKDTree(ghosts).query(
            ghosts[:n], k=min(k + 1, len(ghosts)), distance_upper_bound=self.cutoff
        )
        dist, idx = dist.reshape(n, -1), idx.reshape(n, -1)
        if dist.shape[1] > 1 and (dist[:, 1] < 1e-6).any():
            a = int(np.argmax(dist[:, 1] < 1e-6))
            raise InputError("two atoms at the same position", atom=a)
        dist, idx = dist[:, 1:], idx[:, 1:]
        if dist.shape[1] < k:  # fewer points than k: pad with virtual neighbours
            pad = k - dist.shape[1]
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
            idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=len(ghosts))
        valid = np.isfinite(dist)
        safe = np.where(valid, idx, 0)
        self.valid = valid  # (n, k)
        self.neighbour = np.where(valid, owner[safe], -1)  # (n, k) atom of each neighbour
        # Virtual neighbours get distinct far-away vectors so that no distance is zero;
        # their weight is zero, so they contribute nothing.
        far = 1e6 * (1.0 + np.arange(k))[None, :, None] * np.array([1.0, 0.0, 0.0])
        self.vec = np.where(valid[..., None], ghosts[safe] - ghosts[:n, None, :], far)
        self.X = np.empty((n, 2 * k - 1))
        for lo in range(0, n, BLOCK):
            b = _Block(self.vec[lo : lo + BLOCK], valid[lo : lo + BLOCK], self.cutoff)
            x1 = np.where(b.valid, b.s**2 / b.r, 0.0)
            x2 = np.take_along_axis(b.M, b.order, axis=2).sum(axis=1) / k
            self.X[lo : lo + BLOCK] = np.concatenate([x1, x2], axis=1)

    def vjp(self, G) -> np.ndarray:
        """``sum_i G_i . dX_i/dR``: array (n, 3), the gradient with respect to the positions
        of a scalar whose gradient with respect to the descriptor rows is `G` (n, 2k-1)."""
        grad_vec = self._neighbour_gradient(np.asarray(G, dtype=float))
        n = self.n_atoms
        # r_j = R[neighbour] (+ lattice shift) - R[centre]
        out = np.zeros((n, 3))
        np.add.at(out, self.neighbour[self.valid], grad_vec[self.valid])
        out -= grad_vec.sum(axis=1)
        return out

    def strain_vjp(self, G) -> np.ndarray:
        """``sum_i G_i . dX_i/d(strain)``: array (3, 3), the derivative with respect to a
        homogeneous strain e (cell and positions mapped by I + e, at e = 0) of a scalar whose
        gradient with respect to the descriptor rows is `G`: ``sum r_j (x) d/dr_j``."""
        grad_vec = self._neighbour_gradient(np.asarray(G, dtype=float))
        return np.einsum("ija,ijb->ab", grad_vec, np.where(self.valid[..., None], self.vec, 0.0))

    def _neighbour_gradient(self, G: np.ndarray) -> np.ndarray:
        k, n = self.k, self.n_atoms
        if G.shape != (n, 2 * k - 1):
            raise InputError(f"gradient of shape {G.shape}; expected {(n, 2 * k - 1)}")
        grad_vec = np.empty((n, k, 3))
        for lo in range(0, n, BLOCK):
            b = _Block(self.vec[lo : lo + BLOCK], self.valid[lo : lo + BLOCK], self.cutoff)
            grad_vec[lo : lo + BLOCK] = b.vjp(G[lo : lo + BLOCK])
        return grad_vec


# Centres handled together: the pair arrays take BLOCK k^2 x 3 floats (25 MB at k = 32).
BLOCK = 256


class _Block:
    """M, its row orders and the pair geometry of a block of centres (rebuilt, not kept,
    so that memory stays bounded for any number of atoms)."""

    def __init__(self, vec: np.ndarray, valid: np.ndarray, cutoff: float):
        k = vec.shape[1]
        self.vec, self.valid, self.rc2 = vec, valid, cutoff**2
        r2 = (vec * vec).sum(axis=2)
        self.r = np.sqrt(r2)
        self.s = np.where(valid, 1.0 - r2 / self.rc2, 0.0)  # sqrt of w
        self.diff = vec[:, :, None, :] - vec[:, None, :, :]  # r_j - r_l, (b, k, k, 3)
        self.d = np.sqrt((self.diff * self.diff).sum(axis=3))
        np.einsum("ijj->ij", self.d)[:] = 1.0  # the diagonal is never used
        self.M = self.s[:, :, None] * self.s[:, None, :] / self.d
        np.einsum("ijj->ij", self.M)[:] = 0.0
        # Descending order of each row's off-diagonal entries: the diagonal sorts last.
        keyed = -self.M
        np.einsum("ijj->ij", keyed)[:] = np.inf
        self.order = np.argsort(keyed, axis=2, kind="stable")[:, :, : k - 1]

    def vjp(self, G: np.ndarray) -> np.ndarray:
        """d(sum G . X)/d r_j for each neighbour vector, (b, k, 3)."""
        k = self.vec.shape[1]
        # First half: x1_j = s_j^2 / r_j, d/dr = -s (4u + s) / r^2 with u = r^2 / rc^2.
        u = self.r**2 / self.rc2
        dx1 = np.where(self.valid, -self.s * (4.0 * u + self.s) / self.r**2, 0.0)
        grad_vec = (G[:, :k] * dx1 / np.where(self.valid, self.r, 1.0))[..., None] * self.vec
        # Second half: each sorted position n of row j passes G2_n / k to M_{j, order}.
        A = np.zeros_like(self.M)
        np.put_along_axis(A, self.order, np.broadcast_to(G[:, None, k:] / k, self.order.shape), 2)
        A = A + A.transpose(0, 2, 1)  # M is symmetric: both (j, l) and (l, j) depend on r_j
        np.einsum("ijj->ij", A)[:] = 0.0
        # dM_jl/dr_j = -2 s_l r_j / (rc^2 d_jl) - M_jl (r_j - r_l) / d_jl^2
        coef_r = -2.0 * (A * self.s[:, None, :] / self.d).sum(axis=2) / self.rc2
        coef_d = A * self.M / self.d**2
        grad_vec += coef_r[..., None] * self.vec
        grad_vec -= np.einsum("ijl,ijlx->ijx", coef_d, self.diff)
        return np.where(self.valid[..., None], grad_vec, 0.0)
