"""Atomic outputs: a file appears under its final name only when complete."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from atominfo.errors import InputError
from atominfo.runs.files import WRITE_ERRNOS, commit_target, write_error
from atominfo.runs.guard import active_guard

# numpy's tofile (np.save to a file) reports a short write, a disk filling up, as
# OSError("N requested and M written") without an errno
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; it becomes `path` only on success.

    An interrupted or failed run therefore never leaves a truncated output.
    The temporary file is hidden, ``.<name>.<random>.part<suffix>``, and is
    removed on any failure (`OutputGuard` removes one left by a killed run).

    Inside an `OutputGuard` that owns `path`, the complete file is staged and
    renamed together with the run's other outputs when the run succeeds (all
    or none); elsewhere it is renamed at once. A symlinked `path` keeps its
    link: its target is replaced.

    Raises
    ------
    InputError
        Naming `path`, when its directory is missing or not writable, or when
        writing fails for lack of space or a read-only file system.
    """
    path = Path(path)
    target = commit_target(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError("output directory does not exist", source=str(path))
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=directory
        )
    except OSError as exc:
        raise write_error(exc, path) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give outputs the usual mode
    guard = active_guard()
    try:
        yield Path(tmp)
        if guard is not None and guard.owns(path):
            guard.stage(Path(tmp), path)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is None and _SHORT_WRITE.fullmatch(str(exc)):
            raise write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path) from None
        if (
            isinstance(exc, OSError)
            and not isinstance(exc, InputError)
            and (exc.errno in WRITE_ERRNOS or exc.filename in (tmp, str(path)))
        ):
            raise write_error(exc, path) from None
        raise
