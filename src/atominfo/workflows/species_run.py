"""Species-resolved entropy and dH of structure files (`atominfo entropy --species`,
`atominfo overlap --species`).

The species are those of the data (the chemical symbols of every structure
given in the run), not of which files are given. Each atom is described by
the multicomponent descriptor over that species list (its neighbours of all
species, then of each species: so chemical order is seen), or with
``descriptor="plain"`` by the element-blind descriptor; the distances of
either do not depend on the list beyond the species a structure holds
(`atominfo.descriptor.multicomponent`), so a file's numbers do not depend on
the other files of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from atominfo import params
from atominfo.descriptor import load_frames
from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH
from atominfo.descriptor.multicomponent import resolve_species
from atominfo.results import Result
from atominfo.settings import DescriptorSpec, Reading
from atominfo.structures.frames import iter_frames
from atominfo.workflows.species import (
    SpeciesNovelty,
    species_delta_entropy,
    species_entropy,
)


def data_species(*inputs, reading: Reading | None = None) -> list[str]:
    """The sorted chemical symbols of every structure in `inputs` (each: Atoms, a list
    of Atoms, a path or a list of paths)."""
    reading = reading or Reading()
    found: set[str] = set()
    for structures in inputs:
        found.update(resolve_species(iter_frames(structures, **reading.kwargs()), True) or ())
    return sorted(found)


def describe_with_species(
    structures,
    species: Sequence[str],
    *,
    spec: DescriptorSpec | None = None,
    reading: Reading | None = None,
    descriptor: str = "multicomponent",
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptor rows of every atom of `structures` and each row's chemical symbol.

    `species` is the run's species list (`data_species`); `descriptor` is
    "multicomponent" (neighbours resolved by species) or "plain" (element-blind).
    """
    spec = spec or DescriptorSpec()
    descriptor = params.check("species_descriptor", descriptor, label="descriptor")
    data = load_frames(
        structures,
        spec.k,
        spec.cutoff,
        reading=reading,
        multicomponent=list(species) if descriptor == "multicomponent" else False,
        rescale_volume=spec.rescale_volume,
        progress=progress,
        keep_atoms=True,
    )
    symbols = np.concatenate([np.asarray(a.get_chemical_symbols()) for a in data.atoms])
    return data.X, symbols


@dataclass(repr=False)
class SpeciesEntropyTable(Result):
    """Species-resolved entropy of each set (file, and "all" for several).

    Attributes
    ----------
    sets : list of (name, `SpeciesEntropy`).
    species : the run's species list (of the data).
    descriptor : "multicomponent" or "plain".
    bandwidth : h, 1/Å.
    """

    sets: list
    species: list
    descriptor: str
    bandwidth: float

    def columns(self) -> dict[str, list]:
        """One row per set and species; then per set a row 'total' (n: all, p: 1, H: joint
        H, D: joint D) and a row 'chemical' (H: H(species)); for a sampled run also
        H_low, H_high (simultaneous 95% bounds; the chemical term is exact)."""
        keys = ("species", "n", "p", "H", "D", "H_low", "H_high")
        out: dict[str, list] = {k: [] for k in ("set", *keys)}
        for name, r in self.sets:
            cols = r.columns()
            lows, highs = cols.get("H_low", cols["H"]), cols.get("H_high", cols["H"])
            D = r.total_diversity if np.isfinite(r.total_diversity) else None
            low, high = (r.total, r.total) if r.total_low is None else (r.total_low, r.total_high)
            extra: list[tuple] = [("total", int(np.sum(r.n)), 1.0, r.total, D, low, high)]
            extra.append(("chemical", None, None, r.chemical, None, r.chemical, r.chemical))
            per = zip(*(cols[k] for k in ("species", "n", "p", "H", "D")), lows, highs)
            for row in [*per, *extra]:
                for key, value in zip(keys, row):
                    out[key].append(value)
                out["set"].append(name)
        if self.sets and self.sets[0][1].n_samples is None:
            del out["H_low"], out["H_high"]
        return out

    def to_dict(self) -> dict:
        return {
            "bandwidth": self.bandwidth,
            "descriptor": self.descriptor,
            "species": list(self.species),
            "results": [{"set": name, **r.to_dict()} for name, r in self.sets],
        }

    def to_pandas(self):
        """The table (`columns`) as a `pandas.DataFrame`."""
        from atominfo.outputs.tables import data_frame

        return data_frame(self.columns(), "SpeciesEntropyTable")

    def _repr_html_(self) -> str:
        from atominfo.outputs.tables import html_table

        caption = f"SpeciesEntropyTable (nats; h = {self.bandwidth:g} 1/Å; {self.descriptor})"
        return html_table(self.columns(), caption)


