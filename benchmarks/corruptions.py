"""Benchmark: our corruption kernels vs the reference (imagecorruptions 1.1.2), one CPU core.

Run by hand:  python benchmarks/corruptions.py [--sizes 480x640,224x224] [--repeats 3] [--severity 3]

Times both implementations on the same images in the same run and prints seconds per image and the
speed-up per corruption, the totals over the 15 benchmark corruptions, and whether the targets hold
(>= 10x in total at 480x640, none slower than the reference, glass_blur >= 50x). Exit status 1 when a
target is missed.
"""

from __future__ import annotations

import os

# One core, before NumPy / OpenCV / numba start their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)

from audit.corruptions import corrupt, names  # noqa: E402
from audit.corruptions.reference import reference_corrupt  # noqa: E402


def test_image(h: int, w: int) -> np.ndarray:
    """A photo from scikit-image's bundled data, resized to h x w."""
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)


def seconds_per_image(fn, repeats: int) -> float:
    """Best-of-`repeats` wall time of `fn()` (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(size: tuple[int, int], severity: int, repeats: int, selection: list[str]) -> dict[str, tuple[float, float]]:
    img = test_image(*size)
    rows = {}
    print(f"\n{size[0]}x{size[1]}, severity {severity}, best of {repeats} (reference: best of 1 for glass_blur)")
    print(f"{'corruption':18s} {'ours s/img':>11s} {'reference':>11s} {'speed-up':>9s}")
    for name in selection:
        ours = seconds_per_image(lambda: corrupt(img, name, severity, seed=0, image_id="bench"), repeats)
        ref_repeats = 1 if name == "glass_blur" else repeats
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = seconds_per_image(lambda: reference_corrupt(img, name, severity, seed=0), ref_repeats)
        rows[name] = (ours, ref)
        print(f"{name:18s} {ours:11.4f} {ref:11.4f} {ref / ours:8.1f}x", flush=True)
    bench = [n for n in names("benchmark") if n in rows]
    if bench:
        o, r = sum(rows[n][0] for n in bench), sum(rows[n][1] for n in bench)
        print(f"{'15 benchmark total':18s} {o:11.4f} {r:11.4f} {r / o:8.1f}x")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="480x640,224x224")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corruptions", default="all")
    args = parser.parse_args()
    selection = names(args.corruptions)
    ok = True
    for spec in args.sizes.split(","):
        h, w = (int(v) for v in spec.split("x"))
        rows = run((h, w), args.severity, args.repeats, selection)
        if (h, w) != (480, 640):
            continue
        bench = [n for n in names("benchmark") if n in rows]
        total = sum(rows[n][1] for n in bench) / sum(rows[n][0] for n in bench)
        slower = [n for n, (o, r) in rows.items() if o > r]
        glass = rows["glass_blur"][1] / rows["glass_blur"][0] if "glass_blur" in rows else float("nan")
        checks = [(len(bench) == 15 and total >= 10, f"benchmark total {total:.1f}x (target >= 10x)"),
                  (not slower, f"slower than reference: {', '.join(slower) or 'none'}"),
                  (glass >= 50, f"glass_blur {glass:.0f}x (target >= 50x)")]
        for passed, text in checks:
            print(("PASS " if passed else "FAIL ") + text)
            ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
