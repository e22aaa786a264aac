"""Descriptors of atom-centred environments: the kernel, the multicomponent
variant, and the bandwidth rules of the kernel density built on them."""

from atominfo.descriptor.compute import (DescriptorIndex, descriptors, frame_descriptors,
                                          validate_parameters)
from atominfo.descriptor.defaults import DEFAULT_CUTOFF, DEFAULT_K
from atominfo.descriptor.kernel import structure_descriptors
from atominfo.descriptor.multicomponent import multicomponent_descriptors

__all__ = ["DEFAULT_CUTOFF", "DEFAULT_K", "DescriptorIndex", "descriptors", "frame_descriptors",
           "multicomponent_descriptors", "structure_descriptors", "validate_parameters"]
