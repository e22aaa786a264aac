"""Resumable per-frame outputs of a streamed dH run.

Every output is written to a hidden partial file beside its final path
(``.<name>.partial``), one frame at a time, and after each frame the run's
`atominfo.runs.checkpoint.Checkpoint` records how many frames are complete,
the running totals, and the byte size of every partial file at that point.
After an interruption, ``resume=True`` cuts each partial file back to its
checkpointed size (dropping a half-written frame) and continues from the
next frame. The checkpoint refuses a resume with other options or inputs.

`finish` commits in two phases: it first writes every output complete under
a hidden name (``.<name>.final``, or the partial file itself where no
conversion is needed), then the checkpoint records the renames still to do,
renames, and removes itself last. A run killed at any instant therefore
resumes to the same bytes as an uninterrupted run.

Files are written with unbuffered system calls: what a killed process had
written is exactly what is on disk (no user-space buffer lost or flushed
late).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from atominfo.errors import InputError
from atominfo.reference.conformal import flag
from atominfo.runs.checkpoint import Checkpoint
from atominfo.runs.files import checkpoint_path, hidden_path, write_error

PER_ATOM_SUFFIXES = (".npy", ".json", ".extxyz", ".xyz")
TABLE_SUFFIXES = (".csv", ".json")
_INT_COLUMNS = ("frame", "source_frame", "atoms")


def partial_path(path: Path) -> Path:
    """Hidden partial file of output `path`: ``.<name>.partial``."""
    return hidden_path(path, "partial")


def state_path(path: Path) -> Path:
    """Hidden checkpoint of output `path`: ``.<name>.resume.json``."""
    return checkpoint_path(path)


def final_path(path: Path) -> Path:
    """Hidden complete output waiting to be renamed: ``.<name>.final``."""
    return hidden_path(path, "final")


def bandwidth_labels(h) -> list[str]:
    """Column suffixes: '' for one bandwidth, '_h<h>' for each of several."""
    return [""] if np.ndim(h) == 0 else [f"_h{v:g}" for v in h]


def finite_or_none(value):
    """`value` as a float, or None when it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


class Totals:
    """Running totals over frames: atoms, atoms with dH > 0, max and sum of dH per bandwidth;
    with `false_alarm`, also atoms flagged novel at that rate (conformal p <= rate)."""

    def __init__(self, h, state: dict | None = None, false_alarm: float | None = None):
        self.h, self.false_alarm = h, false_alarm
        n_h = 1 if np.ndim(h) == 0 else len(h)
        self.state = state or {
            "atoms": 0,
            "novel": [0] * n_h,
            "max_dH": [-np.inf] * n_h,
            "sum_dH": [0.0] * n_h,
            **({"flagged": [0] * n_h} if false_alarm is not None else {}),
        }

    def add(self, dH, p=None) -> None:
        rows = np.atleast_2d(dH)
        tot = self.state
        tot["atoms"] += rows.shape[1]
        for t in range(rows.shape[0]):
            tot["novel"][t] += int((rows[t] > 0).sum())
            tot["max_dH"][t] = max(tot["max_dH"][t], float(rows[t].max()))
            tot["sum_dH"][t] += float(rows[t].sum())
        if self.false_alarm is not None:
            for t, row in enumerate(np.atleast_2d(p)):
                tot["flagged"][t] += int(flag(row, self.false_alarm).sum())

    def summary(self, frames: int) -> dict:
        """frames, environments, novelty (fraction with dH > 0), max_dH and mean_dH (nats).

        The statistics are None without any environment (never a made-up 0 or
        -inf), and None wherever a value is not finite, so the dict is valid JSON.
        """
        tot = self.state
        n = tot["atoms"]
        stats: dict[str, Any] = {
            "novelty": [c / n if n else None for c in tot["novel"]],
            "max_dH": [finite_or_none(v) if n else None for v in tot["max_dH"]],
            "mean_dH": [finite_or_none(s / n) if n else None for s in tot["sum_dH"]],
        }
        if "flagged" in tot:  # fraction novel at the stated false-alarm rate
            stats["flagged"] = [c / n if n else None for c in tot["flagged"]]
        if np.ndim(self.h) == 0:
            stats = {key: values[0] for key, values in stats.items()}
        return {"frames": frames, "environments": n, **stats}

    def to_json(self) -> dict:
        state = dict(self.state)
        state["max_dH"] = [finite_or_none(v) for v in state["max_dH"]]
        return state

    @classmethod
    def from_json(cls, h, state: dict, false_alarm: float | None = None) -> Totals:
        state = dict(state)
        state["max_dH"] = [-np.inf if v is None else v for v in state["max_dH"]]
        return cls(h, state, false_alarm)


