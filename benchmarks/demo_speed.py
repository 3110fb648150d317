"""Benchmark: the demo's audits against bare ONNX Runtime inference on the same models and images.

Run by hand:  python benchmarks/demo_speed.py [--demo DIR] [--models detector,classifier] [--repeats 3]

DIR is the folder of an `audit demo --out DIR` (its models/ and data/ are reused; without them the
demo's data and models are made there first, which fine-tunes for a few minutes). For each model,
in the same run:

1. bare inference: one ONNX Runtime session with default options, the dataset's clean images
   preprocessed as the audit preprocesses them, fed as the audit feeds them (one image per call for
   a torchvision detector, batches of 8 otherwise); the median of `--repeats` passes over the images;
2. the demo's audit of that model (`audit.workflows.demo.audit_config`: 7 corruptions x 3 severities + clean
   = 22 cells, default workers, the report and example images) in a fresh output folder, in a
   subprocess;
3. the ratio of the audit to 22 passes of bare inference, in CPU time (user + sys of this process,
   or of the subprocess and its corruption workers) and in wall time.

CPU time stays meaningful on a machine that others load; wall time is the newcomer's figure only
on an idle machine. A ratio near 1 means the audit costs what its inference costs; the rest is
corruption, decoding, metrics and the files written.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's `audit`, not whichever one is installed

TASKS = {"classifier": "cifar10", "classifier-int8": "cifar10", "segmenter": "ade20k", "detector": "coco"}


def demo_models(demo: Path, images: int) -> dict[str, tuple[Path, str, Path]]:
    """name -> (model, task, data) of the demo in `demo`, made there first where missing."""
    models = {name: (demo / "models" / f"{name}.onnx", task, demo / "data" / task) for name, task in TASKS.items()}
    if not all(m.exists() and d.exists() for m, _, d in models.values()):
        from audit.workflows.demo import _torch_models

        print(f"making the demo's data and models in {demo} (fine-tuning: a few minutes)", flush=True)
        made = _torch_models(demo, images, 0, print, False)
        models = {m.name: (m.model, m.task, m.data) for m in made}
    return models


def bare_pass(model: Path, task: str, data: Path, repeats: int) -> tuple[float, float, int, int]:
    """(wall s, CPU s) of one pass of bare ONNX Runtime over the clean images (median of `repeats`),
    the number of images and of engine calls per pass."""
    import numpy as np
    import onnxruntime as ort

    from audit.datasets import open_dataset, task_type
    from audit.engines.onnxruntime import OrtEngine
    from audit.tasks import resolve_spec
    from audit.tasks.preprocess import preprocess

    spec = resolve_spec(OrtEngine(model), task_type(task), None, {}, benchmark=task)
    dataset = open_dataset(task, str(data))
    arrays = [preprocess(dataset.load_image(i), spec)[0] for i in range(len(dataset))]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    if len(first.shape) == 3:  # a torchvision detector: one [3, H, W] image per call
        feeds = arrays
    else:
        feeds = [np.stack(arrays[i:i + 8]) for i in range(0, len(arrays), 8)]
    session.run(None, {first.name: feeds[0]})  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for x in feeds:
            session.run(None, {first.name: x})
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), len(arrays), len(feeds)


AUDIT = """
import sys
from pathlib import Path
from audit.api import run_audit
from audit.workflows.demo import DemoModel, audit_config
doc = run_audit(audit_config(DemoModel(sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])), Path(sys.argv[5]),
                             progress=False)).document
print(len(doc["cells"]))
"""


def audit_run(name: str, model: Path, task: str, data: Path, out: Path) -> tuple[float, float, int]:
    """(wall s, CPU s of the subprocess and its workers, cells) of the demo's audit of one model."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", AUDIT, name, str(model), task, str(data), str(out)], check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("demo"), help="an `audit demo --out` folder")
    parser.add_argument("--models", default="detector", help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--images", type=int, default=200, help="--images of the demo, when it is made here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = demo_models(args.demo, args.images)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    head = f"{'model':16s} {'images':>6s} {'calls':>5s} {'bare pass':>17s} {'cells':>5s} {'audit':>17s} {'audit / (cells x bare)':>24s}"
    print(head + "\n" + " " * 34 + f"{'wall s':>8s} {'CPU s':>8s} {'':5s} {'wall s':>8s} {'CPU s':>8s} {'wall':>11s} {'CPU':>12s}")
    for name in args.models.split(","):
        model, task, data = models[name]
        b_wall, b_cpu, n, calls = bare_pass(model, task, data, args.repeats)
        with tempfile.TemporaryDirectory() as tmp:
            a_wall, a_cpu, cells = audit_run(name, model, task, data, Path(tmp) / "run")
        print(f"{name:16s} {n:6d} {calls:5d} {b_wall:8.2f} {b_cpu:8.2f} {cells:5d} {a_wall:8.1f} {a_cpu:8.1f} "
              f"{a_wall / (cells * b_wall):11.2f} {a_cpu / (cells * b_cpu):12.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
