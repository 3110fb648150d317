"""Pattern generators for the ImageNet-C-bar kernels (audit.corruptions.cbar), vectorised over pixels.

Each function renders a whole H x W field at once from explicit parameters; all randomness is drawn
by the caller. Coordinates follow the reference (facebookresearch/augmentation-corruption,
imagenet_c_bar/corrupt.py, commit ba4d5a5): `y` is the row, `x` the column, in pixels.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (float64, H x W)."""
    y, x = np.mgrid[0:h, 0:w]
    return y.astype(np.float64), x.astype(np.float64)


def spectral_noise(rng: np.random.Generator, h: int, w: int, size: float, power: str) -> np.ndarray:
    """Unit-variance noise with a radial power law: 'blue' (amplitude ~ |k|) or 'brownish' (~ 1/(|k|^2+1)).

    |k| is the frequency in cycles per `size` pixels (the reference's square im_size), so the field
    looks the same on any H x W; random phases, real part, divided by its standard deviation.
    """
    ky = np.fft.fftfreq(h) * size
    kx = np.fft.fftfreq(w) * size
    k = np.hypot(ky[:, None], kx[None, :])
    amplitude = k if power == "blue" else 1.0 / (k**2 + 1.0)
    phases = rng.uniform(0, 2 * np.pi, size=(h, w))
    field = np.real(np.fft.ifft2(amplitude * np.exp(1j * phases)))
    return field / field.std()


def perlin_turbulence(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, octaves: float) -> np.ndarray:
    """Sum over octaves f = 1, 2, 4, ... <= `octaves` of |gradient noise(f u, f v)| / f (Perlin 1985)."""
    perm = rng.permutation(256)
    angles = rng.uniform(0, 2 * np.pi, size=256)
    grads = np.stack((np.cos(angles), np.sin(angles)), axis=1)
    total = np.zeros_like(u)
    f = 1.0
    while f <= octaves:
        total += np.abs(_gradient_noise(perm, grads, f * u, f * v)) / f
        f *= 2
    return total


def _gradient_noise(perm: np.ndarray, grads: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Classic 2-D gradient noise with an s-curve blend, scaled by 1.5 as in the reference."""
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    iu, iv = u0.astype(np.int64) % 256, v0.astype(np.int64) % 256

    def corner(du: int, dv: int) -> np.ndarray:
        g = grads[perm[(perm[(iu + du) % 256] + iv + dv) % 256]]
        return (fu - du) * g[..., 0] + (fv - dv) * g[..., 1]

    su, sv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    a = corner(0, 0) + su * (corner(1, 0) - corner(0, 0))
    b = corner(0, 1) + su * (corner(1, 1) - corner(0, 1))
    return 1.5 * (a + sv * (b - a))


def plasma(h: int, w: int, time: float, iterations: int, sharpness: float, scale: float) -> np.ndarray:
    """The reference's iterated sine flow ("plasma"), H x W x 3 in [-1, 1]."""
    y, x = grid(h, w)
    x, y = x / scale, y / scale
    freq, damp, div = 1.0, 1.0, 1.0  # the reference's fourth factor starts at 0 and stays 0
    for _ in range(iterations):
        r0 = np.cos(y * freq + time / damp) / div
        r1 = np.sin(x * freq + time / damp) / div
        x, y = x + r0 - 0.3 * r1, y + r1 + 0.3 * r0
        freq, damp, div = freq * 1.93, damp * 1.15, div * (2.25 - sharpness)
    return np.stack((np.sin(x - time), np.sin((x + y + np.sin(time)) * 0.5), np.sin(y + time)), axis=-1)


def caustics(h: int, w: int, time: float, size: float) -> np.ndarray:
    """Water caustic brightness in [0, 1] (H x W), tiled every `size` pixels, softened by a 1-px Gaussian."""
    y, x = grid(h, w)
    p0 = (y / size % 1) * 6.28318530718 - 250
    p1 = (x / size % 1) * 6.28318530718 - 250
    i0, i1 = p0.copy(), p1.copy()
    c = np.ones_like(p0)
    for n in range(5):
        t = time * (1.0 - 3.5 / (n + 1))
        i0, i1 = p0 + np.cos(t - i0) + np.sin(t + i1), p1 + np.sin(t - i1) + np.cos(t + i0)
        c += 1.0 / np.sqrt((p0 / (np.sin(i0 + t) / 0.005)) ** 2 + (p1 / (np.cos(i1 + t) / 0.005)) ** 2)
    c = 1.17 - (c / 5.0) ** 1.4
    return gaussian_filter(np.clip(np.abs(c) ** 8.0, 0, 1), sigma=1, mode="reflect")


def rays(y: np.ndarray, x: np.ndarray, center: np.ndarray, lengths: np.ndarray, exponent: float) -> np.ndarray:
    """A star of rays around `center` (row, col): weight in [0, 1] per pixel (the sparkle kernels)."""
    dy, dx = y - center[0], x - center[1]
    n = len(lengths)
    d = (np.arctan2(dx, dy) + np.pi) / (2 * np.pi) * n
    i = d.astype(np.int64)
    f = d - i
    length = lengths[i % n] + f * (lengths[(i + 1) % n] - lengths[i % n])
    g = (length**2 / (dy**2 + dx**2 + 1e-4)) ** exponent
    return np.clip((1 - (f - 0.5) ** 2) * g, 0, 1)


def bilinear_zero(image: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Sample `image` (H x W x C) at real positions, bilinearly, with zeros outside the image.

    Each of the four neighbours is read from the image only when it lies inside it and counts as
    zero otherwise (the reference's `bilinear_interpolation`): a position 2 px or more beyond an
    edge samples zero, not the edge row or column.
    """
    h, w = image.shape[:2]
    padded = np.zeros((h + 2, w + 2, image.shape[2]), image.dtype)
    padded[1:-1, 1:-1] = image
    y0, x0 = np.floor(py), np.floor(px)
    fy, fx = (py - y0)[..., None], (px - x0)[..., None]
    # Indices into `padded`, each neighbour clipped on its own: any index outside the image lands
    # on the zero border (clipping the second from the already clipped first would read the image).
    yi, xi = y0.astype(np.int64) + 1, x0.astype(np.int64) + 1
    yi, yj = np.clip(yi, 0, h + 1), np.clip(yi + 1, 0, h + 1)
    xi, xj = np.clip(xi, 0, w + 1), np.clip(xi + 1, 0, w + 1)
    top = padded[yi, xi] * (1 - fx) + padded[yi, xj] * fx
    bottom = padded[yj, xi] * (1 - fx) + padded[yj, xj] * fx
    return top * (1 - fy) + bottom * fy
