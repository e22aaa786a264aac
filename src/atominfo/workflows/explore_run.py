"""`atominfo explore` as one function: biased MD from seed structures into a resumable file.

`explore_run` runs `atominfo.workflows.explore.ExploreWalk` from each seed
structure in turn and writes every snapshot to one extxyz file: the physical
("unbiased") forces, the bias forces and per-atom dH as arrays, the energies,
the largest dH, the step and the provenance (seed file and frame, the
reference's SHA-256, the options, the calculator) in ``info``. Snapshots join
the reference as they are taken, so later seeds are pushed past what earlier
ones found. The command line parses its options into these arguments and
prints the `ExploreRun` it returns, so a Python user gets the same bytes::

    from atominfo.workflows.explore import ExploreOptions
    from atominfo.workflows.explore_run import explore_run

    run = explore_run("seeds.xyz", "train.xyz", "explored.extxyz",
                      options=ExploreOptions(steps=200, target=0.5))

**Resume.** The snapshots are appended to a hidden partial file (the
descriptors they add to the reference to a second one), and every
``checkpoint_every`` MD steps, and after each seed, the
`atominfo.runs.checkpoint.Checkpoint` records the walk's state (step,
positions, momenta, the random generator's state) and the partial files'
sizes. ``resume=True`` cuts the partial files back to those sizes and
continues the walk from that state, taking again the snapshots taken after
it: a run killed at any instant resumes to the same bytes as an
uninterrupted one (`ExploreWalk`: the calculators are reset at each
checkpoint, so the forces after it depend on the positions alone). A resume
with other options, inputs or calculator is refused, and nothing is deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from atominfo import params
from atominfo.errors import InputError
from atominfo.results import Result
from atominfo.settings import Reading
from atominfo.workflows.explore import ExploreOptions, ExploreWalk

__all__ = ["OUTPUT_SUFFIXES", "ExploreRun", "explore_run", "resolve_calculator"]

OUTPUT_SUFFIXES = (".extxyz", ".xyz")


@dataclass
class ExploreRun(Result):
    """What `explore_run` wrote.

    Attributes
    ----------
    output : the extxyz file of the snapshots.
    snapshots : snapshots written.
    seeds : seed structures explored.
    steps : MD steps run in all.
    max_dH : the largest dH reached at any check, nats (None when the run had
        finished before and nothing was run).
    target : the novelty target, nats.
    reference_environments : environments of the reference (before the snapshots).
    seconds : wall time of this call, s.
    resumed, finished : the run continued an interrupted one; found it finished
        (nothing computed; the counts are read back from `output`).
    per_seed : one row per seed: seed_file, seed_frame, steps, snapshots, max_dH.
    """

    _fields_shown = ("snapshots", "seeds", "steps", "max_dH", "seconds")
    output: Path
    snapshots: int
    seeds: int
    steps: int
    max_dH: float | None
    target: float
    reference_environments: int
    seconds: float
    resumed: bool = False
    finished: bool = False
    per_seed: list = field(default_factory=list, repr=False)

    def to_pandas(self):
        """One row per seed, as a `pandas.DataFrame` (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(self.per_seed)


def explore_run(
    seeds,
    reference,
    output,
    *,
    calculator="emt",
    options: ExploreOptions | None = None,
    reading: Reading | None = None,
    resume: bool = False,
    checkpoint_every: int = 100,
    progress: Callable[[int], None] | None = None,
) -> ExploreRun:
    """Biased MD from every seed structure; the snapshots written to `output` (extxyz).

    Parameters
    ----------
    seeds : structure file path(s) (any format ASE reads), or ase.Atoms.
    reference : structure or saved-descriptor file path(s) (described with the
        bias's k and cutoff, at its bandwidth), an `atominfo.Reference` with one
        bandwidth (its bandwidth, k and cutoff are used), or a descriptor array
        (n, 2k-1) in 1/Å.
    output : path ending in .extxyz or .xyz.
    calculator : the physical force field: ``"emt"``, ``"module:name"`` (a
        calculator, or a class or function returning one, made once), or an
        ASE calculator. The run is reproducible (and resumable) when its
        results depend on the positions alone after ``reset()``.
    options : `ExploreOptions` (per seed: steps, snapshots at most, target, ...).
    reading : `Reading`: frames, format and type map of the seed files.
    resume : continue an interrupted run from its last checkpoint (module docstring).
    checkpoint_every : MD steps between checkpoints inside a walk (rounded up to a
        multiple of ``options.interval``; one after each seed too). Each costs one
        more force evaluation (the calculators are reset there) and a write of the
        walk's state; a resume redoes at most this many steps. Part of the run's
        settings: a resume must give the same.
    progress : called with the MD steps of each check.

    Returns
    -------
    ExploreRun

    Raises
    ------
    InputError
        Bad input or options, a refused output or resume (nothing deleted), or
        no snapshot reaching the target.
    """
    from atominfo.runs.guard import OutputGuard

    options = options or ExploreOptions()
    reading = reading or Reading()
    checkpoint_every = params.check("interval", checkpoint_every, label="checkpoint_every")
    output = Path(output)
    seed_files = _paths(seeds)
    ref_files = _paths(reference)
    calc, calc_name = resolve_calculator(calculator)
    started = time.perf_counter()
    with OutputGuard(
        inputs=[*seed_files, *ref_files],
        outputs=[(output, OUTPUT_SUFFIXES)],
        resume=resume,
        resumable=True,
    ):
        X, options = _reference(reference, options)
        frames = _read_seeds(seeds, reading, options)
        period = options.interval * -(-checkpoint_every // options.interval)
        run = _Run(frames, X, calc, calc_name, options, output, progress, period)
        signature = {
            "seeds": [str(Path(p).resolve()) for p in seed_files] or "<memory>",
            "seed_structures": _digest(frames),  # (structures in memory have no file to hash)
            **reading.to_dict(),
            "reference": run.reference_sha256,
            "calculator": calc_name,
            # one key per option, so that a refused --resume names the one that differs
            **_flat(dataclasses.asdict(options)),
            "checkpoint_every": period,
        }
        result = run.execute(signature, [*seed_files, *ref_files], resume)
    result.seconds = time.perf_counter() - started
    return result


def _flat(options: dict, prefix: str = "") -> dict:
    """Nested option dataclasses as one level of keys (`bias.weight`)."""
    flat: dict = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def resolve_calculator(spec) -> tuple:
    """(ASE calculator, its name for the provenance) from `explore_run`'s `calculator`."""
    if isinstance(spec, str):
        return _from_spec(spec), spec if spec.lower() != "emt" else "emt"
    _check_calculator(spec, repr(spec))
    kind = type(spec)
    return spec, f"{kind.__module__}.{kind.__qualname__}"


def _from_spec(spec: str):
    if spec.lower() == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    module, _, name = spec.partition(":")
    if not module or not name:
        raise InputError(
            f"calculator {spec!r}: give emt, or module:name (an ASE calculator, or a class "
            "or function returning one, e.g. ase.calculators.emt:EMT)"
        )
    import importlib

    try:
        made = getattr(importlib.import_module(module), name)
        if isinstance(made, type) or (callable(made) and not hasattr(made, "get_forces")):
            made = made()
    except Exception as exc:  # the user's code: whatever it raises is one line
        raise InputError(f"calculator {spec!r}: {type(exc).__name__}: {exc}") from None
    _check_calculator(made, repr(spec))
    return made


def _check_calculator(calc, name: str) -> None:
    if not all(hasattr(calc, a) for a in ("get_forces", "get_potential_energy", "reset")):
        raise InputError(f"calculator {name}: {type(calc).__name__} is not an ASE calculator")


class _Run:
    """One exploration inside its guard: partial files, checkpoint, the walks."""

    def __init__(self, frames, X, calc, calc_name, options, output, progress, period):
        from atominfo.runs.files import hidden_path

        self.frames, self.X, self.calc, self.calc_name = frames, X, calc, calc_name
        self.options, self.output, self.progress = options, output, progress
        self.period = period  # MD steps between checkpoints inside a walk
        self.reference_sha256 = hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()
        self.part = hidden_path(output, "partial")  # the snapshots, extxyz
        self.rows = hidden_path(output, "frames.partial")  # their descriptors, float64
        self.n_reference = len(X)
        self.fds: dict[Path, int] = {}

    def execute(self, signature: dict, inputs: list, resume: bool) -> ExploreRun:
        from atominfo.runs.checkpoint import Checkpoint

        self.checkpoint = Checkpoint([self.output], signature, inputs)
        begun = self.checkpoint.begin(resume)
        if begun.finished:
            return self._read_back()
        if begun.finishing is not None:  # killed while renaming: complete the renames
            self.checkpoint.complete(begun.finishing)
            _unlink(self.rows)
            return self._result(begun.state or {}, resumed=True)
        state = begun.state or {"seed": 0, "walk": None, "per_seed": [], "sizes": None}
        if self.progress is not None and begun.state is not None:  # the steps done before
            self.progress(sum(r["steps"] for r in state["per_seed"]))
        try:
            self._open(state["sizes"])
            if state["sizes"] is None:
                self._save(state)
            self._explore(state)
        finally:
            for fd in self.fds.values():
                os.close(fd)
            self.fds = {}
        if not sum(s["snapshots"] for s in state["per_seed"]):
            raise InputError(self._none_reached(state))
        self.checkpoint.finish(state, [(self.part, self.output)], progress="finishing")
        _unlink(self.rows)
        return self._result(state, resumed=begun.state is not None)

    def _explore(self, state: dict) -> None:
        o = self.options
        for i in range(state["seed"], len(self.frames)):
            atoms, source, number = self.frames[i]
            if state["walk"] is None:
                state["per_seed"].append(_seed_row(source, number))
            row = state["per_seed"][-1]
            walk = ExploreWalk(atoms, self.calc, self.X, o, state=state["walk"])
            while not walk.done:
                before = walk.step
                # a checkpoint inside the walk: every `period` steps (a function of the
                # step alone, so a resumed run resets and saves where this one does)
                after = min(before + o.interval, o.steps)
                boundary = after % self.period == 0 and after < o.steps
                snapshot = walk.advance(reset=boundary)
                if snapshot is not None:
                    self._write(snapshot, walk, i, sum(s["snapshots"] for s in state["per_seed"]))
                    row["snapshots"] += 1
                found = walk.last_max_dH
                row["max_dH"] = found if row["max_dH"] is None else max(row["max_dH"], found)
                row["steps"] = walk.step
                if boundary and not walk.done:
                    state["walk"] = walk.state()
                    self._save(state)
                if self.progress is not None:
                    self.progress(walk.step - before)
            state["seed"], state["walk"] = i + 1, None
            self._save(state)

    def _write(self, snapshot: Atoms, walk: ExploreWalk, seed: int, index: int) -> None:
        """Append the snapshot (with its provenance) and its reference rows."""
        from atominfo.runs.stream import extxyz_frame

        _, source, number = self.frames[seed]
        o, b = self.options, self.options.bias
        snapshot.info.update(
            {
                "snapshot": index,
                "seed_file": source,
                "seed_frame": number,
                "reference_sha256": self.reference_sha256,
                "calculator": self.calc_name,
                "temperature": float(o.temperature),
                "timestep_fs": float(o.timestep_fs),
                "friction": float(o.friction),
                "interval": o.interval,
                "target": float(o.target),
                "seed": o.seed,
                "weight": float(b.weight),
                "objective": b.objective,
                "max_bias_force": float(b.max_bias_force),
                "bandwidth": float(b.h),
                "k": b.k,
                "cutoff": float(b.cutoff),
            }
        )
        new = walk.biased.reference[len(self.X) :]
        self._append(self.part, extxyz_frame(snapshot, {}))
        self._append(self.rows, np.ascontiguousarray(new, dtype="<f8").tobytes())
        self.X = walk.biased.reference

    # -- partial files and checkpoint -------------------------------------------
    def _open(self, sizes: dict | None) -> None:
        from atominfo.runs.files import write_error

        for p in (self.part, self.rows):
            if sizes is not None and (not p.exists() or os.path.getsize(p) < sizes[str(p)]):
                raise InputError(
                    "--resume: the partial output of the interrupted run is missing or "
                    "shorter than its checkpoint; run with --restart to start again",
                    source=str(self.output),
                )
            flags = os.O_RDWR | os.O_CREAT | (0 if sizes is not None else os.O_TRUNC)
            try:
                fd = os.open(p, flags, 0o666)
                if sizes is not None:  # drop what was written after the checkpoint
                    os.ftruncate(fd, sizes[str(p)])
                    os.lseek(fd, 0, os.SEEK_END)
            except OSError as exc:
                raise write_error(exc, self.output) from None
            self.fds[p] = fd
        if sizes is not None:  # the snapshots taken so far join the reference
            width = self.X.shape[1]
            added = np.fromfile(self.rows, dtype="<f8").reshape(-1, width)
            self.X = np.concatenate([self.X, added])

    def _append(self, path: Path, data: bytes) -> None:
        from atominfo.runs.files import write_error

        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fds[path], view) :]
        except OSError as exc:
            raise write_error(exc, self.output) from None

    def _save(self, state: dict) -> None:
        state["sizes"] = {str(p): os.fstat(fd).st_size for p, fd in self.fds.items()}
        seeds = len(self.frames)
        done = sum(s["snapshots"] for s in state["per_seed"])
        where = min(state["seed"] + 1, seeds)
        step = state["walk"]["step"] if state["walk"] else 0
        note = f"seed {where} of {seeds}, step {step}, {done} snapshots"
        self.checkpoint.save(state, progress=note)

    # -- results ----------------------------------------------------------------
    def _result(self, state: dict, resumed: bool) -> ExploreRun:
        rows = state.get("per_seed", [])
        reached = [r["max_dH"] for r in rows if r["max_dH"] is not None]
        return ExploreRun(
            output=self.output,
            snapshots=sum(r["snapshots"] for r in rows),
            seeds=len(rows),
            steps=sum(r["steps"] for r in rows),
            max_dH=max(reached) if reached else None,
            target=self.options.target,
            reference_environments=self.n_reference,
            seconds=0.0,
            resumed=resumed,
            per_seed=rows,
        )

    def _read_back(self) -> ExploreRun:
        """A finished run's counts, from its output (nothing computed)."""
        import ase.io

        snapshots = ase.io.read(self.output, ":", format="extxyz")
        rows: dict[tuple, dict] = {}
        for s in snapshots:
            key = (s.info.get("seed_file"), s.info.get("seed_frame"))
            row = rows.setdefault(key, {**_seed_row(*key), "steps": None})
            row["snapshots"] += 1
            row["max_dH"] = max(row["max_dH"] or -np.inf, float(s.info["max_dH"]))
        result = self._result({"per_seed": []}, resumed=True)
        result.snapshots, result.finished = len(snapshots), True
        result.per_seed = list(rows.values())
        result.seeds, result.max_dH = len(self.frames), None
        return result

    def _none_reached(self, state: dict) -> str:
        reached = [r["max_dH"] for r in state["per_seed"] if r["max_dH"] is not None]
        best = f" (largest dH reached: {max(reached):.4g} nats)" if reached else ""
        return (
            f"no snapshot reached the target of {self.options.target:g} nats in "
            f"{self.options.steps} steps from each of {len(self.frames)} seed(s){best}: "
            "raise --steps or --weight, or lower --target-dH"
        )


