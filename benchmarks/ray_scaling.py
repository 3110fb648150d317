"""Benchmark: the same audit with the local executor and with 1 and 2 Ray workers, as ratios.

Run by hand:  python benchmarks/ray_scaling.py [--images 2000] [--corruptions benchmark] [--severities 1,3,5]

Uses the demo classifier (trained in NumPy, written as ONNX) on synthetic CIFAR-10 batches, so it
needs nothing but the `cpu` and `ray` extras.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def audit(model: Path, data: Path, out: Path, corruptions: str, severities: list[int], executor: str) -> float:
    from audit.api import AuditConfig, run_audit

    t0 = time.perf_counter()
    run_audit(AuditConfig(model=str(model), task="cifar10", data=str(data), out=str(out), corruptions=corruptions,
                          severities=severities, executor=executor, workers=1 if executor == "local" else 0,
                          progress=False, examples=0, report=False))
    return time.perf_counter() - t0


def main() -> int:
    import ray

    from audit.workflows import demo_models
    from audit.datasets import synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--corruptions", default="benchmark")
    parser.add_argument("--severities", default="1,3,5")
    args = parser.parse_args()
    severities = [int(s) for s in args.severities.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = synthetic.write_cifar10(tmp / "cifar", n_train=2, n_test=args.images).parent
        model = demo_models.train_classifier(tmp / "cls.onnx")
        times = {"local": audit(model, data, tmp / "local", args.corruptions, severities, "local")}
        for cpus in (1, 2):
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            times[f"ray x{cpus}"] = audit(model, data, tmp / f"ray{cpus}", args.corruptions, severities, "ray")
            ray.shutdown()
    from audit.corruptions import names

    print(f"{args.images} images x {1 + len(severities) * len(names(args.corruptions))} cells, demo classifier, "
          f"{os.cpu_count()} CPU cores")
    for name, seconds in times.items():
        print(f"{name:8s} {seconds:7.1f} s   {times['local'] / seconds:5.2f}x the local executor's speed")
    print(f"ray x2 vs ray x1: {times['ray x1'] / times['ray x2']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
