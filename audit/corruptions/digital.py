"""Digital corruptions: contrast, elastic transform, pixelate, JPEG compression.

Parameters: imagecorruptions 1.1.2 (imagenet-c) and hendrycks/robustness make_cifar_c.py (cifar-10-c).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from audit.corruptions._ops import gaussian
from audit.corruptions.registry import corruption


@corruption("contrast", group="digital", random=False, params={
    "imagenet-c": (0.4, 0.3, 0.2, 0.1, 0.05),
    "cifar-10-c": (0.75, 0.5, 0.4, 0.3, 0.15),
})
def contrast(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Pull every channel towards its image mean by `factor`."""
    u = x.astype(np.float32) / np.float32(255)
    means = u.mean(axis=(0, 1), keepdims=True, dtype=np.float64).astype(np.float32)
    return np.clip((u - means) * np.float32(factor) + means, 0, 1) * 255


# imagenet-c: (alpha, sigma as a fraction of each side, displacement as a fraction of the height,
#              affine jitter as a fraction of the shorter side) — imagecorruptions draws no affine.
# cifar-10-c: make_cifar_c.py's (IMSIZE*a, IMSIZE*s, IMSIZE*affine) for IMSIZE = 32, expressed as
#              fractions so that they scale with the image, and uniform(-1, 1) displacements.
_ELASTIC_IMAGENET = tuple((250 * a, 0.01, 0.005, 0.0) for a in (0.05, 0.065, 0.085, 0.1, 0.12))
_ELASTIC_CIFAR = ((0.0, 0.0, None, 0.08), (0.05, 0.2, None, 0.07), (0.08, 0.06, None, 0.06),
                  (0.1, 0.04, None, 0.05), (0.1, 0.03, None, 0.03))


@corruption("elastic_transform", group="digital", params={
    "imagenet-c": _ELASTIC_IMAGENET, "cifar-10-c": _ELASTIC_CIFAR,
})
def elastic_transform(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement field (and, in the CIFAR variant, a random affine warp)."""
    alpha, sigma_frac, disp_frac, affine_frac = p
    h, w = x.shape[:2]
    u = x.astype(np.float32) / np.float32(255)
    if affine_frac:
        side = min(h, w)
        centre = np.float32([h, w]) // 2
        half = side // 3
        pts1 = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
        pts2 = pts1 + rng.uniform(-affine_frac * side, affine_frac * side, size=pts1.shape).astype(np.float32)
        u = cv2.warpAffine(u, cv2.getAffineTransform(pts1, pts2), (w, h), borderMode=cv2.BORDER_REFLECT_101)
    if disp_frac is None:  # CIFAR: alpha and sigma are fractions of the (square) image side
        low, scale, sigma = 1.0, alpha * min(h, w), (sigma_frac * h, sigma_frac * w)
    else:
        low, scale, sigma = disp_frac * h, alpha, (sigma_frac * h, sigma_frac * w)
    fields = [gaussian(rng.uniform(-low, low, size=(h, w)).astype(np.float32), sigma, mode="reflect", truncate=3)
              for _ in range(2)]
    dx, dy = (f * np.float32(scale) for f in fields)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(u, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 1) * 255


@corruption("pixelate", group="digital", random=False, params={
    "imagenet-c": tuple((c, "nearest") for c in (0.6, 0.5, 0.4, 0.3, 0.25)),
    "cifar-10-c": tuple((c, "box") for c in (0.95, 0.9, 0.85, 0.75, 0.65)),
})
def pixelate(x: np.ndarray, p: tuple, rng: np.random.Generator) -> np.ndarray:
    """Box-downsample by `factor`, then upsample back (nearest for imagenet-c, box for CIFAR-10-C)."""
    factor, up = p
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST if up == "nearest" else Image.BOX))


@corruption("jpeg_compression", group="digital", random=False, params={
    "imagenet-c": (25, 18, 15, 10, 7),
    "cifar-10-c": (80, 65, 58, 50, 40),
})
def jpeg_compression(x: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode as JPEG at `quality` with Pillow (the reference's encoder), decode with OpenCV.

    Both use libjpeg-turbo with the same defaults, so the pixels equal the reference's bit for bit;
    OpenCV's decoder just has less overhead.
    """
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=int(quality))
    bgr = cv2.imdecode(np.frombuffer(buf.getbuffer(), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
