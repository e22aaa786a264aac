"""A resumable dH run as `atominfo dh` makes it, on small synthetic frames.

Light on imports (no descriptor code), so a subprocess running it starts fast
enough to be killed at random instants in a test.
"""

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from atominfo.errors import InputError
from atominfo.outputs.guard import OutputGuard
from atominfo.outputs.stream import DHStreamWriter


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
    """What a user does after a kill: run with --resume; if there is nothing to
    resume and the outputs are not all there, run afresh."""
    out, table = paths(directory, layout)
    try:
        run_once(out, table, frames, inp, h, resume=True)
    except InputError as exc:
        if "no interrupted run" not in str(exc):
            raise
        if not all(p is None or p.exists() for p in (out, table)):
            run_once(out, table, frames, inp, h, resume=False)


def run_once(out, table, frames, inp, h, resume):
    outputs = [(p, None) for p in (out, table) if p is not None]
    with OutputGuard(inputs=[inp], outputs=outputs, resume=resume):
        writer = DHStreamWriter(out, table, h, {"k": 32}, resume=resume, inputs=[inp])
        try:
            for frame in frames[writer.frames_done :]:
                writer.add(frame)
        except InputError:
            writer.abort()
            raise
        except BaseException:
            writer.close()
            raise
        writer.read_table()
        writer.finish()


def output_bytes(directory, layout) -> dict:
    return {p.name: p.read_bytes() for p in paths(directory, layout) if p is not None}
