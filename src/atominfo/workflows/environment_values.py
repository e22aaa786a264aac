"""Per-environment values read from a file: one number per atom, in order.

How `atominfo calibrate` reads its errors and dH, and `atominfo smooth` the
values of its reference: a .npy array, or the per-atom values of every frame
of a structure file (extxyz), either an array by name or the norm of the
difference of two per-atom force arrays (`uncertainty.force_errors`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atominfo.errors import InputError


def read_environment_values(
    path,
    what: str,
    array: str,
    *,
    forces: tuple[str, str] | None = None,
    missing: str | None = None,
) -> np.ndarray:
    """One real number per environment, from a .npy file or the frames of a structure file.

    Parameters
    ----------
    path : a .npy file (a 1-D array, or one row), or a structure file (extxyz).
    what : what the values are, for messages ("errors", "dH").
    array : the per-atom array of a structure file holding them (e.g. 'error').
    forces : (reference, predicted) names of per-atom force arrays: where the
        first frame has no `array`, the values are the norms of their
        difference (`uncertainty.force_errors`).
    missing : the message where a frame lacks `array` (default: names it).

    Returns
    -------
    float array (n_environments,), frames one after the other.

    Raises
    ------
    InputError
        Naming the file (and frame) for an unreadable file, values that are
        not real numbers or not one per environment, or a missing array.
    """
    from atominfo.structures.frames import check_input_file, read_frames
    from atominfo.workflows.uncertainty import force_errors

    path = Path(path)
    if path.suffix == ".npy":
        check_input_file(str(path))  # a FIFO would block np.load
        return _npy_values(path, what)
    frames = [f.atoms for f in read_frames(str(path))]
    if forces is not None and array not in frames[0].arrays:
        try:
            return force_errors(frames, *forces)
        except InputError as exc:
            raise exc.located(str(path)) from None
    absent = [i for i, f in enumerate(frames) if array not in f.arrays]
    if absent:
        raise InputError(
            missing or f"no per-atom array {array!r}", source=str(path), frame=absent[0]
        )
    return np.concatenate([np.asarray(f.arrays[array], dtype=float).ravel() for f in frames])


def _npy_values(path: Path, what: str) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for a bad file
        raise InputError(f"cannot read as .npy ({type(exc).__name__})", source=str(path)) from None
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        raise InputError(f"{what} must be real numbers", source=str(path))
    values = values.astype(float)
    if values.ndim == 2 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 1:
        raise InputError(
            f"{what} must be one value per environment, got shape "
            f"{values.shape} (one bandwidth only)",
            source=str(path),
        )
    return values
