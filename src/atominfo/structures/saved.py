"""Descriptors saved to disk (.npy, or .npz with key X), read back with clear errors.

Every command that takes a reference (``--ref``) can be given saved
descriptors instead of structures; this module is the one reader for them
(`read_reference`), and writes the parameters a .npz records (`save_descriptors`).

A .npz written by ``atominfo descriptors`` records what its descriptors were
computed with: format version, k, cutoff, rescale volume, species blocks of
the multicomponent descriptor and the elements of the structures described.
Read as a reference, a parameter that differs from the run's is refused:
descriptors of different parameters are not comparable, and comparing them
gives a number, not an error. A .npy (or a .npz without these parameters)
holds the bare matrix: it is accepted with a warning that its parameters
cannot be checked (only its width is).
"""

from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atominfo.errors import InputError
from atominfo.structures.frames import check_input_file

SAVED_SUFFIXES = (".npy", ".npz")
# Version of the parameters recorded in a .npz; a reader refuses a newer one.
FORMAT_VERSION = 1
_PARAMETER_KEYS = ("format_version", "k", "cutoff", "rescale_volume", "species", "elements")


class UncheckedDescriptorsWarning(UserWarning):
    """Saved descriptors record no parameters: they cannot be checked against the run's."""


def is_saved_descriptors(path) -> bool:
    """Whether `path` names saved descriptors (by its suffix)."""
    return Path(path).suffix.lower() in SAVED_SUFFIXES


@dataclass(frozen=True)
class DescriptorParameters:
    """What a descriptor matrix was computed with.

    Attributes
    ----------
    k : int
    cutoff : float, Å
    rescale_volume : float or None, Å^3 per atom (None: not rescaled)
    species : tuple of str
        Species blocks of the multicomponent descriptor, in column order;
        empty for the plain descriptor (also what a single species gives).
    elements : tuple of str or None
        Sorted chemical symbols of the structures described (None: unknown).
    """

    k: int
    cutoff: float
    rescale_volume: float | None = None
    species: tuple[str, ...] = ()
    elements: tuple[str, ...] | None = None

    @staticmethod
    def blocks(species: Sequence[str] | None) -> tuple[str, ...]:
        """The species blocks a species list gives: none for fewer than two species."""
        return tuple(species) if species is not None and len(species) >= 2 else ()

    @property
    def width(self) -> int:
        return (2 * self.k - 1) * (1 + len(self.species)) if self.species else 2 * self.k - 1

    def arrays(self) -> dict:
        """The parameters as arrays of a .npz archive."""
        return {
            "format_version": np.int64(FORMAT_VERSION),
            "k": np.int64(self.k),
            "cutoff": np.float64(self.cutoff),
            # NaN: not rescaled (an archive holds no None)
            "rescale_volume": np.float64(
                np.nan if self.rescale_volume is None else self.rescale_volume
            ),
            "species": np.array(self.species, dtype=str),
            "elements": np.array(self.elements or (), dtype=str),
        }


def describe_species(species: tuple[str, ...]) -> str:
    return f"--multicomponent (species {', '.join(species)})" if species else "the plain descriptor"


def _describe_rescale(volume: float | None) -> str:
    return "no --rescale-volume" if volume is None else f"--rescale-volume {volume:g} Å^3/atom"


def save_descriptors(fh, X: np.ndarray, parameters: DescriptorParameters, **index) -> None:
    """Write `X` and its `parameters` (and any per-row `index` arrays) to an open .npz."""
    np.savez(fh, X=X, **parameters.arrays(), **index)


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
    suffix = p.suffix.lower()
    if suffix not in SAVED_SUFFIXES:
        raise InputError(
            f"saved descriptors must be .npy or .npz, not {p.suffix or 'no suffix'!r}", source=name
        )
    check_input_file(name)  # missing, a directory, or a FIFO (which would block np.load)
    provenance = None
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
        # np.load takes any other file for a pickle, and says so
        if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
            raise InputError(
                f"not a NumPy {suffix} file (neither a .npy array nor a .npz archive)",
                source=name,
            )
        data = np.load(p, allow_pickle=False)
        if suffix == ".npz":
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(
                    "not a .npz archive (it holds a single array: save it as .npy)", source=name
                )
            with data:
                if COMPACT_KEY in data.files:
                    raise InputError(
                        "is a compact reference (`atominfo reference`), not descriptors: "
                        "query it with `atominfo inside FILE --ref REF`",
                        source=name,
                    )
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
        raise InputError(f"not a NumPy {suffix} file ({_first_line(exc)})", source=name) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(
            f"cannot read saved descriptors ({type(exc).__name__}: {_first_line(exc)})",
            source=name,
        ) from None
    return check_descriptor_array(X, source=name), provenance


