"""What a snapshot analysis takes (`SnapshotOptions`) and gives (`SnapshotResult`)."""

from __future__ import annotations

from dataclasses import dataclass

from atominfo.results import Result
from atominfo.workflows.snapshot_box import DEFAULT_DH_TOL

DEFAULT_CHUNK_ATOMS = 200_000


@dataclass(frozen=True)
class SnapshotOptions:
    """What is computed for each atom of a snapshot, and in what pieces.

    Parameters
    ----------
    dh : 'novel' (default): dH of the novel atoms, NaN for the others (whose dH <= 0);
        'all': dH of every atom; 'none': labels only (dH NaN).
    dh_tol : nats, > 0 (default 1e-9): each dH is at most ``log(1 + dh_tol) <=
        dh_tol`` above exact dH and never below it beyond rounding (1e-9 nats plus
        2.8e-14 |dH|: `atominfo.engine.index.projected.rounding_bound`); terms
        below that share of the sum are left out through a projected lower bound
        (`atominfo.engine.index.projected`). 0.01 is plenty for ranking novel
        atoms; the labels are exact whatever it is.
    chunk_atoms : atoms per spatial box; memory grows with it (about 2 kB an
        atom beside the reference), not with the snapshot.
    """

    dh: str = "novel"
    dh_tol: float = DEFAULT_DH_TOL
    chunk_atoms: int = DEFAULT_CHUNK_ATOMS

    def __post_init__(self) -> None:
        from atominfo import params

        object.__setattr__(self, "dh", params.check("snapshot_dh", self.dh, label="dh"))
        object.__setattr__(self, "dh_tol", float(params.check("dh_tol", self.dh_tol)))
        object.__setattr__(self, "chunk_atoms", int(params.check("chunk_atoms", self.chunk_atoms)))


@dataclass
class SnapshotResult(Result):
    """Summary of a chunked snapshot analysis.

    Attributes
    ----------
    source, frame : the file and frame analysed.
    atoms : int, atoms in the frame.
    novel : int, atoms with dH > 0 (exact labels).
    novelty : float, novel / atoms.
    max_dH : float, nats, the largest dH computed (NaN when none was: no novel atom
        with ``dh="novel"``, or ``dh="none"``).
    dh : 'novel', 'all' or 'none': the atoms whose dH was computed.
    dh_tol : float, nats: each dH computed is at most this far above exact dH.
    bandwidth : float, 1/Å.
    chunks : int, spatial boxes; grid : (3,) boxes per cell direction.
    halo_atoms : int, atoms (or images) gathered around boxes in all.
    output, dump : the files written.
    seconds : float, wall time of this call.
    timings : dict, seconds of this call per stage: 'read' (streaming and sorting
        the frame), 'halo', 'descriptors', 'labels', 'dH', 'write'.
    """

    _fields_shown = ("atoms", "novel", "novelty", "max_dH", "dh", "chunks", "seconds")
    source: str
    frame: int
    atoms: int
    novel: int
    novelty: float
    max_dH: float
    dh: str
    dh_tol: float
    bandwidth: float
    chunks: int
    grid: tuple
    halo_atoms: int
    output: str
    dump: str | None
    seconds: float
    timings: dict
    finished: bool = False  # --resume found the run finished: read back, nothing computed
