"""Benchmark: where an audit's time goes, stage by stage, and the main process's peak memory.

Run by hand:  python benchmarks/audit_profile.py [--task coco|cifar10] [--images 24] [--cells 7|76]
                                                 [--memory-images N] [--no-memory] [--no-profile]

Cells: 7 = clean + gaussian_noise, defocus_blur, motion_blur, snow, contrast, jpeg_compression at
severity 3 (one or two per family); 76 = clean + the 15 benchmark corruptions x severities 1-5.

Builds the same kind of model and synthetic data as benchmarks/audit_pipeline.py (coco: a randomly
initialised Faster R-CNN MobileNet-v3 FPN, 5 classes = background + the 4 synthetic shapes, on
480x640 COCO images; cifar10: the small CNN of tests/helpers/models.py on synthetic CIFAR-10), then:

1. times every stage without touching production code, by calling the functions the runner calls,
   in its order, on the same inputs: for each work unit (a batch of images x a group of 8 cells,
   `audit.execution.units`) a worker reads each file and decodes it once (`Dataset.load_image`),
   then per cell corrupts (`corrupt`) and brings the image to the network-input geometry
   (`to_input_geometry`, uint8), and pickles the unit's result for the main process
   (`pickle.dumps`/`loads`); the main process normalises (`Normaliser`, a lookup table equal to `normalise`), stacks the batch, runs the
   engine (`engine.run`), decodes the outputs (the output convention), updates the metric
   (`metric.update`) and, per cell, computes and saves it (`metric.compute` + `CellStore.save`, in a
   background thread in the real runner); the transfer of one image is also timed as pickled uint8,
   pickled float32 (what was sent before), through a real multiprocessing pipe, and through
   `multiprocessing.shared_memory`;
2. times `run_audit` with the same settings (default workers, and --workers 0) and prints each
   stage's share of the default-workers wall time;
3. measures the main process's peak RSS during `run_audit` (VmHWM of one fresh subprocess per
   configuration, no torch imported there; not ru_maxrss, which Linux carries across execve from
   this torch-laden parent) for 7 vs 76 cells on the same images, with `--workers 0`
   and with the default workers.

The stage timings are serial (one process, one stage at a time); in a real audit the worker
stages overlap the main-process stages, so the shares of the wall time need not add up to 100 %.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's `audit`, not whichever one is installed

SEVEN = ["gaussian_noise", "defocus_blur", "motion_blur", "snow", "contrast", "jpeg_compression"]  # at severity 3
WORKER, MAIN = "worker", "main"
STAGES = [  # (stage, process)
    ("read (file bytes)", WORKER),
    ("decode (load_image)", WORKER),
    ("corrupt", WORKER),
    ("to input geometry (worker)", WORKER),
    ("transfer: pickle.dumps (worker)", WORKER),
    ("transfer: pickle.loads (main)", MAIN),
    ("normalise (main)", MAIN),
    ("stack batch", MAIN),
    ("inference (engine.run)", MAIN),
    ("decode outputs", MAIN),
    ("metric.update", MAIN),
    ("cell finish (compute + save)", MAIN),
]


def all_cells_of(cells: int) -> list:
    from audit.corruptions import names
    from audit.execution.cells import all_cells

    return all_cells(SEVEN, [3]) if cells == 7 else all_cells(names("benchmark"), [1, 2, 3, 4, 5])


def build_model(task: str, tmp: Path) -> Path:
    if task == "coco":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from audit_pipeline import build_model as detector

        detector(tmp / "det.onnx")
        return tmp / "det.onnx"
    from tests.helpers.models import train_classifier

    return train_classifier(tmp / "cls.onnx")


def write_data(task: str, tmp: Path, images: int) -> Path:
    from audit.datasets import synthetic

    if task == "coco":
        return synthetic.write_coco(tmp / "coco", n_train=1, n_val=images, size=(480, 640))
    return synthetic.write_cifar10(tmp / "cifar", n_train=10, n_test=images)


def config_for(model: Path, task: str, data: Path, out: Path, cells: int, workers: int | None):
    from audit.api import AuditConfig

    corruptions, severities = (",".join(SEVEN), [3]) if cells == 7 else ("benchmark", [1, 2, 3, 4, 5])
    overrides = {"label_space": "index+background"} if task == "coco" else {}
    return AuditConfig(model=str(model), task=task, data=str(data), out=str(out), corruptions=corruptions,
                       severities=severities, workers=workers, examples=0, report=False, progress=False,
                       overrides=overrides)


def profile_stages(config) -> tuple[dict[str, float], int, float]:
    """Seconds per stage over the whole audit, done serially the way the runner does it."""
    import numpy as np

    from audit import api
    from audit.results.cellstore import CellStore
    from audit.corruptions import corrupt
    from audit.datasets.base import Dataset
    from audit.execution.normalise import Normaliser
    from audit.execution.units import PreparedCell, plan_units
    from audit.metrics import make_metric
    from audit.execution.cells import all_cells
    from audit.tasks.preprocess import preprocess, to_input_geometry

    t0 = time.perf_counter()
    setup = api.prepare(config)  # what run_audit does first (open data + model, check one image, probe labels)
    t_setup = time.perf_counter() - t0
    ds, ctx, adapter = setup.dataset, setup.context, setup.adapter
    cells = all_cells(setup.corruptions, setup.severities)
    store = CellStore(Path(config.out))
    batch_size = setup.batch_size
    units = plan_units(cells, len(ds), batch_size)
    remaining = defaultdict(int)
    for unit in units:
        for cell in unit.cells:
            remaining[cell] += 1
    t = defaultdict(float)
    normaliser = Normaliser(ctx.spec)
    metrics, peak_live = {}, 0
    clock = time.perf_counter

    for unit in units:
        prepared = {cell: PreparedCell([], []) for cell in unit.cells}
        for index in unit.indices:  # units.prepare_unit -> units.image_cells, one stage at a time
            # a file per image only where load_image reads one (CIFAR-10 is held in memory)
            path = ds._items[index]["path"] if type(ds).load_image is Dataset.load_image else None
            a = clock()
            if path is not None:
                Path(path).read_bytes()
            b = clock()
            image = ds.load_image(index)  # once per image for the whole group of cells
            c = clock()
            t["read (file bytes)"] += b - a
            t["decode (load_image)"] += c - b
            clean_geometry = None
            for cell in unit.cells:
                if ctx.corrupt_at == "original" or cell[0] == "clean" or cell in ds.prerendered():
                    a = clock()
                    if cell in ds.prerendered():
                        source = ds.load_corrupted(index, *cell)
                    elif cell[0] != "clean":
                        source = corrupt(image, cell[0], cell[1], seed=ctx.seed, image_id=ds.image_id(index),
                                         profile=ctx.profile, reference=ctx.reference)
                    else:
                        source = image
                    b = clock()
                    x, meta = to_input_geometry(source, ctx.spec)
                    c = clock()
                    t["corrupt"] += b - a
                    t["to input geometry (worker)"] += c - b
                else:
                    a = clock()
                    if clean_geometry is None:
                        clean_geometry = to_input_geometry(image, ctx.spec)
                    b = clock()
                    x = corrupt(clean_geometry[0], cell[0], cell[1], seed=ctx.seed, image_id=ds.image_id(index),
                                profile=ctx.profile, reference=ctx.reference)
                    meta = dict(clean_geometry[1])
                    c = clock()
                    t["to input geometry (worker)"] += b - a
                    t["corrupt"] += c - b
                prepared[cell].images.append(x)
                prepared[cell].metas.append(meta)
        a = clock()
        payload = pickle.dumps((unit, prepared), protocol=pickle.HIGHEST_PROTOCOL)  # concurrent.futures' result pickling
        b = clock()
        unit, prepared = pickle.loads(payload)
        c = clock()
        t["transfer: pickle.dumps (worker)"] += b - a
        t["transfer: pickle.loads (main)"] += c - b
        t["_transfer bytes"] += len(payload)

        for cell in unit.cells:
            metric = metrics.setdefault(cell, make_metric(ds, with_masks=setup.with_masks))
            peak_live = max(peak_live, len(metrics))
            for start in range(0, len(unit.indices), batch_size):
                stop = start + batch_size
                a = clock()
                arrays = [normaliser(im) for im in prepared[cell].images[start:stop]]
                t["normalise (main)"] += clock() - a
                metas = prepared[cell].metas[start:stop]
                preds = []
                if adapter.batchable:
                    a = clock()
                    groups = [(np.stack(arrays), metas)]
                    t["stack batch"] += clock() - a
                else:
                    groups = [(x if adapter.image_only else x[None], [m]) for x, m in zip(arrays, metas)]
                for batch, group_metas in groups:  # TaskAdapter._run: engine.run, then the convention's decoder
                    a = clock()
                    outputs = adapter.engine.run({adapter.input_name: batch.astype(adapter.input_dtype, copy=False)})
                    b = clock()
                    preds.extend(adapter.decode(outputs, group_metas, adapter.context, adapter.output_names))
                    c = clock()
                    t["inference (engine.run)"] += b - a
                    t["decode outputs"] += c - b
                a = clock()
                preds = adapter.relabel(preds)
                t["decode outputs"] += clock() - a
                a = clock()
                for index, pred in zip(unit.indices[start:stop], preds):
                    metric.update(index, pred)
                t["metric.update"] += clock() - a
            remaining[cell] -= 1
            if remaining[cell] == 0:
                a = clock()
                record = {"corruption": cell[0], "severity": cell[1], "metrics": metric.compute(), "num_images": len(ds),
                          "seconds": 0.0}
                store.save(cell, record, metric.state())
                del metrics[cell]  # as run_cells does: a finished cell lives on disk only
                t["cell finish (compute + save)"] += clock() - a
    t["_peak live metrics"] = peak_live
    # the float32 input the worker sent before (issue 20) vs the uint8 image it sends now
    sample = ds.load_image(0)
    x0, _ = preprocess(sample, ctx.spec)
    u8 = pickle.dumps(to_input_geometry(sample, ctx.spec)[0], protocol=pickle.HIGHEST_PROTOCOL)
    f32 = pickle.dumps(np.asarray(x0), protocol=pickle.HIGHEST_PROTOCOL)
    t["_bytes uint8 per image"], t["_bytes float32 per image"] = len(u8), len(f32)
    for key, payload in (("u8", u8), ("f32", f32)):
        a = clock()
        for _ in range(20):
            pickle.loads(payload)
        t[f"_{key} roundtrip per image"] = (clock() - a) / 20
        t[f"_{key} pipe per image"] = pipe_seconds(payload)
    t["_shm per image"] = shm_seconds(to_input_geometry(sample, ctx.spec)[0])
    return t, len(ds) * len(cells), t_setup


def shm_seconds(image, repeat: int = 20) -> float:
    """Seconds per image through `multiprocessing.shared_memory`: the worker copies into a block, the
    main process maps it by name and copies out (what replacing the pickled uint8 would cost)."""
    import numpy as np
    from multiprocessing import shared_memory

    t0 = time.perf_counter()
    for _ in range(repeat):
        block = shared_memory.SharedMemory(create=True, size=image.nbytes)
        np.ndarray(image.shape, image.dtype, buffer=block.buf)[...] = image
        other = shared_memory.SharedMemory(name=block.name)
        view = np.ndarray(image.shape, image.dtype, buffer=other.buf)
        view.copy()
        del view
        other.close()
        block.close()
        block.unlink()
    return (time.perf_counter() - t0) / repeat


def pipe_seconds(payload: bytes, repeat: int = 20) -> float:
    """Seconds to move `payload` through a multiprocessing pipe (what concurrent.futures does after pickling)."""
    import multiprocessing as mp
    import threading

    recv, send = mp.Pipe(duplex=False)
    writer = threading.Thread(target=lambda: [send.send_bytes(payload) for _ in range(repeat)])
    t0 = time.perf_counter()
    writer.start()
    for _ in range(repeat):
        recv.recv_bytes()
    writer.join()
    return (time.perf_counter() - t0) / repeat


def timed_audit(config) -> float:
    from audit.api import run_audit

    t0 = time.perf_counter()
    run_audit(config)
    return time.perf_counter() - t0


def memory_child(spec: str) -> None:
    """In a fresh process: run one audit and print its main process's RSS before and its peak."""
    import threading

    args = json.loads(spec)
    from audit.api import run_audit  # noqa: F401  (imports counted in the baseline)

    config = config_for(Path(args["model"]), args["task"], Path(args["data"]), Path(args["out"]), args["cells"],
                        args["workers"])

    def rss(field: str = "VmRSS") -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    run_audit(config)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    end = rss()
    print(json.dumps({"base_kb": base, "peak_sampled_kb": peak[0], "end_kb": end, "wall_s": wall,
                      "hwm_kb": rss("VmHWM")}))


