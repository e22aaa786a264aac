"""Small value objects for the settings that travel together.

`Reading` says which frames of a file are read and how; `DescriptorSpec`
says how environments become descriptors. Each is validated once, when it
is made (through `atominfo.params`), and then passed whole instead of its
parts, so a workflow takes two arguments where it took seven, and a
checkpoint records them as they are (`to_dict`). `with_keywords` lets a
workflow keep taking the fields as keywords (``k=16``, ``index="::2"``)
beside the bundles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reading:
    """Which frames of the input files are read, and how.

    Parameters
    ----------
    index : ASE frame selection: ``":"`` every frame, ``"-1"`` the last,
        ``"::10"`` every tenth, ``"3:7"`` (an int selects one frame).
    format : file format as ASE names it (None: from the file name).
    type_map : elements of numeric LAMMPS atom types, ``{1: "Cu"}`` or ``"1=Cu,2=O"``.
    """

    index: str | int = ":"
    format: str | None = None
    type_map: Mapping[int, str] | str | None = field(default=None, hash=False)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the readers (`atominfo.structures.frames.iter_frames`)."""
        return {"index": self.index, "format": self.format, "type_map": self.type_map}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for checkpoints and JSON outputs."""
        type_map: Any = self.type_map
        if isinstance(type_map, Mapping):
            type_map = {str(k): v for k, v in type_map.items()}
        return {"index": self.index, "format": self.format, "type_map": type_map}


@dataclass(frozen=True)
class DescriptorSpec:
    """How an atom's environment becomes a descriptor row.

    Parameters
    ----------
    k : neighbours per environment (None: the reference's, else 32).
    cutoff : Å (None: the reference's, else 5).
    rescale_volume : Å^3 per atom; each frame is rescaled isotropically to it first.
    species : experimental multicomponent blocks, one per element, in this order.
    """

    k: int | None = None
    cutoff: float | None = None
    rescale_volume: float | None = None
    species: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        from atominfo import params

        object.__setattr__(self, "k", params.check_optional("k", self.k))
        object.__setattr__(self, "cutoff", params.check_optional("cutoff", self.cutoff))
        object.__setattr__(
            self, "rescale_volume", params.check_optional("rescale_volume", self.rescale_volume)
        )
        if self.species is not None:
            species = self.species
            if isinstance(species, str) or not isinstance(species, Sequence):
                species = (species,)
            object.__setattr__(self, "species", tuple(str(s) for s in species))

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the trajectory scorers (`atominfo.workflows.trajectory`)."""
        return {
            "k": self.k,
            "cutoff": self.cutoff,
            "rescale_volume": self.rescale_volume,
            "species": None if self.species is None else list(self.species),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for checkpoints and JSON outputs."""
        return self.kwargs()


def with_keywords(keywords: dict[str, Any], *bundles: Any) -> list[Any]:
    """`bundles` (frozen dataclasses such as `Reading`, `DescriptorSpec`) with the fields
    named in `keywords` replaced (and validated again), so that the keywords of the
    bundles' fields (``k=16``, ``index="::2"``) work beside the bundles.

    Raises TypeError for a keyword no bundle has, as a call would.
    """
    out = list(bundles)
    left = dict(keywords)
    for i, bundle in enumerate(out):
        names = {f.name for f in dataclasses.fields(bundle)}
        mine = {key: left.pop(key) for key in list(left) if key in names}
        if mine:
            out[i] = dataclasses.replace(bundle, **mine)
    if left:
        raise TypeError(f"unexpected keyword argument {next(iter(left))!r}")
    return out
