"""Corrupt one image or a batch: validation, seeding, clipping and the uint8 contract.

The output depends only on (seed, image id, corruption, severity, profile) and the pixels: every
random draw comes from a Generator seeded from those, never from global state, batch size, worker
count, process or call order.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from audit.corruptions.registry import MIN_SIZE, PROFILES, get
from audit.errors import ConfigError, CorruptionError


def rng_for(seed: int, name: str, severity: int, image_id: str, profile: str = "imagenet-c") -> np.random.Generator:
    """The Generator for one (seed, profile, corruption, severity, image id) cell of one image.

    Example:
        >>> a = rng_for(0, "gaussian_noise", 3, "val/1.jpg").random()
        >>> a == rng_for(0, "gaussian_noise", 3, "val/1.jpg").random()
        True
    """
    key = f"{int(seed)}\x1f{profile}\x1f{name}\x1f{int(severity)}\x1f{image_id}".encode()
    words = np.frombuffer(hashlib.sha256(key).digest(), dtype=np.uint32)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))


def as_rgb_uint8(image: np.ndarray, profile: str = "imagenet-c") -> np.ndarray:
    """Validate an image and return it as HxWx3 uint8 (grayscale expanded), raising `CorruptionError`."""
    if not isinstance(image, np.ndarray):
        raise CorruptionError(f"expected a NumPy array image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise CorruptionError(f"expected a uint8 image (0..255), got dtype {image.dtype}; convert with np.uint8 / Image")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.stack((image,) * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CorruptionError(f"expected an HxW or HxWx3 image, got shape {image.shape}; drop alpha channels first")
    if profile not in PROFILES:
        raise ConfigError(f"unknown corruption profile '{profile}'; valid: {', '.join(PROFILES)}")
    low = MIN_SIZE[profile]
    if image.shape[0] < low or image.shape[1] < low:
        hint = " (use the cifar-10-c profile for tiny images)" if profile == "imagenet-c" else ""
        raise CorruptionError(
            f"image of {image.shape[1]}x{image.shape[0]} is smaller than the {low}x{low} the {profile} profile needs{hint}"
        )
    return image


def check_severity(severity: int) -> int:
    """Return `severity` as an int in 1..5 or raise `ConfigError`."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ConfigError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def corrupt(
    image: np.ndarray,
    name: str,
    severity: int,
    *,
    seed: int = 0,
    image_id: str = "",
    profile: str = "imagenet-c",
    reference: bool = False,
) -> np.ndarray:
    """Corrupt one image. uint8 HxW / HxWx1 / HxWx3 in, a new uint8 HxWx3 array out; input untouched.

    `reference=True` runs imagecorruptions' own code (audit.corruptions.reference) instead of our
    kernels, for users who want its exact code path: much slower (glass_blur), imagenet-c profile
    only, still seeded per (seed, image id, corruption, severity).

    Example:
        >>> img = np.full((48, 64, 3), 120, np.uint8)
        >>> out = corrupt(img, "gaussian_noise", 2, seed=1, image_id="a.png")
        >>> out.shape, out.dtype
        ((48, 64, 3), dtype('uint8'))
    """
    spec = get(name)
    severity = check_severity(severity)
    x = as_rgb_uint8(image, profile)
    if reference and spec.origin == "builtin":  # a plug-in's own kernel is its reference
        if profile != "imagenet-c":
            raise ConfigError("the reference implementation (imagecorruptions) has the imagenet-c constants only")
        from audit.corruptions.reference import reference_corrupt

        return reference_corrupt(x, name, severity, seed=int(rng_for(seed, name, severity, image_id, profile).integers(2**31)))
    view = x.view()
    view.flags.writeable = False  # a kernel that writes into its input fails loudly in tests
    out = spec.kernel(view, spec.param(profile, severity), rng_for(seed, name, severity, image_id, profile))
    if out.shape[:2] != x.shape[:2]:
        raise RuntimeError(f"corruption {name} returned shape {out.shape} for input {x.shape}")  # a kernel bug
    if out.ndim == 2:
        out = np.stack((out,) * 3, axis=-1)
    if out.dtype == np.uint8:
        return np.array(out, copy=True) if np.shares_memory(out, image) else out
    # np.uint8() truncates like the reference; clip first so that out-of-range values saturate.
    return np.clip(out, 0, 255).astype(np.uint8)


def corrupt_batch(
    images: Sequence[np.ndarray],
    name: str,
    severity: int,
    *,
    image_ids: Sequence[str],
    seed: int = 0,
    profile: str = "imagenet-c",
) -> list[np.ndarray]:
    """Corrupt a batch of images (sizes may differ); each result equals `corrupt` on that image alone.

    Example:
        >>> imgs = [np.zeros((32, 32, 3), np.uint8), np.zeros((40, 36), np.uint8)]
        >>> [o.shape for o in corrupt_batch(imgs, "contrast", 1, image_ids=["a", "b"])]
        [(32, 32, 3), (40, 36, 3)]
    """
    if len(images) != len(image_ids):
        raise ConfigError(f"corrupt_batch got {len(images)} images but {len(image_ids)} image ids")
    return [
        corrupt(img, name, severity, seed=seed, image_id=iid, profile=profile)
        for img, iid in zip(images, image_ids)
    ]
