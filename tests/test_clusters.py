"""Nucleation clusters (minimum image, biconnected components), CNT, and the seed-in-melt case."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

import atominfo
from atominfo.cli import main
from atominfo.errors import InputError
from atominfo.structures.datasets import CU_LATTICE, fcc_cu, md_frames, rattled_fcc_cu
from atominfo.workflows.nucleation import (
    critical_nucleus,
    find_clusters,
    iter_trajectory_clusters,
    minimum_image_distance,
    neighbour_pairs,
    solid_like,
)

K = 32
SEED_RADIUS = 7.0  # Å


def brute_force_pairs(atoms, cutoff):
    """All pairs within `cutoff` by the minimum image over the 5x5x5 nearest cell images."""
    n = len(atoms)
    shifts = np.array([[a, b, c] for a in range(-2, 3) for b in range(-2, 3) for c in range(-2, 3)])
    shifts = shifts * atoms.pbc  # no images along non-periodic directions
    images = np.unique(shifts, axis=0) @ atoms.cell[:]
    pairs = set()
    for i in range(n):
        for j in range(i + 1, n):
            d = atoms.positions[j] - atoms.positions[i] + images
            if np.min(np.linalg.norm(d, axis=1)) <= cutoff:
                pairs.add((i, j))
    return pairs


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False)])
def test_minimum_image_pairs_triclinic(pbc):
    rng = np.random.default_rng(0)
    cell = np.array([[7.0, 0, 0], [3.1, 6.2, 0], [-2.0, 1.5, 6.5]])  # strongly skewed
    atoms = Atoms("Cu40", scaled_positions=rng.random((40, 3)), cell=cell, pbc=pbc)
    got = {tuple(p) for p in neighbour_pairs(atoms, 3.0)}
    assert got == brute_force_pairs(atoms, 3.0)
    i, j = next(iter(got))
    assert minimum_image_distance(atoms, i, j) <= 3.0
    sub = np.arange(0, 40, 3)
    assert {tuple(p) for p in neighbour_pairs(atoms, 3.0, sub)} == {
        p for p in got if p[0] in sub and p[1] in sub
    }


def test_biconnected_versus_connected():
    """Two triangles sharing one atom, plus a tail atom and a far isolated atom."""
    pos = [
        [0, 0, 0],
        [2, 0, 0],
        [1, 1.7, 0],  # triangle A
        [3, -1.7, 0],
        [4, 0, 0],  # triangle B shares atom 1
        [6, 0, 0],  # tail on atom 4 (a bridge)
        [20, 20, 20],
    ]  # isolated
    atoms = Atoms("Cu7", positions=pos)
    mask = np.ones(7, bool)
    bic = find_clusters(atoms, mask, edge_length=2.1)
    assert sorted(map(list, bic)) == [[0, 1, 2], [1, 3, 4], [4, 5]]
    con = find_clusters(atoms, mask, edge_length=2.1, method="connected")
    assert [list(c) for c in con] == [[0, 1, 2, 3, 4, 5]]
    assert len(find_clusters(atoms, mask, 2.1, "connected", min_size=1)) == 2
    mask[1] = False  # removing the shared atom splits everything
    assert max(len(c) for c in find_clusters(atoms, mask, 2.1)) == 2
    with pytest.raises(InputError):
        find_clusters(atoms, mask, 2.1, method="louvain")


def test_cluster_across_periodic_boundary():
    atoms = Atoms(
        "Cu3", positions=[[0.2, 5, 5], [9.6, 5, 5], [9.6, 7.5, 5]], cell=[10, 10, 10], pbc=True
    )
    assert [list(c) for c in find_clusters(atoms, np.ones(3, bool), 3.0)] == [[0, 1, 2]]
    atoms.pbc = False
    assert [list(c) for c in find_clusters(atoms, np.ones(3, bool), 3.0)] == [[1, 2]]


def test_critical_nucleus_paper_values():
    """docs/method.md section 6.2: Cu values give about 120 atoms at 420 K undercooling."""
    r = critical_nucleus(0.177, 1323, 11.99, 420, 12.893)
    assert r.n_star == pytest.approx(122.3, abs=0.5)
    assert r.r_star == pytest.approx(7.22, abs=0.01)
    assert (4 / 3) * np.pi * r.r_star**3 / 12.893 == pytest.approx(r.n_star)
    # r* ~ 1/dT: halving the undercooling doubles r*, n* x 8
    half = critical_nucleus(0.177, 1323, 11.99, 210, 12.893)
    assert half.n_star == pytest.approx(8 * r.n_star)
    with pytest.raises(InputError, match="undercooling"):
        critical_nucleus(0.177, 1323, 11.99, 0, 12.893)


@pytest.mark.parametrize(
    "args, match",
    [
        ((0.177, 1323, 11.99, 1323, 12.893), "below the melting temperature"),
        ((0.177, 1323, 11.99, 2000, 12.893), "below the melting temperature"),
        ((float("nan"), 1323, 11.99, 420, 12.893), "gamma"),
        ((0.177, float("inf"), 11.99, 420, 12.893), "melting_temperature"),
        ((0.177, 1323, -1.0, 420, 12.893), "latent_heat"),
        ((0.177, 1323, 11.99, 420, 0.0), "atomic_volume"),
        ((0.177, 1323, "x", 420, 12.893), "latent_heat"),
    ],
)
def test_critical_nucleus_rejects_bad_parameters(args, match):
    with pytest.raises(InputError, match=match):
        critical_nucleus(*args)


def test_cluster_parameters_are_validated():
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [2, 0, 0], [4, 0, 0]])
    mask = np.ones(3, bool)
    for kwargs, match in [
        ({"edge_length": 0.0}, "edge_length"),
        ({"edge_length": float("nan")}, "edge_length"),
        ({"edge_length": 1e6}, "edge_length"),
        ({"min_size": 0}, "min_size"),
        ({"method": "louvain"}, "method"),
    ]:
        with pytest.raises(InputError, match=match):
            find_clusters(atoms, mask, **kwargs)
    with pytest.raises(InputError, match="mask"):
        find_clusters(atoms, np.array([0.5, 1.0, 1.0]))
    assert [list(c) for c in find_clusters(atoms, np.array([1, 1, 0]), 2.5)] == [[0, 1]]
    with pytest.raises(InputError, match="atom indices"):
        neighbour_pairs(atoms, 2.5, nodes=[0, 7])
    with pytest.raises(InputError, match="atom index"):
        minimum_image_distance(atoms, 0, 3)


@pytest.fixture(scope="module")
def melt():
    """A Cu melt made by EMT MD at 3000 K (108 atoms), tiled 2x2x2 (864 atoms, 22 Å box)."""
    start = fcc_cu(3, CU_LATTICE * 1.05 ** (1 / 3))
    start.rattle(0.3, seed=1)
    liquid = md_frames(start, 3000.0, 1, interval=10, equilibration=50, seed=0, timestep_fs=4.0)[0]
    return liquid.repeat(2)


@pytest.fixture(scope="module")
def solid_reference():
    """Solid reference: FCC Cu with 0.03 Å thermal-like displacements, 10 x 256 atoms."""
    return atominfo.Reference.from_structures(
        [rattled_fcc_cu(4, 0.03, seed=s) for s in range(10)], h=0.015
    )


@pytest.fixture(scope="module")
def seeded(melt):
    """A spherical FCC seed (radius 7 Å, 0.02 Å displacements) in the middle of the melt.

    Returns (atoms, number of seed atoms (they come first), core atom indices):
    core atoms are seed atoms whose K nearest neighbours are all seed atoms.
    """
    centre = melt.cell.sum(axis=0) / 2
    crystal = rattled_fcc_cu(6, sigma=0.02, seed=7)
    sites = (
        crystal.positions
        - crystal.positions[
            np.argmin(np.linalg.norm(crystal.positions - crystal.cell.sum(axis=0) / 2, axis=1))
        ]
    )
    seed = sites[np.linalg.norm(sites, axis=1) <= SEED_RADIUS] + centre
    from ase.geometry import get_distances

    _, dist = get_distances(melt.positions, seed, cell=melt.cell, pbc=True)
    keep = (dist.min(axis=1) > 2.2) & (
        np.linalg.norm(melt.positions - centre, axis=1) > SEED_RADIUS
    )
    atoms = Atoms(f"Cu{len(seed)}", positions=seed, cell=melt.cell, pbc=True) + melt[keep]
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    core = [a for a in range(len(seed)) if np.all(j[i == a][np.argsort(d[i == a])[:K]] < len(seed))]
    return atoms, len(seed), np.array(core)


@pytest.mark.slow
def test_seed_in_melt_largest_cluster_is_the_seed(seeded, solid_reference):
    atoms, n_seed, core = seeded
    assert len(core) >= 10  # by construction: the centre atom and its shells
    frame = next(iter_trajectory_clusters(atoms, solid_reference))
    largest = frame.clusters[0]
    assert np.all(largest < n_seed), "the largest cluster holds only seed atoms"
    assert set(core) <= set(largest.tolist()), "and at least every core atom"
    assert frame.summary()["largest"] == len(largest)
    assert np.all(frame.labels()[core] == 1)


@pytest.mark.slow
def test_pure_melt_has_only_tiny_clusters(melt, solid_reference):
    dH = solid_reference.delta_entropy(atominfo.descriptors(melt))
    clusters = find_clusters(melt, solid_like(dH))
    assert max((len(c) for c in clusters), default=0) <= 4


@pytest.mark.slow
def test_cli_clusters(seeded, melt, tmp_path, capsys):
    atoms, n_seed, core = seeded
    traj, ref = tmp_path / "traj.extxyz", tmp_path / "solid.extxyz"
    ase.io.write(traj, [melt, atoms], format="extxyz")
    ase.io.write(ref, [rattled_fcc_cu(4, 0.03, seed=s) for s in range(10)], format="extxyz")
    table, out, plot = tmp_path / "c.csv", tmp_path / "c.extxyz", tmp_path / "c.png"
    assert (
        main(
            [
                "clusters",
                str(traj),
                "--ref",
                str(ref),
                "--table",
                str(table),
                "-o",
                str(out),
                "--plot",
                str(plot),
                "--n-star",
                "122",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 2 and result["method"] == "biconnected"
    assert result["per_frame"][0]["largest"] <= 4
    assert result["per_frame"][1]["largest"] >= len(core)
    labelled = ase.io.read(out, index=1)
    assert np.all(labelled.arrays["cluster"][core] == 1)
    assert (
        "frame,source,source_frame,timestep,atoms,solid_like,clusters,largest" in table.read_text()
    )
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert (
        main(
            [
                "clusters",
                str(traj),
                "--ref",
                str(ref),
                "--connected",
                "--edge",
                "3.5",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    connected = json.loads(capsys.readouterr().out)
    assert connected["per_frame"][1]["largest"] >= result["per_frame"][1]["largest"]


def test_cli_cnt(capsys):
    assert main(["cnt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_star"] == pytest.approx(122.3, abs=0.5)


def test_two_edge_connected_bridge_between_triangles():
    """Two triangles joined by one bond (a bridge): two 2-edge-connected clusters."""
    pos = [[0, 0, 0], [2, 0, 0], [1, 1.7, 0], [4, 0, 0], [6, 0, 0], [5, 1.7, 0]]
    atoms = Atoms("Cu6", positions=pos)
    mask = np.ones(6, bool)
    got = find_clusters(atoms, mask, 2.1, "2-edge-connected")
    assert sorted(map(list, got)) == [[0, 1, 2], [3, 4, 5]]
    # biconnected keeps the bridge as a cluster of its own; connected merges all
    assert sorted(map(list, find_clusters(atoms, mask, 2.1))) == [[0, 1, 2], [1, 3], [3, 4, 5]]
    assert [list(c) for c in find_clusters(atoms, mask, 2.1, "connected")] == [list(range(6))]
    # an atom on a bridge only is alone: reported with min_size=1, as a single atom
    single = find_clusters(atoms, np.array([1, 1, 1, 1, 0, 0], bool), 2.1, "2-edge-connected", 1)
    assert [list(c) for c in single] == [[0, 1, 2], [3]]


def test_bowtie_biconnected_versus_two_edge_connected():
    """Two triangles sharing one atom: two biconnected clusters, one 2-edge-connected."""
    pos = [[0, 0, 0], [2, 0, 0], [1, 1.7, 0], [3, -1.7, 0], [4, 0, 0]]  # shared atom 1
    atoms = Atoms("Cu5", positions=pos)
    mask = np.ones(5, bool)
    assert sorted(map(list, find_clusters(atoms, mask, 2.1))) == [[0, 1, 2], [1, 3, 4]]
    assert [list(c) for c in find_clusters(atoms, mask, 2.1, "2-edge-connected")] == [
        [0, 1, 2, 3, 4]
    ]


def test_two_edge_connected_matches_networkx_k_edge_components():
    """On a random periodic graph, bridge removal equals nx.k_edge_components(G, 2)."""
    import networkx as nx

    rng = np.random.default_rng(3)
    atoms = Atoms("Cu60", scaled_positions=rng.random((60, 3)), cell=[9, 9, 9], pbc=True)
    mask = rng.random(60) < 0.8
    got = {tuple(c) for c in find_clusters(atoms, mask, 2.2, "2-edge-connected")}
    graph = nx.Graph()
    graph.add_nodes_from(np.flatnonzero(mask).tolist())
    graph.add_edges_from(map(tuple, neighbour_pairs(atoms, 2.2, np.flatnonzero(mask)).tolist()))
    expected = {tuple(sorted(c)) for c in nx.k_edge_components(graph, 2) if len(c) >= 2}
    assert got == expected and len(got) >= 2


@pytest.mark.slow
def test_cli_clusters_method_option(seeded, tmp_path, capsys):
    atoms, n_seed, core = seeded
    traj, ref = tmp_path / "traj.extxyz", tmp_path / "solid.extxyz"
    ase.io.write(traj, atoms, format="extxyz")
    ase.io.write(ref, [rattled_fcc_cu(4, 0.03, seed=s) for s in range(10)], format="extxyz")
    largest = {}
    for method in ("biconnected", "2-edge-connected", "connected"):
        argv = ["clusters", str(traj), "--ref", str(ref), "--method", method, "--json", "-q"]
        assert main(argv) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["method"] == method
        largest[method] = result["largest"]
    # every biconnected cluster lies in one 2-edge-connected one, which lies in one component
    assert largest["biconnected"] <= largest["2-edge-connected"] <= largest["connected"]
    assert largest["biconnected"] >= len(core)
    assert main(["clusters", str(traj), "--ref", str(ref), "--method", "louvain", "-q"]) == 2
    assert "--method" in capsys.readouterr().err
    argv = ["clusters", str(traj), "--ref", str(ref), "--connected", "--method", "biconnected"]
    assert main(argv + ["-q"]) == 2
    assert "contradicts" in capsys.readouterr().err
