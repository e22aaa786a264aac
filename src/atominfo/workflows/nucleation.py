"""Nucleation clusters of solid-like atoms, and classical nucleation theory.

See docs/method.md, section 6.

Solid-like atoms (dH <= 0 against a solid reference) are the nodes of a graph
whose edges join nodes at most `edge_length` Å apart under the minimum image
convention (periodic per direction, any cell shape). Clusters are its
biconnected components (or, optionally, its connected components).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.reference import Reference
from atominfo.workflows.trajectory import iter_trajectory_dh

DEFAULT_EDGE = 3.0  # Å
AVOGADRO = 6.02214076e23


def solid_like(dH) -> np.ndarray:
    """Mask of solid-like environments: dH <= 0 against the solid reference."""
    return np.asarray(dH) <= 0


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
    method : 'biconnected' (docs/method.md, section 6.1) or 'connected'
        Biconnected components: no single atom holds a cluster together, so
        chains and loose contacts do not merge clusters; an articulation atom
        can belong to two clusters.
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
        groups = [np.array(sorted(c), dtype=np.int64) for c in nx.biconnected_components(graph)]
        isolated = np.setdiff1d(nodes, pairs.ravel())
        groups += [np.array([a]) for a in isolated]
    groups = [g for g in groups if len(g) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


@dataclass
class FrameClusters:
    """Clusters of one frame: `clusters` (atom index arrays, largest first) and dH (nats).

    `timestep` and `time` are the frame's, as in `trajectory.FrameDH` (None when unknown).
    """

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray
    clusters: list = field(default_factory=list)
    timestep: int | None = None
    time: float | None = None

    def summary(self) -> dict:
        """Table row: timestep (None when unknown), atoms, solid-like atoms, number of
        clusters, largest cluster (atoms)."""
        return {
            "frame": self.number,
            "source": self.source,
            "source_frame": self.source_frame,
            "timestep": self.timestep,
            "atoms": len(self.atoms),
            "solid_like": int(solid_like(self.dH).sum()),
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


def iter_trajectory_clusters(
    structures,
    reference: Reference,
    *,
    edge_length: float = DEFAULT_EDGE,
    method: str = "biconnected",
    min_size: int = 2,
    index=":",
    format=None,
    progress: Callable[[int], None] | None = None,
    **descriptor_options,
) -> Iterator[FrameClusters]:
    """Per frame, dH against the solid `reference` and the clusters of solid-like atoms.

    Streams frames like `trajectory.iter_trajectory_dh` (same options); the
    reference must have a single bandwidth. `edge_length` (Å, in (0, 50]),
    `method` and `min_size` (>= 1) are those of `find_clusters`.
    """
    if np.ndim(reference.h) != 0:
        raise InputError("clusters need a single bandwidth")
    edge_length = params.check("edge_length", edge_length)
    method = params.check("cluster_method", method, label="method")
    min_size = params.check("min_size", min_size)
    for frame in iter_trajectory_dh(
        structures, reference, index=index, format=format, progress=progress, **descriptor_options
    ):
        clusters = find_clusters(frame.atoms, solid_like(frame.dH), edge_length, method, min_size)
        yield FrameClusters(
            frame.number,
            frame.source,
            frame.source_frame,
            frame.atoms,
            frame.dH,
            clusters,
            frame.timestep,
            frame.time,
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
        For a value that is not a finite positive number, or an undercooling
        not below the melting temperature (the temperature T = T_m - dT must be > 0 K).
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
    v_m3 = atomic_volume * 1e-30
    per_volume = latent_heat * 1e3 / (AVOGADRO * v_m3)  # J/m^3
    r_star = 2.0 * gamma * melting_temperature / (per_volume * undercooling)  # m
    n_star = 4.0 / 3.0 * np.pi * r_star**3 / v_m3
    if not (np.isfinite(r_star) and np.isfinite(n_star)):
        raise InputError(
            f"the critical nucleus overflows (r* = {r_star * 1e10:.3g} Å): "
            "check the latent heat and undercooling, which are far too small"
        )
    return {"r_star": r_star * 1e10, "n_star": float(n_star), "latent_heat_per_volume": per_volume}
