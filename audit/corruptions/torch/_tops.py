"""Torch building blocks shared by the torch kernels, twins of audit.corruptions._ops.

Images travel as float NxCxHxW tensors on their device. Borders follow scipy / OpenCV names
("nearest" replicate, "reflect" half-sample symmetric, "mirror" reflect-101) and are built by index
gathers, so every mode works on every device. Resampling (zoom, remap) goes through interpolate /
grid_sample at the source coordinates of OpenCV 5's warpAffine / remap, which the NumPy kernels
call (OpenCV 5 samples bilinearly at float32 coordinates, no 1/32-pixel fixed point any more).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from audit.corruptions import _ops


def unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 NxHxWxC -> float32 NxCxHxW on [0, 1] (the NumPy kernels' x / float32(255))."""
    return x.permute(0, 3, 1, 2).contiguous().to(torch.float32) / 255


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """NxCxHxW -> NxHxWxC (a view)."""
    return x.permute(0, 2, 3, 1)


def from_host(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack per-image host arrays (the random draws) into one tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(arrays))).to(device)


def fold(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer positions (any distance outside 0..n-1) to source indices under a border mode."""
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "reflect":  # c b a | a b c
        i = i.remainder(2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":  # c b | a b c
        if n == 1:
            return torch.zeros_like(i)
        i = i.remainder(2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown border mode {mode!r}")


def border_index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """Source indices of positions -before .. n + after - 1 under a border mode."""
    return fold(torch.arange(-before, n + after, device=device), n, mode)


def pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the last two axes with a border mode."""
    h, w = x.shape[-2:]
    x = x.index_select(-2, border_index(h, top, bottom, mode, x.device))
    return x.index_select(-1, border_index(w, left, right, mode, x.device))


def _taps_sum(x: torch.Tensor, taps: np.ndarray, axis: int, size: int) -> torch.Tensor:
    """Correlate padded `x` along `axis` with 1-D `taps`, `size` outputs: one fused multiply-add of
    a shifted view per tap (on CPU about 20x faster than a 1-channel conv2d; on CUDA k small kernels)."""
    out = torch.zeros((*x.shape[:axis], size, *x.shape[axis + 1 :]), dtype=x.dtype, device=x.device)
    for i, t in enumerate(taps):
        out.add_(x.narrow(axis, i, size), alpha=float(t))
    return out


def sep_filter(x: torch.Tensor, ky: np.ndarray, kx: np.ndarray, mode: str) -> torch.Tensor:
    """Separable correlation over the last two axes with odd-length taps (cv2.sepFilter2D)."""
    ry, rx = len(ky) // 2, len(kx) // 2
    h, w = x.shape[-2:]
    x = _taps_sum(pad(x, ry, ry, 0, 0, mode), ky, x.ndim - 2, h)
    return _taps_sum(pad(x, 0, 0, rx, rx, mode), kx, x.ndim - 1, w)


def gaussian(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest", truncate: float = 4.0) -> torch.Tensor:
    """`_ops.gaussian` on the last two axes of a float tensor."""
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    if sy <= 0 and sx <= 0:
        return x.clone()
    ky = _ops._gauss_taps(float(sy), truncate) if sy > 0 else np.ones(1, np.float32)
    kx = _ops._gauss_taps(float(sx), truncate) if sx > 0 else np.ones(1, np.float32)
    return sep_filter(x, ky, kx, mode)


def filter2d(x: torch.Tensor, kernel: np.ndarray, mode: str = "mirror") -> torch.Tensor:
    """cv2.filter2D with an odd square kernel anchored at its centre (default border: reflect-101).

    A dense kernel (defocus's disk, up to 21x21) goes through the FFT, as OpenCV does for kernels of
    11x11 and more: the padded image's circular correlation with the kernel, cropped where it does
    not wrap around.
    """
    r = kernel.shape[0] // 2
    h, w = x.shape[-2:]
    padded = pad(x, r, r, r, r, mode)
    size = padded.shape[-2:]
    k = torch.from_numpy(np.ascontiguousarray(kernel, np.float32)).to(x.device)
    spectrum = torch.fft.rfft2(padded, s=size) * torch.conj(torch.fft.rfft2(k, s=size))
    return torch.fft.irfft2(spectrum, s=size)[..., :h, :w].contiguous()


def shift_sum(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Correlation of ...xHxW `x` with a sparse square kernel anchored at its centre, replicated
    borders: one shifted slice per non-zero tap (motion streaks have at most 2 r + 1 of 4 r^2)."""
    r = kernel.shape[0] // 2
    h, w = x.shape[-2:]
    padded = pad(x, r, r, r, r, "nearest")
    out = torch.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out.add_(padded[..., i : i + h, j : j + w], alpha=float(kernel[i, j]))
    return out


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: Sequence[float]) -> torch.Tensor:
    """`_ops.motion_blur` per image of NxCxHxW `x`, image n streaked at `angles[n]` degrees."""
    shape = tuple(x.shape[-2:])
    return torch.stack([shift_sum(x[n], _ops.motion_kernel(shape, radius, sigma, a)) for n, a in enumerate(angles)])


def zoom_center(x: torch.Tensor, factor: float) -> torch.Tensor:
    """`_ops.zoom_center` of NxCxHxW `x`: the centre crop zoomed by `factor` to round(crop * factor)
    pixels a side, corner-aligned like scipy.ndimage.zoom, i.e. bilinear with align_corners=True
    (within 1.2e-5 of OpenCV's warpAffine on [0, 1] images)."""
    h, w = x.shape[-2:]
    ch, cw = int(math.ceil(h / factor)), int(math.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    crop = x[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)


def remap(x: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor, mode: str) -> torch.Tensor:
    """cv2.remap(INTER_LINEAR) of NxCxHxW `x` at float32 NxHoxWo source coordinates, border
    "reflect" or "mirror", through grid_sample: its reflection padding reflects the coordinate about
    the outer pixel edges (align_corners=False) or centres (True), which for bilinear sampling equals
    OpenCV's reflecting each neighbour's index (BORDER_REFLECT, BORDER_REFLECT_101)."""
    h, w = x.shape[-2:]
    if mode == "reflect":
        grid = torch.stack(((2 * map_x + 1) / w - 1, (2 * map_y + 1) / h - 1), dim=-1)
    elif mode == "mirror":
        grid = torch.stack((2 * map_x / max(w - 1, 1) - 1, 2 * map_y / max(h - 1, 1) - 1), dim=-1)
    else:
        raise ValueError(f"remap supports the reflect and mirror borders, got {mode!r}")
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=mode == "mirror")


def rgb_to_grey(u: torch.Tensor) -> torch.Tensor:
    """cv2.COLOR_RGB2GRAY on NxCxHxW float (keeps a channel axis of 1)."""
    return 0.299 * u[:, 0:1] + 0.587 * u[:, 1:2] + 0.114 * u[:, 2:3]


def scale_value(rgb: torch.Tensor, new_v: torch.Tensor) -> torch.Tensor:
    """`_ops.scale_value` with channels on axis 1 (`new_v` Nx1xHxW)."""
    v = rgb.amax(dim=1, keepdim=True)
    return torch.where(v > 0, rgb * (new_v / torch.where(v > 0, v, torch.ones_like(v))), new_v)


def scale_saturation(rgb: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """`_ops.scale_saturation` with channels on axis 1."""
    v = rgb.amax(dim=1, keepdim=True)
    delta = v - rgb.amin(dim=1, keepdim=True)
    one = torch.ones_like(v)
    s = torch.where(v > 0, delta / torch.where(v > 0, v, one), torch.zeros_like(v))
    s_new = torch.clamp(s * factor + offset, 0, 1)
    coloured = v - (v - rgb) * (s_new / torch.where(s > 0, s, one))
    grey = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], dim=1)
    return torch.where(s > 0, coloured, grey)
