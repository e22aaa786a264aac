"""Resumable per-frame outputs of a streamed dH run.

Every output is written to a hidden partial file beside its final path
(`.<name>.partial`), one frame at a time, and a small checkpoint
(`.<name>.resume.json`) records after each frame how many frames are complete
and the byte size of every partial file at that point. At the end the partial
files become the outputs (rename, or a final conversion for .npy/.json), so a
final output is never truncated. After an interruption, `resume=True` cuts
each partial file back to the checkpointed size (dropping a half-written
frame) and continues from the next frame.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.outputs.atomic import atomic_output

STATE_VERSION = 1
PER_ATOM_SUFFIXES = (".npy", ".json", ".extxyz", ".xyz")
TABLE_SUFFIXES = (".csv", ".json")


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def state_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.resume.json")


def bandwidth_labels(h) -> list[str]:
    """Column suffixes: '' for one bandwidth, '_h<h>' for each of several."""
    return [""] if np.ndim(h) == 0 else [f"_h{v:g}" for v in h]


class Totals:
    """Running totals over frames: atoms, atoms with dH > 0, max and sum of dH per bandwidth."""

    def __init__(self, h, state: dict | None = None):
        self.h = h
        n_h = 1 if np.ndim(h) == 0 else len(h)
        self.state = state or {"atoms": 0, "novel": [0] * n_h, "max_dH": [-np.inf] * n_h,
                               "sum_dH": [0.0] * n_h}

    def add(self, dH) -> None:
        rows = np.atleast_2d(dH)
        tot = self.state
        tot["atoms"] += rows.shape[1]
        for t in range(rows.shape[0]):
            tot["novel"][t] += int((rows[t] > 0).sum())
            tot["max_dH"][t] = max(tot["max_dH"][t], float(rows[t].max()))
            tot["sum_dH"][t] += float(rows[t].sum())

    def summary(self, frames: int) -> dict:
        tot = self.state
        n = max(tot["atoms"], 1)
        result = {"frames": frames, "environments": tot["atoms"],
                  "novelty": [c / n for c in tot["novel"]], "max_dH": list(tot["max_dH"]),
                  "mean_dH": [s / n for s in tot["sum_dH"]]}
        if np.ndim(self.h) == 0:
            result.update({key: result[key][0] for key in ("novelty", "max_dH", "mean_dH")})
        return result


class DHStreamWriter:
    """Writes per-atom dH (.extxyz/.npy/.json) and the per-frame table (.csv/.json).

    Parameters
    ----------
    output : Path or None
        Per-atom output.
    table : Path or None
        Per-frame table (frame, source, source_frame, atoms, novelty, max_dH, mean_dH).
    h : float or list of float
        Bandwidth(s), 1/Å, for column names.
    signature : dict
        JSON-able description of the run (inputs and options); a resumed run
        must have the same.
    resume : bool
        Continue from the checkpoint if there is one.
    """

    def __init__(self, output: Path | None, table: Path | None, h, signature: dict,
                 resume: bool = False):
        if output is None and table is None:
            raise InputError("nothing to write: give an output (-o) or a table (--table)")
        if output is not None and output.suffix not in PER_ATOM_SUFFIXES:
            raise InputError("output must end in .npy, .json or .extxyz", source=str(output))
        if table is not None and table.suffix not in TABLE_SUFFIXES:
            raise InputError("table must end in .csv or .json", source=str(table))
        for p in (output, table):
            if p is not None and not (p.parent if str(p.parent) else Path(".")).exists():
                raise InputError("output directory does not exist", source=str(p))
        self.output, self.table, self.h = output, table, h
        self.n_h = 1 if np.ndim(h) == 0 else len(h)
        self.labels = bandwidth_labels(h)
        anchor = output if output is not None else table
        self.state_file = state_path(anchor)
        # The table partial always exists: it is the frame index of the per-atom data.
        self.table_part = partial_path(table if table is not None else anchor.with_suffix(
            anchor.suffix + ".frames.csv"))
        self.atom_part = partial_path(output) if output is not None else None
        self.signature = json.loads(json.dumps(signature))
        self.frames_done = 0
        self.totals = Totals(h)
        sizes = None
        if resume:
            sizes = self._load_state()
        self._open(sizes)

    # -- checkpoint -------------------------------------------------------
    def _load_state(self):
        if not self.state_file.exists():
            raise InputError("--resume: no interrupted run to resume (no checkpoint "
                             f"{self.state_file.name})", source=str(self.state_file.parent))
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            raise InputError("--resume: checkpoint is unreadable", source=str(self.state_file))
        if state.get("version") != STATE_VERSION or state.get("signature") != self.signature:
            raise InputError("--resume: the interrupted run used different inputs or options",
                             source=str(self.state_file))
        self.frames_done = int(state["frames_done"])
        totals = state["totals"]
        totals["max_dH"] = [(-np.inf if v is None else v) for v in totals["max_dH"]]
        self.totals = Totals(self.h, totals)
        return state["sizes"]

    def _write_state(self):
        totals = dict(self.totals.state)
        totals["max_dH"] = [(None if not np.isfinite(v) else v) for v in totals["max_dH"]]
        state = {"version": STATE_VERSION, "signature": self.signature,
                 "frames_done": self.frames_done, "totals": totals,
                 "sizes": {str(p): os.path.getsize(p) for p in self._parts()}}
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def _parts(self):
        return [p for p in (self.table_part, self.atom_part) if p is not None]

    # -- partial files ------------------------------------------------------
    def _open(self, sizes):
        self._handles = {}
        for p in self._parts():
            if sizes is not None:
                size = sizes.get(str(p))
                if size is None or not p.exists() or os.path.getsize(p) < size:
                    raise InputError("--resume: partial output is missing or shorter than "
                                     "its checkpoint", source=str(p))
                with open(p, "r+b") as fh:
                    fh.truncate(size)  # drop a frame written after the last checkpoint
            mode = "ab" if sizes is not None else "wb"
            self._handles[p] = open(p, mode)
        if sizes is None:
            header = ["frame", "source", "source_frame", "atoms"]
            for label in self.labels:
                header += [f"novelty{label}", f"max_dH{label}", f"mean_dH{label}"]
            self._write_csv_row(header)
            self._flush()
            self._write_state()

    def _write_csv_row(self, row):
        import io

        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(row)
        self._handles[self.table_part].write(text.getvalue().encode())

    def _flush(self):
        for fh in self._handles.values():
            fh.flush()

    # -- per frame ----------------------------------------------------------
    def add(self, frame) -> dict:
        """Append one `trajectory.FrameDH`; returns its table row."""
        rows = np.atleast_2d(frame.dH)
        row = frame.summary()
        values = [frame.number, frame.source, frame.source_frame, len(frame.atoms)]
        for t in range(self.n_h):
            values += [repr(float(np.atleast_1d(row["novelty"])[t])),
                       repr(float(np.atleast_1d(row["max_dH"])[t])),
                       repr(float(np.atleast_1d(row["mean_dH"])[t]))]
        self._write_csv_row(values)
        if self.atom_part is not None:
            fh = self._handles[self.atom_part]
            if self.output.suffix in (".npy", ".json"):
                fh.write(np.ascontiguousarray(rows.T, dtype="<f8").tobytes())
            else:
                self._write_extxyz(fh, frame.atoms, rows)
        self._flush()
        self.frames_done += 1
        self.totals.add(rows)
        self._write_state()
        return row

    def _write_extxyz(self, fh, atoms, rows):
        import io

        import ase.io

        atoms = atoms.copy()
        names = ["dH"] if np.ndim(self.h) == 0 else [f"dH_h{v:g}" for v in self.h]
        for name, values in zip(names, rows):
            atoms.set_array(name, values)
        text = io.StringIO()
        ase.io.write(text, atoms, format="extxyz")
        fh.write(text.getvalue().encode())

    # -- end ----------------------------------------------------------------
    def summary(self) -> dict:
        """Totals over all frames written so far (including resumed ones)."""
        return self.totals.summary(self.frames_done)

    def read_table(self) -> dict:
        """The per-frame table so far, as a dict of columns (numbers as arrays)."""
        self._flush()
        with open(self.table_part, newline="") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        columns = {}
        for c, name in enumerate(header):
            values = [r[c] for r in body]
            if name == "source":
                columns[name] = values
            elif name in ("frame", "source_frame", "atoms"):
                columns[name] = np.array(values, dtype=np.int64)
            else:
                columns[name] = np.array(values, dtype=float)
        return columns

    def finish(self) -> None:
        """Turn the partial files into the outputs and remove the checkpoint."""
        if self.frames_done == 0:
            raise InputError("no frames were processed")
        self._flush()
        table = self.read_table()
        for fh in self._handles.values():
            fh.close()
        if self.output is not None:
            suffix = self.output.suffix
            if suffix in (".extxyz", ".xyz"):
                os.replace(self.atom_part, self.output)
            else:
                raw = np.memmap(self.atom_part, dtype="<f8", mode="r").reshape(-1, self.n_h)
                with atomic_output(self.output) as tmp:
                    if suffix == ".npy":
                        with open(tmp, "wb") as fh:
                            np.save(fh, raw[:, 0] if np.ndim(self.h) == 0 else raw.T)
                    else:
                        self._write_json(tmp, raw, table)
                del raw
                os.unlink(self.atom_part)
        if self.table is not None:
            if self.table.suffix == ".csv":
                os.replace(self.table_part, self.table)
            else:
                with atomic_output(self.table) as tmp:
                    tmp.write_text(json.dumps(
                        {"bandwidth": self.h,
                         **{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                            for k, v in table.items()}}))
        if self.table_part.exists():
            os.unlink(self.table_part)
        os.unlink(self.state_file)

    def _write_json(self, tmp: Path, raw: np.ndarray, table: dict):
        """Per-atom JSON, column by column, without building Python lists of every value."""
        names = ["dH"] if np.ndim(self.h) == 0 else [f"dH_h{v:g}" for v in self.h]
        counts = table["atoms"]
        with open(tmp, "w") as fh:
            fh.write('{"bandwidth": ' + json.dumps(self.h) + ', "source": [')
            fh.write(", ".join(", ".join([json.dumps(s)] * int(c))
                               for s, c in zip(table["source"], counts)))
            fh.write('], "frame": [')
            fh.write(", ".join(", ".join([str(int(f))] * int(c))
                               for f, c in zip(table["source_frame"], counts)))
            fh.write('], "atom": [')
            fh.write(", ".join(", ".join(map(str, range(int(c)))) for c in counts))
            fh.write("]")
            for t, name in enumerate(names):
                fh.write(f', "{name}": [')
                for start in range(0, len(raw), 1 << 16):
                    chunk = raw[start:start + (1 << 16), t]
                    if start:
                        fh.write(", ")
                    fh.write(", ".join(repr(float(v)) for v in chunk))
                fh.write("]")
            fh.write("}")

    def abort(self) -> None:
        """Bad input: remove every partial file and the checkpoint (nothing to resume)."""
        for fh in getattr(self, "_handles", {}).values():
            fh.close()
        for p in self._parts() + [self.state_file]:
            if p.exists():
                os.unlink(p)

    def close(self) -> None:
        """Interrupted: keep partial files and checkpoint for `resume=True`."""
        for fh in getattr(self, "_handles", {}).values():
            fh.close()
