"""dH of every atom of one huge snapshot, by spatial chunks, in bounded memory.

A snapshot of tens of millions of atoms has descriptors larger than memory
(32.5 M atoms x 63 columns x 8 bytes = 16 GB). `analyse_snapshot` never holds
them: the frame is streamed from its text file (`structures.fastread`) into a
scratch file of atoms sorted by spatial box (a grid of the cell, in
fractional coordinates), then each box is analysed on its own:

* its atoms (the core) and every atom, or periodic image, within the cutoff of
  the box (the halo: the box widened by ``cutoff / height`` of the cell in
  each direction) are gathered, and the box is analysed by a `BoxAnalyser`
  (`snapshot_box.py`), here or on a Dask worker (`snapshot_dask.py`, which
  receives the positions only):
* the core atoms' descriptors are computed by the same kernel as
  `atominfo.descriptor.structure_descriptors`, so each is the descriptor of
  the whole frame (equal to it to rounding, and exactly the same neighbours
  unless two neighbours are equidistant);
* exact labels ``novel = dH > 0`` from the reference's cluster index (equal to
  the sign of exact dH wherever |dH| > 1e-9 nats; cheap: bounds decide most
  atoms);
* dH for the novel atoms only by default (``dh="novel"``: the atoms inside the
  domain have dH <= 0 and NaN in the outputs), or for every atom
  (``dh="all"``), or none (``"none"``), each at most ``dh_tol`` nats above
  exact dH (default 1e-9) and never below beyond rounding (1e-9 nats plus
  2.8e-14 |dH|, `engine.index.projected.rounding_bound`): the projected index
  (`atominfo.engine.index.projected`) leaves out only terms that together
  weigh less than that, and computes the rest exactly.

Memory is set by `chunk_atoms` (the atoms of one box), not by the snapshot.
Results go to disk box by box: a ``.npy`` (structured: ``id``, ``type``,
``dH``, ``novel``, one row per atom in file order, written through a memory
map) and optionally a LAMMPS text dump for OVITO (``id type x y z dH novel``,
atoms box by box). A checkpoint after every box lets ``resume=True``
continue a killed run, to the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.settings import DescriptorSpec, Reading, with_keywords
from atominfo.workflows import snapshot_dump as dump_text
from atominfo.workflows import snapshot_grid as grid
from atominfo.workflows.snapshot_box import BoxAnalyser, run_box
from atominfo.workflows.snapshot_settings import SnapshotOptions, SnapshotResult

DUMP_SUFFIXES = (".dump", ".lammpstrj")
RECORD = np.dtype(
    [("index", "<i8"), ("frac", "<f8", (3,)), ("pos", "<f8", (3,)), ("id", "<i8"), ("type", "<i8")]
)
OUTPUT = np.dtype([("id", "<i8"), ("type", "<i8"), ("dH", "<f8"), ("novel", "?")])


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


def analyse_snapshot(
    path,
    reference,
    output,
    *,
    dump=None,
    reading: Reading | None = None,
    spec: DescriptorSpec | None = None,
    options: SnapshotOptions | None = None,
    resume: bool = False,
    client=None,
    progress=None,
    **keywords,
) -> SnapshotResult:
    """Exact novelty labels and dH of every atom of one snapshot, by spatial chunks.

    Parameters
    ----------
    path : LAMMPS text dump or extxyz file (plain or .gz).
    reference : `atominfo.Reference` with one bandwidth.
    output : path ending in .npy: a structured array, one row per atom in file
        order, fields ``id`` (LAMMPS id, else atom number + 1), ``type``
        (LAMMPS type, else atomic number), ``dH`` (nats) and ``novel`` (dH > 0).
    dump : optional path (.dump or .lammpstrj): a LAMMPS text dump with
        columns ``id type x y z dH novel`` (atoms box by box), for OVITO.
    reading : `Reading`: its ``index`` is the frame number in the file (from 0;
        default 0), ``format`` and ``type_map`` as
        `atominfo.structures.fastread.StreamedFrame`.
    spec : `DescriptorSpec` (k and cutoff; default: the reference's, else 32 and 5 Å).
    options : `SnapshotOptions` (dh, dh_tol, chunk_atoms).
    **keywords : the fields of these as keywords: ``frame=`` (the frame number),
        ``format=``, ``type_map=``, ``k=``, ``cutoff=``, ``dh=``, ``dh_tol=``,
        ``chunk_atoms=``.
    resume : continue an interrupted run from its last complete box
        (`atominfo.runs.checkpoint`: a run with other options or a changed
        input is refused, and its work kept). On a run that had finished, the
        result is read back from `output` (nothing is computed: ``chunks``
        and ``halo_atoms`` are 0) with a warning.
        Without `resume`, an interrupted run's checkpoint is refused:
        `atominfo.runs.guard.discard` gives up its work explicitly.
    client : a `distributed.Client` (see `atominfo.engine.dask_client.get_client`):
        the boxes are analysed on its workers, which receive positions only
        (`atominfo.workflows.snapshot_dask`); the results are the same bytes.
        None (default): the reference's client when its engine is Dask, else
        here, with numba's threads.
    progress : callable, called with the number of atoms done after each box.

    Returns
    -------
    SnapshotResult
    """
    from atominfo import params
    from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
    from atominfo.runs.guard import OutputGuard

    started = time.perf_counter()
    if "frame" in keywords:
        keywords["index"] = keywords.pop("frame")
    reading, spec, options = with_keywords(
        keywords,
        reading or Reading(index=0),
        spec or DescriptorSpec(),
        options or SnapshotOptions(),
    )
    frame = reading.index if reading.index != ":" else 0
    if np.ndim(reference.h) != 0:
        raise InputError("the snapshot analysis takes a reference with one bandwidth")
    k = params.check("k", spec.k if spec.k is not None else (reference.k or DEFAULT_K))
    cutoff = params.check(
        "cutoff", spec.cutoff if spec.cutoff is not None else (reference.cutoff or DEFAULT_CUTOFF)
    )
    if client is None and reference.engine.backend == "dask":
        from atominfo.engine.dask import client_of

        client = client_of(reference.engine.backend_kwargs().get("client"))
    output = Path(output)
    dump = Path(dump) if dump is not None else None
    outputs = [(output, (".npy",)), (dump, DUMP_SUFFIXES)]
    with OutputGuard(inputs=[path], outputs=outputs, resume=resume, resumable=True):
        run = _Run(
            str(path),
            reference,
            output,
            dump,
            int(frame),
            reading.format,
            reading.type_map,
            int(k),
            float(cutoff),
            options.dh,
            options.dh_tol,
            options.chunk_atoms,
            client,
            progress,
        )
        summary = run.execute(resume)
    return SnapshotResult(seconds=time.perf_counter() - started, **summary)


class _Run:
    def __init__(
        self,
        path,
        reference,
        output,
        dump,
        frame,
        format,
        type_map,
        k,
        cutoff,
        dh,
        dh_tol,
        chunk_atoms,
        client,
        progress,
    ):
        from atominfo.runs.files import hidden_path

        self.path, self.ref, self.output, self.dump = path, reference, output, dump
        self.frame, self.format, self.type_map = frame, format, type_map
        self.k, self.cutoff, self.dh, self.chunk_atoms = k, cutoff, dh, chunk_atoms
        self.dh_tol, self.client = dh_tol, client
        self.analyser = BoxAnalyser(reference, k, cutoff, dh, dh_tol)
        self.progress = progress
        self.npy_partial = hidden_path(output, "partial")
        self.scratch = hidden_path(output, "frames.partial")
        self.dump_partial = hidden_path(dump, "partial") if dump is not None else None
        self.timings = dict.fromkeys(("read", "halo", "descriptors", "labels", "dH", "write"), 0.0)

    @contextlib.contextmanager
    def _timed(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - t0

    def _stream(self):
        from atominfo.structures.fastread import StreamedFrame

        return StreamedFrame(self.path, self.frame, format=self.format, type_map=self.type_map)

    # -- checkpoint -----------------------------------------------------------
    def _signature(self) -> dict:
        digest = hashlib.sha256(np.ascontiguousarray(self.ref.X).tobytes()).hexdigest()
        return {
            "frame": self.frame,
            "format": self.format,
            "type_map": None if self.type_map is None else str(self.type_map),
            "reference": digest,
            "h": float(self.ref.h),
            "k": self.k,
            "cutoff": self.cutoff,
            "dh": self.dh,
            "dh_tol": self.dh_tol,
            "chunk_atoms": self.chunk_atoms,
        }

    def _save(self, state: dict) -> None:
        boxes = int(np.prod(state["grid"]))
        self.checkpoint.save(state, progress=f"{state['boxes_done']} of {boxes} boxes done")

    # -- phases ---------------------------------------------------------------
    def execute(self, resume: bool) -> dict:
        from atominfo.runs.checkpoint import Checkpoint

        self.checkpoint = Checkpoint([self.output, self.dump], self._signature(), [self.path])
        begun = self.checkpoint.begin(resume)
        if begun.finished:
            return {**self._read_back(), "finished": True}
        if begun.finishing is not None:  # killed while renaming: complete the renames
            self.checkpoint.complete(begun.finishing)
            return self._summary(begun.state or {})
        state = begun.state
        needed = [self.npy_partial, self.scratch] + (
            [self.dump_partial] if self.dump_partial is not None else []
        )
        if state is not None and not all(p.exists() for p in needed):
            raise InputError(
                "--resume: the partial output of the interrupted run is missing; run "
                "with --restart to start again",
                source=str(self.output),
            )
        if state is None:
            with self._timed("read"):
                state = self._prepare()
        return self._analyse(state)

    def _prepare(self) -> dict:
        """Stream the frame twice or three times: extents, box counts, sorted scratch."""
        with self._stream() as s:
            h = s.header
        assert h is not None
        if self.dump is not None and not dump_text.check_dump_cell(h.cell):
            raise InputError(
                "the cell is not a LAMMPS box (first vector along x, second in "
                "the xy plane), so it cannot be written as a LAMMPS dump; leave "
                "out the dump (the .npy holds every value)",
                source=self.path,
                frame=h.frame,
            )
        pbc = np.asarray(h.pbc, dtype=bool)
        basis = grid.basis(h.cell, pbc)
        heights = grid.heights(basis)
        lo, hi = np.zeros(3), np.ones(3)
        n = grid.grid(h.n_atoms, self.chunk_atoms, lo, hi, heights)
        counts = np.zeros(int(np.prod(n)), dtype=np.int64)
        # first pass: checks every frame of the file, and finds the extents along
        # open directions (or, all periodic, counts the atoms per box at once)
        lo = np.where(pbc, 0.0, np.inf)
        hi = np.where(pbc, 1.0, -np.inf)
        with self._stream() as s:
            for block in s.blocks():
                f = self._fractional(block, basis, pbc)
                if pbc.all():
                    counts += np.bincount(grid.box_index(f, lo, hi, n), minlength=len(counts))
                else:
                    lo = np.minimum(lo, np.where(pbc, 0.0, f.min(axis=0)))
                    hi = np.maximum(hi, np.where(pbc, 1.0, f.max(axis=0)))
            s.check_rest()
        if not pbc.all():
            hi = np.where(hi > lo, hi, lo + 1.0)
            n = grid.grid(h.n_atoms, self.chunk_atoms, lo, hi, heights)
            counts = np.zeros(int(np.prod(n)), dtype=np.int64)
            with self._stream() as s:
                for block in s.blocks():
                    f = self._fractional(block, basis, pbc)
                    counts += np.bincount(grid.box_index(f, lo, hi, n), minlength=len(counts))
        starts = np.concatenate([[0], np.cumsum(counts)])
        fill = starts[:-1].copy()
        fd = os.open(self.scratch, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with self._stream() as s:
                for block in s.blocks():
                    f = self._fractional(block, basis, pbc)
                    box = grid.box_index(f, lo, hi, n)
                    order = np.argsort(box, kind="stable")
                    rec = np.empty(len(box), dtype=RECORD)
                    rec["index"] = block.start + order
                    rec["frac"] = f[order]
                    rec["pos"] = block.positions[order]
                    rec["id"] = block.ids[order]
                    rec["type"] = block.types[order]
                    sorted_box = box[order]
                    cuts = np.flatnonzero(np.diff(sorted_box)) + 1
                    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(box)]):
                        j = int(sorted_box[a])
                        os.pwrite(fd, rec[a:b].tobytes(), int(fill[j]) * RECORD.itemsize)
                        fill[j] += b - a
            os.fsync(fd)
        finally:
            os.close(fd)
        from numpy.lib.format import open_memmap

        out = open_memmap(self.npy_partial, mode="w+", dtype=OUTPUT, shape=(h.n_atoms,))
        out.flush()
        del out
        dump_bytes = 0
        if self.dump_partial is not None:
            text = dump_text.dump_header(h, basis).encode()
            with open(self.dump_partial, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            dump_bytes = len(text)
        state = {
            "n_atoms": h.n_atoms,
            "grid": n.tolist(),
            "lo": lo.tolist(),
            "hi": hi.tolist(),
            "pbc": pbc.tolist(),
            "basis": None if basis is None else basis.tolist(),
            "counts": counts.tolist(),
            "boxes_done": 0,
            "dump_bytes": dump_bytes,
            "novel": 0,
            "max_dH": -math.inf,
            "halo_atoms": 0,
        }
        self._save(state)
        return state

    def _fractional(self, block, basis, pbc) -> np.ndarray:
        """`grid.fractional` of a block, refusing atoms too far out of the periodic cell."""
        from atominfo.descriptor.kernel import MAX_CELL_LENGTHS

        if basis is not None:
            frac = block.positions @ np.linalg.inv(basis)
            lost = np.abs(frac[:, pbc]).max(axis=1) > MAX_CELL_LENGTHS
            if lost.any():
                a = int(np.argmax(lost))
                raise InputError(
                    f"atom is {np.abs(frac[a, pbc]).max():.3g} cell lengths "
                    f"outside the periodic cell (limit {MAX_CELL_LENGTHS:.0e}): "
                    "wrapping it into the cell would lose its position",
                    source=self.path,
                    frame=self.frame,
                    atom=block.start + a,
                )
        return grid.fractional(block.positions, basis, pbc)

    def _analyse(self, state: dict) -> dict:
        from numpy.lib.format import open_memmap

        counts = np.array(state["counts"], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        if self.dump_partial is not None:
            with open(self.dump_partial, "r+b") as fh:
                fh.truncate(state["dump_bytes"])  # drop a box written after the checkpoint
        done_atoms = int(starts[state["boxes_done"]])
        if self.progress is not None and done_atoms:
            self.progress(done_atoms)
        jobs = self._jobs(state, starts)
        if self.client is None:
            results = _local_boxes(self.analyser, jobs)
        else:
            from atominfo.workflows.snapshot_dask import map_boxes

            results = map_boxes(self.analyser, jobs, self.client)
        for job, dh, novel, box_timings in results:
            for stage, seconds in box_timings.items():
                self.timings[stage] += seconds
            t_write = time.perf_counter()
            core = job.core
            rows = np.empty(len(core), dtype=OUTPUT)
            rows["id"], rows["type"] = core["id"], core["type"]
            rows["dH"], rows["novel"] = dh, novel
            out = open_memmap(self.npy_partial, mode="r+")
            out[core["index"]] = rows
            out.flush()
            del out
            if self.dump_partial is not None:
                text = dump_text.dump_rows(core, dh, novel)
                with open(self.dump_partial, "ab") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                state["dump_bytes"] += len(text)
            state["novel"] += int(novel.sum())
            computed = dh[np.isfinite(dh)]
            if computed.size:
                state["max_dH"] = max(state["max_dH"], float(computed.max()))
            state["halo_atoms"] += len(job.owner) - len(core)
            # the empty boxes before the next non-empty one are done too
            state["boxes_done"] = job.next_box
            self._save(state)
            self.timings["write"] += time.perf_counter() - t_write
            if self.progress is not None:
                self.progress(len(core))
        return self._finish(state)

    def _jobs(self, state: dict, starts: np.ndarray):
        """A `BoxJob` for every non-empty box not yet done, in box order."""
        n = np.array(state["grid"], dtype=np.int64)
        lo, hi = np.array(state["lo"]), np.array(state["hi"])
        pbc = np.array(state["pbc"], dtype=bool)
        basis = None if state["basis"] is None else np.array(state["basis"])
        # halo width in box coordinates, widened a little: a superset is harmless
        pad = self.cutoff / grid.heights(basis) * (1 + 1e-9) + 1e-12
        if basis is None:
            pad = np.full(3, self.cutoff * (1 + 1e-9) + 1e-12)
        edges = grid.edges(lo, hi, n)
        total = int(np.prod(n))
        nonempty = [b for b in range(state["boxes_done"], total) if starts[b + 1] > starts[b]]
        for i, b in enumerate(nonempty):
            with self._timed("halo"):
                core = self._read(starts[b], starts[b + 1])
                box3 = np.array(np.unravel_index(b, tuple(n)))
                halo_frac, halo_owner = self._halo(b, box3, core, edges, pad, pbc, n, starts)
                coords = grid.coordinates(np.concatenate([core["frac"], halo_frac]), basis)
                owner = np.concatenate([core["index"], halo_owner])
            next_box = nonempty[i + 1] if i + 1 < len(nonempty) else total
            yield BoxJob(core, coords, owner, next_box, self.path, self.frame)

    def _read(self, a, b) -> np.ndarray:
        count = int(b - a)
        with open(self.scratch, "rb") as fh:
            fh.seek(int(a) * RECORD.itemsize)
            data = fh.read(count * RECORD.itemsize)
        if len(data) != count * RECORD.itemsize:
            raise InputError(
                "the scratch file of an interrupted run is cut; run again without resume",
                source=str(self.output),
            )
        return np.frombuffer(data, dtype=RECORD)

    def _halo(self, b, box3, core, edges, pad, pbc, n, starts):
        """Fractional coordinates and owners of every atom or image in box b's halo."""
        a_lo = np.array([edges[d][box3[d]] for d in range(3)]) - pad
        a_hi = np.array([edges[d][box3[d] + 1] for d in range(3)]) + pad
        # open directions: the first and last boxes reach to infinity
        for d in range(3):
            if not pbc[d]:
                if box3[d] == 0:
                    a_lo[d] = -np.inf
                if box3[d] == n[d] - 1:
                    a_hi[d] = np.inf
        by_box: dict[int, list] = {}
        for j, shift in grid.sources(box3, edges, pad, pbc, n):
            by_box.setdefault(j, []).append(np.array(shift, dtype=float))
        fracs, owners = [], []
        for j, shifts in by_box.items():
            if starts[j + 1] == starts[j]:
                continue
            rec = core if j == b else self._read(starts[j], starts[j + 1])
            for shift in shifts:
                if j == b and not shift.any():
                    continue  # the core itself
                f = rec["frac"] + shift
                keep = np.all((f >= a_lo) & (f <= a_hi), axis=1)
                if keep.any():
                    fracs.append(f[keep])
                    owners.append(rec["index"][keep])
        if not fracs:
            return np.empty((0, 3)), np.empty(0, dtype=np.int64)
        return np.concatenate(fracs), np.concatenate(owners)

    def _finish(self, state: dict) -> dict:
        moves = [(self.npy_partial, self.output)]
        if self.dump_partial is not None:
            assert self.dump is not None
            moves.append((self.dump_partial, self.dump))
        self.checkpoint.finish(state, moves, progress="finishing")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.scratch)
        return self._summary(state)

    def _summary(self, state: dict) -> dict:
        n_atoms = state["n_atoms"]
        return {
            "source": self.path,
            "frame": self.frame,
            "atoms": n_atoms,
            "novel": state["novel"],
            "novelty": state["novel"] / n_atoms,
            "max_dH": state["max_dH"] if state["max_dH"] > -math.inf else math.nan,
            "dh": self.dh,
            "dh_tol": self.dh_tol,
            "bandwidth": float(self.ref.h),
            "chunks": int(np.prod(state["grid"])),
            "grid": tuple(state["grid"]),
            "halo_atoms": state["halo_atoms"],
            "output": str(self.output),
            "dump": None if self.dump is None else str(self.dump),
            "timings": dict(self.timings),
        }

    def _read_back(self) -> dict:
        """The summary of a run that had finished, from its output (nothing computed)."""
        rows = np.load(self.output, mmap_mode="r")
        if rows.dtype != OUTPUT:
            raise InputError("--resume: not the output of a snapshot run", source=str(self.output))
        dh = np.asarray(rows["dH"])
        computed = dh[np.isfinite(dh)]
        novel = int(np.count_nonzero(rows["novel"]))
        state = {
            "n_atoms": len(rows),
            "novel": novel,
            "max_dH": float(computed.max()) if computed.size else -math.inf,
            "grid": [0, 0, 0],
            "halo_atoms": 0,
        }
        return self._summary(state)


@dataclass
class BoxJob:
    """One box to analyse: its atoms' records, positions with halo, and owners."""

    core: np.ndarray  # RECORD rows of the box's own atoms
    coords: np.ndarray  # (len(core) + halo, 3), Å, non-periodic
    owner: np.ndarray  # atom number in the frame of each row of coords
    next_box: int  # boxes done once this one is written
    source: str
    frame: int


def _local_boxes(analyser, jobs):
    """(job, dH, novel, timings) of each job, analysed here, one after another."""
    for job in jobs:
        timings: dict = {}
        dh, novel = run_box(
            analyser, job.coords, len(job.core), job.owner, job.source, job.frame, timings
        )
        yield job, dh, novel, timings
