"""Weather corruptions: snow, frost, fog, brightness.

Parameters: imagecorruptions 1.1.2 (imagenet-c) and hendrycks/robustness make_cifar_c.py (cifar-10-c;
its snow streaks used ImageMagick, here the imagecorruptions streak with the CIFAR constants). The
frost textures are read at run time from the installed imagecorruptions package.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from audit.corruptions import _ops
from audit.corruptions.reference import frost_textures
from audit.corruptions.registry import corruption


@corruption("snow", group="weather", params={
    # (mean, std, zoom, threshold, streak radius, streak sigma, image weight)
    "imagenet-c": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                   (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "cifar-10-c": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                   (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
})
def snow(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Falling snow: a thresholded, zoomed noise layer streaked by motion blur, over a whitened image."""
    mean, std, zoom, threshold, radius, sigma, weight = p
    h, w = x.shape[:2]
    u = x.astype(np.float32) / np.float32(255)
    layer = rng.normal(mean, std, size=(h, w)).astype(np.float32)
    layer = _ops.zoom_center(layer, zoom)
    layer[layer < threshold] = 0
    layer = _ops.motion_blur(np.clip(layer, 0, 1), radius, sigma, rng.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8).astype(np.float32) / 255)[:h, :w, None]
    grey = cv2.cvtColor(u, cv2.COLOR_RGB2GRAY)[..., None]
    u = weight * u + (1 - weight) * np.maximum(u, grey * 1.5 + 0.5)
    out = u.copy()
    lh, lw = layer.shape[:2]
    out[:lh, :lw] += layer + np.rot90(layer, k=2)
    return np.clip(out, 0, 1) * 255


@lru_cache(maxsize=6)
def _texture(index: int) -> np.ndarray:
    # decoded once per process; BGR as OpenCV reads it, like the reference
    path = frost_textures()[index]
    img = cv2.imread(str(path))
    if img is None:
        raise RuntimeError(f"cannot decode frost texture {path}")
    return img


@lru_cache(maxsize=32)
def _scaled_texture(index: int, h: int, w: int, fixed_scale: float | None) -> np.ndarray:
    tex = _texture(index)
    th, tw = tex.shape[:2]
    if fixed_scale is not None and th * fixed_scale > h and tw * fixed_scale > w:
        # make_cifar_c.py shrinks the textures to a fifth for 32x32 images
        return cv2.resize(tex, (0, 0), fx=fixed_scale, fy=fixed_scale)
    # imagecorruptions: grow the texture until it covers the image, then 10% more
    scale = max(1.0, h / th, w / tw) * 1.1
    size = (int(math.ceil(tw * scale)), int(math.ceil(th * scale)))
    return cv2.resize(tex, size, interpolation=cv2.INTER_CUBIC)


@corruption("frost", group="weather", params={
    # (image weight, frost weight, texture scale or None)
    "imagenet-c": ((1, 0.4, None), (0.8, 0.6, None), (0.7, 0.7, None), (0.65, 0.7, None), (0.6, 0.75, None)),
    "cifar-10-c": ((1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2), (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)),
})
def frost(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Blend with a random crop of one of the frost textures (the reference picks among the first 5)."""
    image_weight, frost_weight, fixed_scale = p
    h, w = x.shape[:2]
    tex = _scaled_texture(int(rng.integers(5)), h, w, fixed_scale)
    top = int(rng.integers(0, max(tex.shape[0] - h, 1)))
    left = int(rng.integers(0, max(tex.shape[1] - w, 1)))
    crop = tex[top : top + h, left : left + w, ::-1].astype(np.float32)
    return np.clip(image_weight * x.astype(np.float32) + frost_weight * crop, 0, 255)


@corruption("fog", group="weather", params={
    # (fog strength, wibble decay of the plasma fractal)
    "imagenet-c": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    "cifar-10-c": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
})
def fog(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Add a plasma-fractal haze and rescale so the brightest value keeps its level."""
    strength, decay = p
    h, w = x.shape[:2]
    u = x.astype(np.float32) / np.float32(255)
    peak = u.max()
    haze = _ops.plasma_fractal(rng, _ops.next_power_of_2(max(h, w)), decay)[:h, :w, None].astype(np.float32)
    return np.clip((u + np.float32(strength) * haze) * (peak / (peak + strength)), 0, 1) * 255


@corruption("brightness", group="weather", random=False, params={
    "imagenet-c": (0.1, 0.2, 0.3, 0.4, 0.5),
    "cifar-10-c": (0.05, 0.1, 0.15, 0.2, 0.3),
})
def brightness(x: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Add `shift` to the HSV value channel (clipped at 1), keeping hue and saturation."""
    u = x.astype(np.float32) / np.float32(255)
    v = u.max(axis=-1)
    return np.clip(_ops.scale_value(u, np.minimum(v + np.float32(shift), 1)), 0, 1) * 255
