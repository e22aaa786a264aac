"""A resumable dH run as `atominfo dh` makes it, on small synthetic frames.

Light on imports (no descriptor code), so a subprocess running it starts fast
enough to be killed at random instants in a test.
"""

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from atominfo.runs.guard import OutputGuard
from atominfo.runs.stream import DHStreamWriter


@dataclass
class Frame:
    """What `DHStreamWriter.add` reads of a `workflows.trajectory.FrameDH`."""

    number: int
    source: str
    source_frame: int
    atoms: Atoms
    dH: np.ndarray
    timestep: int | None = None
    time: float | None = None

    def summary(self) -> dict:
        rows = np.atleast_2d(self.dH)
        stats = {
            "novelty": (rows > 0).mean(axis=1).tolist(),
            "max_dH": rows.max(axis=1).tolist(),
            "mean_dH": rows.mean(axis=1).tolist(),
        }
        return {"atoms": rows.shape[1], **stats}


def fake_frames(n_frames=4, n_atoms=3):
    """Frames with a timestep, calculator energy and forces, and random dH (nats)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_frames):
        atoms = Atoms(
            f"Cu{n_atoms}", positions=rng.uniform(0, 5, (n_atoms, 3)), cell=[5, 5, 5], pbc=True
        )
        atoms.info["timestep"] = 100 * i
        atoms.calc = SinglePointCalculator(
            atoms, energy=-float(i), forces=rng.normal(size=(n_atoms, 3))
        )
        frames.append(Frame(i, "traj.extxyz", i, atoms, rng.normal(size=n_atoms), 100 * i))
    return frames


def paths(directory, layout):
    """(per-atom output, table) in `directory` for suffixes `layout` (None: not written)."""
    out, table = layout
    return (
        directory / f"dh{out}" if out else None,
        directory / f"frames{table}" if table else None,
    )


def run_to_end(directory, layout, frames, inp, h=0.015):
    """What a user does after a kill: run with --resume (which starts from the
    beginning when the kill came before the first checkpoint, and does nothing
    when the run had finished)."""
    import warnings

    out, table = paths(directory, layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_once(out, table, frames, inp, h, resume=True)


def run_once(out, table, frames, inp, h, resume):
    outputs = [(p, None) for p in (out, table) if p is not None]
    with OutputGuard(inputs=[inp], outputs=outputs, resume=resume, resumable=True):
        writer = DHStreamWriter(out, table, h, {"k": 32}, resume=resume, inputs=[inp])
        if writer.finished:
            return
        try:
            for frame in frames[writer.frames_done :]:
                writer.add(frame)
        finally:
            writer.close()
        writer.read_table()
        writer.finish()


def output_bytes(directory, layout) -> dict:
    return {p.name: p.read_bytes() for p in paths(directory, layout) if p is not None}
