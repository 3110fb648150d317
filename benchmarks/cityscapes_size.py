"""Benchmark: corruption and preprocessing cost at Cityscapes size (1024 x 2048) vs 480 x 640, one core.

Run by hand:  python benchmarks/cityscapes_size.py [--severity 3] [--corruptions benchmark]

Each corruption runs in a fresh process (so peak memory is its own): seconds per image at both sizes,
the per-pixel cost ratio (1.0 = cost grows with the pixel count; over 2 is disproportionate), and
the peak resident memory the corruption added over the loaded image, in MB and as a multiple of the
uint8 image's own size (6 MB at 1024 x 2048). Then the preprocessing of a segmentation model
(fixed resize to 512 x 1024, normalisation) at full size.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SIZES = ((480, 640), (1024, 2048))


def _scene(h: int, w: int) -> np.ndarray:
    from audit.datasets.synthetic import draw_scene

    return draw_scene(np.random.default_rng(0), h, w, 6)[0]


def _measure(args: tuple) -> tuple[float, float]:
    """(seconds, peak MB added) of one corruption on one image, in this fresh process."""
    import cv2

    cv2.setNumThreads(1)
    from audit.corruptions import corrupt

    name, severity, (h, w) = args
    image = _scene(h, w)
    corrupt(_scene(32, 32), name, severity, seed=0, image_id="warm")  # imports, numba compilation
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    corrupt(image, name, severity, seed=0, image_id="x")
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base


def _in_child(args: tuple) -> tuple[float, float]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure, (args,))


def _preprocess_seconds() -> float:
    from audit.spec.model import ModelSpec
    from audit.tasks.preprocess import preprocess

    spec = ModelSpec(task="segmentation", output_convention="segmentation_logits", input_size=(512, 1024), resize="fixed")
    image = _scene(*SIZES[1])
    preprocess(image, spec)
    start = time.perf_counter()
    for _ in range(3):
        preprocess(image, spec)
    return (time.perf_counter() - start) / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--corruptions", default="benchmark")
    args = parser.parse_args()
    from audit.corruptions import names

    pixel_ratio = (SIZES[1][0] * SIZES[1][1]) / (SIZES[0][0] * SIZES[0][1])
    image_mb = SIZES[1][0] * SIZES[1][1] * 3 / 2**20
    print(f"{'corruption':20s} {'s 480x640':>10s} {'s 1024x2048':>12s} {'per-pixel':>10s} {'peak MB':>8s} {'x image':>8s}")
    total_small = total_big = 0.0
    for name in names(args.corruptions):
        small, _ = _in_child((name, args.severity, SIZES[0]))
        big, peak = _in_child((name, args.severity, SIZES[1]))
        total_small, total_big = total_small + small, total_big + big
        flag = "  <- disproportionate" if big / small / pixel_ratio > 2 or peak / image_mb > 40 else ""
        print(f"{name:20s} {small:10.3f} {big:12.3f} {big / small / pixel_ratio:10.2f} {peak:8.0f} {peak / image_mb:8.1f}{flag}")
    print(f"{'total':20s} {total_small:10.3f} {total_big:12.3f} {total_big / total_small / pixel_ratio:10.2f}")
    print(f"preprocess 1024x2048 -> 512x1024 (resize, normalise): {_preprocess_seconds():.3f} s")


if __name__ == "__main__":
    main()
