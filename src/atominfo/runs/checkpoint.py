"""The one resume record of a resumable run (``dh``, ``snapshot``).

A `Checkpoint` lives beside the run's first output, ``.<name>.resume.json``.
It holds the run's **signature** (its options and outputs), a **fingerprint**
of every input (size and SHA-256 of the whole file), the run's own
**state** (frames or boxes done, running totals, byte sizes of its partial
files) and, once the run is finishing, the **renames** still to do.

The rules every resumable command follows (`begin`):

* ``--resume`` with a checkpoint whose signature and inputs match: continue
  from its state. Any difference is refused with what differs and how to go on
  (rerun with the interrupted run's options, or ``--restart``); the checkpoint
  and partial files are left exactly as they were.
* ``--resume`` with no checkpoint: if every output exists, the run had
  finished: nothing is recomputed (a warning says so), unless an input is
  newer than an output, which is refused; if an output is missing, the run
  was killed before its first checkpoint and starts from the beginning, with
  a warning.
* Without ``--resume``: a checkpoint is refused by `OutputGuard` unless
  ``--restart`` discards it.

`save` replaces the checkpoint whole (write a temporary, then rename), so a
kill while saving leaves the previous valid one. `finish` records the renames,
does them, and removes the checkpoint last: a run killed at any instant
resumes to the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atominfo.errors import InputError
from atominfo.runs.files import checkpoint_path, commit_target, hidden_path, write_error

VERSION = 3


def fingerprint(paths) -> list[dict]:
    """Size and SHA-256 of the contents of each input file (files of a directory: each).

    The whole file is hashed, so a change anywhere is seen, even one that keeps
    the size and modification time. SHA-256 runs at about 0.6-0.9 GB/s here
    (hardware-accelerated; BLAKE2b measured 0.45-0.5 GB/s), small beside the
    cost of scoring the same bytes of trajectory.

    Parameters
    ----------
    paths : file or directory paths (other items, such as ase.Atoms, are ignored)

    Returns
    -------
    list of {'path', 'size', 'sha256'}, one per file, paths resolved.
    """
    files = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            continue
        p = Path(p)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.is_file())
        else:
            files.append(p)
    out = []
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for f in files:
        digest = hashlib.sha256()
        try:
            with open(f, "rb", buffering=0) as fh:
                size = 0
                while n := fh.readinto(buffer):
                    digest.update(view[:n])
                    size += n
        except OSError as exc:
            raise InputError(f"cannot read input ({exc.strerror})", source=str(f)) from None
        out.append({"path": str(f.resolve()), "size": size, "sha256": digest.hexdigest()})
    return out


class ResumeRefused(InputError):
    """A ``--resume`` that does not match the interrupted run; nothing was deleted."""


@dataclass
class Begun:
    """What `Checkpoint.begin` found: the state to continue from, or a finished run."""

    state: dict | None = None  # None: start from the beginning
    finished: bool = False  # every output exists and no checkpoint: nothing to do
    finishing: list[tuple[Path, Path]] | None = None  # renames left by a killed finish
    notes: list[str] = field(default_factory=list)


class Checkpoint:
    """The resume record of one run.

    Parameters
    ----------
    outputs : output paths of the run, the first one anchoring the checkpoint
    signature : JSON-able options of the run; a resumed run must have the same
    inputs : input paths, fingerprinted (`fingerprint`)
    """

    def __init__(self, outputs, signature: dict, inputs=()):
        self.outputs = [Path(p) for p in outputs if p is not None]
        if not self.outputs:
            raise InputError("nothing to write: a resumable run needs an output")
        self.path = checkpoint_path(self.outputs[0])
        self.signature = json.loads(
            json.dumps({**signature, "outputs": [str(p) for p in self.outputs]})
        )
        self.inputs = list(inputs)
        self._fingerprints: list[dict] | None = None

    # -- start or continue ------------------------------------------------------
    def begin(self, resume: bool) -> Begun:
        """Start afresh, or (with `resume`) continue the interrupted run (module docstring)."""
        if not resume:
            self._fingerprints = fingerprint(self.inputs)
            return Begun()
        if not self.path.exists():
            return self._no_checkpoint()
        try:
            saved = json.loads(self.path.read_text())
            if not isinstance(saved, dict):
                raise ValueError
        except (OSError, ValueError):
            raise ResumeRefused(
                f"--resume: the checkpoint {self.path.name} is unreadable; run with "
                "--restart to discard it and start again",
                source=str(self.outputs[0]),
            ) from None
        self._compare(saved)
        self._fingerprints = saved["inputs"]
        finishing = saved.get("finishing")
        return Begun(
            state=saved.get("state", {}),
            finishing=None if finishing is None else [(Path(a), Path(b)) for a, b in finishing],
        )

    def _no_checkpoint(self) -> Begun:
        missing = [p for p in self.outputs if not p.exists()]
        if missing:
            # Killed before its first checkpoint: nothing was kept, so resuming is
            # starting again.
            warnings.warn(
                f"{self.outputs[0]}: no interrupted run to resume (no checkpoint); "
                "starting from the beginning",
                stacklevel=3,
            )
            self._fingerprints = fingerprint(self.inputs)
            return Begun()
        oldest = min(os.stat(commit_target(p)).st_mtime_ns for p in self.outputs)
        for item in self.inputs:
            if isinstance(item, (str, os.PathLike)) and Path(item).exists():
                if os.stat(item).st_mtime_ns > oldest:
                    raise ResumeRefused(
                        "--resume: the run had finished, and this input changed after its "
                        "outputs were written; run without --resume to compute them again",
                        source=str(item),
                    )
        warnings.warn(
            "nothing to resume: the outputs exist and no checkpoint remains (the run "
            "finished); they were left as they are: run without --resume to compute "
            "them again",
            stacklevel=3,
        )
        return Begun(finished=True)

    def _compare(self, saved: dict) -> None:
        """Refuse a resume whose options, outputs or inputs differ, saying which."""
        where = str(self.outputs[0])
        how = (
            "rerun with the interrupted run's options to continue it, or with --restart "
            "to discard its work"
        )
        if saved.get("version") != VERSION:
            raise ResumeRefused(
                f"--resume: the checkpoint was written by another version of atominfo; {how}",
                source=where,
            )
        old, new = saved.get("signature", {}), self.signature
        differences = [
            f"{key}: {_show(old.get(key))} in the interrupted run, {_show(new.get(key))} now"
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
        if differences:
            raise ResumeRefused(
                f"--resume: the interrupted run had other options ({'; '.join(differences)}); "
                + how,
                source=where,
            )
        recorded = saved.get("inputs", [])
        for item in recorded:
            if not Path(item["path"]).exists():
                raise ResumeRefused(
                    f"--resume: this input of the interrupted run is missing; {how}",
                    source=item["path"],
                )
        now = {item["path"]: item for item in fingerprint(self.inputs)}
        if sorted(now) != sorted(r["path"] for r in recorded):
            raise ResumeRefused(
                "--resume: the interrupted run read other input files "
                f"({', '.join(sorted(r['path'] for r in recorded))}); {how}",
                source=where,
            )
        for item in recorded:
            if now[item["path"]] != item:
                raise ResumeRefused(
                    "--resume: this input changed since the interrupted run (its contents "
                    "differ); run with --restart to start again on the new contents",
                    source=item["path"],
                )

    # -- during the run ---------------------------------------------------------
    def save(self, state: dict, progress: str | None = None) -> None:
        """Record `state` (JSON-able); a kill while saving keeps the previous checkpoint."""
        self._write({"state": state, "progress": progress, "finishing": None})

    def _write(self, body: dict[str, Any]) -> None:
        if self._fingerprints is None:
            self._fingerprints = fingerprint(self.inputs)
        record = {
            "version": VERSION,
            "signature": self.signature,
            "inputs": self._fingerprints,
            **body,
        }
        tmp = hidden_path(self.outputs[0], "resume.json.tmp")
        data = json.dumps(record).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise write_error(exc, self.outputs[0]) from None

    # -- end --------------------------------------------------------------------
    def finish(
        self, state: dict, moves: list[tuple[Path, Path]], progress: str | None = None
    ) -> None:
        """Rename each complete hidden file to its output, then remove the checkpoint.

        The renames are recorded first, so a run killed in the middle finishes
        them on ``--resume`` (`Begun.finishing`).
        """
        self._write({"state": state, "progress": progress, "finishing": _pairs(moves)})
        self.complete(moves)

    def complete(self, moves: list[tuple[Path, Path]]) -> None:
        """Do the renames of a finish (again, after a kill), then remove the checkpoint."""
        for src, dst in moves:
            if src.exists():
                try:
                    os.replace(src, commit_target(dst))
                except OSError as exc:
                    raise write_error(exc, dst) from None
            elif not dst.exists():
                raise ResumeRefused(
                    "--resume: an output of the interrupted run is missing; run with "
                    "--restart to start again",
                    source=str(dst),
                )
        self.discard()

    def discard(self) -> None:
        """Remove the checkpoint (and its temporary)."""
        for p in (self.path, hidden_path(self.outputs[0], "resume.json.tmp")):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def _pairs(moves) -> list[list[str]]:
    return [[str(a), str(b)] for a, b in moves]


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return json.dumps(value) if not isinstance(value, str) else value
