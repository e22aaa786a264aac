"""Nucleation clusters of solid-like atoms, and classical nucleation theory.

See docs/method.md, section 6.

Solid-like atoms (dH <= 0 against a solid reference; with a liquid reference
too, also closer to the solid than to the liquid) are the nodes of a graph
whose edges join nodes at most `edge_length` Å apart under the minimum image
convention (periodic per direction, any cell shape). Clusters are its
biconnected components, its 2-edge-connected components, or its connected
components.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.workflows.cnt import critical_nucleus as critical_nucleus  # former home
from atominfo.workflows.trajectory import iter_trajectory_dh

DEFAULT_EDGE = 3.0  # Å
DEFAULT_SOLID_FRACTION_WARNING = 0.5
# Random solid-like labels stay in clusters of a few atoms (2-6 measured on EMT Cu
# melts, fractions up to 7%) until the fraction nears site percolation (about
# 0.15-0.2 with 3 Å edges), where they jump to hundreds: 10 atoms separates the two.
DEFAULT_CHANCE_CLUSTER_WARNING = 10
CHANCE_DRAWS = 10  # random labellings; their largest cluster is reported
SELECTIVITY_SAMPLE = 2000  # liquid-reference environments scored (binomial error < 1.2%)


def solid_like(dH, dH_liquid=None, n_solid: int | None = None, n_liquid: int | None = None):
    """Mask of solid-like environments.

    With the solid reference alone: ``dH <= 0``. With a liquid reference too,
    an environment must also be more likely under the solid reference than
    under the liquid one: ``dH + log(n_solid) < dH_liquid + log(n_liquid)``,
    i.e. a larger mean kernel density ``exp(-dH) / n`` (docs/method.md,
    section 6.1). Adding ``log n`` compares the references per environment,
    so that a larger reference does not win by its size alone; with
    references of equal size the rule is ``dH < dH_liquid``.

    Parameters
    ----------
    dH : array (n_atoms,)
        dH against the solid reference, nats.
    dH_liquid : array (n_atoms,), optional
        dH against the liquid reference, nats (same bandwidth).
    n_solid, n_liquid : int
        Sizes (environments) of the two references; required with `dH_liquid`.

    Returns
    -------
    bool array (n_atoms,)
    """
    dH = np.asarray(dH, dtype=float)
    mask = dH <= 0
    if dH_liquid is None:
        return mask
    dH_liquid = np.asarray(dH_liquid, dtype=float)
    if dH_liquid.shape != dH.shape:
        raise InputError(f"dH_liquid has shape {dH_liquid.shape}, expected {dH.shape}")
    if n_solid is None or n_liquid is None:
        raise InputError("solid_like with dH_liquid needs n_solid and n_liquid")
    n_solid = params.check("min_size", n_solid, label="n_solid")
    n_liquid = params.check("min_size", n_liquid, label="n_liquid")
    return mask & (dH + np.log(n_solid) < dH_liquid + np.log(n_liquid))


def neighbour_pairs(atoms: Atoms, cutoff: float, nodes=None) -> np.ndarray:
    """Pairs (i, j), i < j, of `nodes` at most `cutoff` Å apart (minimum image).

    Two atoms are joined when any periodic image of one lies within `cutoff`
    of the other, which is the minimum-image distance for every cell shape
    (triclinic included) and per-direction periodicity.

    Parameters
    ----------
    atoms : ase.Atoms
    cutoff : float, Å
    nodes : int array, optional
        Atom indices to consider (default: all).

    Returns
    -------
    ndarray (n_pairs, 2) of atom indices of `atoms`.
    """
    from ase.neighborlist import neighbor_list

    cutoff = params.check("edge_length", cutoff)
    _check_atoms(atoms)
    nodes = np.arange(len(atoms)) if nodes is None else np.asarray(nodes)
    if nodes.ndim != 1 or (
        nodes.size
        and (nodes.dtype.kind not in "iu" or nodes.min() < 0 or nodes.max() >= len(atoms))
    ):
        raise InputError(f"nodes must be atom indices in [0, {len(atoms)}), got {nodes!r}")
    nodes = nodes.astype(np.int64)
    if nodes.size < 2:
        return np.empty((0, 2), dtype=np.int64)
    sub = atoms[nodes]
    i, j = neighbor_list("ij", sub, float(cutoff), self_interaction=False)
    keep = i < j  # each pair once; image pairs of an atom with itself have i == j
    pairs = np.unique(np.stack([i[keep], j[keep]], axis=1), axis=0)
    return nodes[pairs] if pairs.size else np.empty((0, 2), dtype=np.int64)


def _check_atoms(atoms) -> None:
    if not isinstance(atoms, Atoms):
        raise InputError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}")


def minimum_image_distance(atoms: Atoms, i: int, j: int) -> float:
    """Shortest distance (Å) between atom i and any periodic image of atom j."""
    from ase.geometry import find_mic

    _check_atoms(atoms)
    for name, a in (("i", i), ("j", j)):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < len(atoms):
            raise InputError(f"atom index {name} must be in [0, {len(atoms)}), got {a!r}")
    d = atoms.positions[j] - atoms.positions[i]
    if not np.any(atoms.pbc):
        return float(np.linalg.norm(d))
    return float(find_mic(d[None, :], atoms.cell, atoms.pbc)[1][0])


def find_clusters(
    atoms: Atoms,
    mask,
    edge_length: float = DEFAULT_EDGE,
    method: str = "biconnected",
    min_size: int = 2,
) -> list[np.ndarray]:
    """Clusters of the atoms selected by `mask`, largest first.

    Parameters
    ----------
    atoms : ase.Atoms
    mask : bool array (n_atoms,)
        The nodes (e.g. `solid_like(dH)`).
    edge_length : float
        Largest distance (Å) of an edge, minimum image.
    method : 'biconnected', '2-edge-connected' or 'connected'
        Biconnected components (docs/method.md, section 6.1): no single atom
        holds a cluster together, so chains and loose contacts do not merge
        clusters; an articulation atom can belong to two clusters.
        2-edge-connected components: no single edge (bridge) holds a cluster
        together; every atom is in at most one cluster, and two clusters that
        share one atom (a bowtie) are one. Connected components: any path.
    min_size : int
        Smallest cluster reported, in atoms.

    Returns
    -------
    list of sorted int arrays of atom indices, by decreasing size.
    """
    _check_atoms(atoms)
    mask = np.asarray(mask)
    if mask.shape != (len(atoms),):
        raise InputError(f"mask has shape {mask.shape}, expected ({len(atoms)},)")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iu" or not np.isin(mask, (0, 1)).all():
            raise InputError(f"mask must be booleans (e.g. solid_like(dH)), got {mask.dtype}")
        mask = mask.astype(bool)
    method = params.check("cluster_method", method, label="method")
    edge_length = params.check("edge_length", edge_length)
    min_size = params.check("min_size", min_size)
    nodes = np.flatnonzero(mask)
    return _groups(nodes, neighbour_pairs(atoms, edge_length, nodes), len(atoms), method, min_size)


def _groups(nodes, pairs, n_atoms: int, method: str, min_size: int) -> list[np.ndarray]:
    """The clusters of `find_clusters`, from the selected atoms and their edges."""
    if method == "connected":
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix(
            (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_atoms, n_atoms)
        )
        _, labels = connected_components(graph, directed=False)
        groups = [nodes[labels[nodes] == lab] for lab in np.unique(labels[nodes])]
    else:
        import networkx as nx

        graph = nx.Graph()
        graph.add_edges_from(map(tuple, pairs.tolist()))
        if method == "biconnected":
            components = nx.biconnected_components(graph)
        else:  # 2-edge-connected: connected components once every bridge is removed
            graph.remove_edges_from(list(nx.bridges(graph)))
            components = (c for c in nx.connected_components(graph) if len(c) > 1)
        groups = [np.array(sorted(c), dtype=np.int64) for c in components]
        isolated = np.setdiff1d(nodes, np.concatenate([*groups, np.empty(0, np.int64)]))
        groups += [np.array([a]) for a in isolated]
    groups = [g for g in groups if len(g) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


@dataclass
class FrameClusters:
    """Clusters of one frame: `clusters` (atom index arrays, largest first) and dH (nats).

    `timestep` and `time` are the frame's, as in `trajectory.FrameDH` (None when unknown).
    `dH` is against the solid reference; `dH_liquid` against the liquid one (None
    without it); `solid` is the solid-like mask (`solid_like`), (n_atoms,) bool.
    `selectivity` is the references' `Selectivity`, on the first frame only (else None).
    """

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray
    clusters: list = field(default_factory=list)
    timestep: int | None = None
    time: float | None = None
    dH_liquid: np.ndarray | None = None
    solid: np.ndarray | None = None
    selectivity: Selectivity | None = None

    def __post_init__(self):
        if self.solid is None:
            self.solid = solid_like(self.dH)

    def summary(self) -> dict:
        """Table row: timestep (None when unknown), atoms, solid-like atoms, number of
        clusters, largest cluster (atoms)."""
        return {
            "frame": self.number,
            "source": self.source,
            "source_frame": self.source_frame,
            "timestep": self.timestep,
            "atoms": len(self.atoms),
            "solid_like": int(
                np.count_nonzero(self.solid if self.solid is not None else solid_like(self.dH))
            ),
            "clusters": len(self.clusters),
            "largest": int(len(self.clusters[0])) if self.clusters else 0,
        }

    def labels(self) -> np.ndarray:
        """Per-atom cluster number (1 = largest, 0 = none); an atom shared by two
        biconnected clusters gets the larger one's number."""
        out = np.zeros(len(self.atoms), dtype=np.int64)
        for number in range(len(self.clusters), 0, -1):
            out[self.clusters[number - 1]] = number
        return out


