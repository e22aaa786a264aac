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

import math
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.workflows.trajectory import iter_trajectory_dh

DEFAULT_EDGE = 3.0  # Å
AVOGADRO = 6.02214076e23
DEFAULT_SOLID_FRACTION_WARNING = 0.5


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
    pairs = neighbour_pairs(atoms, edge_length, nodes)
    if method == "connected":
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(atoms)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
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
    """

    edge_length: float = DEFAULT_EDGE
    method: str = "biconnected"
    min_size: int = 2
    solid_fraction_warning: float = DEFAULT_SOLID_FRACTION_WARNING
    n_star: float | None = None

    def __post_init__(self) -> None:
        checked = {
            "edge_length": params.check("edge_length", self.edge_length),
            "method": params.check("cluster_method", self.method, label="method"),
            "min_size": params.check("min_size", self.min_size),
            "solid_fraction_warning": params.check(
                "solid_fraction_warning", self.solid_fraction_warning
            ),
            "n_star": params.check_optional("n_star", self.n_star),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


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
        Edge length, method and smallest size as in `find_clusters`, and
        `solid_fraction_warning`: without a liquid reference, warn
        (`warnings.warn`, once) when more than this fraction of the atoms of
        the first frame are solid-like: a nucleation run starts from a melt,
        and a solid reference that calls most of a melt solid overlaps the
        liquid.
    reading, spec, progress :
        As in `trajectory.iter_trajectory_dh`.
    **keywords :
        Fields of `options` (``edge_length``, ``method``, ``min_size``,
        ``solid_fraction_warning``), `reading` and `spec` (``index``,
        ``format``, ``k``, ``cutoff``, ...) as separate keywords; they replace
        those of the bundles.

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
    first = True
    for frame in iter_trajectory_dh(
        structures, both, reading=reading, spec=spec, progress=progress
    ):
        if liquid_reference is None:
            dH, dH_liquid = frame.dH, None
            solid = solid_like(dH)
        else:
            dH, dH_liquid = frame.dH
            solid = solid_like(dH, dH_liquid, len(reference), len(liquid_reference))
        if first and liquid_reference is None:
            _warn_solid_fraction(solid, frame, options.solid_fraction_warning)
        first = False
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
        )


def _warn_solid_fraction(solid: np.ndarray, frame, limit: float) -> None:
    """Warn when more than `limit` of the first frame is solid-like (no liquid reference)."""
    if solid.mean() > limit:
        warnings.warn(
            f"{100 * solid.mean():.0f}% of the atoms of the first frame ({frame.source}, "
            f"frame {frame.source_frame}) are solid-like (more than "
            f"{100 * limit:g}%): unless that frame is mostly crystal, "
            "the solid reference overlaps the liquid (e.g. a crystal near its melting "
            "point) and the clusters are not nuclei; give a liquid reference "
            "(--liquid-ref, liquid_reference=)",
            stacklevel=3,
        )


def critical_nucleus(
    gamma: float,
    melting_temperature: float,
    latent_heat: float,
    undercooling: float,
    atomic_volume: float,
) -> dict:
    """Classical nucleation theory: critical radius r* and size n*.

    ``r* = 2 gamma T_m / (dH_m dT)``, with dH_m the latent heat per volume, and
    ``n* = (4/3) pi r*^3 / v_atom``.

    Parameters
    ----------
    gamma : float
        Solid-liquid interface free energy, J/m^2.
    melting_temperature : float
        T_m, K.
    latent_heat : float
        Latent heat of melting, kJ/mol.
    undercooling : float
        dT = T_m - T, K.
    atomic_volume : float
        Volume per atom of the solid, Å^3 (converts the latent heat to J/m^3).

    Returns
    -------
    dict with 'r_star' (Å), 'n_star' (atoms), 'latent_heat_per_volume' (J/m^3).

    Raises
    ------
    InputError
        For a value that is not a finite positive number, an undercooling
        not below the melting temperature (the temperature T = T_m - dT must be > 0 K),
        or a result (r*, n*, the latent heat per volume) beyond the range of a
        normal float64, naming the input that pushes it there.
    """
    gamma = params.check("gamma", gamma)
    melting_temperature = params.check("melting_temperature", melting_temperature)
    latent_heat = params.check("latent_heat", latent_heat)
    undercooling = params.check("undercooling", undercooling)
    atomic_volume = params.check("atomic_volume", atomic_volume)
    if undercooling >= melting_temperature:
        raise InputError(
            f"undercooling must be below the melting temperature "
            f"({melting_temperature:g} K), got {undercooling:g}"
        )
    inputs = {
        "gamma": gamma,
        "melting_temperature": melting_temperature,
        "latent_heat": latent_heat,
        "undercooling": undercooling,
        "atomic_volume": atomic_volume,
    }
    # In logs: every input is a positive float, but a product such as
    # latent_heat * undercooling can underflow to 0 (or r* overflow) inside the
    # declared ranges; the logs are always finite, so an unrepresentable
    # result is refused by name instead of raising OverflowError.
    log_of = {name: math.log(value) for name, value in inputs.items()}
    log_per_volume = (
        log_of["latent_heat"] + math.log(1e3 / AVOGADRO) - log_of["atomic_volume"] - math.log(1e-30)
    )  # J/m^3
    log_r_star = (  # Å
        math.log(2.0)
        + log_of["gamma"]
        + log_of["melting_temperature"]
        - log_per_volume
        - log_of["undercooling"]
        + math.log(1e10)
    )
    log_n_star = math.log(4.0 / 3.0 * math.pi) + 3.0 * log_r_star - log_of["atomic_volume"]
    for quantity, log_value, unit in (
        ("latent heat per volume", log_per_volume, "J/m^3"),
        ("critical radius r*", log_r_star, "Å"),
        ("critical size n*", log_n_star, "atoms"),
    ):
        _check_representable(quantity, log_value, unit, inputs, log_of)
    return {
        "r_star": math.exp(log_r_star),
        "n_star": math.exp(log_n_star),
        "latent_heat_per_volume": math.exp(log_per_volume),
    }


# The paper's Cu values (the `atominfo cnt` defaults), and how each result
# scales with each input (its exponent): the input that pushes a result out
# of float64 furthest from these values is the one an error message names.
_TYPICAL_CNT = {
    "gamma": ("gamma", 0.177, "J/m^2"),
    "melting_temperature": ("melting temperature", 1323.0, "K"),
    "latent_heat": ("latent heat", 11.99, "kJ/mol"),
    "undercooling": ("undercooling", 420.0, "K"),
    "atomic_volume": ("volume per atom", 12.893, "Å^3"),
}
_CNT_EXPONENTS = {
    "latent heat per volume": {"latent_heat": 1, "atomic_volume": -1},
    "critical radius r*": {
        "gamma": 1,
        "melting_temperature": 1,
        "latent_heat": -1,
        "undercooling": -1,
        "atomic_volume": 1,
    },
    "critical size n*": {
        "gamma": 3,
        "melting_temperature": 3,
        "latent_heat": -3,
        "undercooling": -3,
        "atomic_volume": 2,
    },
}
# Positive normal float64: below it precision is lost, above it is inf.
_LOG_SMALLEST = math.log(sys.float_info.min)
_LOG_LARGEST = math.log(sys.float_info.max)


def _check_representable(quantity, log_value, unit, inputs, log_of) -> None:
    """InputError naming the input to blame when exp(log_value) is not a normal float64."""
    if _LOG_SMALLEST <= log_value <= _LOG_LARGEST:
        return
    direction = 1 if log_value > _LOG_LARGEST else -1
    exponents = _CNT_EXPONENTS[quantity]

    def push(name):  # how far `name` moves the result towards the side it left by
        return direction * exponents[name] * (log_of[name] - math.log(_TYPICAL_CNT[name][1]))

    culprit = max(exponents, key=push)
    words, _, unit_in = _TYPICAL_CNT[culprit]
    typical = ", ".join(f"{w} {v:g} {u}" for w, v, u in _TYPICAL_CNT.values())
    raise InputError(
        f"{quantity} {'overflows' if direction > 0 else 'underflows'} float64 "
        f"(about 10^{log_value / math.log(10):.0f} {unit}) at {words} "
        f"{inputs[culprit]:g} {unit_in}; use physical values (Cu: {typical})"
    )
