"""ImageNet-C-bar (Mintun et al. 2021): ten corruptions dissimilar to ImageNet-C, a second suite.

Subset and group `cbar`: never part of the benchmark mPC, summarised on their own. Parameters are the
published severities (imagenet_c_bar.csv; cifar10_c_bar.csv for the cifar-10-c profile, which lists
only five of these ten: the other five take the CIFAR values at the same positions of the reference's
10-level CIFAR grid, cifar10_new_corruptions.csv). Facts (constants, order of operations) are read
from facebookresearch/augmentation-corruption, imagenet_c_bar/corrupt.py at commit ba4d5a5; the code
is ours and vectorised.

Any H x W: the reference is written for a square `im_size` (224, or 32 for CIFAR). Here sizes the
reference gives in units of im_size (radii, pattern scales, lens strength, noise spectra) are in
units of s = min(H, W), and positions drawn uniformly over the square are drawn over H x W, so a
224 x 224 image gets exactly the reference's parameters. single_frequency_greyscale keeps the
reference's frequency per pixel at every size, as the reference does between 224 and 32.

Each kernel is `draw_<name>(rng, severity, h, w) -> params` then `render_<name>(x, **params)`: the
split lets the fidelity tests render the reference's own recorded draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.corruptions import _cbar_fields as fields
from audit.corruptions.registry import corruption

Params = dict[str, Any]


def level(severity: float, maxval: float) -> float:
    """The reference's `float_parameter`: a severity on 0..10 scaled to 0..maxval."""
    return float(severity) * maxval / 10.0


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)


def _cbar(name: str, imagenet: tuple, cifar: tuple, random: bool = True):
    return corruption(name, group="cbar", subset="cbar", random=random,
                      params={"imagenet-c": imagenet, "cifar-10-c": cifar})


# Registered in the published order of ImageNet-C-bar (imagenet_c_bar.csv).

