"""The torch kernel table: corruption name -> a batched PyTorch twin of the NumPy kernel.

A torch kernel gets a uint8 NxHxWx3 tensor (on any device; it must not write into it), the same
parameter the NumPy kernel gets for the profile and severity, and one NumPy Generator per image
(`audit.corruptions.rng_for`, the NumPy kernel's own). It draws from each Generator exactly what
the NumPy kernel draws, in the same order, and returns an NxHxWx3 tensor on the input's device on
the 0..255 scale (any real dtype); the API clips and truncates to uint8 like the NumPy API.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

TorchKernel = Callable[[Any, Any, Sequence[np.random.Generator]], Any]

TORCH_KERNELS: dict[str, TorchKernel] = {}


def torch_kernel(name: str) -> Callable[[TorchKernel], TorchKernel]:
    """Register the decorated function as the torch kernel of corruption `name` (once)."""

    def deco(fn: TorchKernel) -> TorchKernel:
        if name in TORCH_KERNELS:
            raise ValueError(f"torch kernel '{name}' is already registered")
        TORCH_KERNELS[name] = fn
        return fn

    return deco