def extxyz_frame(atoms, arrays: dict) -> bytes:
    """One extxyz frame of `atoms` with extra per-atom `arrays`, keeping everything.

    Every ``info`` entry, every per-atom array and every calculator result
    (energy, forces, stress, ... as read by ASE into a SinglePointCalculator)
    is written, so the frame reads back with the same data plus `arrays`.
    A calculator result takes the place of an ``info``/array entry of the same name.
    """
    import ase.io
    from ase.io.extxyz import per_atom_properties, per_config_properties

    out = atoms.copy()  # copies info and arrays, but not the calculator
    results = getattr(atoms.calc, "results", None) or {}
    for name, value in results.items():
        if name in per_atom_properties and np.shape(value)[:1] == (len(atoms),):
            out.arrays[name] = np.array(value)
        elif name in per_config_properties:
            out.info[name] = value
    for name, values in arrays.items():
        out.set_array(name, np.asarray(values))
    text = io.StringIO()
    ase.io.write(text, out, format="extxyz")
    return text.getvalue().encode()


class DHStreamWriter:
    """Writes per-atom dH (.extxyz/.npy/.json) and the per-frame table (.csv/.json).

    Parameters
    ----------
    output : Path or None
        Per-atom output. In .extxyz the input frames are written whole (info,
        arrays, calculator results) with a per-atom 'dH' array added
        ('dH_h<h>' per bandwidth for several).
    table : Path or None
        Per-frame table: frame, source, source_frame, timestep, time, atoms,
        novelty, max_dH, mean_dH (per bandwidth). timestep and time are empty
        (CSV) or null (JSON) where the input does not give them.
    h : float or list of float
        Bandwidth(s), 1/Å, for column names.
    signature : dict
        JSON-able description of the run (inputs and options); a resumed run
        must have the same.
    resume : bool
        Continue from the checkpoint of an interrupted run.
    inputs : paths
        Input files whose contents are fingerprinted
        (`atominfo.runs.checkpoint.fingerprint`); a resumed run refuses when
        any of them changed.
    false_alarm : float or None
        With a rate, frames carry conformal p-values (`FrameDH.p`): the per-atom
        output gains a 'p' array ('p_h<h>' per bandwidth; .extxyz or .json, a
        .npy holds one array and is refused) and the table a column 'flagged'
        (fraction with p <= false_alarm) after each bandwidth's mean_dH.
    columns : names
        Further per-frame columns, taken from each frame's ``summary()`` row
        (the per-species columns of ``atominfo dh --species``), after the others.

    Raises
    ------
    InputError
        Nothing to write, an unsupported suffix, a missing output directory;
        with `resume`: other options or outputs, changed inputs, or partial
        files that do not match the checkpoint (`ResumeRefused`: nothing is
        deleted). With `resume` and no checkpoint, `finished` tells whether
        the run had finished (see `Checkpoint.begin`).
    """

    def __init__(
        self,
        output: Path | None,
        table: Path | None,
        h,
        signature: dict,
        resume: bool = False,
        *,
        inputs=(),
        false_alarm: float | None = None,
        columns=(),
    ):
        output = Path(output) if output is not None else None
        table = Path(table) if table is not None else None
        if output is None and table is None:
            raise InputError("nothing to write: give an output (-o) or a table (--table)")
        if output is not None and output.suffix not in PER_ATOM_SUFFIXES:
            raise InputError("output must end in .npy, .json or .extxyz", source=str(output))
        if table is not None and table.suffix not in TABLE_SUFFIXES:
            raise InputError("table must end in .csv or .json", source=str(table))
        if false_alarm is not None and output is not None and output.suffix == ".npy":
            raise InputError(
                "a .npy output holds dH alone: with a false-alarm rate write .extxyz or "
                ".json, which carry the per-atom p-values beside dH",
                source=str(output),
            )
        for p in (output, table):
            if p is not None and not (p.parent if str(p.parent) else Path(".")).is_dir():
                raise InputError("output directory does not exist", source=str(p))
        if (
            output is not None
            and table is not None
            and os.path.realpath(output) == os.path.realpath(table)
        ):
            raise InputError(
                "the per-atom output and the table are the same file", source=str(table)
            )
        self.output, self.table, self.h = output, table, h
        self.n_h = 1 if np.ndim(h) == 0 else len(h)
        self.labels = bandwidth_labels(h)
        self.names = ["dH"] if np.ndim(h) == 0 else [f"dH_h{v:g}" for v in h]
        self.false_alarm = false_alarm
        self.columns = list(columns)
        if false_alarm is not None:
            self.names += [f"p{label}" for label in self.labels]
        anchor = output if output is not None else table
        assert anchor is not None  # both None is refused above
        self.anchor = anchor
        # The table partial always exists: it is the frame index of the per-atom data.
        self.table_part = (
            partial_path(table) if table is not None else hidden_path(anchor, "frames.partial")
        )
        self.atom_part = partial_path(output) if output is not None else None
        self.frames_done = 0
        self.totals = Totals(h, false_alarm=false_alarm)
        self._fds: dict[Path, int] = {}
        self._finishing: list | None = None  # renames left to do, once finish() began
        self.checkpoint = Checkpoint(
            [anchor, *(p for p in (output, table) if p is not None and p != anchor)],
            signature,
            inputs,
        )
        begun = self.checkpoint.begin(resume)
        # Every output exists and no checkpoint remains: the run had finished.
        self.finished = begun.finished
        if begun.finished:
            return
        if begun.state is None:
            self._open(None)
            return
        self.frames_done = int(begun.state["frames_done"])
        self.totals = Totals.from_json(self.h, begun.state["totals"], false_alarm)
        self._finishing = begun.finishing
        if self._finishing is None:
            self._open(begun.state["sizes"])

    # -- checkpoint -------------------------------------------------------
    def _write_state(self):
        state = {
            "frames_done": self.frames_done,
            "totals": self.totals.to_json(),
            "sizes": {str(p): os.fstat(fd).st_size for p, fd in self._fds.items()},
        }
        self.checkpoint.save(state, progress=f"{self.frames_done} frames done")

    # -- low-level writes ------------------------------------------------------
    def _owner(self, path: Path) -> Path:
        """The output a (hidden) file belongs to, for messages."""
        for out in (self.output, self.table):
            if out is not None and (path == out or path.name.startswith(f".{out.name}.")):
                return out
        return path

    def _write_all(self, fd: int, data: bytes, path: Path) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise write_error(exc, self._owner(path)) from None

    def _write_file(self, path: Path, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise write_error(exc, self._owner(path)) from None
        try:
            self._write_all(fd, data, path)
        finally:
            os.close(fd)

    def _replace(self, src: Path, dst: Path) -> None:
        try:
            os.replace(src, dst)
        except OSError as exc:
            raise write_error(exc, self._owner(dst)) from None

    # -- partial files ------------------------------------------------------
    def _parts(self):
        return [p for p in (self.table_part, self.atom_part) if p is not None]

    def _open(self, sizes):
        for p in self._parts():
            if sizes is not None:
                size = sizes.get(str(p))
                if size is None or not p.exists() or os.path.getsize(p) < size:
                    raise InputError(
                        "--resume: the partial output of the interrupted run is missing or "
                        "shorter than its checkpoint; run with --restart to start again",
                        source=str(self._owner(p)),
                    )
            try:
                flags = os.O_WRONLY | os.O_CREAT | (0 if sizes is not None else os.O_TRUNC)
                fd = os.open(p, flags, 0o666)
            except OSError as exc:
                raise write_error(exc, self._owner(p)) from None
            self._fds[p] = fd
            if sizes is not None:
                os.ftruncate(fd, sizes[str(p)])  # drop a frame written after the checkpoint
                os.lseek(fd, 0, os.SEEK_END)
        if sizes is None:
            header = ["frame", "source", "source_frame", "timestep", "time", "atoms"]
            for label in self.labels:
                header += [f"novelty{label}", f"max_dH{label}", f"mean_dH{label}"]
                header += [f"flagged{label}"] if self.false_alarm is not None else []
            header += self.columns
            self._write_all(self._fds[self.table_part], _csv_row(header), self.table_part)
            self._write_state()

    def _close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    # -- per frame ----------------------------------------------------------
    def add(self, frame) -> dict:
        """Append one `trajectory.FrameDH`; returns its table row."""
        if self._finishing is not None or not self._fds:
            raise InputError("this run is already finished; nothing more can be added")
        rows = np.atleast_2d(frame.dH)
        rate = self.false_alarm
        p = None if rate is None else np.atleast_2d(frame.p)
        row = frame.summary()
        timestep, time = getattr(frame, "timestep", None), getattr(frame, "time", None)
        values = [
            frame.number,
            frame.source,
            frame.source_frame,
            "" if timestep is None else int(timestep),
            "" if time is None else repr(float(time)),
            len(frame.atoms),
        ]
        for t in range(self.n_h):
            values += [
                _number(np.atleast_1d(row[key])[t]) for key in ("novelty", "max_dH", "mean_dH")
            ]
            if p is not None and rate is not None:  # (a frame may state its own: --species)
                values.append(_number(row.get("flagged", flag(p[t], rate).mean())))
        values += [_cell(row[c]) for c in self.columns]
        self._write_all(self._fds[self.table_part], _csv_row(values), self.table_part)
        if self.atom_part is not None:
            assert self.output is not None  # atom_part is the output's partial
            columns = rows if p is None else np.vstack([rows, p])
            if self.output.suffix in (".npy", ".json"):
                data = np.ascontiguousarray(columns.T, dtype="<f8").tobytes()
            else:
                data = extxyz_frame(frame.atoms, dict(zip(self.names, columns)))
            self._write_all(self._fds[self.atom_part], data, self.atom_part)
        self.frames_done += 1
        self.totals.add(rows, p)
        self._write_state()
        return row

    # -- end ----------------------------------------------------------------
    def summary(self) -> dict:
        """Totals over all frames written so far (including resumed ones); JSON-safe."""
        return self.totals.summary(self.frames_done)

    def read_table(self) -> dict:
        """The per-frame table so far, as a dict of columns.

        'frame', 'source_frame', 'atoms' are int arrays, the statistics float
        arrays, 'source' a list of str, 'timestep' and 'time' lists with None
        where unknown.
        """
        if self.table_part.exists():
            with open(self.table_part, newline="") as fh:
                return _parse_csv(list(csv.reader(fh)))
        # Resumed after finish() renamed the partial: the table is final already.
        if self.table is not None and self.table.exists():
            if self.table.suffix == ".csv":
                with open(self.table, newline="") as fh:
                    return _parse_csv(list(csv.reader(fh)))
            data = json.loads(self.table.read_text())
            data.pop("bandwidth", None)
            return {
                k: (
                    v
                    if k in ("source", "timestep", "time")
                    else np.array(v, dtype=np.int64 if k in _INT_COLUMNS else float)
                )
                for k, v in data.items()
            }
        raise InputError("the per-frame table of this run is gone", source=str(self.table_part))

    def finish(self) -> None:
        """Make the partial files the outputs and remove the checkpoint.

        Safe to kill at any instant: ``resume=True`` then completes the same outputs.
        """
        if self.frames_done == 0:
            raise InputError("no frames were processed")
        if self._finishing is None:
            table = self.read_table()
            self._close()
            self._finishing = self._write_finals(table)
            state = {"frames_done": self.frames_done, "totals": self.totals.to_json(), "sizes": {}}
            self.checkpoint.finish(state, self._finishing, progress="finishing")
        else:
            self.checkpoint.complete(self._finishing)
        # Parts that were converted, not renamed, and the per-frame index (a kill before
        # this leaves them to the next run's OutputGuard).
        for part in (self.atom_part, self.table_part):
            if part is not None and part.exists():
                os.unlink(part)

    def _write_finals(self, table: dict) -> list[tuple[Path, Path]]:
        """Write every output complete under a hidden name; the renames to do."""
        moves: list[tuple[Path, Path]] = []
        if self.output is not None:
            assert self.atom_part is not None  # the output's partial
            if self.output.suffix in (".extxyz", ".xyz"):
                moves.append((self.atom_part, self.output))
            else:
                final = final_path(self.output)
                raw = (
                    np.memmap(self.atom_part, dtype="<f8", mode="r").reshape(-1, len(self.names))
                    if os.path.getsize(self.atom_part)
                    else np.zeros((0, len(self.names)))
                )
                with _FdFile(self, final) as fh:
                    if self.output.suffix == ".npy":
                        np.save(fh, raw[:, 0] if np.ndim(self.h) == 0 else raw.T)
                    else:
                        self._write_json(fh, raw, table)
                del raw
                moves.append((final, self.output))
        if self.table is not None:
            if self.table.suffix == ".csv":
                moves.append((self.table_part, self.table))
            else:
                final = final_path(self.table)
                columns = {"bandwidth": self.h}
                for k, v in table.items():
                    if isinstance(v, np.ndarray):
                        v = v.tolist() if v.dtype.kind in "iu" else [finite_or_none(x) for x in v]
                    columns[k] = v
                with _FdFile(self, final) as fh:
                    fh.write(json.dumps(columns))
                moves.append((final, self.table))
        return moves

    def _write_json(self, fh, raw: np.ndarray, table: dict):
        """Per-atom JSON, column by column, without building Python lists of every value."""
        counts = table["atoms"]
        fh.write('{"bandwidth": ' + json.dumps(self.h) + ', "source": [')
        fh.write(
            ", ".join(", ".join([json.dumps(s)] * int(c)) for s, c in zip(table["source"], counts))
        )
        fh.write('], "frame": [')
        fh.write(
            ", ".join(
                ", ".join([str(int(f))] * int(c)) for f, c in zip(table["source_frame"], counts)
            )
        )
        fh.write('], "atom": [')
        fh.write(", ".join(", ".join(map(str, range(int(c)))) for c in counts))
        fh.write("]")
        for t, name in enumerate(self.names):
            fh.write(f', "{name}": [')
            for start in range(0, len(raw), 1 << 16):
                chunk = raw[start : start + (1 << 16), t]
                if start:
                    fh.write(", ")
                fh.write(", ".join(_json_number(v) for v in chunk))
            fh.write("]")
        fh.write("}")

    def close(self) -> None:
        """Interrupted: keep partial files and checkpoint for `resume=True`."""
        self._close()


class _FdFile:
    """Minimal unbuffered file for np.save and text: writes go straight to the file."""

    def __init__(self, writer: DHStreamWriter, path: Path):
        self.writer, self.path = writer, path

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise write_error(exc, self.writer._owner(self.path)) from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        return False

    def write(self, data) -> int:
        if isinstance(data, str):
            data = data.encode()
        self.writer._write_all(self.fd, bytes(data), self.path)
        return len(data)


def _csv_row(values) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(values)
    return text.getvalue().encode()


def _number(value) -> str:
    """A statistic for the CSV table: shortest exact float, empty when not finite."""
    value = finite_or_none(value)
    return "" if value is None else repr(value)


def _cell(value) -> str:
    """A further column's value: an int as it is, else as `_number` (None: empty)."""
    return str(value) if isinstance(value, int) else "" if value is None else _number(value)


def _json_number(value) -> str:
    value = finite_or_none(value)
    return "null" if value is None else repr(value)


def _parse_csv(rows: list[list[str]]) -> dict:
    header, body = rows[0], rows[1:]
    columns: dict[str, Any] = {}
    for c, name in enumerate(header):
        values = [r[c] for r in body]
        if name == "source":
            columns[name] = values
        elif name in _INT_COLUMNS or name.startswith("atoms_"):  # (atoms_<species>)
            columns[name] = np.array(values, dtype=np.int64)
        elif name == "timestep":
            columns[name] = [int(v) if v else None for v in values]
        elif name == "time":
            columns[name] = [float(v) if v else None for v in values]
        else:
            columns[name] = np.array([v if v else "nan" for v in values], dtype=float)
    return columns