def draw_caustic_refraction(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    s = min(h, w)
    return {"time": rng.uniform(0.5, 2.0), "size": rng.uniform(0.75, 1.25) * s,
            "lens_scale": level(severity, 0.5 * s), "lighting": level(severity, 2.0)}


def render_caustic_refraction(x: np.ndarray, time: float, size: float, lens_scale: float, lighting: float) -> np.ndarray:
    """Refract the image through a caustic-shaped lens (eta 4) and light it by the caustic's slope."""
    h, w = x.shape[:2]
    c = np.pad(fields.caustics(h, w, time, size), 1)  # zero luma outside, as the reference
    north, south = c[1:-1, :-2], c[1:-1, 2:]
    west, east = c[:-2, 1:-1], c[2:, 1:-1]
    a, b = east - west, south - north
    norm = np.sqrt(a * a + b * b + 1)
    a, b, cz = a / norm, b / norm, 1 / norm
    flat = cz >= 1.0 - 1e-3  # normal along the view ray: no refraction
    hyp = np.where(flat, 1.0, np.hypot(a, b))
    out_angle = np.arcsin(np.sin(np.arccos(np.clip(cz, -1, 1))) / 4.0)
    dy = np.cos(out_angle) * a - np.sin(out_angle) * cz * a / hyp
    dx = np.cos(out_angle) * b - np.sin(out_angle) * cz * b / hyp
    dy = np.where(flat, 0.0, np.round(dy * lens_scale, 3))
    dx = np.where(flat, 0.0, np.round(dx * lens_scale, 3))
    y, xx = fields.grid(h, w)
    # the reference scales the image to [0, 1] in float32 (and, run under NumPy 2, interpolates in float64)
    out = fields.bilinear_zero((x.astype(np.float32) / 255).astype(np.float64), y + dy, xx + dx)
    out += ((north - south + east - west) * lighting)[..., None]
    return np.clip(out, 0, 1) * 255


@_cbar("caustic_refraction", (2.35, 3.2, 4.9, 6.6, 9.15), (1.4, 1.8, 2.6, 3.4, 4.6))
def caustic_refraction(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Looking through rippled water: caustic refraction and lighting."""
    return render_caustic_refraction(x, **draw_caustic_refraction(rng, severity, *x.shape[:2]))


def draw_inverse_sparkles(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    radius = 0.25 * min(h, w)
    center = rng.uniform(0.25, 0.75, size=2) * (h, w)
    lengths = radius + 0.25 * radius * rng.standard_normal(rng.integers(50, 200))
    return {"center": center, "lengths": lengths, "exponent": level(severity, 65) / 50.0}


def render_inverse_sparkles(x: np.ndarray, center: np.ndarray, lengths: np.ndarray, exponent: float) -> np.ndarray:
    """The image seen through a star-shaped hole in white."""
    y, xx = fields.grid(*x.shape[:2])
    f = fields.rays(y, xx, center, np.asarray(lengths, np.float64), exponent)[..., None]
    return 255.0 + f * (_unit(x) - 255.0)


@_cbar("inverse_sparkles", (1.0, 2.0, 4.0, 9.0, 10.0), (1.0, 1.5, 2.5, 4.5, 5.0))
def inverse_sparkles(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """White everywhere but a star burst around a point near the centre."""
    return render_inverse_sparkles(x, **draw_inverse_sparkles(rng, severity, *x.shape[:2]))


def draw_sparkles(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    s = min(h, w)
    radius = level(severity, 0.1) * s
    centers = rng.uniform(0, 1, size=(5, 2)) * (h, w)
    lengths = [np.maximum(1, radius + 0.25 * radius * rng.standard_normal(rng.integers(50, 200))) for _ in range(5)]
    return {"centers": centers, "lengths": lengths}


def render_sparkles(x: np.ndarray, centers: np.ndarray, lengths: list) -> np.ndarray:
    """Five white star bursts painted one after the other (each over the previous result).

    Each burst reads the previous result as float32, as the reference does (its per-pixel kernel
    takes `value.astype(np.float32)`), and paints in float64.
    """
    y, xx = fields.grid(*x.shape[:2])
    out = _unit(x)
    for center, ray_lengths in zip(centers, lengths):
        f = fields.rays(y, xx, center, np.asarray(ray_lengths, np.float64), 1.0)[..., None]
        value = out.astype(np.float32).astype(np.float64)
        out = value + f * (255.0 - value)
    return out


@_cbar("sparkles", (1.0, 2.0, 3.0, 5.0, 6.0), (0.7, 3.5, 5.6, 6.3, 7.0))
def sparkles(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Star-shaped light bursts (radius severity x 1% of the short side)."""
    return render_sparkles(x, **draw_sparkles(rng, severity, *x.shape[:2]))


@_cbar("perlin_noise", (4.6, 5.2, 5.8, 7.6, 8.8), (4.6, 5.2, 5.8, 7.6, 8.8))
def perlin_noise(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Blend towards bright Perlin turbulence (5 octaves, base period 32/224 of the short side)."""
    h, w = x.shape[:2]
    y, xx = fields.grid(h, w)
    period = 32 * min(h, w) / 224
    noise = np.clip(0.5 * fields.perlin_turbulence(rng, y / period, xx / period, 16.0) + 0.5, 0, 1)
    alpha = level(severity, 0.5)
    return (1 - alpha) * _unit(x) + 255 * alpha * noise[..., None]


@_cbar("blue_noise_sample", (0.8, 1.6, 2.4, 4.0, 5.6), (0.7, 1.4, 2.1, 3.5, 4.2))
def blue_noise_sample(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Black out the pixels where a blue-noise field is below a threshold (more with severity)."""
    h, w = x.shape[:2]
    keep = fields.spectral_noise(rng, h, w, min(h, w), "blue") > level(severity, 3.0) - 2.5
    return x * keep[..., None]


@_cbar("plasma_noise", (4.75, 7.0, 8.5, 9.25, 10.0), (2.1, 4.2, 5.6, 6.3, 7.0))
def plasma_noise(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Blend in a coloured plasma pattern."""
    return render_plasma_noise(x, **draw_plasma_noise(rng, severity, *x.shape[:2]))


def draw_plasma_noise(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    return {"time": rng.uniform(0.0, 6 * np.pi), "iterations": int(rng.integers(4, 7)),
            "sharpness": rng.uniform(0.5, 1.0), "scale": rng.uniform(0.075, 0.2) * min(h, w),
            "intensity": level(severity, 64)}


def render_plasma_noise(x: np.ndarray, time: float, iterations: int, sharpness: float, scale: float,
                        intensity: float) -> np.ndarray:
    noise = fields.plasma(*x.shape[:2], time, iterations, sharpness, scale)
    return (1 - intensity / 255) * _unit(x) + intensity * noise


@_cbar("checkerboard_cutout", (2.0, 3.0, 4.0, 5.0, 6.0), (1.0, 2.0, 3.0, 4.0, 5.0))
def checkerboard_cutout(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Grey out a random fraction (severity / 10) of the black squares of a rotated checkerboard."""
    h, w = x.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    cell = max(rng.uniform(0.1, 0.25) * min(h, w), 1)
    y, xx = fields.grid(h, w)
    u = (np.cos(angle) * y + np.sin(angle) * xx) / cell
    v = (-np.sin(angle) * y + np.cos(angle) * xx) / cell
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    iu, iv = iu - iu.min(), iv - iv.min()
    cut = rng.uniform(size=(iu.max() + 1, iv.max() + 1)) < level(severity, 1.0)
    hole = ((iu % 2) == (iv % 2)) & cut[iu, iv]
    return np.where(hole[..., None], 128, x).astype(np.uint8)


def draw_cocentric_sine_waves(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    s = min(h, w)
    return {"offset": rng.uniform(0, 1, size=2) * (w, h), "freq": rng.uniform(0, 10),
            "amplitude": rng.uniform(0, s / 10), "ring_width": rng.uniform(0, s / 10),
            "intensity": level(severity, 128)}


def render_cocentric_sine_waves(x: np.ndarray, offset: np.ndarray, freq: float, amplitude: float,
                                ring_width: float, intensity: float) -> np.ndarray:
    """Add wavy rings around `offset` (column, row): a sawtooth of the wobbled distance."""
    y, xx = fields.grid(*x.shape[:2])
    dx, dy = xx - offset[0], y - offset[1]
    wobble = np.sin(np.arctan2(dx, dy) * freq) * amplitude
    saw = ((np.hypot(dx, dy) + wobble) % ring_width) / ring_width - 0.5
    return _unit(x) + intensity * saw[..., None]


@_cbar("cocentric_sine_waves", (3.0, 5.0, 8.0, 9.0, 10.0), (1.5, 2.5, 4.0, 4.5, 5.0))
def cocentric_sine_waves(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Concentric, wobbling grey rings added to the image."""
    return render_cocentric_sine_waves(x, **draw_cocentric_sine_waves(rng, severity, *x.shape[:2]))


def draw_single_frequency_greyscale(rng: np.random.Generator, severity: float, h: int, w: int) -> Params:
    mag = rng.uniform(-np.pi, np.pi)
    freq = np.array([mag, rng.uniform(-abs(mag), abs(mag))])[rng.permutation(2)]
    return {"freq": freq, "phase": rng.uniform(0, 2 * np.pi), "intensity": level(severity, 196)}


def render_single_frequency_greyscale(x: np.ndarray, freq: np.ndarray, phase: float, intensity: float) -> np.ndarray:
    """Add a grey plane wave sin(col f0 + row f1 + phase) of amplitude `intensity`."""
    y, xx = fields.grid(*x.shape[:2])
    return _unit(x) + intensity * np.sin(xx * freq[0] + y * freq[1] + phase)[..., None]


@_cbar("single_frequency_greyscale", (1.0, 1.5, 2.0, 4.5, 5.0), (0.6, 0.9, 1.2, 2.7, 3.0))
def single_frequency_greyscale(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """A single grey sinusoidal grating over the image."""
    return render_single_frequency_greyscale(x, **draw_single_frequency_greyscale(rng, severity, *x.shape[:2]))


@_cbar("brownish_noise", (1.0, 2.0, 3.0, 4.0, 5.0), (2.5, 4.0, 5.5, 6.5, 7.0))
def brownish_noise(x: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Add low-frequency (1/(f^2+1)) colour noise, one field per channel."""
    h, w = x.shape[:2]
    noise = np.stack([fields.spectral_noise(rng, h, w, min(h, w), "brownish") for _ in range(3)], axis=-1)
    return _unit(x) + level(severity, 64) * noise
