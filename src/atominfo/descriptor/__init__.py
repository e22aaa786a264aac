"""Descriptors of atom-centred environments: the kernel, the multicomponent
variant, and the bandwidth rules of the kernel density built on them."""

from atominfo.descriptor.compute import (
    descriptors,
    frame_descriptors,
    load_frames,
    padded_environments,
    padding_note,
    validate_parameters,
)
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.descriptor.multicomponent import (
    descriptor_width,
    multicomponent_descriptors,
    resolve_species,
)

__all__ = [
    "DEFAULT_CUTOFF",
    "DEFAULT_K",
    "descriptor_width",
    "descriptors",
    "frame_descriptors",
    "load_frames",
    "multicomponent_descriptors",
    "padded_environments",
    "padding_note",
    "resolve_species",
    "structure_descriptors",
    "validate_parameters",
]