def _seed_row(source, number) -> dict:
    return {"seed_file": source, "seed_frame": number, "steps": 0, "snapshots": 0, "max_dH": None}


def _paths(value) -> list[str]:
    """File names in `value` (a path or a list of paths); [] for anything else."""
    if isinstance(value, (str, os.PathLike)):
        return [str(value)]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
        return [str(v) for v in value]
    return []


def _reference(reference, options: ExploreOptions):
    """(descriptor matrix, options with the bias's h, k, cutoff those of the reference)."""
    from atominfo.information import as_descriptor_matrix
    from atominfo.reference import Reference

    bias = options.bias
    if _paths(reference):
        reference = Reference.from_files(_paths(reference), bias.h, k=bias.k, cutoff=bias.cutoff)
    if isinstance(reference, Reference):
        h = reference.h
        if not isinstance(h, float):
            raise InputError("explore needs a reference with one bandwidth")
        k = reference.k if reference.k is not None else bias.k
        cutoff = reference.cutoff if reference.cutoff is not None else bias.cutoff
        bias = dataclasses.replace(bias, h=h, k=k, cutoff=cutoff)
        reference = reference.X
    X = as_descriptor_matrix(reference, "reference", copy=True)
    if X.shape[1] != 2 * bias.k - 1:
        raise InputError(
            f"reference of {X.shape[1]} descriptor columns; k={bias.k} needs {2 * bias.k - 1}"
        )
    return X, dataclasses.replace(options, bias=bias)


def _read_seeds(seeds, reading: Reading, options: ExploreOptions) -> list[tuple[Atoms, str, int]]:
    """The seed frames, each checked (and described once) here, where its file and
    frame are known for the error message."""
    from atominfo.descriptor.kernel import structure_descriptors
    from atominfo.structures.frames import iter_frames

    frames = [(f.atoms, f.source, int(f.index)) for f in iter_frames(seeds, **reading.kwargs())]
    if not frames:
        raise InputError("no seed structures")
    b = options.bias
    for atoms, source, number in frames:
        structure_descriptors(atoms, b.k, b.cutoff, source=source, frame=number)
    return frames


def _digest(frames) -> str:
    """SHA-256 of the seed structures' species, cells and positions."""
    digest = hashlib.sha256()
    for atoms, _, _ in frames:
        for array in (atoms.numbers, atoms.cell.array, atoms.positions, atoms.pbc):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
