"""ImageNet-C-bar speed: our kernels against the reference's per-image time (run by hand).

    python benchmarks/cbar_speed.py /tmp/cbar_ref/imagenet_c_bar [--repeats 3]

The reference (facebookresearch/augmentation-corruption, imagenet_c_bar/ at ba4d5a5, exported
outside this repository) loops over pixels in Python and handles square 224x224 images only; ours
is timed at 224x224 and at 480x640. Prints ms per image and the reference / ours ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audit.corruptions import corrupt, get, names  # noqa: E402
from tests.corruptions.cbar_signature import clean_image  # noqa: E402


def per_image(fn, repeats: int) -> float:
    """Best-of-`repeats` seconds of one call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the reference's imagenet_c_bar/ folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--severity", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(args.reference))
    import transform_finder  # the reference's own module

    small = clean_image()
    large = np.ascontiguousarray(np.tile(small, (3, 3, 1))[:480, :640])
    print(f"{'corruption':28s} {'ref 224':>10s} {'ours 224':>10s} {'ratio':>8s} {'ours 480x640':>13s}")
    for name in names("cbar"):
        sev = get(name).param("imagenet-c", args.severity)
        ref = transform_finder.transform_dict[name](sev, 224)
        t_ref = per_image(lambda: ref(small.copy()), 1)
        t_small = per_image(lambda: corrupt(small, name, args.severity, image_id="b"), args.repeats)
        t_large = per_image(lambda: corrupt(large, name, args.severity, image_id="b"), args.repeats)
        print(f"{name:28s} {t_ref * 1e3:9.0f}ms {t_small * 1e3:9.1f}ms {t_ref / t_small:7.0f}x {t_large * 1e3:11.1f}ms", flush=True)


if __name__ == "__main__":
    main()