class _TwoReferences:
    """Duck-typed `Reference` for `iter_trajectory_dh`: dH against both, (2, m)."""

    def __init__(self, solid: Reference, liquid: Reference):
        self.solid, self.liquid = solid, liquid
        self.k, self.cutoff = solid.k, solid.cutoff

    def delta_entropy(self, Y) -> np.ndarray:
        return np.stack([self.solid.delta_entropy(Y), self.liquid.delta_entropy(Y)])

    def p_values(self, Y) -> np.ndarray:  # against the solid (clusters never ask for them)
        return self.solid.p_values(Y)


def _check_liquid(reference: Reference, liquid: Reference) -> None:
    if not isinstance(liquid, Reference):
        raise InputError(f"liquid_reference must be a Reference, got {type(liquid).__name__}")
    if np.ndim(liquid.h) != 0 or liquid.h != reference.h:
        raise InputError(
            f"the liquid reference must have the solid reference's bandwidth "
            f"h = {reference.h}, got {liquid.h}: dH at different bandwidths do not compare"
        )
    for name in ("k", "cutoff"):
        a, b = getattr(reference, name), getattr(liquid, name)
        if a is not None and b is not None and a != b:
            raise InputError(
                f"the liquid reference was computed with {name} = {b}, the solid one with {a}"
            )
    if liquid.X.shape[1] != reference.X.shape[1]:
        raise InputError(
            f"the liquid reference has descriptors of width {liquid.X.shape[1]}, the solid "
            f"one {reference.X.shape[1]}: compute both with the same k"
        )


