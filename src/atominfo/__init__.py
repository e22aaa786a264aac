"""atominfo: model-free information content of atomistic data (the QUESTS method).

Descriptors of atom-centred environments, their entropy, diversity and
differential entropy, and workflows built on them. See README.md.
"""

from .bandwidth import fcc_calibration, rescale_to_volume, volume_bandwidth
from .descriptors import DescriptorIndex, descriptors
from .errors import InputError
from .information import (delta_entropy, diversity, entropy, entropy_and_diversity,
                          inside_domain, novelty, overlap, sampled_entropy)
from .reference import Reference

__version__ = "0.1.0"

__all__ = [
    "DescriptorIndex", "InputError", "Reference", "delta_entropy", "descriptors",
    "diversity", "entropy", "entropy_and_diversity", "fcc_calibration", "novelty",
    "overlap", "rescale_to_volume", "volume_bandwidth", "__version__",
    "inside_domain", "sampled_entropy",
]
