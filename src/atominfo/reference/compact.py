"""A compact summary of one set of environments: weighted cluster centres with member shells.

The n environments X of one species are split by k-means into m clusters
(m = the size asked for; m >= n keeps every environment as its own centre).
Each cluster B is stored as its centre c_B (float32: half the bytes), and
its members as shells by distance to that centre: shell s of B holds
n_Bs members at distances at most r_Bs, with mean squared distance q_Bs
(all measured against the stored, rounded centre, so they describe it
exactly).

For a query y at distance D = |y - c_B| from a centre, every member x of
shell s is within ``[max(0, D - r_Bs), D + r_Bs]`` of y (triangle
inequality), so the kernel sum ``S(y) = sum_x exp(-|y - x|^2 / (2 h^2))``
over the whole set is bracketed rigorously:

    sum_Bs n_Bs K(D + r_Bs)  <=  S(y)  <=  sum_Bs n_Bs K(max(0, D - r_Bs)),

and ``dH = -log S`` with it (`log_sum_bounds`). The raw estimate takes each
member at distance ``sqrt(D^2 + q_Bs)``: in many dimensions the offset of a
member from its centre is nearly orthogonal to y - c_B. Far from every
centre the sum is carried by the few nearest members, which that misses, so
the estimate used is calibrated: a linear combination of the raw estimate
and the two bounds, fitted by least squares to exact values of held-out
environments (`fit_calibration`) and kept inside the interval. It is no
bound; its error is measured on other held-out environments when a compact
reference is built (`atominfo.workflows.compact_reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from atominfo.engine.fold import SKIP_NATS, centre, exp_neg, inverse_two_h2

# Shell edges: cumulative fractions of a cluster's members, by distance to its centre.
SHELL_FRACTIONS = (0.25, 0.5, 0.75, 0.9, 1.0)
# Queries per block of the (queries x centres x shells) terms: bounded memory.
QUERY_BLOCK = 256
EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Summary:
    """The compact summary of one species' environments (see the module docstring).

    Attributes
    ----------
    centres : (m, d) float32, 1/Å.
    counts : (m, S) int64, members per shell (0: empty shell).
    radius : (m, S) float64, largest member distance per shell, rounded up, 1/Å.
    mean_sq : (m, S) float64, mean squared member distance per shell, 1/Å^2.
    """

    centres: np.ndarray
    counts: np.ndarray
    radius: np.ndarray
    mean_sq: np.ndarray

    @property
    def n(self) -> int:
        """Environments summarised."""
        return int(self.counts.sum())

    def __len__(self) -> int:
        return len(self.centres)


def summarise(X: np.ndarray, size: int, seed: int = 0) -> Summary:
    """The summary of the rows of X by at most `size` weighted centres (k-means, seeded)."""
    X = np.asarray(X, dtype=np.float64)
    if size >= len(X):
        centres32 = X.astype(np.float32)
        label = np.arange(len(X))
    else:
        centres32, label = _kmeans(X, size, seed)
    used = np.unique(label)  # drop empty clusters; keep the order of the rest
    centres32 = np.ascontiguousarray(centres32[used])
    label = np.searchsorted(used, label)
    c = centres32.astype(np.float64)
    dist = np.sqrt(np.einsum("ij,ij->i", X - c[label], X - c[label]))
    S = len(SHELL_FRACTIONS)
    counts = np.zeros((len(c), S), dtype=np.int64)
    radius = np.zeros((len(c), S))
    mean_sq = np.zeros((len(c), S))
    order = np.lexsort((dist, label))
    starts = np.searchsorted(label[order], np.arange(len(c) + 1))
    for b in range(len(c)):
        r = dist[order[starts[b] : starts[b + 1]]]
        cuts = np.round(np.array((0.0, *SHELL_FRACTIONS)) * len(r)).astype(np.int64)
        for s in range(S):
            part = r[cuts[s] : cuts[s + 1]]
            if len(part):
                counts[b, s] = len(part)
                # rounded up by a few ulps: the bound must hold despite rounding
                radius[b, s] = part[-1] * (1 + 1e-12) + 1e-15
                mean_sq[b, s] = float(np.mean(part * part))
    return Summary(centres32, counts, radius, mean_sq)


def _kmeans(X: np.ndarray, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (float32) and the label of each row: faiss k-means on all rows, one thread."""
    import faiss

    mu = centre(X)
    Xc = np.ascontiguousarray(X - mu, dtype=np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # faiss's spinning threads are slow on a busy machine
    try:
        km = faiss.Kmeans(
            X.shape[1],
            m,
            niter=20,
            seed=int(seed) % (2**31 - 1),  # faiss takes a 32-bit signed seed
            verbose=False,
            min_points_per_centroid=1,  # no warning for few points per centre
            max_points_per_centroid=1 << 30,  # train on every row
        )
        km.train(Xc)
        _, label = km.index.search(Xc, 1)
    finally:
        faiss.omp_set_num_threads(threads)
    centroids = np.asarray(km.centroids, dtype=np.float64)
    return (centroids + mu).astype(np.float32), label[:, 0].astype(np.int64)


def log_sum_bounds(Y: np.ndarray, summary: Summary, h: float) -> np.ndarray:
    """Per row of Y: (raw estimate, lower, upper) of ``log S(y)``, shape (3, m), nats.

    ``lower <= log S <= upper`` holds for the environments summarised
    (rigorous, rounding included); the estimate lies between them.
    """
    Y = np.asarray(Y, dtype=np.float64)
    c = summary.centres.astype(np.float64)
    mu = centre(c)
    c = c - mu
    c_sq = np.einsum("ij,ij->i", c, c)
    inv = float(inverse_two_h2(h)[0])
    with np.errstate(divide="ignore"):
        log_n = np.log(summary.counts)  # -inf: an empty shell adds nothing
    out = np.empty((3, len(Y)))
    for r0 in range(0, len(Y), QUERY_BLOCK):
        Q = Y[r0 : r0 + QUERY_BLOCK] - mu
        q_sq = np.einsum("ij,ij->i", Q, Q)
        d2 = q_sq[:, None] + c_sq[None, :] - 2.0 * (Q @ c.T)
        # rounding of the expanded form, bounded generously (d + 2 terms of size <= norms)
        slack = 4.0 * (Q.shape[1] + 2) * EPS * (q_sq[:, None] + c_sq[None, :]) + 1e-300
        _shell_sums(
            d2, slack, log_n, summary.radius, summary.mean_sq, inv, out[:, r0 : r0 + len(Q)]
        )
    # outwards: the log-sum-exp rounds (exp_neg: 3e-14 relative; skipped terms far less)
    out[1] -= 1e-12 * (1 + np.abs(out[1]))
    out[2] += 1e-12 * (1 + np.abs(out[2]))
    out[0] = np.clip(out[0], out[1], out[2])
    return out


@numba.njit(nogil=True, cache=True)
def _shell_sums(d2, slack, log_n, radius, mean_sq, inv, out):
    """Per query i: log-sum-exp over centres and shells of the estimate's terms and of
    the two bounds' terms (see the module docstring), into out[:, i]."""
    m, n_s = log_n.shape
    terms = np.empty((3, m * n_s))
    for i in range(d2.shape[0]):
        for b in range(m):
            e2 = max(d2[i, b], 0.0)
            d_lo = np.sqrt(max(e2 - slack[i, b], 0.0))
            d_hi = np.sqrt(e2 + slack[i, b])
            for s in range(n_s):
                t = b * n_s + s
                terms[0, t] = log_n[b, s] - (e2 + mean_sq[b, s]) * inv
                far = d_hi + radius[b, s]
                terms[1, t] = log_n[b, s] - far * far * inv
                near = max(d_lo - radius[b, s], 0.0)
                terms[2, t] = log_n[b, s] - near * near * inv
        for k in range(3):
            top = -np.inf
            for t in range(m * n_s):
                top = max(top, terms[k, t])
            if top == -np.inf:
                out[k, i] = -np.inf
                continue
            acc = 0.0
            for t in range(m * n_s):
                x = terms[k, t] - top
                if x > -SKIP_NATS:  # smaller terms: < 1e-26 of the sum each
                    acc += exp_neg(x)
            out[k, i] = top + np.log(acc)


# Identity calibration: the estimate itself (`calibrated`).
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
# Bounds farther than this from the estimate enter a calibration clipped (nats): a
# far bound says little about log S and would dominate a least-squares fit.
CLIP_NATS = 200.0


def features(bounds: np.ndarray) -> np.ndarray:
    """(m, 4) features of a calibration: estimate, lower, upper (clipped to CLIP_NATS
    around the estimate) and 1, from `log_sum_bounds`'s (3, m)."""
    est, lower, upper = bounds
    lower = np.maximum(lower, est - CLIP_NATS)
    upper = np.minimum(upper, est + CLIP_NATS)
    return np.stack([est, lower, upper, np.ones_like(est)], axis=1)


def fit_calibration(bounds: np.ndarray, exact_log_sums: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of exact log S on `features` (4,); rows with a
    non-finite exact value are left out."""
    ok = np.isfinite(exact_log_sums)
    coef, *_ = np.linalg.lstsq(features(bounds[:, ok]), exact_log_sums[ok], rcond=None)
    return coef if np.all(np.isfinite(coef)) else IDENTITY.copy()


def calibrated(bounds: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The calibrated estimate of log S (m,), kept inside the rigorous interval."""
    return np.clip(features(bounds) @ coef, bounds[1], bounds[2])


def summary_bytes(summary: Summary) -> int:
    """Bytes of the summary's arrays (uncompressed)."""
    return sum(a.nbytes for a in (summary.centres, summary.counts, summary.radius, summary.mean_sq))