def saved_parameters(provenance: dict | None, *, source: str) -> DescriptorParameters | None:
    """The parameters recorded in a .npz's `provenance`, or None where none are recorded.

    Raises InputError naming `source` for a newer format version, or for
    parameters that are incomplete or not of their type.
    """
    if provenance is None or "format_version" not in provenance:
        return None
    try:
        version = int(provenance["format_version"])
        if version > FORMAT_VERSION:
            raise InputError(
                f"saved descriptors of format version {version}: this atominfo reads "
                f"version {FORMAT_VERSION} (upgrade atominfo)",
                source=source,
            )
        missing = [key for key in _PARAMETER_KEYS if key not in provenance]
        if missing:
            raise InputError(
                f"saved descriptor parameters are incomplete (no {', '.join(missing)})",
                source=source,
            )
        volume = float(provenance["rescale_volume"])
        parameters = DescriptorParameters(
            k=int(provenance["k"]),
            cutoff=float(provenance["cutoff"]),
            rescale_volume=None if math.isnan(volume) else volume,
            species=tuple(str(s) for s in np.atleast_1d(provenance["species"])),
            elements=tuple(str(s) for s in np.atleast_1d(provenance["elements"])) or None,
        )
    except InputError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"saved descriptor parameters are not readable ({_first_line(exc)})", source=source
        ) from None
    return parameters


def saved_elements(paths) -> set[str]:
    """Elements and species blocks recorded in saved descriptors (none for a .npy).

    Lets a multicomponent run take a saved reference's species into its species list.
    """
    found: set[str] = set()
    for path in paths:
        if Path(path).suffix.lower() != ".npz":
            continue
        try:  # the parameters only; `read_reference` reports a file it cannot read
            check_input_file(str(path))
            with np.load(path, allow_pickle=False) as data:
                provenance = {key: _plain(data[key]) for key in data.files if key != "X"}
        except Exception:
            continue
        parameters = saved_parameters(provenance, source=str(path))
        if parameters is not None:
            found.update(parameters.species, parameters.elements or ())
    return found


@dataclass(frozen=True)
class SavedDescriptors:
    """One file of saved descriptors, read and checked against a run (`read_reference`)."""

    X: np.ndarray
    parameters: DescriptorParameters | None  # None: the file records none
    source: str


def read_reference(
    paths,
    *,
    k: int,
    cutoff: float,
    rescale_volume: float | None = None,
    species: Sequence[str] | None = None,
) -> list[SavedDescriptors]:
    """Saved descriptors of a reference, each file checked against the run that uses it.

    Parameters
    ----------
    paths : list of paths, each a .npy or .npz.
    k, cutoff, rescale_volume : the run's descriptor parameters (cutoff in Å,
        volume in Å^3 per atom or None).
    species : list of str or None, the run's multicomponent species list
        (None, or one species: the plain descriptor).

    Returns
    -------
    list of SavedDescriptors, one per file. Their species blocks may still
    differ from the run's (`descriptor.multicomponent.to_species_layout`
    converts or refuses).

    Raises
    ------
    InputError
        Naming the file: unreadable, or computed with a k, cutoff or rescale
        volume other than the run's (saying both), or, for a file that records
        no parameters, a width other than the run's descriptors'. Such a file
        (a .npy) gives an `UncheckedDescriptorsWarning`: nothing else about it
        can be checked.
    """
    run = DescriptorParameters(
        k=int(k),
        cutoff=float(cutoff),
        rescale_volume=None if rescale_volume is None else float(rescale_volume),
        species=DescriptorParameters.blocks(species),
    )
    out = []
    for path in paths:
        name = str(path)
        X, provenance = load_descriptors(path)
        saved = saved_parameters(provenance, source=name)
        if saved is None:
            if X.shape[1] != run.width:
                raise InputError(
                    f"saved descriptors have {X.shape[1]} columns, this run's have "
                    f"{run.width} (k={run.k}, {describe_species(run.species)}): they were "
                    "computed with other parameters",
                    source=name,
                )
            warnings.warn(
                f"{name}: saved descriptors record no parameters (a .npy, or a .npz not "
                f"written by `atominfo descriptors`): their k, cutoff, rescale volume and "
                f"species cannot be checked against this run's (k={run.k}, cutoff "
                f"{run.cutoff:g} Å); save them as .npz to have them checked",
                UncheckedDescriptorsWarning,
                stacklevel=2,
            )
        else:
            _check_parameters(saved, run, X, name)
        out.append(SavedDescriptors(X, saved, name))
    if not out:
        raise InputError("no saved descriptors given")
    return out


