"""Torch noise kernels: gaussian, shot (Poisson), impulse and (hold-out) speckle noise.

The noise fields are drawn on the host from each image's NumPy Generator, exactly as the NumPy
kernels draw them, then moved to the device: the outputs equal the NumPy kernels' up to float
rounding. The draw is most of the cost of these kernels (a normal per value); that is the price of
identical draws. Shot noise is the one kernel that reads pixels on the host: NumPy's Poisson
sampler takes each pixel's own rate, so the image goes to the host for the draw (documented
exception to "stays on the device"); the counts come back to the device.

`fast_random=True` variants draw on the device from per-image torch Generators instead (torch.randn,
torch.poisson, torch.rand): the same distributions, no host round trip, other values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from audit.corruptions.torch._registry import torch_kernel
from audit.corruptions.torch._tops import from_host


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255


@torch_kernel("gaussian_noise")
def gaussian_noise(x: torch.Tensor, sigma: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    noise = from_host([rng.standard_normal(x.shape[1:], dtype=np.float32) for rng in rngs], x.device)
    return torch.clamp(_unit(x) + noise * np.float32(sigma).item(), 0, 1) * 255


@torch_kernel("shot_noise")
def shot_noise(x: torch.Tensor, lam: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    host = x.cpu().numpy()  # NumPy's Poisson sampler needs each pixel's rate (see the module docstring)
    lam32 = np.float32(lam)
    counts = from_host([rng.poisson(img.astype(np.float32) / np.float32(255) * lam32).astype(np.float32)
                        for img, rng in zip(host, rngs)], x.device)
    return torch.clamp(counts / float(lam32), 0, 1) * 255


@torch_kernel("impulse_noise")
def impulse_noise(x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    flipped, salted = [], []
    for rng in rngs:  # per image: all of `flipped`, then all of `salted`, as the NumPy kernel draws
        flipped.append(rng.random(x.shape[1:], dtype=np.float32) <= amount)
        salted.append(rng.random(x.shape[1:], dtype=np.float32) <= 0.5)
    flip, salt = from_host(flipped, x.device), from_host(salted, x.device)
    out = torch.where(flip & salt, torch.full_like(x, 255), x)
    return torch.where(flip & ~salt, torch.zeros_like(x), out)


@torch_kernel("speckle_noise")
def speckle_noise(x: torch.Tensor, sigma: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    u = _unit(x)
    noise = from_host([rng.standard_normal(x.shape[1:], dtype=np.float32) for rng in rngs], x.device)
    return torch.clamp(u + u * noise * np.float32(sigma).item(), 0, 1) * 255


def _fast_draw(x: torch.Tensor, gens: Sequence[torch.Generator], draw) -> torch.Tensor:
    return torch.stack([draw(img, g) for img, g in zip(x, gens)])


@torch_kernel("gaussian_noise", fast=True)
def gaussian_noise_fast(x: torch.Tensor, sigma: float, gens: Sequence[torch.Generator]) -> torch.Tensor:
    noise = _fast_draw(x, gens, lambda img, g: torch.randn(img.shape, generator=g, device=img.device))
    return torch.clamp(_unit(x) + noise * np.float32(sigma).item(), 0, 1) * 255


@torch_kernel("shot_noise", fast=True)
def shot_noise_fast(x: torch.Tensor, lam: float, gens: Sequence[torch.Generator]) -> torch.Tensor:
    lam32 = float(np.float32(lam))
    counts = _fast_draw(x, gens, lambda img, g: torch.poisson(_unit(img) * lam32, generator=g))
    return torch.clamp(counts / lam32, 0, 1) * 255


@torch_kernel("impulse_noise", fast=True)
def impulse_noise_fast(x: torch.Tensor, amount: float, gens: Sequence[torch.Generator]) -> torch.Tensor:
    u = _fast_draw(x, gens, lambda img, g: torch.rand((2, *img.shape), generator=g, device=img.device))
    flip, salt = u[:, 0] <= amount, u[:, 1] <= 0.5
    out = torch.where(flip & salt, torch.full_like(x, 255), x)
    return torch.where(flip & ~salt, torch.zeros_like(x), out)


@torch_kernel("speckle_noise", fast=True)
def speckle_noise_fast(x: torch.Tensor, sigma: float, gens: Sequence[torch.Generator]) -> torch.Tensor:
    u = _unit(x)
    noise = _fast_draw(x, gens, lambda img, g: torch.randn(img.shape, generator=g, device=img.device))
    return torch.clamp(u + u * noise * np.float32(sigma).item(), 0, 1) * 255
