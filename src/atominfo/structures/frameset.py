"""Structures of a dataset with their descriptors, kept per frame and groupable by label.

The dataset workflows (learning curves, overlap matrices, compression,
active-learning generations) work on whole structures: they need to know
which descriptor rows belong to which frame, and which frames share a label
(a file, or the value of an extxyz ``info`` key such as ``config_type``).

In Jupyter a FrameSet shows one line (its repr) or a table per input file
(its HTML); `FrameSet.to_pandas` gives a table per frame or per environment.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from atominfo.errors import InputError

# Input files named by repr and by the HTML table before the rest are counted
REPR_FILES = 3
HTML_FILES = 20
TABLES = ("frame", "environment")


@dataclass(repr=False)
class FrameSet:
    """Descriptors of a set of structures, with the frame and atom each row belongs to.

    The one model of "which row came from which frame": returned by
    `load_frames` (structures kept) and by ``descriptors(..., return_index=True)``
    (structures not kept). ``len(frameset)`` is the number of frames;
    ``frameset.n_rows`` the number of descriptor rows.

    Attributes
    ----------
    X : ndarray, shape (n_environments, 2k-1), float64, 1/Å
        Descriptors of all atoms of all frames, frame after frame.
    offsets : ndarray of int, shape (n_frames + 1,)
        Rows ``offsets[f]:offsets[f+1]`` of `X` are the atoms of frame `f`.
    sources : list of str, one per frame
        File each frame was read from (``"<memory>"`` for Atoms objects).
    source_frames : list of int, one per frame
        Frame number within its file.
    atoms : list of ase.Atoms, one per frame
        The structures as read (not rescaled), for writing selections unchanged.
    """

    X: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    sources: list[str]
    source_frames: list[int]
    atoms: list[Atoms] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    # -- display ---------------------------------------------------------------
    def files(self) -> list[tuple[str, int, int]]:
        """(file, frames, atoms) of each input, in input order.

        Consecutive frames of one file make one input; a file given twice
        (not one after the other) is two.
        """
        out: list[tuple[str, int, int]] = []
        for source, size in zip(self.sources, self.sizes.tolist()):
            if out and out[-1][0] == source:
                out[-1] = (source, out[-1][1] + 1, out[-1][2] + size)
            else:
                out.append((source, 1, size))
        return out

    def _summary(self) -> str:
        width = self.X.shape[1] if np.ndim(self.X) == 2 else 0
        return f"{_count(len(self), 'frame')}, {self.n_rows} atoms, width {width}"

    def __repr__(self) -> str:
        files = self.files()
        named = [f"{name} ({_count(frames, 'frame')})" for name, frames, _ in files[:REPR_FILES]]
        if len(files) > REPR_FILES:
            named.append(f"and {_count(len(files) - REPR_FILES, 'more file')}")
        return f"FrameSet({self._summary()}: {', '.join(named)})"

    def _repr_html_(self) -> str:
        files = self.files()
        rows = [(name, str(frames), str(atoms)) for name, frames, atoms in files[:HTML_FILES]]
        if len(files) > HTML_FILES:
            rest = files[HTML_FILES:]
            rows.append(
                (
                    f"... {_count(len(rest), 'more file')}",
                    str(sum(f for _, f, _ in rest)),
                    str(sum(a for _, _, a in rest)),
                )
            )
        left, right = "style='text-align:left'", "style='text-align:right'"
        body = "".join(
            f"<tr><td {left}>{html.escape(name)}</td><td {right}>{frames}</td>"
            f"<td {right}>{atoms}</td></tr>"
            for name, frames, atoms in rows
        )
        head = f"<tr><th {left}>file</th><th {right}>frames</th><th {right}>atoms</th></tr>"
        caption = f"<caption>FrameSet: {html.escape(self._summary())}</caption>"
        return f"<table>{caption}{head}{body}</table>"

    def table(self, per: str = "frame") -> dict[str, np.ndarray]:
        """The columns of `to_pandas` as arrays (no pandas needed).

        ``per="frame"``: one row per frame (over all inputs, in order): ``file``,
        ``file_frame`` (frame number within its file), ``atoms``, ``first_row``
        (its first row of `X`), and ``formula`` where the structures are kept.
        ``per="environment"``: one row per row of `X`: ``frame``, ``file``,
        ``file_frame``, ``atom`` (number within its frame).
        """
        if per not in TABLES:
            raise InputError(f"per must be 'frame' or 'environment', got {per!r}")
        sources = np.asarray(self.sources, dtype=object)
        source_frames = np.asarray(self.source_frames, dtype=np.int64)
        if per == "environment":
            frame = self.frame
            return {
                "frame": frame,
                "file": sources[frame],
                "file_frame": source_frames[frame],
                "atom": self.atom,
            }
        columns = {
            "file": sources,
            "file_frame": source_frames,
            "atoms": self.sizes,
            "first_row": np.asarray(self.offsets[:-1], dtype=np.int64),
        }
        if self.atoms:
            columns["formula"] = np.array([a.get_chemical_formula() for a in self.atoms], object)
        return columns

    def to_pandas(self, per: str = "frame"):
        """A `pandas.DataFrame` of the frames (default: one row per frame, indexed by
        frame number) or of the environments (``per="environment"``: one row per
        descriptor row, indexed by row number); the columns of `table`.

        The descriptors themselves stay in `X` (rows in the same order as the
        environment table). Needs pandas (an InputError says so without it).
        """
        columns = self.table(per)
        try:
            import pandas as pd
        except ImportError:
            raise InputError("FrameSet.to_pandas needs pandas: pip install pandas") from None
        table = pd.DataFrame(columns)
        table.index.name = "frame" if per == "frame" else "row"
        return table

    @property
    def sizes(self) -> np.ndarray:
        """Atoms per frame, shape (n_frames,)."""
        return np.diff(self.offsets)

    @property
    def n_rows(self) -> int:
        """Number of descriptor rows (environments)."""
        return int(self.offsets[-1])

    @property
    def frame(self) -> np.ndarray:
        """Frame number (0..n_frames-1, over all inputs) of each row, shape (n_rows,)."""
        return np.repeat(np.arange(len(self)), self.sizes)

    frame_of_row = frame

    @property
    def atom(self) -> np.ndarray:
        """Atom number within its frame of each row, shape (n_rows,)."""
        return np.arange(self.n_rows) - np.repeat(self.offsets[:-1], self.sizes)

    def locate(self, row: int) -> tuple[str, int, int]:
        """(file, frame number within that file, atom) of descriptor row `row`."""
        row = int(row)
        if not -self.n_rows <= row < self.n_rows:
            raise InputError(f"row {row} does not exist ({self.n_rows} rows)")
        row %= self.n_rows
        f = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return self.sources[f], int(self.source_frames[f]), row - int(self.offsets[f])

    def rows(self, frames) -> np.ndarray:
        """Descriptor row numbers of the given frames (in the given order)."""
        frames = np.asarray(frames, dtype=np.int64).ravel()
        if frames.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.offsets[f], self.offsets[f + 1]) for f in frames])

    def environments(self, frames) -> np.ndarray:
        """Descriptors of the atoms of the given frames, shape (sum of their sizes, 2k-1)."""
        return self.X[self.rows(frames)]

    def where(self, frame: int) -> str:
        return f"{self.sources[frame]}: frame {self.source_frames[frame]}"

    def labels(self, key: str) -> list:
        """The value of ``atoms.info[key]`` for every frame.

        Raises InputError naming the first frame (file and frame number) that lacks the key.
        """
        if not self.atoms:
            raise InputError("this FrameSet holds no structures to read labels from")
        values = []
        for f, atoms in enumerate(self.atoms):
            if key not in atoms.info:
                raise InputError(
                    f"info key {key!r} is missing (needed by --group-by)",
                    source=self.sources[f],
                    frame=self.source_frames[f],
                )
            value = atoms.info[key]
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, np.ndarray):
                raise InputError(
                    f"info key {key!r} holds an array, not a label",
                    source=self.sources[f],
                    frame=self.source_frames[f],
                )
            values.append(value)
        return values

    def groups(self, key: str | None = None, *, sort: bool = False) -> dict[str, np.ndarray]:
        """Frame numbers per label: of the ``info[key]`` values, or of the files when key is None.

        Labels keep their order of first appearance; with `sort`, numeric labels
        are sorted as numbers and the others as text (e.g. generations 1, 2, 10).
        """
        labels = list(self.sources) if key is None else self.labels(key)
        order: dict = {}
        for f, label in enumerate(labels):
            order.setdefault(label, []).append(f)
        names = list(order)
        if sort:
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in names)
            names = sorted(names) if numeric else sorted(names, key=str)
        return {str(name): np.asarray(order[name], dtype=np.int64) for name in names}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def from_descriptors(blocks: Sequence[np.ndarray]) -> FrameSet:
    """A FrameSet from per-structure descriptor matrices (no Atoms kept)."""
    if len(blocks) == 0:
        raise InputError("no structures given")
    blocks = [np.atleast_2d(np.asarray(b, dtype=np.float64)) for b in blocks]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
    if np.any(np.diff(offsets) == 0):
        raise InputError(f"structure {int(np.argmax(np.diff(offsets) == 0))} has no environments")
    n = len(blocks)
    return FrameSet(np.concatenate(blocks, axis=0), offsets, ["<memory>"] * n, list(range(n)))
