"""Descriptors saved to disk (.npy, or .npz with key X), read back with clear errors.

Every command that takes a reference (``--ref``) can be given saved
descriptors instead of structures; this is the one reader for them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from atominfo.errors import InputError

SAVED_SUFFIXES = (".npy", ".npz")


def is_saved_descriptors(path) -> bool:
    """Whether `path` names saved descriptors (by its suffix)."""
    return Path(path).suffix.lower() in SAVED_SUFFIXES


def load_descriptors(path) -> tuple[np.ndarray, dict | None]:
    """Descriptors saved with ``np.save`` (.npy) or ``np.savez`` (.npz, key ``X``).

    Parameters
    ----------
    path : str or PathLike
        A .npy file holding one 2-D array, or a .npz archive with an array
        ``X`` (other arrays in it are returned as provenance).

    Returns
    -------
    X : ndarray, shape (n_environments, width), float64, 1/Å
    provenance : dict or None
        The other arrays of a .npz (e.g. ``source``, ``source_frame``, ``k``,
        ``cutoff``), 0-d arrays turned into Python scalars; None for a .npy.

    Raises
    ------
    InputError
        Naming the file: missing, not a NumPy file, pickled objects (never
        loaded), no ``X`` key, not a 2-D array, an empty array, a non-numeric
        dtype, or a NaN/infinite entry (naming its row).
    """
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=name)
    if p.is_dir():
        raise InputError("is a directory, not saved descriptors", source=name)
    suffix = p.suffix.lower()
    if suffix not in SAVED_SUFFIXES:
        raise InputError(
            f"saved descriptors must be .npy or .npz, not {p.suffix or 'no suffix'!r}", source=name
        )
    provenance = None
    try:
        data = np.load(p, allow_pickle=False)
        if suffix == ".npz":
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(
                    "not a .npz archive (it holds a single array: save it as .npy)", source=name
                )
            with data:
                if "X" not in data.files:
                    raise InputError(
                        f"no array 'X' in the archive (it has {sorted(data.files)})", source=name
                    )
                X = data["X"]
                provenance = {key: _plain(data[key]) for key in data.files if key != "X"}
        else:
            if isinstance(data, np.lib.npyio.NpzFile):
                data.close()
                raise InputError("is a .npz archive, not a .npy array", source=name)
            X = data
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(
                "holds pickled Python objects, which are never loaded (save a plain numeric array)",
                source=name,
            ) from None
        raise InputError(f"not a NumPy {suffix} file ({exc})", source=name) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read saved descriptors ({type(exc).__name__}: {msg})", source=name
        ) from None
    return check_descriptor_array(X, source=name), provenance


def check_descriptor_array(X, *, source: str = "<memory>") -> np.ndarray:
    """`X` as a float64 (n, width) array of finite numbers, or InputError naming `source`."""
    X = np.asarray(X)
    if X.dtype == object or not (
        np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)
    ):
        raise InputError(f"descriptors must be real numbers, got dtype {X.dtype}", source=source)
    if X.ndim != 2:
        raise InputError(
            f"descriptors must be a 2-D array (environments x features), got shape {X.shape}",
            source=source,
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"descriptors are empty (shape {X.shape})", source=source)
    X = X.astype(np.float64, copy=False)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise InputError(f"descriptor row {int(np.argmax(bad))} is NaN or infinite", source=source)
    return X


def _plain(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value
