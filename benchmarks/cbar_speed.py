"""ImageNet-C-bar speed: our kernels against the reference, in CPU time, on two image sets (run by hand).

    python benchmarks/cbar_speed.py /tmp/cbar_ref/imagenet_c_bar [--repeats 5] [--severity 3]

The reference (facebookresearch/augmentation-corruption, imagenet_c_bar/ at ba4d5a5, exported
outside this repository) loops over pixels in Python and handles square images only, so both sides
run at 224x224, one image per call, on each image of two sets:
- photos: scikit-image's astronaut, coffee and chelsea, area-resized (cbar_signature.photo_image);
- synthetic: uniform noise, a colour ramp and a 16-px checkerboard (SYNTHETIC below).
Times are CPU seconds of this process (time.process_time), so a machine shared with other work
slows the wall clock more than these figures; the reference gets one call per image, ours the mean
of `--repeats`. Prints ms per image for each set, the reference / ours ratio measured in the same run
for each set, the range over sets, and ours at 480x640 (a tiled photo).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audit.corruptions import corrupt, get, names  # noqa: E402
from tests.corruptions.cbar_signature import PHOTOS, photo_image  # noqa: E402

SIZE = 224


def synthetic() -> list[np.ndarray]:
    """Three made-up 224x224 images: uniform noise, a colour ramp, a 16-px black/white checkerboard."""
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    ramp = (np.stack((x, y, 1 - x * y), axis=-1) * 255).astype(np.uint8)
    board = np.repeat((((np.indices((SIZE, SIZE)) // 16).sum(0) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    return [noise, ramp, board]


def cpu_seconds(fn, repeats: int) -> float:
    """Mean CPU seconds of one call over `repeats` calls."""
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def set_times(ref_cls, name: str, severity: int, images: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """(reference, ours) CPU seconds per image, averaged over `images`."""
    ref_sev = get(name).param("imagenet-c", severity)
    t_ref, t_ours = [], []
    for k, img in enumerate(images):
        np.random.seed(k)  # the reference draws from NumPy's global generator
        t_ref.append(cpu_seconds(lambda: ref_cls(ref_sev, SIZE)(img.copy()), 1))
        t_ours.append(cpu_seconds(lambda: corrupt(img, name, severity, image_id=str(k)), repeats))
    return float(np.mean(t_ref)), float(np.mean(t_ours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the reference's imagenet_c_bar/ folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--severity", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(args.reference))
    import transform_finder  # the reference's own module

    sets = {"photos": [photo_image(p, SIZE) for p in PHOTOS], "synthetic": synthetic()}
    large = np.ascontiguousarray(np.tile(sets["photos"][0], (3, 3, 1))[:480, :640])
    print(f"CPU ms per image, severity {args.severity}, {SIZE}x{SIZE}; ratio = reference / ours, same run")
    print(f"{'corruption':28s} {'ref photos':>10s} {'ours':>7s} {'ratio':>6s} {'ref synth':>10s} {'ours':>7s} "
          f"{'ratio':>6s} {'ours 480x640':>13s}")
    ratios = []
    for name in names("cbar"):
        row = f"{name:28s}"
        for images in sets.values():
            t_ref, t_ours = set_times(transform_finder.transform_dict[name], name, args.severity, images, args.repeats)
            ratios.append(t_ref / t_ours)
            row += f" {t_ref * 1e3:10.0f} {t_ours * 1e3:7.1f} {t_ref / t_ours:5.0f}x"
        t_large = cpu_seconds(lambda: corrupt(large, name, args.severity, image_id="b"), args.repeats)
        print(f"{row} {t_large * 1e3:13.1f}", flush=True)
    print(f"ratio range over corruptions and sets: {min(ratios):.0f}x to {max(ratios):.0f}x")


if __name__ == "__main__":
    main()