def _check_parameters(saved: DescriptorParameters, run: DescriptorParameters, X, name) -> None:
    if X.shape[1] != saved.width:
        raise InputError(
            f"saved descriptors have {X.shape[1]} columns, but their recorded parameters "
            f"(k={saved.k}, {describe_species(saved.species)}) give {saved.width}",
            source=name,
        )
    check_same_parameters(saved, run, name)


def check_same_parameters(saved: DescriptorParameters, run: DescriptorParameters, name) -> None:
    """InputError naming file `name` where `saved` has another k, cutoff or rescale volume
    than `run` (saying both)."""
    differences = []
    if saved.k != run.k:
        differences.append(f"k={saved.k}, this run uses k={run.k}")
    if not math.isclose(saved.cutoff, run.cutoff, rel_tol=1e-12):
        differences.append(f"cutoff {saved.cutoff:g} Å, this run uses {run.cutoff:g} Å")
    if (saved.rescale_volume is None) != (run.rescale_volume is None) or (
        saved.rescale_volume is not None
        and run.rescale_volume is not None
        and not math.isclose(saved.rescale_volume, run.rescale_volume, rel_tol=1e-12)
    ):
        differences.append(
            f"{_describe_rescale(saved.rescale_volume)}, this run uses "
            f"{_describe_rescale(run.rescale_volume)}"
        )
    if differences:
        raise InputError(
            "descriptors were computed with "
            + "; and with ".join(differences)
            + ": recompute them with this run's parameters (or run with theirs)",
            source=name,
        )


# -- compact references (`atominfo.workflows.compact_reference`) -------------------------

# Key that marks a compact reference, holding its format version; a reader refuses a newer one.
COMPACT_KEY = "compact_version"
COMPACT_VERSION = 1


def save_compact(fh, arrays: dict, parameters: DescriptorParameters) -> None:
    """Write a compact reference's `arrays` and descriptor `parameters` to an open .npz
    (compressed: most multicomponent blocks of a species' centres are zero)."""
    np.savez_compressed(
        fh, **{COMPACT_KEY: np.int64(COMPACT_VERSION)}, **parameters.arrays(), **arrays
    )


def read_compact(path, keys: Sequence[str]) -> tuple[dict, DescriptorParameters]:
    """The arrays `keys` of a compact reference and the descriptor parameters it records.

    Raises InputError naming the file: missing or unreadable, not a compact
    reference, of a newer format, or without one of `keys` or the parameters.
    Arrays of pickled objects are never loaded.
    """
    name = str(path)
    if Path(path).suffix.lower() != ".npz":
        raise InputError("a compact reference is a .npz file", source=name)
    check_input_file(name)
    try:
        with open(path, "rb") as fh:
            if not fh.read(2).startswith(b"PK"):
                raise InputError("not a .npz archive", source=name)
        with np.load(path, allow_pickle=False) as data:
            if COMPACT_KEY not in data.files:
                raise InputError(
                    "not a compact reference (build one with `atominfo reference`)",
                    source=name,
                )
            version = int(data[COMPACT_KEY])
            if version > COMPACT_VERSION:
                raise InputError(
                    f"compact reference of format version {version}: this atominfo reads "
                    f"version {COMPACT_VERSION} (upgrade atominfo)",
                    source=name,
                )
            missing = [key for key in keys if key not in data.files]
            if missing:
                raise InputError(
                    f"compact reference is incomplete (no {', '.join(missing)})", source=name
                )
            arrays = {key: data[key] for key in keys}
            provenance = {key: _plain(data[key]) for key in _PARAMETER_KEYS if key in data.files}
    except InputError:
        raise
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(
            f"cannot read the compact reference ({type(exc).__name__}: {_first_line(exc)})",
            source=name,
        ) from None
    parameters = saved_parameters(provenance, source=name)
    if parameters is None:
        raise InputError("compact reference records no descriptor parameters", source=name)
    return arrays, parameters


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


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value
