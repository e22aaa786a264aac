"""Analytic gradients of dH and of the entropy gain with respect to atomic positions.

Chain rule: the gradient with respect to the descriptor rows, from the kernel
sums (exact, in log space with a max-shift, so a far outlier's weights stay
finite), times the descriptor's derivative (`atominfo.descriptor.gradient`).

* ``dH(Y | X) = -log sum_j K_h(Y, X_j)`` gives ``d dH / dY = (Y - sum_j p_j X_j) / h^2``
  with ``p_j = K_h(Y, X_j) / sum_l K_h(Y, X_l)``: dH rises as Y moves away from the
  kernel-weighted mean of the reference.
* The entropy gain ``H(X u Y) - H(X)`` of adding the m rows Y to the n rows X
  (N = n + m; S_j the kernel sum of row j over the union) has
  ``dH(X u Y) / dY_a = (1 / (N h^2)) sum_j K_h(Y_a, Z_j) (1/S_a + 1/S_j) (Y_a - Z_j)``
  over the union Z: moving Y_a changes its own sum and every sum it enters.

The descriptor is piecewise smooth (see `DescriptorJacobian`): these are the
gradients of the active piece, one-sided at ties. Positions are differentiated at a
fixed cell; the strain derivative maps cell and positions together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.gradient import DescriptorJacobian
from atominfo.engine.fold import log_sum_exp
from atominfo.information import as_descriptor_matrix, check_widths
from atominfo.results import Result

__all__ = ["OBJECTIVES", "NoveltyGradient", "novelty_gradient", "dh_descriptor_gradient"]

# What a structure's novelty means for its gradient: the sum, mean or largest of its
# atoms' dH, or the entropy gain of adding all its environments to the reference.
OBJECTIVES = ("sum", "mean", "max", "entropy_gain")


def _log_kernel(Y: np.ndarray, Z: np.ndarray, h: float, centre: np.ndarray) -> np.ndarray:
    """log K_h(Y_a, Z_j), (m, n); distances from rows shifted by `centre` (less cancellation)."""
    Yc, Zc = Y - centre, Z - centre
    d2 = (Yc * Yc).sum(axis=1)[:, None] + (Zc * Zc).sum(axis=1)[None, :] - 2.0 * Yc @ Zc.T
    return -np.maximum(d2, 0.0) / (2.0 * h * h)


def dh_descriptor_gradient(Y, X, h: float = DEFAULT_BANDWIDTH) -> tuple[np.ndarray, np.ndarray]:
    """dH(Y_i | X) and its gradient with respect to each row Y_i.

    Returns (dH (m,) nats, G (m, d) nats Å): exact in log space, finite for far rows.
    """
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    h = params.check("bandwidth", h, label="bandwidth h")
    log_k = _log_kernel(Y, X, h, X.mean(axis=0))
    log_s = log_sum_exp(log_k, axis=1)
    p = np.exp(log_k - log_s[:, None])  # softmax weights: max-shifted, each <= 1
    return -log_s, (Y - p @ X) / (h * h)


def entropy_gain_gradient(Y, X, h: float = DEFAULT_BANDWIDTH) -> tuple[float, np.ndarray]:
    """H(X u Y) - H(X) (nats) and its gradient with respect to each row of Y (m, d)."""
    Y = as_descriptor_matrix(Y, "Y")
    X = as_descriptor_matrix(X, "X")
    check_widths(Y, X)
    h = params.check("bandwidth", h, label="bandwidth h")
    Z = np.concatenate([X, Y])
    centre = X.mean(axis=0)
    n, N = len(X), len(Z)
    log_xx = log_sum_exp(_log_kernel(X, X, h, centre), axis=1)
    log_k = _log_kernel(Y, Z, h, centre)  # (m, N)
    log_s = np.concatenate(
        [np.logaddexp(log_xx, log_sum_exp(log_k[:, :n], axis=0)), log_sum_exp(log_k, axis=1)]
    )
    gain = (np.log(N) - log_s.mean()) - (np.log(n) - log_xx.mean())
    weight = np.exp(log_k - log_s[n:, None]) + np.exp(log_k - log_s[None, :])
    G = (weight.sum(axis=1)[:, None] * Y - weight @ Z) / (N * h * h)
    return float(gain), G


@dataclass(frozen=True)
class NoveltyGradient(Result):
    """A structure's novelty against a reference and its gradient with respect to positions.

    Attributes
    ----------
    objective : one of `OBJECTIVES`.
    value : the objective, nats.
    dH : array (n,), each atom's dH against the reference, nats.
    gradient : array (n, 3), d value / d positions, nats/Å (cell fixed).
    strain_gradient : array (3, 3), d value / d strain e, nats, for cell and positions
        mapped together by I + e (at e = 0).
    """

    objective: str
    value: float
    dH: np.ndarray
    gradient: np.ndarray
    strain_gradient: np.ndarray


def novelty_gradient(
    atoms: Atoms,
    reference,
    h: float = DEFAULT_BANDWIDTH,
    *,
    k: int = DEFAULT_K,
    cutoff: float = DEFAULT_CUTOFF,
    objective: str = "sum",
) -> NoveltyGradient:
    """A structure's novelty (sum, mean or max of its atoms' dH, or the entropy gain) and
    its analytic gradient with respect to the atomic positions.

    Parameters
    ----------
    atoms : ase.Atoms; its descriptors use `k` and `cutoff` (Å), which must be those of
        the reference.
    reference : array (n, 2k-1), the reference descriptors, 1/Å.
    h : bandwidth, 1/Å.
    objective : "sum", "mean", "max" (the largest atom's dH; at a tie, the first such
        atom) or "entropy_gain" (H(reference u structure) - H(reference)).

    Returns
    -------
    NoveltyGradient. Its gradient is that of the piece active at `atoms`: neighbour
    sets and sort orders kept as they are there, so it is one-sided at ties (see
    docs/method.md, section 1.6).
    """
    objective = params.check("novelty_objective", objective, label="objective")
    k, cutoff = params.check("k", k), params.check("cutoff", cutoff)
    jac = DescriptorJacobian(atoms, k, cutoff)
    dH, G = dh_descriptor_gradient(jac.X, reference, h)
    if objective == "sum":
        value = float(dH.sum())
    elif objective == "mean":
        value, G = float(dH.mean()), G / len(dH)
    elif objective == "max":
        top = int(np.argmax(dH))
        value, mask = float(dH[top]), np.zeros((len(dH), 1))
        mask[top] = 1.0
        G = G * mask
    else:
        value, G = entropy_gain_gradient(jac.X, reference, h)
    return NoveltyGradient(objective, value, dH, jac.vjp(G), jac.strain_vjp(G))