def species_entropy_table(
    files: Sequence,
    h: float = DEFAULT_BANDWIDTH,
    *,
    spec: DescriptorSpec | None = None,
    reading: Reading | None = None,
    descriptor: str = "multicomponent",
    engine=None,
    progress: Callable[[str, int], None] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> SpeciesEntropyTable:
    """Species-resolved entropy of each of `files` (and of all together for several).

    Parameters
    ----------
    files : structure files (or lists of Atoms, named "set i"), one set each.
    h : bandwidth, 1/Å.
    spec, reading : descriptor settings and frame selection (the species list is
        the data's: `spec.species` is ignored).
    descriptor : "multicomponent" (default) or "plain".
    engine : EngineOptions or None.
    progress : called with (set name, environments done), with 0 as each set starts.
    sample, seed : None (exact), or M queries per species of more than M
        environments (`atominfo.workflows.species.species_entropy`).
    """
    h = params.check("bandwidth", h, label="bandwidth h")
    species = data_species(*files, reading=reading)
    blocks = [
        describe_with_species(f, species, spec=spec, reading=reading, descriptor=descriptor)
        for f in files
    ]
    named = [(_name(f, i), X, z) for i, (f, (X, z)) in enumerate(zip(files, blocks))]
    if len(files) > 1:
        named.append(
            ("all", np.concatenate([X for X, _ in blocks]), np.concatenate([z for _, z in blocks]))
        )
    sets = []
    for name, X, z in named:
        step = None
        if progress is not None:
            progress(name, 0)
            step = _named(progress, name)
        r = species_entropy(X, z, h, engine=engine, progress=step, sample=sample, seed=seed)
        r.descriptor = descriptor
        sets.append((name, r))
    return SpeciesEntropyTable(sets, species, descriptor, float(h))


def species_novelty(
    test,
    reference,
    h: float = DEFAULT_BANDWIDTH,
    *,
    spec: DescriptorSpec | None = None,
    reading: Reading | None = None,
    descriptor: str = "multicomponent",
    engine=None,
    progress: Callable[[int], None] | None = None,
) -> SpeciesNovelty:
    """dH of every atom of `test` against the atoms of its own species in `reference`.

    `reading` selects the test frames; the reference is read whole. The
    species list is that of test and reference together. A species the
    reference lacks: its atoms are novel by construction (see
    `atominfo.workflows.species.species_delta_entropy`).
    """
    h = params.check("bandwidth", h, label="bandwidth h")
    whole = Reading(type_map=(reading or Reading()).type_map)
    species = data_species(test, reading=reading)
    species = sorted(set(species) | set(data_species(reference, reading=whole)))
    Y, zy = describe_with_species(test, species, spec=spec, reading=reading, descriptor=descriptor)
    X, zx = describe_with_species(
        reference, species, spec=spec, reading=whole, descriptor=descriptor
    )
    result = species_delta_entropy(Y, zy, X, zx, h, engine=engine, progress=progress)
    result.descriptor = descriptor
    return result


def _name(structures, i: int) -> str:
    """A set's name: its path, or "set i" for structures in memory."""
    return str(structures) if isinstance(structures, (str, os.PathLike)) else f"set {i}"


def _named(progress: Callable[[str, int], None], name: str) -> Callable[[int], None]:
    def advance(n: int) -> None:
        progress(name, n)

    return advance
