"""Torch digital kernels: contrast, elastic transform, pixelate, JPEG and (hold-out) saturate.

Pixelate reproduces Pillow's resampling (what the NumPy kernel calls): box-filter coefficients in
Pillow's 22-bit fixed point, horizontal pass first with a uint8 intermediate, and Pillow's nearest
neighbour index walk, as gathers and integer multiply-adds (exact). JPEG goes through
torchvision.io (libjpeg-turbo on CPU, nvJPEG on a CUDA tensor) at the same quality; its codec may
differ from Pillow's + OpenCV's, so equality with the NumPy kernel is by PSNR, not bit for bit.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
import torch

from audit.corruptions.torch import _tops
from audit.corruptions.torch._registry import torch_kernel
from audit.errors import MissingDependencyError


@torch_kernel("contrast")
def contrast(x: torch.Tensor, factor: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    u = _tops.unit(x)
    means = u.to(torch.float64).mean(dim=(2, 3), keepdim=True).to(torch.float32)
    return _tops.nhwc(torch.clamp((u - means) * np.float32(factor).item() + means, 0, 1) * 255)


def _affine_maps(shape: tuple[int, int], affine_frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The CIFAR variant's random affine (drawn as the NumPy kernel draws it) as the float32 source
    coordinates of cv2.warpAffine (OpenCV 5: the inverse matrix applied in float32)."""
    h, w = shape
    side = min(h, w)
    centre = np.float32([h, w]) // 2
    half = side // 3
    pts1 = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    pts2 = pts1 + rng.uniform(-affine_frac * side, affine_frac * side, size=pts1.shape).astype(np.float32)
    inv = cv2.invertAffineTransform(cv2.getAffineTransform(pts1, pts2)).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2], inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]


@torch_kernel("elastic_transform")
def elastic_transform(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    alpha, sigma_frac, disp_frac, affine_frac = p
    n, h, w = x.shape[:3]
    dev = x.device
    u = _tops.unit(x)
    if affine_frac:
        maps = [_affine_maps((h, w), affine_frac, rng) for rng in rngs]  # drawn before the fields
        u = _tops.remap(u, _tops.from_host([m[0] for m in maps], dev), _tops.from_host([m[1] for m in maps], dev), "mirror")
    if disp_frac is None:  # CIFAR: alpha and sigma are fractions of the (square) image side
        low, scale, sigma = 1.0, alpha * min(h, w), (sigma_frac * h, sigma_frac * w)
    else:
        low, scale, sigma = disp_frac * h, alpha, (sigma_frac * h, sigma_frac * w)
    draws = _tops.from_host([np.stack([rng.uniform(-low, low, size=(h, w)).astype(np.float32) for _ in range(2)])
                             for rng in rngs], dev)  # N x 2 x H x W: the x field, then the y field
    fields = _tops.gaussian(draws, sigma, mode="reflect", truncate=3) * np.float32(scale).item()
    gx = torch.arange(w, device=dev, dtype=torch.float32)[None, None, :]
    gy = torch.arange(h, device=dev, dtype=torch.float32)[None, :, None]
    out = _tops.remap(u, gx + fields[:, 0], gy + fields[:, 1], "reflect")
    return _tops.nhwc(torch.clamp(out, 0, 1) * 255)


_BITS = 22  # Pillow's PRECISION_BITS for 8-bit images


@lru_cache(maxsize=64)
def _box_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's box-filter resampling as (source index, fixed-point weight) arrays of size_out x taps
    (its precompute_coeffs + normalize_coeffs_8bpc; unused taps have weight 0)."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support, ss = 0.5 * filterscale, 1.0 / filterscale
    rows = []
    for xx in range(size_out):
        center = (xx + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size_in)
        taps = np.array([1.0 if -0.5 < (i - center + 0.5) * ss <= 0.5 else 0.0 for i in range(lo, hi)])
        if taps.sum():
            taps /= taps.sum()
        rows.append((lo, np.floor(taps * (1 << _BITS) + 0.5).astype(np.int64)))
    width = max(len(w) for _, w in rows)
    index = np.array([[min(lo + t, size_in - 1) for t in range(width)] for lo, _ in rows], np.int64)
    weight = np.array([np.pad(w, (0, width - len(w))) for _, w in rows], np.int64)
    return index, weight


@lru_cache(maxsize=64)
def _nearest_index(size_in: int, size_out: int) -> np.ndarray:
    """Pillow's nearest-neighbour resize source indices (its ImagingScaleAffine walk in doubles)."""
    step, pos, out = size_in / size_out, size_in / size_out * 0.5, []
    for _ in range(size_out):
        out.append(-1 if pos < 0 else int(pos))
        pos += step
    return np.array(out, np.int64)


def _box_pass(x: torch.Tensor, size: int, axis: int) -> torch.Tensor:
    """One Pillow box-resampling pass of int32 pixels along `axis`, rounded and clipped to 0..255
    (sums stay below 2^31: weights add up to about 2^22, pixels to 255)."""
    index, weight = (torch.from_numpy(a).to(x.device) for a in _box_taps(x.shape[axis], size))
    weight = weight.to(torch.int32)
    shape = [1] * x.ndim
    shape[axis] = size
    acc = torch.full((), 1 << (_BITS - 1), dtype=torch.int32, device=x.device)
    for t in range(index.shape[1]):
        acc = acc + x.index_select(axis, index[:, t]) * weight[:, t].reshape(shape)
    return torch.clamp(acc >> _BITS, 0, 255)


def _box_resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pillow's Image.resize(BOX) of NxCxHxW int32: horizontal pass, uint8 intermediate, vertical."""
    if w != x.shape[-1]:
        x = _box_pass(x, w, x.ndim - 1)
    if h != x.shape[-2]:
        x = _box_pass(x, h, x.ndim - 2)
    return x


@torch_kernel("pixelate")
def pixelate(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    factor, up = p
    h, w = x.shape[1:3]
    small = _box_resize(x.permute(0, 3, 1, 2).to(torch.int32).contiguous(), max(1, int(h * factor)), max(1, int(w * factor)))
    if up == "nearest":
        rows = torch.from_numpy(_nearest_index(small.shape[-2], h)).to(x.device)
        cols = torch.from_numpy(_nearest_index(small.shape[-1], w)).to(x.device)
        out = small.index_select(-2, rows).index_select(-1, cols)
    else:
        out = _box_resize(small, h, w)
    return _tops.nhwc(out.to(torch.uint8))


@torch_kernel("jpeg_compression")
def jpeg_compression(x: torch.Tensor, quality: int, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    try:
        from torchvision.io import decode_jpeg, encode_jpeg
    except ImportError as exc:
        raise MissingDependencyError("torchvision", "gpu-corruptions", "jpeg_compression on torch tensors") from exc
    chw = [img.permute(2, 0, 1).contiguous() for img in x]
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs for TorchCodec, on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = encode_jpeg(chw, quality=int(quality))
        # decode_jpeg takes the bytes on the host (a few KB per image) and decodes on `device`
        decoded = decode_jpeg([e.cpu() for e in encoded], device=x.device)
    return torch.stack(decoded).permute(0, 2, 3, 1)


@torch_kernel("saturate")
def saturate(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    return _tops.nhwc(torch.clamp(_tops.scale_saturation(_tops.unit(x), *p), 0, 1) * 255)
