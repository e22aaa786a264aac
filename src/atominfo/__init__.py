"""atominfo: model-free information content of atomistic data (the QUESTS method).

Descriptors of atom-centred environments, their entropy, diversity and
differential entropy, and workflows built on them. Data flow through the
subpackages in this order: ``structures`` -> ``descriptors`` -> ``engine``
-> ``information`` / ``reference`` -> ``workflows`` -> ``outputs``; ``cli``
is a thin layer over all of them.

The public names below are imported on first use, so that ``import
atominfo`` (and the command line's start-up) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from atominfo._jit_cache import ensure_cache_dir
from atominfo._version import __version__
from atominfo.errors import InputError

ensure_cache_dir()  # before any numba kernel is compiled or loaded

# public name -> module that defines it
_PUBLIC = {
    "descriptors": "atominfo.descriptor",
    "FrameSet": "atominfo.structures.frameset",
    "load_frames": "atominfo.descriptor",
    "fcc_calibration": "atominfo.descriptor.bandwidth",
    "volume_bandwidth": "atominfo.descriptor.bandwidth",
    "DEFAULT_BANDWIDTH": "atominfo.descriptor.bandwidth",
    "rescale_to_volume": "atominfo.structures.rescale",
    "EngineOptions": "atominfo.engine.options",
    "entropy": "atominfo.information",
    "diversity": "atominfo.information",
    "entropy_and_diversity": "atominfo.information",
    "delta_entropy": "atominfo.information",
    "inside_domain": "atominfo.information",
    "overlap": "atominfo.information",
    "novelty": "atominfo.information",
    "sampled_entropy": "atominfo.information",
    "species_entropy": "atominfo.workflows.species",
    "species_delta_entropy": "atominfo.workflows.species",
    "Reference": "atominfo.reference",
    "CompactReference": "atominfo.workflows.compact_reference",
    "NoveltyCalculator": "atominfo.workflows.monitor_calculator",
}

__all__ = sorted([*_PUBLIC, "InputError", "__version__"])


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'atominfo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from atominfo.descriptor import descriptors, load_frames
    from atominfo.descriptor.bandwidth import DEFAULT_BANDWIDTH, fcc_calibration, volume_bandwidth
    from atominfo.engine.options import EngineOptions
    from atominfo.information import (
        delta_entropy,
        diversity,
        entropy,
        entropy_and_diversity,
        inside_domain,
        novelty,
        overlap,
        sampled_entropy,
    )
    from atominfo.reference import Reference
    from atominfo.structures.frameset import FrameSet
    from atominfo.structures.rescale import rescale_to_volume
    from atominfo.workflows.compact_reference import CompactReference
    from atominfo.workflows.species import species_delta_entropy, species_entropy