@dataclass(frozen=True)
class ClusterOptions:
    """How solid-like atoms become clusters (`iter_trajectory_clusters`, `run_clusters`).

    Parameters
    ----------
    edge_length : largest distance of an edge between solid-like atoms, Å, in
        (0, 50] (minimum image).
    method : 'biconnected', '2-edge-connected' or 'connected' (`find_clusters`).
    min_size : smallest cluster counted, atoms (>= 1).
    solid_fraction_warning : without a liquid reference, warn when more than
        this fraction of the first frame's atoms are solid-like, in (0, 1] (1: never).
    n_star : critical nucleus size (atoms, `critical_nucleus`) that a run's plot
        marks; None: not drawn.
    chance_cluster_warning : warn when random atoms, in the proportion the
        references call solid-like in a melt (`Selectivity`), already form a
        cluster of this many atoms (>= 1).
    references : how the plot title names the references (e.g. their files);
        None: by their sizes.
    """

    edge_length: float = DEFAULT_EDGE
    method: str = "biconnected"
    min_size: int = 2
    solid_fraction_warning: float = DEFAULT_SOLID_FRACTION_WARNING
    n_star: float | None = None
    chance_cluster_warning: int = DEFAULT_CHANCE_CLUSTER_WARNING
    references: str | None = None

    def __post_init__(self) -> None:
        checked = {
            "edge_length": params.check("edge_length", self.edge_length),
            "method": params.check("cluster_method", self.method, label="method"),
            "min_size": params.check("min_size", self.min_size),
            "solid_fraction_warning": params.check(
                "solid_fraction_warning", self.solid_fraction_warning
            ),
            "n_star": params.check_optional("n_star", self.n_star),
            "chance_cluster_warning": params.check(
                "chance_cluster_warning", self.chance_cluster_warning
            ),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.references is not None and not isinstance(self.references, str):
            raise InputError(f"references must be a str, got {type(self.references).__name__}")


@dataclass(frozen=True)
class Selectivity:
    """How selective the references are, measured on a crystal-free sample before clustering.

    Attributes
    ----------
    sample : what was scored: "the first frame (FILE, frame N)" or "the liquid reference"
        (its environments against the rest of it, up to SELECTIVITY_SAMPLE of them).
    environments : environments scored.
    solid_fraction : the fraction of them called solid-like (`solid_like`).
    chance_largest : the largest cluster over `draws` random labellings of that
        fraction of the first frame's atoms (same edges, method and min_size):
        clusters up to this size are what the references' selectivity alone
        gives a melt with no crystal in it.
    draws : random labellings.
    warning : the warning given (None when the references are selective).
    """

    sample: str
    environments: int
    solid_fraction: float
    chance_largest: int
    draws: int
    warning: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def chance_largest(atoms: Atoms, fraction: float, options: ClusterOptions) -> int:
    """The largest cluster over CHANCE_DRAWS labellings (seeded: reproducible) of
    round(fraction * n) random atoms of `atoms` as solid-like, clustered as
    `find_clusters` does with `options`."""
    _check_atoms(atoms)
    if not isinstance(options, ClusterOptions):
        raise InputError(f"options must be a ClusterOptions, got {type(options).__name__}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)):
        raise InputError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if not 0.0 <= float(fraction) <= 1.0:
        raise InputError(f"fraction must be in [0, 1], got {fraction!r}")
    draws, n = CHANCE_DRAWS, len(atoms)
    count = int(round(fraction * n))
    if count == 0:
        return 0
    # every edge once, reused by each draw, unless the draws together hold fewer atoms
    pairs = neighbour_pairs(atoms, options.edge_length) if count * draws >= n else None
    rng = np.random.default_rng(0)
    largest = 0
    for _ in range(draws):
        nodes = np.sort(rng.choice(n, count, replace=False))
        if pairs is None:
            kept = neighbour_pairs(atoms, options.edge_length, nodes)
        else:
            chosen = np.zeros(n, dtype=bool)
            chosen[nodes] = True
            kept = pairs[chosen[pairs[:, 0]] & chosen[pairs[:, 1]]]
        groups = _groups(nodes, kept, n, options.method, options.min_size)
        largest = max(largest, len(groups[0]) if groups else 0)
    return largest


def measure_selectivity(
    frame, solid, reference: Reference, liquid: Reference | None, options: ClusterOptions
) -> Selectivity:
    """`Selectivity` of the references (a warning when a melt would show nuclei).

    `frame` is the first frame (`trajectory.FrameDH`) and `solid` its solid-like
    mask. Without a liquid reference the sample is that frame (a nucleation run
    starts from a melt); with one, the liquid reference itself, each environment
    scored against the others (its own kernel term left out).
    """
    where = f"the first frame ({frame.source}, frame {frame.source_frame})"
    if liquid is None or len(liquid) < 2:
        sample, fraction, scored = where, float(np.mean(solid)), len(solid)
    else:
        sample = "the liquid reference"
        fraction, scored = _liquid_fraction(reference, liquid)
    chance = chance_largest(frame.atoms, fraction, options)
    warning = None
    too_many = liquid is None and fraction > options.solid_fraction_warning
    if chance >= options.chance_cluster_warning or too_many:
        fix = "a colder solid reference (the paper's Cu reference was a 400 K crystal)"
        if liquid is None:
            fix += " or a liquid reference (--liquid-ref, liquid_reference=)"
        warning = (
            f"the solid reference calls {100 * fraction:.1f}% of {sample} solid-like: random "
            f"atoms in that proportion already form clusters of {chance} atoms "
            f"{'there' if sample == where else 'in ' + where}, "
            "so clusters this size are not evidence of nuclei (a melt with no crystal would "
            f"show them); use {fix}"
        )
    return Selectivity(sample, scored, fraction, chance, CHANCE_DRAWS, warning)


def _liquid_fraction(reference: Reference, liquid: Reference) -> tuple[float, int]:
    """Fraction of (a sample of) the liquid reference that `solid_like` calls solid-like."""
    rng = np.random.default_rng(0)
    n = len(liquid)
    rows = (
        np.sort(rng.choice(n, SELECTIVITY_SAMPLE, replace=False))
        if n > SELECTIVITY_SAMPLE
        else np.arange(n)
    )
    Y = liquid.X[rows]
    own = -liquid.delta_entropy(Y)  # log of the kernel sum, its own term (1) included
    with np.errstate(divide="ignore"):
        dH_liquid = -np.log(np.expm1(np.maximum(own, 0.0)))  # without it; inf when alone
    mask = solid_like(reference.delta_entropy(Y), dH_liquid, len(reference), n - 1)
    return float(mask.mean()), len(rows)


def iter_trajectory_clusters(
    structures,
    reference: Reference,
    *,
    liquid_reference: Reference | None = None,
    options: ClusterOptions | None = None,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    progress: Callable[[int], None] | None = None,
    **keywords,
) -> Iterator[FrameClusters]:
    """Per frame, dH against the solid `reference` and the clusters of solid-like atoms.

    Streams frames like `trajectory.iter_trajectory_dh` (same `reading`, `spec`
    and `progress`).

    Parameters
    ----------
    structures : ase.Atoms, list of Atoms, file path or list of paths
    reference : Reference
        Environments of the solid; a single bandwidth.
    liquid_reference : Reference, optional
        Environments of the liquid (same bandwidth, k and cutoff). An atom is
        then solid-like only when it is also more likely under the solid
        reference than under the liquid one (`solid_like`), so that a solid
        reference close to the liquid (a crystal near its melting point) does
        not turn the melt solid-like.
    options : ClusterOptions, optional
        Edge length, method and smallest size as in `find_clusters`, and the
        warnings. Before its clusters, the first frame gets the references'
        `Selectivity` (`FrameClusters.selectivity`): the fraction of a
        crystal-free sample (that frame, or the liquid reference when given)
        called solid-like, and the largest cluster random atoms in that
        proportion form. A warning (`warnings.warn`, once) says when that
        cluster reaches `chance_cluster_warning` atoms (or, without a liquid
        reference, when more than `solid_fraction_warning` of the frame is
        solid-like): a melt would then show clusters of that size.
    reading, spec, progress :
        As in `trajectory.iter_trajectory_dh`.
    **keywords :
        Fields of `options`, `reading` and `spec` (``index``, ``format``, ``k``,
        ``cutoff``, ...) as separate keywords; they replace those of the bundles.

    Yields
    ------
    FrameClusters
    """
    if not isinstance(reference, Reference):
        raise InputError(f"reference must be a Reference, got {type(reference).__name__}")
    if np.ndim(reference.h) != 0:
        raise InputError("clusters need a single bandwidth")
    if liquid_reference is not None:
        _check_liquid(reference, liquid_reference)
    options, reading, spec = with_keywords(
        keywords, options or ClusterOptions(), reading or Reading(), spec or DescriptorSpec()
    )
    both = reference if liquid_reference is None else _TwoReferences(reference, liquid_reference)
    selectivity = None
    for frame in iter_trajectory_dh(
        structures, both, reading=reading, spec=spec, progress=progress
    ):
        if liquid_reference is None:
            dH, dH_liquid = frame.dH, None
            solid = solid_like(dH)
        else:
            dH, dH_liquid = frame.dH
            solid = solid_like(dH, dH_liquid, len(reference), len(liquid_reference))
        first = selectivity is None
        if first:
            selectivity = measure_selectivity(frame, solid, reference, liquid_reference, options)
            if selectivity.warning is not None:
                warnings.warn(selectivity.warning, stacklevel=2)
        clusters = find_clusters(
            frame.atoms, solid, options.edge_length, options.method, options.min_size
        )
        yield FrameClusters(
            frame.number,
            frame.source,
            frame.source_frame,
            frame.atoms,
            dH,
            clusters,
            frame.timestep,
            frame.time,
            dH_liquid,
            solid,
            selectivity if first else None,
        )
