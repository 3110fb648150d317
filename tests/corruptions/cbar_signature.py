"""Small numeric signatures of ImageNet-C-bar outputs, shared by the reference-data script
(benchmarks/cbar_reference_stats.py) and the fidelity tests (test_cbar.py).

The test image is a recipe, not a file: scikit-image's bundled astronaut, area-resized to 224x224.
The "photos" records use more recipes: PHOTOS at PHOTO_SIZES (square, as the reference requires),
compared whole by digest, with block sums to say where a mismatch lies.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import skimage.data

from .conftest import photo

SIZE = 224
POOL = 28  # 8x8 mean-pooled output: 8 x 8 x 3 values
N_PIXELS = 256


def clean_image() -> np.ndarray:
    return cv2.resize(skimage.data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def pixel_positions() -> tuple[np.ndarray, np.ndarray]:
    """Fixed pixel positions (row, col) at which outputs are sampled exactly."""
    rng = np.random.default_rng(20210601)
    return rng.integers(0, SIZE, N_PIXELS), rng.integers(0, SIZE, N_PIXELS)


def pooled(image: np.ndarray) -> np.ndarray:
    """Mean over POOL x POOL blocks: (SIZE/POOL) x (SIZE/POOL) x C, float64."""
    h, w = image.shape[:2]
    x = image.astype(np.float64).reshape(h // POOL, POOL, w // POOL, POOL, -1)
    return x.mean(axis=(1, 3))


def signature(out: np.ndarray) -> dict:
    """What a deterministic-given-draws output is compared on: pooled output and exact sampled pixels."""
    rows, cols = pixel_positions()
    return {"pooled": np.round(pooled(out), 2).tolist(), "pixels": out[rows, cols].astype(int).tolist()}


def stats(clean: np.ndarray, out: np.ndarray) -> list[float]:
    """Distribution statistics of one output: [mean |out - clean|, mean R G B, std R G B, low-pass share].

    The low-pass share is std(pooled difference) / std(difference): how much of the change is coarse
    (brownish noise) rather than fine (blue noise).
    """
    diff = out.astype(np.float64) - clean
    o = out.astype(np.float64)
    grey = diff.mean(axis=2)
    share = float(pooled(grey[..., None]).std() / grey.std()) if grey.std() > 0 else 0.0
    return [float(np.abs(diff).mean()), *o.mean(axis=(0, 1)).tolist(), *o.std(axis=(0, 1)).tolist(), share]


PHOTOS = ("astronaut", "coffee", "chelsea")
PHOTO_SIZES = (96, 160, 224)
BLOCKS = 8  # block sums on an 8 x 8 grid (channels summed): where a whole-output mismatch lies


def photo_image(which: str, size: int) -> np.ndarray:
    """A bundled scikit-image photo, area-resized to size x size."""
    return photo(size, size, which)


def digest(out: np.ndarray) -> str:
    """sha256 of a uint8 output's bytes: equal digests are the same output, value for value."""
    return hashlib.sha256(np.ascontiguousarray(out, np.uint8).tobytes()).hexdigest()


def block_sums(out: np.ndarray) -> list[list[int]]:
    """Sums of a uint8 output over a BLOCKS x BLOCKS grid of (nearly) equal blocks and its channels."""
    rows = np.array_split(np.arange(out.shape[0]), BLOCKS)
    cols = np.array_split(np.arange(out.shape[1]), BLOCKS)
    x = out.astype(np.int64)
    return [[int(x[r[0]:r[-1] + 1, c[0]:c[-1] + 1].sum()) for c in cols] for r in rows]


def sparkle_lengths(seed: int, counts: list[int], radii: list[float], randomness: float) -> list[list[float]]:
    """The reference's sparkle ray lengths, replayed from its seed (legacy RandomState, a fixed stream).

    One list per burst, drawn in burst order: max(1, r + randomness% of r x N(0, 1)).
    """
    rs = np.random.RandomState(seed=seed)
    return [[max(1, r + randomness / 100.0 * r * rs.randn()) for _ in range(n)] for n, r in zip(counts, radii)]


STAT_NAMES = ["mean_abs_diff", "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "lowpass_share"]