def measure_memory(model: Path, task: str, data: Path, tmp: Path, images: int, cells: int, workers: int | None) -> dict:
    spec = json.dumps({"model": str(model), "task": task, "data": str(data), "out": str(tmp / f"mem-{cells}-{workers}"),
                       "cells": cells, "workers": workers, "images": images})
    proc = subprocess.run([sys.executable, __file__, "--memory-child", spec], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["coco", "cifar10"], default="coco")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--cells", type=int, choices=[7, 76], default=7)
    parser.add_argument("--memory-images", type=int, default=None, help="images for the 7 vs 76 cell memory runs (default --images)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    import warnings

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_model(args.task, tmp)
        workers_default = max(1, (os.cpu_count() or 2) - 1)
        print(f"task {args.task}, machine: {os.cpu_count()} CPUs, default workers {workers_default}", flush=True)
        if not args.no_profile:
            data = write_data(args.task, tmp, args.images)
            profiled, n, t_setup = profile_stages(config_for(model, args.task, data, tmp / "prof", args.cells, 0))
            wall0 = timed_audit(config_for(model, args.task, data, tmp / "audit0", args.cells, 0))
            wall = timed_audit(config_for(model, args.task, data, tmp / "audit", args.cells, None))
            staged = sum(profiled.get(stage, 0.0) for stage, _ in STAGES)
            print(f"\n{args.images} images x {args.cells} cells = {n} images audited; run_audit wall time "
                  f"{wall:.1f} s with {workers_default} worker(s), {wall0:.1f} s with --workers 0\n"
                  f"(serial sum of the stages {staged:.1f} s; setup: open, check, label probe {t_setup:.1f} s; "
                  f"the rest of the --workers 0 time, {wall0 - staged - t_setup:.1f} s, is outside these stages)\n")
            print("| stage | process | total s | share of audit wall | ms per image |")
            print("|---|---|---|---|---|")
            per = {WORKER: 0.0, MAIN: 0.0}
            for stage, where in STAGES:
                s = profiled.get(stage, 0.0)
                per[where] += s
                print(f"| {stage} | {where} | {s:.2f} | {100 * s / wall:.1f} % | {1000 * s / n:.2f} |")
            for where in (WORKER, MAIN):
                print(f"| all {where} stages | {where} | {per[where]:.2f} | {100 * per[where] / wall:.1f} % | {1000 * per[where] / n:.2f} |")
            print(f"\ntransfer per image: uint8 at the input geometry {profiled['_bytes uint8 per image'] / 1e6:.2f} MB "
                  f"({1000 * profiled['_u8 roundtrip per image']:.2f} ms loads; "
                  f"{1000 * profiled['_u8 pipe per image']:.2f} ms through a pipe; shared memory create+copy in+out "
                  f"{1000 * profiled['_shm per image']:.2f} ms) vs the float32 input sent before "
                  f"{profiled['_bytes float32 per image'] / 1e6:.2f} MB ({1000 * profiled['_f32 roundtrip per image']:.2f} ms; "
                  f"{1000 * profiled['_f32 pipe per image']:.2f} ms through a pipe); all units: "
                  f"{profiled['_transfer bytes'] / 1e6:.1f} MB pickled", flush=True)
            print(f"cells whose metrics were in memory at once: at most {int(profiled['_peak live metrics'])} "
                  f"of {len(all_cells_of(args.cells))}", flush=True)
        if not args.no_memory:
            images = args.memory_images or args.images
            mdata = write_data(args.task, tmp / "mem", images)
            print(f"\nmain-process peak RSS during run_audit, {images} images (fresh process each; baseline = RSS after imports)\n")
            print("| cells | workers | baseline MB | peak MB (VmHWM) | peak - baseline MB | wall s |")
            print("|---|---|---|---|---|---|")
            for cells in (7, 76):
                for workers in (0, None):
                    m = measure_memory(model, args.task, mdata, tmp, images, cells, workers)
                    shown = "0" if workers == 0 else f"default ({workers_default})"
                    print(f"| {cells} | {shown} | {m['base_kb'] / 1024:.0f} | {m['hwm_kb'] / 1024:.0f} | "
                          f"{(m['hwm_kb'] - m['base_kb']) / 1024:.0f} | {m['wall_s']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
