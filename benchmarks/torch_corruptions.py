"""Benchmark: the torch corruption kernels against the NumPy kernels, ms per image (run by hand).

    python benchmarks/torch_corruptions.py [--sizes 480x640,224x224] [--severity 3] [--batch 8]
                                           [--repeats 3] [--threads 1] [--corruptions all]

Times, in the same run and on the same photo, `audit.corruptions.corrupt` (one image per call) and
`audit.corruptions.torch.corrupt_torch` on a batch of `--batch` copies with distinct image ids, on
the CPU with `--threads` intra-op threads (1: the per-core figure the NumPy kernels are quoted at),
and on CUDA when torch sees a GPU (input already on the device, timed to a synchronize). Prints
ms per image (best of `--repeats`, after a warm-up) and the NumPy / torch ratio (> 1: torch faster),
and the totals over the 15 benchmark corruptions. Measures only; exits 0.
"""

from __future__ import annotations

import os

# The NumPy side on one core, before NumPy / OpenCV / numba start their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

cv2.setNumThreads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.corruptions import corrupt, names  # noqa: E402
from audit.corruptions.torch import corrupt_torch, torch_kernel_names  # noqa: E402


def test_image(h: int, w: int) -> np.ndarray:
    """A photo from scikit-image's bundled data, resized to h x w."""
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)


def best_seconds(fn, repeats: int, sync=lambda: None) -> float:
    """Best-of-`repeats` wall time of `fn()` after one warm-up call."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def run(size: tuple[int, int], severity: int, batch: int, repeats: int, selection: list[str]) -> dict[str, list[float]]:
    img = test_image(*size)
    ids = [f"bench/{k}.jpg" for k in range(batch)]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    inputs = {d: torch.from_numpy(img)[None].repeat(batch, 1, 1, 1).to(d) for d in devices}
    head = "".join(f" {d.type + ' ms':>9s} {'ratio':>6s}" for d in devices)
    print(f"\n{size[0]}x{size[1]}, severity {severity}, torch batch {batch}, {torch.get_num_threads()} CPU thread(s), best of {repeats}")
    print(f"{'corruption':18s} {'numpy ms':>9s}{head}")
    rows = {}
    for name in selection:
        ms = [1000 * best_seconds(lambda: corrupt(img, name, severity, seed=0, image_id=ids[0]), repeats)]
        line = f"{name:18s} {ms[0]:9.2f}"
        for d in devices:
            sync = torch.cuda.synchronize if d.type == "cuda" else (lambda: None)
            t = best_seconds(lambda: corrupt_torch(inputs[d], name, severity, seed=0, image_id=ids), repeats, sync)
            ms.append(1000 * t / batch)
            line += f" {ms[-1]:9.2f} {ms[0] / ms[-1]:5.2f}x"
        rows[name] = ms
        print(line, flush=True)
    bench = [n for n in names("benchmark") if n in rows]
    if len(bench) == 15:
        totals = [sum(rows[n][k] for n in bench) for k in range(len(devices) + 1)]
        print(f"{'15 benchmark total':18s} {totals[0]:9.2f}" + "".join(f" {t:9.2f} {totals[0] / t:5.2f}x" for t in totals[1:]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="480x640,224x224")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corruptions", default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    selection = [n for n in names(args.corruptions) if n in torch_kernel_names()]
    print(f"torch {torch.__version__}; CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'not available'}")
    for spec in args.sizes.split(","):
        h, w = (int(v) for v in spec.split("x"))
        run((h, w), args.severity, args.batch, args.repeats, selection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
