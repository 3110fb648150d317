"""Random draws shared by PRIME and AugMix, all from an explicit `torch.Generator`."""

from __future__ import annotations

import torch


def randint(g: torch.Generator, low: int, high: int) -> int:
    """An integer uniform on low..high inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def uniform(g: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """A float uniform on [low, high)."""
    return low + (high - low) * float(torch.rand((), generator=g))


def dirichlet_ones(g: torch.Generator, k: int) -> torch.Tensor:
    """Dirichlet(1, ..., 1): normalised Exp(1) draws (torch.distributions takes no generator)."""
    e = -torch.log(torch.rand(k, generator=g).clamp_min(1e-12))
    return e / e.sum()


def mix_chains(image: torch.Tensor, ops, g: torch.Generator, width: int = 3, max_depth: int = 3) -> torch.Tensor:
    """`width` chains of U{1..max_depth} ops each, mixed with Dirichlet(1) weights, blended with the
    clean image by m ~ Beta(1, 1) (uniform), clamped to [0, 1]. `ops` are callables (x, g) -> x."""
    weights = dirichlet_ones(g, width)
    mixed = torch.zeros_like(image)
    for w in weights:
        x = image
        for _ in range(randint(g, 1, max_depth)):
            x = ops[randint(g, 0, len(ops) - 1)](x, g)
        mixed = mixed + w * x
    m = uniform(g)
    return ((1 - m) * image + m * mixed).clamp(0, 1)
