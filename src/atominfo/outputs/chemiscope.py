"""Chemiscope files: the structures with per-structure and per-atom properties, to explore
interactively.

`write_chemiscope` writes the JSON input of the chemiscope viewer (.json, or
gzip-compressed .json.gz) without needing the ``chemiscope`` package: open it
by dropping it on the viewer at https://chemiscope.org, or in Jupyter with
``chemiscope.show_input("out.json.gz")`` (``pip install chemiscope``, or
atominfo's ``report`` extra). Structure properties appear on the map (each
structure a point), atom properties colour the atoms of the structure viewer
and, with the map's target set to atoms, one point per atom.

`report_properties`, `dh_properties` and `selection_properties` name the
properties of the ``report``, ``dh`` and ``compress`` commands.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from atominfo.errors import InputError
from atominfo.runs.atomic import atomic_output

SUFFIXES = (".json.gz", ".json")
# Cutoff (Å) of the environment drawn around an atom selected in the viewer.
DEFAULT_CUTOFF = 5.0


def _structure(atoms) -> dict:
    """One structure in chemiscope's format: symbols, Cartesian positions (Å), cell."""
    pos = np.asarray(atoms.positions, dtype=float)
    out = {
        "size": len(atoms),
        "names": [str(s) for s in atoms.get_chemical_symbols()],
        "x": pos[:, 0].tolist(),
        "y": pos[:, 1].tolist(),
        "z": pos[:, 2].tolist(),
    }
    cell = np.asarray(atoms.cell.array, dtype=float)
    if np.all(atoms.cell.lengths() > 0):
        out["cell"] = cell.ravel().tolist()  # a, b, c vectors, one after another
    return out


def _values(name: str, values, expected: int, target: str) -> list:
    """Property values as JSON numbers or strings; refuses a wrong length or a non-finite
    number (chemiscope's JSON has no NaN)."""
    values = list(values.tolist() if isinstance(values, np.ndarray) else values)
    if len(values) != expected:
        raise InputError(
            f"chemiscope property {name!r} has {len(values)} values for {expected} {target}s"
        )
    out: list[str | float] = []
    for v in values:
        if isinstance(v, (str, np.str_)):
            out.append(str(v))
        elif isinstance(v, (bool, np.bool_)):
            out.append("yes" if v else "no")
        else:
            x = float(v)
            if not math.isfinite(x):
                raise InputError(f"chemiscope property {name!r} holds a non-finite value")
            out.append(x)
    return out


