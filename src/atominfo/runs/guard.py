"""Output guard: a run never writes over its inputs, never races another run, and
commits its outputs all or none.

Every command opens an `OutputGuard` over its input and output paths before
doing any work::

    with OutputGuard(inputs=[traj, ref], outputs={out: (".npy", ".json")}):
        ...  # compute, then write `out` with `atomic_output`

On entry it refuses (with `InputError`, before any work) an output that is
the same file as an input or as another output (same path once symlinks are
resolved, or the same inode: hard links), an output that is a directory or a
write-protected file, an output whose directory is missing or not writable,
and an output whose name does not end in one of the allowed suffixes. It then
takes an exclusive lock per output (`fcntl.flock` on a hidden lock file
beside it, ``.<name>.lock``): a second run writing the same output refuses at
once (or waits, with `wait`). A lock left by a killed run does not block: the
kernel releases `flock` when a process dies, and the next run removes the file.

**All or none.** While the guard is open, `atomic_output` stages each
complete file under a hidden name instead of renaming it; the guard renames
every staged file into place only when the run succeeds (after every output
is complete on disk), and removes them all when it fails. A command that
fails late (an unwritable second output, a plot that cannot be drawn)
therefore leaves every earlier output as it was.

**Work is never thrown away unasked.** Holding the lock, the guard removes
the hidden leftovers of a killed run (temporaries, partial files without a
checkpoint). A checkpoint (``.<name>.resume.json``, `atominfo.runs.checkpoint`)
is the completed work of an interrupted run: a resumable run (``resumable``)
continues it with ``resume``, discards it with ``restart``, and otherwise
refuses to start, saying both. On exit after success the guard removes every
hidden file of its outputs. After an `InputError` it removes what this run
created, but keeps a checkpoint it resumed from (a refused or failed
``--resume`` loses nothing) and the checkpoint of a run stopped by a full disk
or a read-only file system. After any other exception (Ctrl-C, a killed
worker) it keeps what ``--resume`` needs.

A write that fails for lack of space or a read-only file system (ENOSPC,
EDQUOT, EFBIG, EROFS) inside the guard becomes a `WriteError` (an
`InputError`) naming the output.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from atominfo.errors import InputError
from atominfo.runs.files import (
    LOCK_TAG,
    WRITE_ERRNOS,
    WriteError,
    commit_target,
    describe_progress,
    has_checkpoint,
    hidden_files,
    hidden_path,
    read_checkpoint,
    write_error,
)

# The guard of the run in progress in this thread of execution: `atomic_output`
# stages into it (all or none) instead of renaming at once.
_ACTIVE: contextvars.ContextVar[OutputGuard | None] = contextvars.ContextVar(
    "atominfo_output_guard", default=None
)


def active_guard() -> OutputGuard | None:
    """The `OutputGuard` open in this context, if any."""
    return _ACTIVE.get()


def _key(path: Path) -> Path:
    """The file a write to `path` replaces (its lock, its identity): `path` with its
    directory's symlinks resolved, or, for a symlinked output, the file it links to
    (`commit_target`: the link is kept and its target replaced). Two runs writing
    ``link.npy`` and the file it names therefore take one lock."""
    path = commit_target(path)
    return Path(os.path.realpath(path.parent if str(path.parent) else ".")) / path.name


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file: same resolved path, or same inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _as_paths(items) -> list[Path]:
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    return [Path(p) for p in items if isinstance(p, (str, os.PathLike))]


def check_outputs(
    inputs: Iterable = (), outputs: Mapping | Iterable = ()
) -> dict[Path, tuple | None]:
    """Refuse outputs that would destroy an input or each other, or cannot be written.

    Parameters
    ----------
    inputs : paths
        Files the run reads (non-path items such as ase.Atoms are ignored).
    outputs : mapping path -> allowed suffixes (sequence of str, or None for any),
        or a sequence of paths (any suffix) or of (path, suffixes) pairs. Pairs
        let the same path appear twice (``-o x.csv --table x.csv``), which a
        mapping would merge silently.

    Returns
    -------
    dict path -> allowed suffixes (None: any), the outputs as `Path`.

    Raises
    ------
    InputError
        For the first output that is refused, naming it and the reason.
    """
    pairs = _output_pairs(outputs)
    inputs = _as_paths(inputs)
    seen: list[Path] = []
    for out, suffixes in pairs:
        name = str(out)
        if suffixes is not None and not any(out.name.endswith(s) for s in suffixes):
            raise InputError(f"output must end in {', '.join(suffixes)}", source=name)
        directory = out.parent if str(out.parent) else Path(".")
        if not directory.is_dir():
            raise InputError("output directory does not exist", source=name)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError("output directory is not writable", source=name)
        if out.is_dir():
            raise InputError("output is a directory", source=name)
        for source in inputs:
            if _same_file(out, source):
                raise InputError(
                    f"output is the same file as the input {source} (it would be overwritten)",
                    source=name,
                )
        for other in seen:
            if _key(out) == _key(other) or _same_file(out, other):
                raise InputError(f"two outputs are the same file ({other} and {out})", source=name)
        if out.exists() and not out.is_symlink() and not out.stat().st_mode & 0o222:
            raise InputError("output exists and is write-protected", source=name)
        seen.append(out)
    return dict(pairs)


def _output_pairs(outputs) -> list[tuple[Path, tuple | None]]:
    """(path, allowed suffixes) pairs, in order, None paths dropped, repeats kept."""
    if isinstance(outputs, Mapping):
        items = list(outputs.items())
    elif isinstance(outputs, (str, os.PathLike)):
        items = [(outputs, None)]
    else:
        items = [p if isinstance(p, tuple) else (p, None) for p in outputs]
    return [(Path(p), tuple(s) if s is not None else None) for p, s in items if p is not None]


class OutputGuard:
    """Context manager guarding the outputs of one run (see the module docstring).

    Parameters
    ----------
    inputs : paths
        Files the run reads.
    outputs : mapping path -> allowed suffixes (None: any), or sequence of paths
        or of (path, suffixes) pairs (see `check_outputs`)
    resume : bool
        Keep the partial files and checkpoint of an interrupted run (``--resume``).
    resumable : bool
        The run keeps a checkpoint (`atominfo.runs.checkpoint`): without
        `resume` or `restart`, a checkpoint left beside an output is refused
        rather than thrown away.
    restart : bool
        Discard the checkpoint and partial files of an interrupted run.
    wait : float
        Seconds to wait for another run holding an output's lock; 0 refuses at once.

    Raises
    ------
    InputError
        On entry, for a refused output, an output locked by another run, or an
        interrupted run's checkpoint that the run neither resumes nor restarts.
    """

    def __init__(
        self,
        inputs: Iterable = (),
        outputs: Mapping | Sequence = (),
        *,
        resume: bool = False,
        resumable: bool = False,
        restart: bool = False,
        wait: float = 0.0,
    ):
        self.inputs = _as_paths(inputs)
        self.raw_outputs = outputs
        from atominfo import params

        if resume and restart:
            raise InputError(
                "--resume continues an interrupted run and --restart discards it: give one"
            )
        self.resume = bool(resume)
        self.resumable = bool(resumable or resume or restart)
        self.restart = bool(restart)
        self.wait = params.check("idle_timeout", wait, label="wait")
        self.outputs: dict[Path, tuple | None] = {}
        self._locks: list[tuple[Path, int]] = []
        self._staged: list[tuple[Path, Path]] = []  # (complete hidden file, output)
        self._token: contextvars.Token | None = None

    # -- entry --------------------------------------------------------------
    def __enter__(self) -> OutputGuard:
        self.outputs = check_outputs(self.inputs, self.raw_outputs)
        # --restart discards the whole interrupted run: also the partial files of
        # its outputs that this run does not write (it may name fewer).
        abandoned = _recorded_outputs(self.outputs) if self.restart else []
        try:
            # One order for every run, so that two waiting runs cannot deadlock.
            for out in sorted([*self.outputs, *abandoned], key=_key):
                self._locks.append((out, self._lock(out)))
            if self.resumable and not (self.resume or self.restart):
                self._refuse_checkpoint()
            for out in [*self.outputs, *abandoned]:
                self._remove(hidden_files(out, keep_resumable=self.resume))
        except BaseException:
            self._release()
            raise
        self._token = _ACTIVE.set(self)
        return self

    def _refuse_checkpoint(self) -> None:
        """A run that would start afresh over an interrupted run's completed work."""
        for out in self.outputs:
            partial = [p for p in hidden_files(out) if p.name.endswith((".partial", ".final"))]
            if partial and not has_checkpoint(out):
                # another run's partial output (its checkpoint may sit beside another output)
                raise InputError(
                    f"partial output of an interrupted run is here ({partial[0].name}): add "
                    "--resume to continue that run, or --restart to discard it and start again",
                    source=str(out),
                )
            if has_checkpoint(out):
                raise InputError(
                    f"an interrupted run left its completed work here ({describe_progress(out)}): "
                    "add --resume to continue it, or --restart to discard it and start again",
                    source=str(out),
                )

    # -- staged outputs (all or none) ---------------------------------------
    def owns(self, path) -> bool:
        """Whether `path` is one of this run's outputs."""
        key = _key(Path(path))
        return any(_key(out) == key for out in self.outputs)

    def stage(self, tmp: Path, path: Path) -> None:
        """Rename the complete file `tmp` to `path` when the run succeeds (see `commit`)."""
        self._staged = [(t, p) for t, p in self._staged if _key(p) != _key(Path(path))] + [
            (Path(tmp), Path(path))
        ]

    def commit(self) -> None:
        """Rename every staged output into place; every one is complete on disk already."""
        staged, self._staged = self._staged, []
        for tmp, path in staged:
            try:
                os.replace(tmp, commit_target(path))
            except OSError as exc:
                self._remove([t for t, _ in staged])
                raise write_error(exc, path) from None

    def _lock(self, out: Path) -> int:
        """Hold an exclusive flock on ``.<name>.lock``; the file descriptor."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): run unlocked
            return -1
        lock = hidden_path(_key(out), LOCK_TAG)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise InputError(
                    f"cannot create a lock file beside the output ({exc.strerror})", source=str(out)
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                if time.monotonic() >= deadline:
                    by = f" (process {holder})" if holder else ""
                    raise InputError(
                        f"another run is writing this output{by}; wait for it to finish",
                        source=str(out),
                    ) from None
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))
                continue
            # The holder we waited for removes the file before unlocking: the lock
            # we got may be on a file no longer in the directory. Try again then.
            try:
                current = os.stat(lock)
                held = os.fstat(fd)
                same = (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev)
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:  # the holder's pid, for the message of a run that finds it locked
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            except OSError:  # a full disk: the lock holds all the same
                pass
            return fd

    # -- exit ---------------------------------------------------------------
    def __exit__(self, exc_type, raised, tb) -> Literal[False]:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        exc = raised
        if (
            isinstance(exc, OSError)
            and not isinstance(exc, InputError)
            and exc.errno in WRITE_ERRNOS
        ):
            exc = write_error(exc, self._owner(exc.filename))
        try:
            if exc is None:
                self.commit()
        except WriteError as failed:
            exc = failed
        finally:
            self._remove([tmp for tmp, _ in self._staged])
            self._staged = []
        # Keep what --resume continues from: after an interruption (not a handled
        # error), after a full disk, and a checkpoint this run resumed from.
        keep = exc is not None and (
            not isinstance(exc, InputError)
            or (isinstance(exc, WriteError) and self.resumable)
            or self.resume
        )
        try:
            for out in self.outputs:
                self._remove(hidden_files(out, keep_resumable=keep))
        finally:
            self._release()
        if isinstance(exc, WriteError) and self.resumable:
            if any(has_checkpoint(out) for out in self.outputs) and "--resume" not in exc.reason:
                exc = WriteError(
                    f"{exc.reason}; the completed work is kept: free space, then run "
                    "again with --resume",
                    source=exc.source,
                    errno=exc.errno,
                )
        if exc is not raised:
            raise exc from None
        return False

    def _owner(self, filename) -> str:
        """The output a failing file belongs to (itself or one of its hidden files)."""
        if filename is None:
            return ", ".join(str(p) for p in self.outputs) or "output"
        name = Path(str(filename)).name
        for out in self.outputs:
            if name == out.name or name.startswith(f".{out.name}."):
                return str(out)
        return str(filename)

    def _release(self) -> None:
        for out, fd in reversed(self._locks):
            if fd < 0:
                continue
            # Remove before unlocking: a run waiting on this file then sees that it
            # is gone and locks a fresh one.
            try:
                os.unlink(hidden_path(_key(out), LOCK_TAG))
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        self._locks = []

    @staticmethod
    def _remove(paths) -> None:
        for p in paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def _recorded_outputs(outputs) -> list[Path]:
    """Outputs of the interrupted runs whose checkpoints lie beside `outputs`, other
    than `outputs` themselves (a checkpoint records every output of its run)."""
    mine = {_key(out) for out in outputs}
    found: dict[Path, Path] = {}
    for out in outputs:
        recorded = read_checkpoint(out).get("signature")
        names = recorded.get("outputs", []) if isinstance(recorded, dict) else []
        for name in names if isinstance(names, list) else []:
            other = Path(str(name))
            if _key(other) not in mine:
                found.setdefault(_key(other), other)
    return list(found.values())


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def discard(outputs: Iterable) -> None:
    """Remove the checkpoint and partial files of an interrupted run writing `outputs`.

    The explicit way to give up an interrupted run's work (``--restart``): the
    outputs' locks are taken first, so the work of a run still going is never
    removed under it.
    """
    with OutputGuard(outputs=[p for p in outputs if p is not None], restart=True):
        pass
