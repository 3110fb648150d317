"""Torch weather kernels: snow, frost, fog, brightness and (hold-out) spatter.

Snow draws its noise layer on the host and zooms, thresholds and streaks it on the device. Frost
blends with the NumPy kernel's own scaled texture (read from imagecorruptions by the same loader),
kept on the device per (texture, size, device). Fog's plasma fractal and spatter's liquid layer
depend on no pixel: they are drawn and built on the host by the NumPy kernels' own functions
(their cost is the draws: a fractal of next_pow2(max(h, w))^2 uniforms), then blended on the device.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from audit.corruptions import _ops
from audit.corruptions.holdout import spatter_layer
from audit.corruptions.torch import _tops
from audit.corruptions.torch._registry import torch_kernel
from audit.corruptions.weather import _scaled_texture


@torch_kernel("snow")
def snow(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    mean, std, zoom, threshold, radius, sigma, weight = p
    h, w = x.shape[1:3]
    noise, angles = [], []
    for rng in rngs:  # per image: the layer, then the streak angle
        noise.append(rng.normal(mean, std, size=(1, h, w)).astype(np.float32))
        angles.append(rng.uniform(-135, -45))
    layer = _tops.zoom_center(_tops.from_host(noise, x.device), zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = _tops.motion_blur(torch.clamp(layer, 0, 1), radius, sigma, angles)
    layer = (torch.round(layer * 255).to(torch.uint8).to(torch.float32) / 255)[..., :h, :w]
    u = _tops.unit(x)
    grey = _tops.rgb_to_grey(u)
    u = weight * u + (1 - weight) * torch.maximum(u, grey * 1.5 + 0.5)
    lh, lw = layer.shape[-2:]
    u[..., :lh, :lw] += layer + torch.flip(layer, dims=(-2, -1))
    return _tops.nhwc(torch.clamp(u, 0, 1) * 255)


@lru_cache(maxsize=32)
def _device_texture(index: int, h: int, w: int, fixed_scale: float | None, device: torch.device) -> torch.Tensor:
    # RGB float32 HxWx3 on the device, decoded and scaled once by the NumPy kernel's loader
    tex = _scaled_texture(index, h, w, fixed_scale)[:, :, ::-1].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(tex)).to(device)


@torch_kernel("frost")
def frost(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    image_weight, frost_weight, fixed_scale = p
    h, w = x.shape[1:3]
    crops = []
    for rng in rngs:
        index = int(rng.integers(5))
        tex = _device_texture(index, h, w, fixed_scale, x.device)
        top = int(rng.integers(0, max(tex.shape[0] - h, 1)))
        left = int(rng.integers(0, max(tex.shape[1] - w, 1)))
        crops.append(tex[top : top + h, left : left + w])
    return torch.clamp(image_weight * x.to(torch.float32) + frost_weight * torch.stack(crops), 0, 255)


@torch_kernel("fog")
def fog(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    strength, decay = p
    h, w = x.shape[1:3]
    size = _ops.next_power_of_2(max(h, w))
    haze = _tops.from_host([_ops.plasma_fractal(rng, size, decay)[None, :h, :w].astype(np.float32) for rng in rngs], x.device)
    u = _tops.unit(x)
    peak = u.amax(dim=(1, 2, 3), keepdim=True)
    return _tops.nhwc(torch.clamp((u + np.float32(strength).item() * haze) * (peak / (peak + strength)), 0, 1) * 255)


@torch_kernel("brightness")
def brightness(x: torch.Tensor, shift: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    u = _tops.unit(x)
    v = u.amax(dim=1, keepdim=True)
    new_v = torch.clamp(v + np.float32(shift).item(), max=1)
    return _tops.nhwc(torch.clamp(_tops.scale_value(u, new_v), 0, 1) * 255)


@torch_kernel("spatter")
def spatter(x: torch.Tensor, p: tuple, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    layers = [spatter_layer(tuple(x.shape[1:3]), p, rng) for rng in rngs]
    m = _tops.from_host([layer[0][None] for layer in layers], x.device)
    colour = torch.from_numpy(layers[0][1]).to(x.device)[None, :, None, None]
    u = _tops.unit(x)
    out = u * (1 - m) + colour * m if layers[0][2] else u + m * colour
    return _tops.nhwc(torch.clamp(out, 0, 1) * 255)
