"""Benchmark: the main process's peak memory for 7 vs 76 cells when predictions are large.

Run by hand:  python benchmarks/audit_memory.py [--images 100] [--detections 300] [--workers 1]

A detector that answers every image with the same `--detections` boxes (an ONNX graph of constants,
tests/helpers/models.constant_detector: inference costs nothing, so the per-image predictions the
metrics keep dominate the memory) audits synthetic 96x128 COCO images (with one corruption worker by default, so that the main process
holds predictions and units in flight, not corruption temporaries), once with
7 cells (clean + 6 corruptions at severity 3) and once with 76 (clean + 15 x 5), each in a fresh
process; prints the peak resident memory (VmHWM) over the RSS after imports, and the 76 / 7 ratio;
with `--tracemalloc` also the peak of the Python (and NumPy) allocations made during the audit.
Before issue 20's execution layer every finished cell's metric stayed in memory to the end; now a
group of 8 cells at most is live (and one group being saved).

`--timeline` instead runs the 76-cell audit once and prints the main process's largest RSS while
N cells were finished on disk (sampled every 0.2 s), N in steps of 8: whether the resident memory
keeps growing with the cells or levels off.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEVEN = "gaussian_noise,defocus_blur,motion_blur,snow,contrast,jpeg_compression"


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(spec: str) -> None:
    args = json.loads(spec)
    from audit.api import AuditConfig, run_audit

    base = rss("VmRSS")
    timeline: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:  # largest RSS seen while N cells were on disk
        cells = Path(args["out"]) / "cells"
        while not done.wait(0.2):
            n = len(list(cells.glob("*.json"))) if cells.is_dir() else 0
            timeline[n] = max(timeline.get(n, 0), rss("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    if args.get("timeline"):
        sampler.start()
    if args["trace"]:
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    run_audit(AuditConfig(model=args["model"], task="coco", data=args["data"], out=args["out"], workers=args["workers"],
                          corruptions=SEVEN if args["cells"] == 7 else "benchmark",
                          severities=[3] if args["cells"] == 7 else [1, 2, 3, 4, 5], examples=0, report=False,
                          progress=False, overrides={"label_space": "index+background"}))
    traced = tracemalloc.get_traced_memory()[1] // 1024 if args["trace"] else 0
    done.set()
    print(json.dumps({"base_kb": base, "hwm_kb": rss("VmHWM"), "wall_s": time.perf_counter() - t0, "traced_kb": traced,
                      "timeline": sorted(timeline.items())}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--detections", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also the peak of Python's allocations (NumPy's included; slower)")
    parser.add_argument("--timeline", action="store_true",
                        help="the 76-cell audit only: largest RSS against the number of cells finished")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    import numpy as np

    from audit.datasets import synthetic
    from tests.helpers.models import constant_detector

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 80, (args.detections, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 40, (args.detections, 2))], axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = constant_detector(tmp / "const.onnx", boxes, rng.integers(1, 5, args.detections),
                                  rng.uniform(0.05, 1, args.detections))
        data = synthetic.write_coco(tmp / "coco", n_train=1, n_val=args.images, size=(96, 128))
        print(f"{args.images} images x {args.detections} detections, --workers {args.workers} ({ROOT})\n")
        if args.timeline:
            return timeline(model, data, tmp, args.workers)
        print("| cells | RSS after imports MB | peak MB (VmHWM) | peak - baseline MB | traced peak MB | wall s |")
        print("|---|---|---|---|---|---|")
        grown = {}
        for cells in (7, 76):
            m = run_child(model, data, tmp, cells, args.workers, args.tracemalloc)
            grown[cells] = (m["hwm_kb"] - m["base_kb"]) / 1024
            traced = f"{m['traced_kb'] / 1024:.0f}" if args.tracemalloc else "-"
            print(f"| {cells} | {m['base_kb'] / 1024:.0f} | {m['hwm_kb'] / 1024:.0f} | {grown[cells]:.0f} | {traced} | "
                  f"{m['wall_s']:.1f} |", flush=True)
        print(f"\npeak - baseline, 76 cells / 7 cells: {grown[76] / grown[7]:.2f}x")
    return 0


def run_child(model: Path, data: Path, tmp: Path, cells: int, workers: int, trace: bool, timeline: bool = False) -> dict:
    spec = json.dumps({"model": str(model), "data": str(data), "out": str(tmp / f"out{cells}"), "cells": cells,
                       "workers": workers, "trace": trace, "timeline": timeline})
    proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timeline(model: Path, data: Path, tmp: Path, workers: int) -> int:
    m = run_child(model, data, tmp, 76, workers, False, timeline=True)
    steps: dict[int, int] = {}
    for n, kb in m["timeline"]:
        steps[n // 8 * 8] = max(steps.get(n // 8 * 8, 0), kb)
    print("| cells finished | largest RSS MB | over RSS after imports MB |")
    print("|---|---|---|")
    for n, kb in sorted(steps.items()):
        print(f"| {n}-{min(n + 7, 76)} | {kb / 1024:.0f} | {(kb - m['base_kb']) / 1024:.0f} |")
    print(f"\nfinal VmHWM {m['hwm_kb'] / 1024:.0f} MB, RSS after imports {m['base_kb'] / 1024:.0f} MB, {m['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
