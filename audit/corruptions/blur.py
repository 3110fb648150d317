"""Blur corruptions: defocus, glass, motion and zoom blur.

Parameters: imagecorruptions 1.1.2 (imagenet-c) and hendrycks/robustness make_cifar_c.py (cifar-10-c;
its motion blur used ImageMagick, here replaced by the imagecorruptions streak with the CIFAR
radius and sigma).
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

from audit.corruptions import _ops
from audit.corruptions.registry import corruption


@corruption("defocus_blur", group="blur", random=False, params={
    "imagenet-c": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "cifar-10-c": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
})
def defocus_blur(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk of the given radius (OpenCV's default reflect-101 border)."""
    u = x.astype(np.float32) / np.float32(255)
    return np.clip(cv2.filter2D(u, -1, _ops.disk(*p)), 0, 1) * 255


@numba.njit(cache=True, nogil=True)
def _shuffle_pixels(img: np.ndarray, offsets: np.ndarray, delta: int) -> None:  # pragma: no cover - jitted
    # The reference's scan, in its order: rows and columns from the far edge inwards, each pixel
    # taking the value at a random offset in [-delta, delta). The reference writes this as a tuple
    # "swap" of NumPy views, which copies rather than swaps (the second assignment reads the
    # already-overwritten view); we reproduce what it does, not what it says.
    h, w = img.shape[0], img.shape[1]
    for it in range(offsets.shape[0]):
        k = 0
        for row in range(h - delta, delta, -1):
            for col in range(w - delta, delta, -1):
                r2 = row + offsets[it, k, 1]
                c2 = col + offsets[it, k, 0]
                k += 1
                for ch in range(img.shape[2]):
                    img[row, col, ch] = img[r2, c2, ch]


@corruption("glass_blur", group="blur", params={
    # (sigma, max delta, iterations)
    "imagenet-c": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "cifar-10-c": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
})
def glass_blur(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, local pixel shuffling (frosted glass), Gaussian blur again."""
    sigma, delta, iterations = p
    h, w = x.shape[:2]
    blurred = _ops.gaussian(x.astype(np.float32) / np.float32(255), sigma)
    img = np.ascontiguousarray((blurred * 255).astype(np.uint8))
    n = max(h - 2 * delta, 0) * max(w - 2 * delta, 0)
    offsets = rng.integers(-delta, delta, size=(iterations, n, 2), dtype=np.int64)
    _shuffle_pixels(img, offsets, delta)
    return np.clip(_ops.gaussian(img.astype(np.float32) / np.float32(255), sigma), 0, 1) * 255


@corruption("motion_blur", group="blur", params={
    # (radius, sigma) of the streak; its angle is drawn uniformly from [-45, 45) degrees
    "imagenet-c": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "cifar-10-c": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
})
def motion_blur(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Directional blur: a one-sided Gaussian streak at a random angle."""
    radius, sigma = p
    return np.clip(_ops.motion_blur(x, radius, sigma, rng.uniform(-45, 45)), 0, 255)


def _zoom_steps(stop: float, step: float) -> np.ndarray:
    return np.arange(1, stop, step)


@corruption("zoom_blur", group="blur", random=False, params={
    "imagenet-c": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    "cifar-10-c": ((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
})
def zoom_blur(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Average of the image and centre zooms of it from 1 up to the severity's factor."""
    factors = _zoom_steps(*p)
    h, w = x.shape[:2]
    u = x.astype(np.float32) / np.float32(255)
    acc = np.zeros_like(u)
    for factor in factors:
        layer = _ops.zoom_center(u, factor)[:h, :w]
        acc[: layer.shape[0], : layer.shape[1]] += layer
    return np.clip((u + acc) / (len(factors) + 1), 0, 1) * 255
