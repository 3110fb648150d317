"""Common corruptions (ImageNet-C protocol): a registry of pure kernels, profiles, and the API.

Example:
    >>> import numpy as np
    >>> from audit.corruptions import corrupt, names
    >>> names("blur")
    ['defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur']
    >>> corrupt(np.zeros((32, 32, 3), np.uint8), "fog", 1, seed=0, image_id="x").dtype
    dtype('uint8')
"""

from audit.corruptions import registry as _registry
from audit.corruptions.api import corrupt, corrupt_batch, rng_for
from audit.corruptions.plugins import load_builtins as _load_builtins
from audit.corruptions.registry import CORRUPTIONS, GROUPS, PROFILES, SUBSETS, Corruption, corruption, get, names

_registry.set_loader(_load_builtins)  # the registry imports nothing back: the families register into it

__all__ = [
    "CORRUPTIONS",
    "GROUPS",
    "PROFILES",
    "SUBSETS",
    "Corruption",
    "corrupt",
    "corrupt_batch",
    "corruption",
    "get",
    "names",
    "rng_for",
]