def chemiscope_input(
    structures: Sequence,
    structure_properties: Mapping | None = None,
    atom_properties: Mapping | None = None,
    *,
    name: str = "atominfo",
    description: str = "",
    cutoff: float = DEFAULT_CUTOFF,
    units: Mapping[str, str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    map_axes: Sequence[str] | None = None,
) -> dict:
    """The chemiscope input dictionary.

    Parameters
    ----------
    structures : sequence of ase.Atoms (n_structures).
    structure_properties : {name: values (n_structures,)}: numbers, strings or bools
        (written as "yes"/"no").
    atom_properties : {name: values (total atoms,)}, atoms of all structures one
        structure after another (the order of `FrameSet.X`).
    name, description : shown by the viewer.
    cutoff : Å, radius of the environment highlighted around a selected atom.
    units, descriptions : {property name: text}, optional.
    map_axes : (x, y[, colour]) structure properties shown on the map at opening.

    Returns
    -------
    dict with "meta", "structures", "properties" and, with atom properties,
    "environments" (one per atom), plus "settings" when `map_axes` is given.
    """
    structures = list(structures)
    if not structures:
        raise InputError("no structures to write to the chemiscope file")
    n_atoms = sum(len(a) for a in structures)
    units, descriptions = dict(units or {}), dict(descriptions or {})
    properties = {}
    for target, props, count in (
        ("structure", structure_properties, len(structures)),
        ("atom", atom_properties, n_atoms),
    ):
        for key, values in (props or {}).items():
            if key in properties:
                raise InputError(f"chemiscope property {key!r} given twice")
            entry = {"target": target, "values": _values(key, values, count, target)}
            if key in units:
                entry["units"] = units[key]
            if key in descriptions:
                entry["description"] = descriptions[key]
            properties[key] = entry
    data = {
        "meta": {"name": name, **({"description": description} if description else {})},
        "structures": [_structure(a) for a in structures],
        "properties": properties,
    }
    if atom_properties:
        data["environments"] = [
            {"structure": s, "center": i, "cutoff": float(cutoff)}
            for s, a in enumerate(structures)
            for i in range(len(a))
        ]
    if map_axes:
        axes = dict(zip(("x", "y", "color"), map_axes))
        for key in axes.values():
            if properties.get(key, {}).get("target") != "structure":
                raise InputError(f"map axis {key!r} is not a structure property")
        data["settings"] = {
            "map": {k: {"property": v} for k, v in axes.items()},
            "target": "structure",
        }
    return data


def write_chemiscope(
    path, structures, structure_properties=None, atom_properties=None, **options
) -> None:
    """Write a chemiscope file (.json or gzip-compressed .json.gz) atomically.

    Parameters as `chemiscope_input` (`options` are its keywords).
    """
    if not str(path).endswith(SUFFIXES):
        raise InputError(f"chemiscope file must end in {' or '.join(SUFFIXES)}", source=str(path))
    data = chemiscope_input(structures, structure_properties, atom_properties, **options)
    text = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    with atomic_output(path) as tmp:
        if str(path).endswith(".gz"):
            with gzip.open(tmp, "wb", compresslevel=6) as fh:
                fh.write(text)
        else:
            tmp.write_bytes(text)


def _per_bandwidth(name: str, values, bandwidths) -> dict:
    """{name: values} for one bandwidth, {name (h=...): row} for several."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        return {name: values}
    return {f"{name} (h={h:g})": row for h, row in zip(bandwidths, values)}


DH_UNITS = "nats"


def dh_properties(dH, sizes, bandwidths) -> tuple[dict, dict]:
    """(structure, atom) properties of per-atom dH against a reference.

    Parameters
    ----------
    dH : array (n_atoms,) or (n_bandwidths, n_atoms), nats, frames one after another.
    sizes : atoms per frame, (n_frames,).
    bandwidths : the bandwidth of each row of `dH`, 1/Å.
    """
    dH = np.atleast_2d(np.asarray(dH, dtype=float))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    novel = np.add.reduceat((dH > 0).astype(float), starts, axis=1) / np.asarray(sizes)
    worst = np.maximum.reduceat(dH, starts, axis=1)
    one = len(dH) == 1
    structure = {
        **_per_bandwidth("novelty", novel[0] if one else novel, bandwidths),
        **_per_bandwidth("max dH", worst[0] if one else worst, bandwidths),
    }
    atom = _per_bandwidth("dH", dH[0] if one else dH, bandwidths)
    return structure, atom


def report_properties(report, selected_size: int | None = None) -> tuple[dict, dict]:
    """(structure, atom) properties of a `DatasetReport`.

    Structures: group, index (frame number), atoms, H contribution (nats; the
    structures' contributions add up to the dataset's H), kept by msc at each
    compression size ("yes"/"no"), and with a reference novelty (fraction of
    atoms with dH > 0) and max dH (nats). Atoms: surprise (nats, the atom's
    term of H) and, with a reference, dH (nats).
    """
    data = report.data
    structure = {
        "group": list(report.structure_group),
        "frame": np.arange(len(data), dtype=float),
        "atoms": data.sizes.astype(float),
        "H contribution": report.contribution,
    }
    for m, flags in report.selected.items():
        structure[f"kept by msc ({m} structures)"] = flags
    atom = {"surprise": report.surprise}
    if report.dH is not None:
        structure["novelty"] = report.structure_novelty
        structure["max dH"] = report.structure_max_dH
        atom["dH"] = report.dH
    return structure, atom


def selection_properties(data, selection, dH=None) -> tuple[dict, dict]:
    """(structure, atom) properties of a compression `Selection` of the FrameSet `data`.

    Structures: frame number, atoms, kept ("yes"/"no") and pick (the step at
    which msc/fps picked it, 1 first; 0 when not kept). Atoms, when `dH` (array
    (n_environments,), nats) is given: dH against the kept structures (plus the
    reference), > 0 where the selection does not cover the atom.
    """
    kept = np.zeros(len(data), dtype=bool)
    kept[selection.indices] = True
    pick = np.zeros(len(data))
    pick[selection.indices] = np.arange(1, len(selection.indices) + 1)
    structure = {
        "frame": np.arange(len(data), dtype=float),
        "atoms": data.sizes.astype(float),
        "kept": kept,
        "pick": pick,
    }
    atom = {} if dH is None else {"dH vs selection": np.asarray(dH, dtype=float)}
    return structure, atom


REPORT_UNITS = {
    "H contribution": "nats",
    "max dH": "nats",
    "surprise": "nats",
    "dH": "nats",
    "novelty": "fraction of atoms with dH > 0",
}
REPORT_DESCRIPTIONS = {
    "H contribution": "this structure's share of the dataset entropy H (sum over structures = H)",
    "surprise": "log n - log sum_j K_h(x_i, x_j): the atom's term of H (mean over atoms = H)",
    "dH": "differential entropy against the reference; > 0 is novel",
    "max dH": "largest dH of the structure's atoms against the reference",
    "novelty": "fraction of the structure's atoms with dH > 0 against the reference",
}


def write_report_chemiscope(
    path, report, *, cutoff: float = DEFAULT_CUTOFF, name: str = "atominfo report"
) -> None:
    """Write a `DatasetReport` as a chemiscope file (see `report_properties`)."""
    structure, atom = report_properties(report)
    x, y = ("H contribution", "max dH") if report.dH is not None else ("frame", "H contribution")
    write_chemiscope(
        path,
        report.data.atoms,
        structure,
        atom,
        name=name,
        cutoff=cutoff,
        units=REPORT_UNITS,
        descriptions=REPORT_DESCRIPTIONS,
        description=f"QUESTS information of the dataset at h = {report.bandwidth:g} 1/Å",
        map_axes=(x, y, "group"),
    )


def write_dh_chemiscope(path, frames, h, *, cutoff: float = DEFAULT_CUTOFF) -> None:
    """Write the frames of a dH run with their dH (per atom) and novelty and max dH (per
    structure).

    Parameters
    ----------
    frames : sequence of (ase.Atoms, dH) pairs, dH of shape (n_atoms,) or
        (n_bandwidths, n_atoms), nats (e.g. from `iter_trajectory_dh`).
    h : float or list of floats, the bandwidth(s) of the rows of dH, 1/Å.
    """
    frames = list(frames)
    if not frames:
        raise InputError("no frames to write to the chemiscope file")
    hs = list(np.atleast_1d(h))
    dH = np.concatenate([np.atleast_2d(d) for _, d in frames], axis=1)
    structure, atom = dh_properties(dH if len(hs) > 1 else dH[0], [len(a) for a, _ in frames], hs)
    write_chemiscope(
        path,
        [a for a, _ in frames],
        structure,
        atom,
        name="atominfo dH",
        cutoff=cutoff,
        units={k: DH_UNITS for k in (*structure, *atom) if not k.startswith("novelty")},
        description="per-atom differential entropy dH against the reference (dH > 0: novel)",
    )


def write_selection_chemiscope(
    path, data, selection, h, reference=None, *, cutoff: float = DEFAULT_CUTOFF, engine=None
) -> None:
    """Write a compression's structures: kept or not, pick order, and per-atom dH of every
    environment against the kept environments (plus `reference`, array (n_ref, d)), nats.
    """
    from atominfo.information import delta_entropy

    known = data.environments(sorted(selection.indices))
    if reference is not None:
        known = np.concatenate([known, reference])
    dH = delta_entropy(data.X, known, h, engine=engine)
    structure, atom = selection_properties(data, selection, dH)
    write_chemiscope(
        path,
        data.atoms,
        structure,
        atom,
        name="atominfo compress",
        cutoff=cutoff,
        units={"dH vs selection": DH_UNITS},
        descriptions={
            "dH vs selection": "dH against the kept structures"
            + (" and the reference" if reference is not None else "")
            + "; > 0: not covered by the selection"
        },
        description=f"{selection.method} selection of {selection.n_structures} "
        f"of {selection.total_structures} structures",
        map_axes=("frame", "pick", "kept"),
    )
