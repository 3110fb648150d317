"""The four hold-out ("validation") corruptions: speckle noise, gaussian blur, spatter, saturate.

They are kept out of the benchmark mean (mPC) and reported separately. Parameters: imagecorruptions
1.1.2 (imagenet-c) and hendrycks/robustness make_cifar_c.py (cifar-10-c).
"""

from __future__ import annotations

import cv2
import numpy as np

from audit.corruptions._ops import gaussian, scale_saturation
from audit.corruptions.registry import corruption


@corruption("speckle_noise", group="noise", subset="holdout", params={
    "imagenet-c": (0.15, 0.2, 0.35, 0.45, 0.6),
    "cifar-10-c": (0.06, 0.1, 0.12, 0.16, 0.2),
})
def speckle_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise: x + x * N(0, sigma) on [0, 1] pixels."""
    u = x.astype(np.float32) / np.float32(255)
    return np.clip(u + u * rng.standard_normal(x.shape, dtype=np.float32) * np.float32(sigma), 0, 1) * 255


@corruption("gaussian_blur", group="blur", subset="holdout", random=False, params={
    "imagenet-c": (1, 2, 3, 4, 6),
    "cifar-10-c": (0.4, 0.6, 0.7, 0.8, 1),
})
def gaussian_blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` pixels (skimage's truncate 4, nearest border)."""
    return np.clip(gaussian(x.astype(np.float32) / np.float32(255), sigma), 0, 1) * 255


@corruption("spatter", group="weather", subset="holdout", params={
    # (loc, scale, sigma, threshold, intensity / mud blur, mode: 0 water, 1 mud)
    "imagenet-c": ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                   (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)),
    "cifar-10-c": ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                   (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
})
def spatter(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Water drops (turquoise, with a relief from the liquid layer's edges) or mud splashes (brown)."""
    u = x.astype(np.float32) / np.float32(255)
    m, colour, mud = spatter_layer(x.shape[:2], p, rng)
    if mud:
        return np.clip(u * (1 - m[..., None]) + colour * m[..., None], 0, 1) * 255
    return np.clip(u + m[..., None] * colour, 0, 1) * 255


def spatter_layer(shape: tuple[int, int], p: tuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """Spatter's layer for an HxW image, drawn from `rng` (it depends on no pixel): the float32 HxW
    mask m, the RGB colour on [0, 1] and whether it is mud (blend: u (1 - m) + colour m) or water
    (u + m colour)."""
    loc, scale, sigma, threshold, strength, mud = p
    liquid = gaussian(rng.normal(loc, scale, size=shape).astype(np.float32), sigma)
    liquid[liquid < threshold] = 0
    if mud:
        m = gaussian((liquid > threshold).astype(np.float32), strength)
        m[m < 0.8] = 0
        return m, np.array([63, 42, 20], np.float32) / 255, True
    liquid8 = (liquid * 255).astype(np.uint8)
    dist = cv2.distanceTransform(255 - cv2.Canny(liquid8, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    relief = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
    dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, relief), (3, 3)).astype(np.float32)
    m = liquid8.astype(np.float32) * dist
    peak = m.max()
    m = m / peak * strength if peak > 0 else m  # the reference divides by the max (nan on a dry layer)
    # water is pale turquoise; the reference adds it in BGR order to an image it treats as BGR
    return m, np.array([175, 238, 238], np.float32) / 255, False


@corruption("saturate", group="digital", subset="holdout", random=False, params={
    "imagenet-c": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    "cifar-10-c": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
})
def saturate(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """HSV saturation S -> clip(S * factor + offset, 0, 1)."""
    return np.clip(scale_saturation(x.astype(np.float32) / np.float32(255), *p), 0, 1) * 255
