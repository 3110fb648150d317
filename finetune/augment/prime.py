"""PRIME (Modas et al. 2022) on [0,1] images: spectral colour, random filter, smooth diffeomorphism.

Parameters follow the PRIME paper (ImageNet: colour cut 500, T .05; CIFAR: cut 100, T .01; width 3, depth
U{1..3}, Dirichlet(1) mixing, Beta(1, 1) blend). Where the description leaves a scale open it is stated
here: the colour coefficients' standard deviation is T' ~ U(0, T) over a cut' ~ U{1..cut} of
frequencies; the filter is delta + sigma' N(0,1) / k^2 with sigma' ~ U(0, 4) (per-tap std at most
.44 for k=3); the diffeomorphism moves pixels by a sine field of max frequency 3 with temperature
up to 1 px^2. Dense tasks use colour and filter only (no geometric change, so labels stay valid).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from finetune.augment._mix import mix_chains, randint, uniform

PROFILES = {"imagenet": {"cut": 500, "T": 0.05}, "cifar": {"cut": 100, "T": 0.01}}


def spectral_colour(x: torch.Tensor, g: torch.Generator, cut: int, T: float) -> torch.Tensor:
    """c + sum_k beta_k sin(k pi c) per channel, beta_k ~ N(0, T'^2)."""
    k = torch.arange(1, randint(g, 1, cut) + 1, dtype=x.dtype, device=x.device)
    beta = torch.randn(x.shape[0], len(k), generator=g).to(x) * uniform(g, 0, T)
    waves = torch.sin(math.pi * x.unsqueeze(-1) * k)  # [C, H, W, K]
    return x + (waves * beta[:, None, None, :]).sum(-1)


def random_filter(x: torch.Tensor, g: torch.Generator, size: int = 3, sigma_max: float = 4.0) -> torch.Tensor:
    """One random size x size kernel per channel: delta + sigma' N(0,1) / size^2."""
    kernel = torch.randn(x.shape[0], 1, size, size, generator=g) * uniform(g, 0, sigma_max) / size**2
    kernel[:, 0, size // 2, size // 2] += 1.0
    return F.conv2d(x[None], kernel.to(x), padding=size // 2, groups=x.shape[0])[0]


def diffeomorphism(x: torch.Tensor, g: torch.Generator, cut: int = 3, T: float = 1.0) -> torch.Tensor:
    """A smooth displacement field sum c_ij sin(i pi u) sin(j pi v), c_ij ~ N(0, T'/(i^2+j^2)) px^2."""
    h, w = x.shape[-2:]
    i = torch.arange(1, cut + 1, dtype=torch.float32)
    norm = (i[:, None] ** 2 + i[None, :] ** 2).sqrt()
    u, v = torch.linspace(0, 1, h), torch.linspace(0, 1, w)
    su, sv = torch.sin(math.pi * u[:, None] * i), torch.sin(math.pi * v[:, None] * i)  # [H, cut], [W, cut]
    fields = []
    for _ in range(2):
        c = torch.randn(cut, cut, generator=g) * math.sqrt(uniform(g, 0, T)) / norm
        fields.append(su @ c @ sv.T)  # [H, W], pixels
    dy, dx = fields
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack((gx + dx * 2 / max(w - 1, 1), gy + dy * 2 / max(h - 1, 1)), -1)[None].to(x)
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def prime(batch: torch.Tensor, g: torch.Generator, profile: str = "imagenet", geometric: bool = False) -> torch.Tensor:
    """PRIME each image of an [N, 3, H, W] batch in [0,1]; same shape, values in [0,1].

    Args:
        batch: float images on [0, 1] (before normalisation).
        g: the generator every random draw comes from (seed it for reproducible runs).
        profile: "imagenet" (cut 500, T .05) or "cifar" (cut 100, T .01).
        geometric: add the diffeomorphism (classification; square images only).

    Example:
        >>> out = prime(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0), "cifar")
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([2, 3, 32, 32]), True, True)
    """
    p = PROFILES[profile]
    ops = [lambda x, g: spectral_colour(x, g, p["cut"], p["T"]), lambda x, g: random_filter(x, g)]
    if geometric and batch.shape[-1] == batch.shape[-2]:
        ops.append(lambda x, g: diffeomorphism(x, g))
    return torch.stack([mix_chains(img, ops, g) for img in batch])
