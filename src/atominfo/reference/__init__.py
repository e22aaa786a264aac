"""A reference set of environments, built once and queried many times."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atominfo import params
from atominfo.descriptor import DEFAULT_CUTOFF, DEFAULT_K, descriptors
from atominfo.engine import log_kernel_sums
from atominfo.engine.options import EngineOptions, as_engine
from atominfo.errors import InputError
from atominfo.information import (
    DEFAULT_BANDWIDTH,
    as_descriptor_matrix,
    bandwidths,
    check_widths,
    finite_log_sums,
    inside_labels,
    per_bandwidth,
)
from atominfo.reference.conformal import NoveltyCalibration, calibrate, flag
from atominfo.reference.novelty import Novelty, bounded_dh, judge

if TYPE_CHECKING:  # imported where first used: they pull in faiss / numba kernels
    from atominfo.engine.index.clusters import ClusterIndex
    from atominfo.engine.index.neighbours import NeighbourIndex
    from atominfo.engine.index.projected import ProjectedIndex


class Reference:
    """Training (reference) environments against which new ones are judged.

    Parameters
    ----------
    X : array (n, d)
        Reference descriptors, 1/Å. Copied: later changes to the caller's
        array do not affect the reference.
    h : float or sequence of floats
        Bandwidth(s), 1/Å; results follow the shape rule of
        `atominfo.information` (a leading axis for a sequence).
    k, cutoff : descriptor settings the reference was computed with (recorded).
    elements : set of str or None
        Chemical symbols of the reference structures, where known (recorded:
        the command line warns when test structures hold other elements).
    seed : int, seed of the k-means behind the cluster and neighbour indexes.
    engine : EngineOptions or None
        Kernel engine. With ``backend="dask"`` X is broadcast to the workers
        once, here; with ``backend="torch"`` it is copied to the device once.

    Examples
    --------
    >>> ref = Reference.from_files(["train.xyz"])                 # doctest: +SKIP
    >>> ref.delta_entropy(atominfo.descriptors("md.xyz"))         # doctest: +SKIP
    """

    def __init__(
        self,
        X,
        h=DEFAULT_BANDWIDTH,
        *,
        k: int | None = None,
        cutoff: float | None = None,
        elements=None,
        seed: int = 0,
        engine: EngineOptions | None = None,
    ):
        X = as_descriptor_matrix(X, "reference", copy=True)
        X.flags.writeable = False
        self.X = X
        self._hs, self._scalar = bandwidths(h)
        self.h = float(self._hs[0]) if self._scalar else self._hs.tolist()
        self.k = params.check_optional("k", k)
        self.cutoff = params.check_optional("cutoff", cutoff)
        self.elements = None if elements is None else frozenset(map(str, elements))
        self.seed = params.check("seed", seed)  # k-means seeds (speed only: answers are exact)
        self.engine = as_engine(engine).prepare(self.X)  # ship X to workers / device once
        self._clusters: ClusterIndex | None = None
        self._neighbours: NeighbourIndex | None = None
        self._projected: ProjectedIndex | None = None
        self._calibration: NoveltyCalibration | None = None

    @classmethod
    def from_structures(
        cls,
        structures,
        h=DEFAULT_BANDWIDTH,
        k: int = DEFAULT_K,
        cutoff: float = DEFAULT_CUTOFF,
        *,
        descriptor_options=None,
        seed: int = 0,
        engine: EngineOptions | None = None,
        progress=None,
    ) -> Reference:
        """Build from structures (Atoms, list, file path(s)) with the given descriptor.

        `descriptor_options` go to `atominfo.descriptors`; `progress` counts atoms described.
        """
        elements: set[str] = set()
        X = descriptors(
            structures,
            k,
            cutoff,
            progress=progress,
            elements=elements,
            **(descriptor_options or {}),
        )
        return cls(X, h, k=k, cutoff=cutoff, elements=elements, seed=seed, engine=engine)

    @classmethod
    def from_files(
        cls,
        paths,
        h=DEFAULT_BANDWIDTH,
        *,
        k: int = DEFAULT_K,
        cutoff: float = DEFAULT_CUTOFF,
        seed: int = 0,
        engine: EngineOptions | None = None,
        progress=None,
        **descriptor_options,
    ) -> Reference:
        """Build from structure files, or from saved descriptors (.npy, or .npz with 'X').

        Saved descriptors are read by `atominfo.structures.saved.read_reference`:
        a .npz written by ``atominfo descriptors`` must have been computed with
        this k, cutoff and ``rescale_volume`` (else InputError naming the file
        and both values); its species blocks are moved to this run's species
        list (``multicomponent=True``: the species the files record). A .npy
        records no parameters: it is used with an `UncheckedDescriptorsWarning`.

        Parameters
        ----------
        paths : path or list of paths; all structure files or all saved descriptors.
        h, k, cutoff, seed, engine : as the constructor (k and cutoff describe structures).
        progress : callable or None, counts atoms described.
        descriptor_options : further keywords of `atominfo.descriptors`
            (e.g. ``rescale_volume``, ``multicomponent``, ``index``, ``format``).
        """
        from atominfo.descriptor.multicomponent import resolve_species, to_species_layout
        from atominfo.structures.saved import is_saved_descriptors, read_reference, saved_elements

        paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        if not paths:
            raise InputError("no reference files given")
        saved = [is_saved_descriptors(p) for p in paths]
        if any(saved) and not all(saved):
            raise InputError(
                "give either structure files or saved descriptors (.npy/.npz) "
                "as the reference, not both"
            )
        if not all(saved):
            return cls.from_structures(
                [str(p) for p in paths],
                h,
                k,
                cutoff,
                seed=seed,
                engine=engine,
                progress=progress,
                descriptor_options=descriptor_options,
            )
        k, cutoff = params.check("k", k), params.check("cutoff", cutoff)
        rescale_volume = params.check_optional(
            "rescale_volume", descriptor_options.get("rescale_volume")
        )
        multicomponent = descriptor_options.get("multicomponent", False)
        species = (
            sorted(saved_elements(paths))
            if multicomponent is True
            else resolve_species(None, multicomponent)
        )
        files = read_reference(
            paths, k=k, cutoff=cutoff, rescale_volume=rescale_volume, species=species
        )
        blocks, elements = [], set[str]()
        for f in files:
            recorded = f.parameters
            if recorded is None:  # the width matched the run's: nothing else to go on
                blocks.append(f.X)
                continue
            blocks.append(
                to_species_layout(
                    f.X, k, recorded.species, recorded.elements, species, source=f.source
                )
            )
            elements.update(recorded.elements or ())
        known = all(f.parameters is not None and f.parameters.elements for f in files)
        return cls(
            np.concatenate(blocks),
            h,
            k=k,
            cutoff=cutoff,
            elements=elements if known else None,
            seed=seed,
            engine=engine,
        )

    def __len__(self) -> int:
        return len(self.X)

    def __repr__(self) -> str:
        return (
            f"Reference({len(self.X)} environments of width {self.X.shape[1]}, h={self.h}, "
            f"backend={self.engine.backend!r})"
        )

    def _query(self, Y):
        Y = as_descriptor_matrix(Y, "query")
        check_widths(Y, self.X)
        return Y

    def delta_entropy(
        self, Y, *, method: str = "exact", n_neighbors: int = 32, progress=None
    ) -> np.ndarray:
        """dH(Y_i | reference) per row of Y, nats: (m,), or (n_h, m) for several h.

        method "approximate" sums over the `n_neighbors` nearest reference
        points only, from a faiss index built on first use and kept (see
        `atominfo.delta_entropy`).
        """
        Y = self._query(Y)
        method = params.check("method_exact", method, label="method")
        n_neighbors = params.check("n_neighbors", n_neighbors)
        engine = self.engine.with_progress(progress)
        if method == "approximate":
            if self._neighbours is None:
                from atominfo.engine.index.neighbours import NeighbourIndex

                self._neighbours = NeighbourIndex(self.X, seed=self.seed)
            log_sums = self._neighbours.log_kernel_sums(
                Y, self._hs, n_neighbors, progress=engine.progress
            )
        else:
            log_sums = log_kernel_sums(Y, self.X, self._hs, engine)
        return per_bandwidth(-finite_log_sums(log_sums, self._hs), self._scalar)

    @property
    def index(self):
        """The cluster index of the reference (`engine.index.clusters.ClusterIndex`), built once."""
        if self._clusters is None:
            from atominfo.engine.index.clusters import ClusterIndex, classify_clusters

            self._clusters = ClusterIndex(
                self.X, n_clusters=classify_clusters(len(self.X)), seed=self.seed
            )
        return self._clusters

    @property
    def projected(self):
        """The projected index of the reference (`engine.index.projected.ProjectedIndex`),
        built once: kernel sums within a stated tolerance."""
        if self._projected is None:
            from atominfo.engine.index.projected import ProjectedIndex

            self._projected = ProjectedIndex(self.X)
        return self._projected

    def inside(self, Y, *, progress=None, threads: int | None = None) -> np.ndarray:
        """Exact labels dH(Y_i | reference) <= 0: bool (m,), or (n_h, m) for several h.

        Decided from the cluster index's bounds with exact fallback (cpu
        backend; other backends compute dH): equal to the label of exact dH
        wherever |dH| > 1e-9 nats. `threads` overrides the engine's (cpu).
        """
        Y = self._query(Y)
        engine = self.engine.with_progress(progress)
        if engine.backend == "cpu":
            labels = self.index.classify(
                Y,
                self._hs,
                progress=engine.progress,
                threads=engine.threads if threads is None else threads,
            )
        else:
            labels = inside_labels(Y, self.X, self._hs, "exact", self.seed, engine)
        return per_bandwidth(labels, self._scalar)

    def classify(
        self, Y, *, dh: str = "novel", dh_tol: float | None = None, threads: int | None = None
    ) -> Novelty:
        """Exact label of every row of Y, then dH of the rows that need it: a `Novelty`.

        The one path by which ``atominfo snapshot``, `NoveltyCalculator` and the
        LAMMPS monitor judge atoms: labels from `inside` (the cluster index,
        built once), then dH of the novel rows only (``dh="novel"``, the cheap
        default), of every row ("all") or of none ("none"). A row whose dH was
        not computed holds NaN: it is inside the domain (dH <= 0), and its
        value was not asked for.

        Parameters
        ----------
        Y : array (m, d), descriptors, 1/Å.
        dh : "novel", "all" or "none".
        dh_tol : None (default): exact dH (`delta_entropy`); a float in (0, 1]:
            each dH at most ``log(1 + dh_tol) <= dh_tol`` nats above exact dH,
            never below (the projected index, `projected`, built once).
        threads : worker threads of the labels and the bounded dH (default:
            the engine's; 1 is faster for a few hundred rows).

        Raises
        ------
        InputError
            For a reference with several bandwidths, Y of another width, a bad
            `dh` or `dh_tol`, and a row so far from every reference environment
            that dH exceeds the float64 range (``atom``: its row).
        """
        if not self._scalar:
            raise InputError("classify needs a reference with a single bandwidth")
        Y = self._query(Y)
        dh = params.check("snapshot_dh", dh, label="dh")
        tol = None if dh_tol is None else params.check("dh_tol", dh_tol)
        h = float(self._hs[0])
        return judge(
            Y,
            lambda Z: self.inside(Z, threads=threads),
            dh,
            self.delta_entropy
            if tol is None
            else (lambda Z: bounded_dh(self.projected, Z, h, tol, threads)),
        )

    def overlap(self, Y, *, progress=None) -> float | np.ndarray:
        """Fraction of Y with dH <= 0 (inside the reference's domain), exact: float or (n_h,)."""
        inside = np.reshape(self.inside(Y, progress=progress), (len(self._hs), -1))
        return per_bandwidth(inside.mean(axis=1), self._scalar)

    def novelty(self, Y, *, progress=None) -> float | np.ndarray:
        """Fraction of Y with dH > 0 (outside the reference's domain), exact: float or (n_h,)."""
        inside = np.reshape(self.inside(Y, progress=progress), (len(self._hs), -1))
        return per_bandwidth(1.0 - inside.mean(axis=1), self._scalar)

    def calibration(self, *, progress=None) -> NoveltyCalibration:
        """The conformal calibration of dH on this reference
        (`atominfo.reference.conformal.NoveltyCalibration`), built on first use and kept.

        `progress` is called with the number of calibration environments scored.
        """
        if self._calibration is None:
            self._calibration = calibrate(
                self.X, self._hs, self.engine, seed=self.seed, progress=progress
            )
        return self._calibration

    def p_values(self, Y, *, progress=None) -> np.ndarray:
        """Conformal p-value of each row of Y: (m,), or (n_h, m) for several h.

        Small p: Y_i scores a higher dH than nearly all held-out reference
        environments. For environments drawn like the reference's,
        ``P(p <= alpha) <= alpha``: `novel` flags at a stated false-alarm rate.
        The scheme is in `atominfo.reference.conformal`.
        """
        Y = self._query(Y)
        return per_bandwidth(self.calibration().p_values(Y, progress), self._scalar)

    def novel(self, Y, false_alarm: float, *, progress=None) -> np.ndarray:
        """Whether each row of Y is novel at false-alarm rate `false_alarm` (p <= false_alarm):
        bool (m,), or (n_h, m). InputError when the reference is too small to resolve it."""
        rate = self.calibration().check_rate(false_alarm)
        return flag(self.p_values(Y, progress=progress), rate)
