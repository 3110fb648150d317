"""Torch blur kernels: defocus, glass, motion, zoom and (hold-out) gaussian blur.

Glass blur's pixel shuffle is a sequential scan in the reference (each pixel copies a neighbour that
may already have been overwritten); here it is resolved in parallel: every pixel follows its chain of
already-overwritten sources with pointer jumping (log2 of the longest chain gathers per iteration),
which gives the scan's result exactly. Motion blur sums one shifted slice per streak tap; zoom blur
resamples rows and columns separably.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from audit.corruptions import _ops
from audit.corruptions.blur import _zoom_steps
from audit.corruptions.torch import _tops
from audit.corruptions.torch._registry import torch_kernel


@torch_kernel("defocus_blur")
def defocus_blur(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    return _tops.nhwc(torch.clamp(_tops.filter2d(_tops.unit(x), _ops.disk(*p), "mirror"), 0, 1) * 255)


def _shuffle(img: torch.Tensor, offsets: torch.Tensor, delta: int) -> torch.Tensor:
    """The reference's in-place scan (blur._shuffle_pixels) for NxCxHxW `img`; offsets NxIxKx2
    (column, row) in scan order: rows, then columns, from the far edge inwards."""
    n, c, h, w = img.shape
    dev = img.device
    rows = torch.arange(h - delta, delta, -1, device=dev)
    cols = torch.arange(w - delta, delta, -1, device=dev)
    pos = (rows[:, None] * w + cols[None, :]).reshape(-1)  # scanned pixels, in scan order
    ident = torch.arange(h * w, device=dev).expand(n, -1)
    flat = img.reshape(n, c, h * w)
    for it in range(offsets.shape[1]):
        src = pos + offsets[:, it, :, 1] * w + offsets[:, it, :, 0]  # N x K
        read = ident.clone()
        read[:, pos] = src  # a pixel copies its source's value at its turn in the scan...
        link = ident.clone()
        # ...which is the source's new value when the scan already passed it (a higher index)
        link[:, pos] = torch.where(src > pos, src, pos)
        for _ in range(max(1, (h * w).bit_length())):
            nxt = link.gather(1, link)
            if torch.equal(nxt, link):
                break
            link = nxt
        final = read.gather(1, link)
        flat = flat.gather(2, final[:, None, :].expand(n, c, -1))
    return flat.reshape(n, c, h, w)


@torch_kernel("glass_blur")
def glass_blur(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    sigma, delta, iterations = p
    h, w = x.shape[1:3]
    img = (_tops.gaussian(_tops.unit(x), sigma) * 255).to(torch.uint8)
    k = max(h - 2 * delta, 0) * max(w - 2 * delta, 0)
    offsets = _tops.from_host([rng.integers(-delta, delta, size=(iterations, k, 2), dtype=np.int64) for rng in rngs], x.device)
    if k:
        img = _shuffle(img, offsets, delta)
    return _tops.nhwc(torch.clamp(_tops.gaussian(img.to(torch.float32) / 255, sigma), 0, 1) * 255)


@torch_kernel("motion_blur")
def motion_blur(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    radius, sigma = p
    angles = [rng.uniform(-45, 45) for rng in rngs]
    src = x.permute(0, 3, 1, 2).contiguous().to(torch.float32)
    return _tops.nhwc(torch.clamp(_tops.motion_blur(src, radius, sigma, angles), 0, 255))


@torch_kernel("zoom_blur")
def zoom_blur(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    factors = _zoom_steps(*p)
    h, w = x.shape[1:3]
    u = _tops.unit(x)
    acc = torch.zeros_like(u)
    for factor in factors:
        layer = _tops.zoom_center(u, float(factor))[..., :h, :w]
        acc[..., : layer.shape[-2], : layer.shape[-1]] += layer
    return _tops.nhwc(torch.clamp((u + acc) / (len(factors) + 1), 0, 1) * 255)


@torch_kernel("gaussian_blur")
def gaussian_blur(x: torch.Tensor, sigma: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    return _tops.nhwc(torch.clamp(_tops.gaussian(_tops.unit(x), sigma), 0, 1) * 255)
