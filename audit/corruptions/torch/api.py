"""corrupt_torch: the corruptions on PyTorch tensors, on the tensor's device, batched.

Same contract as audit.corruptions.corrupt (uint8 in, uint8 out, input untouched, output a function
of (seed, image id, corruption, severity, profile) and the pixels only), with the same random draws:
each image's NumPy Generator (`rng_for`) feeds its torch kernel exactly what it feeds the NumPy
kernel, so outputs agree with the NumPy kernels up to float rounding (JPEG: up to the codec).
"""

from __future__ import annotations

from typing import Sequence

import torch

from audit.corruptions.api import check_severity, rng_for
from audit.corruptions.registry import MIN_SIZE, PROFILES, get, names
from audit.corruptions.torch._registry import FAST_KERNELS, TORCH_KERNELS
from audit.errors import ConfigError, CorruptionError

_FAMILIES = ("noise", "blur", "weather", "digital")


def _load() -> None:
    import importlib

    for family in _FAMILIES:
        importlib.import_module(f"audit.corruptions.torch.{family}")


def torch_kernel_names() -> list[str]:
    """Corruptions with a torch kernel, in the protocol's order.

    Example:
        >>> torch_kernel_names()[:3]
        ['gaussian_noise', 'shot_noise', 'impulse_noise']
    """
    _load()
    return [n for n in names("all") if n in TORCH_KERNELS]


def fast_random_names() -> list[str]:
    """Corruptions whose torch kernel can draw on the device (`corrupt_torch(..., fast_random=True)`)."""
    _load()
    return [n for n in names("all") if n in FAST_KERNELS]


def has_torch_kernel(name: str) -> bool:
    """Whether corruption `name` can run through `corrupt_torch`."""
    _load()
    return name in TORCH_KERNELS


def _check_image(image: torch.Tensor, profile: str) -> torch.Tensor:
    """Validate a uint8 HxWx3 / NxHxWx3 tensor; returns it as NxHxWx3."""
    if not isinstance(image, torch.Tensor):
        raise CorruptionError(f"expected a torch.Tensor image, got {type(image).__name__}; use audit.corruptions.corrupt for NumPy arrays")
    if image.dtype != torch.uint8:
        raise CorruptionError(f"expected a uint8 image tensor (0..255), got {image.dtype}; convert with .to(torch.uint8) first")
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise CorruptionError(f"expected an HxWx3 or NxHxWx3 (channels last) tensor, got shape {tuple(image.shape)}; permute CHW with .permute(1, 2, 0)")
    if profile not in PROFILES:
        raise ConfigError(f"unknown corruption profile '{profile}'; valid: {', '.join(PROFILES)}")
    low = MIN_SIZE[profile]
    if image.shape[-3] < low or image.shape[-2] < low:
        raise CorruptionError(f"image of {image.shape[-2]}x{image.shape[-3]} is smaller than the {low}x{low} the {profile} profile needs")
    return image if image.ndim == 4 else image[None]


def corrupt_torch(
    image: torch.Tensor,
    name: str,
    severity: int,
    *,
    seed: int = 0,
    image_id: str | Sequence[str] = "",
    profile: str = "imagenet-c",
    fast_random: bool = False,
) -> torch.Tensor:
    """Corrupt a uint8 HxWx3 image or an NxHxWx3 batch (channels last, equal sizes) on its device.

    `image_id` is one id for an HxWx3 image, or a sequence of N ids for a batch; image n of a batch
    gets exactly what `corrupt_torch(image[n], ..., image_id=image_id[n])` gives it, and what
    `audit.corruptions.corrupt(image[n].numpy(), ...)` gives it up to float rounding. Returns a new
    uint8 tensor of the input's shape on its device; the input is not modified.

    `fast_random=True` lets the kernels that have one (`fast_random_names()`: the noises) draw on
    the device from a torch Generator seeded per image instead of NumPy's draws on the host: same
    distribution (tested against the reference like the NumPy kernels), other values, replayable
    only on the same device type and torch version. The other kernels ignore it.

    Example:
        >>> img = torch.full((48, 64, 3), 120, dtype=torch.uint8)
        >>> out = corrupt_torch(img, "gaussian_noise", 2, seed=1, image_id="a.png")
        >>> out.shape, out.dtype
        (torch.Size([48, 64, 3]), torch.uint8)
    """
    get(name)  # an unknown corruption lists the registered ones
    if not has_torch_kernel(name):
        raise ConfigError(f"corruption '{name}' has no torch kernel; available: {', '.join(torch_kernel_names())}")
    severity = check_severity(severity)
    batch = _check_image(image, profile)
    ids = [image_id] if image.ndim == 3 else image_id
    if isinstance(ids, str) or len(ids) != batch.shape[0]:
        raise ConfigError(f"a batch of {batch.shape[0]} images needs a sequence of {batch.shape[0]} image ids, got {image_id!r}")
    rngs = [rng_for(seed, name, severity, str(i), profile) for i in ids]
    kernel = TORCH_KERNELS[name]
    if fast_random and name in FAST_KERNELS:
        kernel = FAST_KERNELS[name]
        rngs = [torch.Generator(device=batch.device).manual_seed(int(rng.integers(2**63))) for rng in rngs]
    out = kernel(batch, get(name).param(profile, severity), rngs)
    if out.shape != batch.shape:
        raise RuntimeError(f"torch kernel {name} returned shape {tuple(out.shape)} for {tuple(batch.shape)}")  # a kernel bug
    if out.dtype != torch.uint8:
        out = torch.clamp(out, 0, 255).to(torch.uint8)  # truncates like the NumPy API's astype(np.uint8)
    elif out.data_ptr() == batch.data_ptr():
        out = out.clone()
    return out.contiguous() if image.ndim == 4 else out[0].contiguous()
