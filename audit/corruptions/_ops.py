"""Fast pure building blocks shared by the corruption kernels.

Each reproduces an operation of the reference (imagecorruptions 1.1.2 on scikit-image / SciPy) with
OpenCV or vectorised NumPy, with the same coordinate conventions and borders, so that kernels built
on them match the reference pixel for pixel up to float rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

# scipy.ndimage / skimage border modes -> OpenCV border types with the same extension rule.
BORDERS = {
    "nearest": cv2.BORDER_REPLICATE,  # a a a | a b c
    "reflect": cv2.BORDER_REFLECT,  # c b a | a b c  (scipy 'reflect': half-sample symmetric)
    "mirror": cv2.BORDER_REFLECT_101,  # c b | a b c
}


@lru_cache(maxsize=64)
def _gauss_taps(sigma: float, truncate: float) -> np.ndarray:
    # scipy.ndimage.gaussian_filter1d: radius = int(truncate * sigma + 0.5), normalised exp taps.
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


def gaussian(x: np.ndarray, sigma: float | tuple[float, float], mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """Gaussian filter over the two spatial axes, as `skimage.filters.gaussian` / scipy compute it.

    Works on HxW or HxWxC float arrays; channels are filtered independently.

    Example:
        >>> out = gaussian(np.zeros((8, 8, 3), np.float32), 1.0)
        >>> out.shape
        (8, 8, 3)
    """
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    x = np.ascontiguousarray(x, dtype=np.float32)
    if sy <= 0 and sx <= 0:
        return x.copy()
    ky = _gauss_taps(float(sy), truncate) if sy > 0 else np.ones(1, np.float32)
    kx = _gauss_taps(float(sx), truncate) if sx > 0 else np.ones(1, np.float32)
    channels = 1 if x.ndim == 2 else x.shape[2]
    if channels > 4:  # OpenCV filters at most 4 channels at once
        return np.stack([gaussian(x[..., c], sigma, mode, truncate) for c in range(channels)], axis=-1)
    return cv2.sepFilter2D(x, -1, kx, ky, borderType=BORDERS[mode])


def scale_value(rgb: np.ndarray, new_v: np.ndarray) -> np.ndarray:
    """Set HSV value V = max(r, g, b) to `new_v` keeping hue and saturation (skimage's HSV model).

    For fixed hue and saturation every channel is proportional to V, so this is exact without a
    round trip through HSV; black pixels (V = 0, hue and saturation 0) become grey.
    """
    v = rgb.max(axis=-1, keepdims=True)
    nv = new_v[..., None] if new_v.ndim == rgb.ndim - 1 else new_v
    return np.where(v > 0, rgb * (nv / np.where(v > 0, v, 1)), nv)


def scale_saturation(rgb: np.ndarray, factor: float, offset: float) -> np.ndarray:
    """Set HSV saturation S to clip(S * factor + offset, 0, 1) keeping hue and value (skimage's model).

    With hue and value fixed, channel = V * (1 - S * k(hue)), so channel' = V - (V - channel) * S'/S.
    Grey pixels (S = 0) have hue 0 (red) in skimage, so they become (V, V(1-S'), V(1-S')).
    """
    v = rgb.max(axis=-1, keepdims=True)
    delta = v - rgb.min(axis=-1, keepdims=True)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1), 0)
    s_new = np.clip(s * factor + offset, 0, 1)
    coloured = v - (v - rgb) * (s_new / np.where(s > 0, s, 1))
    grey = np.concatenate([v, v * (1 - s_new), v * (1 - s_new)], axis=-1)
    return np.where(s > 0, coloured, grey)


def zoom_center(img: np.ndarray, factor: float) -> np.ndarray:
    """imagecorruptions' `clipped_zoom`: the centre crop of size ceil(size / factor), zoomed by
    `factor` with linear interpolation as `scipy.ndimage.zoom(order=1)` maps coordinates
    (corner-aligned: in = out * (n_in - 1) / (n_out - 1)); output round(crop * factor) pixels a side.
    """
    h, w = img.shape[:2]
    ch, cw = int(math.ceil(h / factor)), int(math.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    sy = (ch - 1) / (oh - 1) if oh > 1 else 0.0
    sx = (cw - 1) / (ow - 1) if ow > 1 else 0.0
    m = np.array([[sx, 0, left], [0, sy, top]], np.float64)
    src = np.ascontiguousarray(img, dtype=np.float32)
    return cv2.warpAffine(src, m, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def motion_kernel(shape: tuple[int, int], radius: int, sigma: float, angle: float) -> np.ndarray:
    """The correlation kernel of imagecorruptions' `_motion_blur` for an image of `shape` (HxW): a
    one-sided Gaussian streak of width 2 * radius + 1 along `angle` (degrees), anchored at its centre.
    """
    width = radius * 2 + 1
    taps = np.exp(-(np.arange(width, dtype=np.float64) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    py, px = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(py, px)
    kernel = np.zeros((2 * width + 1, 2 * width + 1), np.float32)
    for i in range(width):
        dy = -math.ceil((i * py) / hyp - 0.5)
        dx = -math.ceil((i * px) / hyp - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break  # the reference stops once the streak leaves the image
        # shifting the image by (dy, dx) == correlating with a tap at (-dy, -dx) from the anchor
        kernel[width - dy, width - dx] += taps[i]
    return kernel


def motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """imagecorruptions' `_motion_blur` as one correlation with `motion_kernel`, image borders
    replicated. float32 out, same shape.
    """
    width = radius * 2 + 1
    kernel = motion_kernel(x.shape[:2], radius, sigma, angle)
    src = np.ascontiguousarray(x, dtype=np.float32)
    return cv2.filter2D(src, -1, kernel, anchor=(width, width), borderType=cv2.BORDER_REPLICATE)


def plasma_fractal(rng: np.random.Generator, mapsize: int, wibbledecay: float) -> np.ndarray:
    """Diamond-square height map in [0, 1] (imagecorruptions' `plasma_fractal`), drawn from `rng`."""
    assert mapsize & (mapsize - 1) == 0, "mapsize must be a power of two"
    grid = np.empty((mapsize, mapsize), np.float64)
    grid[0, 0] = 0
    step, wibble = mapsize, 100.0

    def wibbled_mean(a: np.ndarray) -> np.ndarray:
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:mapsize:step, 0:mapsize:step]
        acc = corners + np.roll(corners, -1, axis=0)
        acc += np.roll(acc, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = wibbled_mean(acc)
        dr = grid[half:mapsize:step, half:mapsize:step]
        ul = grid[0:mapsize:step, 0:mapsize:step]
        grid[0:mapsize:step, half:mapsize:step] = wibbled_mean(dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        grid[half:mapsize:step, 0:mapsize:step] = wibbled_mean(dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    grid -= grid.min()
    return grid / grid.max()


@lru_cache(maxsize=16)
def disk(radius: float, alias_blur: float) -> np.ndarray:
    """imagecorruptions' anti-aliased disk kernel for defocus blur."""
    if radius <= 8:
        coords, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        coords, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(coords, coords)
    aliased = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)


def next_power_of_2(x: int) -> int:
    """Smallest power of two >= x (1 for 0)."""
    return 1 if x == 0 else 2 ** (x - 1).bit_length()
