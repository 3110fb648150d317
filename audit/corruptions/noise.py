"""Noise corruptions: gaussian, shot (Poisson) and impulse (salt and pepper) noise.

Parameters: imagecorruptions 1.1.2 (imagenet-c) and hendrycks/robustness make_cifar_c.py (cifar-10-c).
"""

from __future__ import annotations

import numpy as np

from audit.corruptions.registry import corruption


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255)


@corruption("gaussian_noise", group="noise", params={
    "imagenet-c": (0.08, 0.12, 0.18, 0.26, 0.38),
    "cifar-10-c": (0.04, 0.06, 0.08, 0.09, 0.10),
})
def gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, sigma) noise on [0, 1] pixels."""
    noisy = _unit(x) + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(noisy, 0, 1) * 255


@corruption("shot_noise", group="noise", params={
    "imagenet-c": (60, 25, 12, 5, 3),
    "cifar-10-c": (500, 250, 100, 75, 50),
})
def shot_noise(x: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise: photon counts with `lam` photons at full intensity."""
    counts = rng.poisson(_unit(x) * np.float32(lam)).astype(np.float32)
    return np.clip(counts / np.float32(lam), 0, 1) * 255


@corruption("impulse_noise", group="noise", params={
    "imagenet-c": (0.03, 0.06, 0.09, 0.17, 0.27),
    "cifar-10-c": (0.01, 0.02, 0.03, 0.05, 0.07),
})
def impulse_noise(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: each channel value is replaced with probability `amount`, half by 0, half by 255
    (scikit-image's `random_noise(mode='s&p')`, which the reference uses, draws per value too)."""
    flipped = rng.random(x.shape, dtype=np.float32) <= amount
    salted = rng.random(x.shape, dtype=np.float32) <= 0.5
    out = x.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out
