"""Names and errors of a run's files: hidden companions of an output, failed writes.

Every hidden file beside an output ``name`` is called ``.<name>.<tag>``: its
lock, its partial files, the checkpoint of an interrupted run, the
temporaries of `atominfo.runs.atomic.atomic_output`. This module names them,
so that the guard, the checkpoint and the writers agree on them without
importing each other.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

from atominfo.errors import InputError

# Hidden files beside an output `name`, all called ".<name>.<tag>":
CHECKPOINT_TAG = "resume.json"  # the completed work of an interrupted run
RESUMABLE_TAGS = ("partial", "frames.partial", CHECKPOINT_TAG, "final")  # --resume needs them
SCRATCH_TAGS = ("resume.json.tmp",)  # never needed again
LOCK_TAG = "lock"
# atomic_output's temporaries: ".<name>.<8 random chars from mkstemp>.part<suffix>"
_ATOMIC_TEMP = re.compile(r"[a-z0-9_]{8}\.part")

# Errors of a write that more space or a writable file system would fix.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def hidden_path(path, tag: str) -> Path:
    """The hidden file ``.<name>.<tag>`` beside `path`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}")


def hidden_files(path, *, keep_resumable: bool = False) -> list[Path]:
    """Hidden leftovers of earlier runs writing `path` (its lock file excluded).

    Parameters
    ----------
    path : output path
    keep_resumable : bool
        Leave out the partial files and checkpoint that a resumed run needs.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.startswith(prefix):
            continue
        tag = name[len(prefix) :]
        if tag in RESUMABLE_TAGS:
            if keep_resumable:
                continue
        elif tag in SCRATCH_TAGS:
            pass
        elif not (_ATOMIC_TEMP.match(tag) and tag[13:] == path.suffix):
            continue  # not ours: leave other tools' files alone
        found.append(directory / name)
    return sorted(found)


class WriteError(InputError):
    """A write that failed for an environmental reason (disk full, read-only, ...).

    A checkpoint survives it: once there is space, ``--resume`` continues.
    """

    def __init__(self, message: str, *, source: str | None = None, errno: int | None = None):
        super().__init__(message, source=source)
        self.errno = errno


def write_error(exc: OSError, path) -> WriteError:
    """A `WriteError` naming `path` for a failed write (disk full, read-only, ...)."""
    reason = exc.strerror or os.strerror(exc.errno or 0) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = f"disk full: {os.strerror(errno.ENOSPC)}"
    return WriteError(f"cannot write output ({reason})", source=str(path), errno=exc.errno)


def commit_target(path) -> Path:
    """Where a complete output is renamed to: `path`, or the file it links to.

    Writing through a symlinked output keeps the link (a user's ``out.npy ->
    /scratch/run/out.npy``) and replaces its target, as ``>`` in a shell does.
    """
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def has_checkpoint(path) -> bool:
    """Whether an interrupted run left a checkpoint beside output `path`."""
    return hidden_path(path, CHECKPOINT_TAG).exists()


def checkpoint_path(output) -> Path:
    """The checkpoint of a run whose first output is `output`."""
    return hidden_path(output, CHECKPOINT_TAG)


def read_checkpoint(output) -> dict:
    """The record of the checkpoint beside `output`; {} where there is none or it is
    unreadable (for messages and clean-up, which must not fail on it)."""
    try:
        record = json.loads(checkpoint_path(output).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def describe_progress(output) -> str:
    """What the checkpoint beside `output` holds, for messages ('checkpoint: 58 frames done')."""
    done = read_checkpoint(output).get("progress")
    return f"checkpoint {checkpoint_path(output).name}" + (f": {done}" if done else "")
