"""The torch kernel table: corruption name -> a batched PyTorch twin of the NumPy kernel.

A torch kernel gets a uint8 NxHxWx3 tensor (on any device; it must not write into it), the same
parameter the NumPy kernel gets for the profile and severity, and one NumPy Generator per image
(`audit.corruptions.rng_for`, the NumPy kernel's own). It draws from each Generator exactly what
the NumPy kernel draws, in the same order, and returns an NxHxWx3 tensor on the input's device on
the 0..255 scale (any real dtype); the API clips and truncates to uint8 like the NumPy API.

A kernel may also register a `fast` variant (opt-in, `corrupt_torch(..., fast_random=True)`): it
gets one torch.Generator per image on the input's device instead, seeded from the image's NumPy
Generator, and draws its fields there. Same distribution, other values: its outputs replay only on
the same device type and torch version, and are tested against the reference in distribution.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

TorchKernel = Callable[[Any, Any, Sequence[np.random.Generator]], Any]

TORCH_KERNELS: dict[str, TorchKernel] = {}
FAST_KERNELS: dict[str, TorchKernel] = {}  # device-side draws (fast_random=True)


def torch_kernel(name: str, *, fast: bool = False) -> Callable[[TorchKernel], TorchKernel]:
    """Register the decorated function as the torch kernel of corruption `name` (once), or with
    `fast=True` as its device-side-draws variant."""
    table = FAST_KERNELS if fast else TORCH_KERNELS

    def deco(fn: TorchKernel) -> TorchKernel:
        if name in table:
            raise ValueError(f"torch kernel '{name}' is already registered{' (fast)' if fast else ''}")
        table[name] = fn
        return fn

    return deco
