"""Benchmark: a realistic-scale audit's wall time against its two limits, and its peak memory (issue 20).

Run by hand:  python benchmarks/audit_scale.py [--task detection|classification|both] [--images N]
                  [--severity 3] [--repeat 1] [--threads T] [--workers W] [--work DIR] [--quick]
                  [--memory-images N] [--no-memory | --no-timing]

Data and models (benchmarks/scale_data.py, cached under --work, default /tmp/robustaudit-bench):
- detection: 100 photo-like 480x640 JPEGs in the COCO layout, Faster R-CNN MobileNet-v3 FPN (random
  weights, score threshold 0, up to 50 detections per image), one image per engine call;
- classification: 500 photo-like 224-ish JPEGs in an ImageNet-style folder, timm resnet18 (random
  weights) at 224, batches of 8 (the audit's default).
Cells: clean + the 15 benchmark corruptions at one severity = 16 cells.

Measured in the same run, on the same cores, each the minimum of --repeat runs:
(a) audit: `run_audit` (public API only) in a fresh subprocess, with the audit's own defaults for
    --threads / --workers unless given (the wall time is taken around `run_audit`, imports excluded);
(b) inference limit: the same ONNX Runtime engine (`open_engine`, same --threads), same batch size,
    on the same corrupted, preprocessed inputs held in memory (prepared per cell, not timed), for
    the same number of inferences; `engine.run` only;
(c) corruption limit: every image read and decoded once, then all 15 corruptions applied (the pure
    NumPy kernels of `audit.corruptions.corrupt`, at the audit's corruption point: the whole image
    for COCO, the 224 centre crop for ImageNet-style data), spread over all cores by a process pool
    (one single-threaded process per core, started before the clock).
Prints wall times, images/s and the ratios audit / max(limits), audit / inference, audit / corruption
(target on CPU: audit within 1.2x of the larger limit). The limits are each measured alone; an audit
must do both, so on a machine with few cores the sum of the two bounds it too, and is printed.
CPU seconds are printed beside the wall times (the audit: its main process and workers; inference:
ONNX Runtime's threads, spin-waiting included; corruption: the pool's processes): on a machine shared
with other work they move less with the load than the wall times do.

Memory: the peak resident memory of the audit's main process (VmHWM) and of its whole process tree
(main + corruption workers: the sum of their proportional set sizes, sampled every 50 ms) for the realistic run, and for 7 cells (clean +
gaussian_noise, defocus_blur, motion_blur, snow, contrast, jpeg_compression at severity 3) vs 76
cells (clean + 15 x severities 1-5) on fewer images (--memory-images), with the 76 / 7 ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's `audit`, not whichever one is installed
sys.path.insert(0, str(ROOT / "benchmarks"))

SEVEN = ["gaussian_noise", "defocus_blur", "motion_blur", "snow", "contrast", "jpeg_compression"]  # at severity 3
DEFAULT_IMAGES = {"detection": 100, "classification": 500}
QUICK_IMAGES = {"detection": 6, "classification": 24}
MEMORY_IMAGES = {"detection": 12, "classification": 60}
QUICK_MEMORY_IMAGES = {"detection": 2, "classification": 6}


@dataclass
class Bench:
    """One task's data and model, and how `run_audit` is told about them."""

    kind: str  # detection or classification
    task: str  # the --task of the audit
    data: Path
    model: Path
    overrides: dict
    corrupt_at: str  # where the audit corrupts by default for this task (audit/execution/cells.py default_corrupt_at)


def make_bench(kind: str, work: Path, images: int) -> Bench:
    import scale_data

    if kind == "detection":
        # 5 classes = background + the 4 synthetic shapes: torchvision's fine-tuned layout
        return Bench(kind, "coco", scale_data.coco_data(work, images), scale_data.detector(work),
                     {"label_space": "index+background"}, "original")
    return Bench(kind, "classification", scale_data.imagenet_data(work, images), scale_data.classifier(work), {}, "input")


# ---------------------------------------------------------------- (a) the audit, in a fresh process

def _proc_kb(pid: int | str, field: str, file: str = "status") -> int:
    """A /proc/PID/{status,smaps_rollup} field in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[str]:
    found, todo = [], [str(pid)]
    while todo:
        for tasks in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = tasks.read_text().split()
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def audit_child(spec: str) -> None:
    """In a fresh process: run one audit; print its wall time and peak memory as JSON (Linux /proc)."""
    from audit.api import AuditConfig, run_audit

    args = json.loads(spec)
    config = AuditConfig(model=args["model"], task=args["task"], data=args["data"], out=args["out"],
                         corruptions=args["corruptions"], severities=args["severities"], workers=args["workers"],
                         threads=args["threads"], examples=0, report=False, progress=False, overrides=args["overrides"])
    me = os.getpid()
    peak, done = [0], threading.Event()

    def sample() -> None:  # main process + corruption workers (+ multiprocessing's helper)
        while not done.is_set():  # proportional set size: shared pages (libraries, a fork before exec) counted once
            peak[0] = max(peak[0], sum(_proc_kb(p, "Pss", "smaps_rollup") for p in [me, *_descendants(me)]))
            time.sleep(0.05)

    base = _proc_kb(me, "VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    result = run_audit(config)
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0  # the workers are joined by now, so RUSAGE_CHILDREN holds theirs
    done.set()
    sampler.join()
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "base_mb": base / 1024, "main_peak_mb": _proc_kb(me, "VmHWM") / 1024,
                      "tree_peak_mb": peak[0] / 1024,
                      "cells": len(result.document["cells"]), "engine": result.document["engine"]}))


def run_audit_subprocess(bench: Bench, out: Path, corruptions: str, severities: list[int], workers, threads) -> dict:
    spec = json.dumps({"model": str(bench.model), "task": bench.task, "data": str(bench.data), "out": str(out),
                       "corruptions": corruptions, "severities": severities, "workers": workers, "threads": threads,
                       "overrides": bench.overrides})
    shutil.rmtree(out, ignore_errors=True)  # a previous run's folder (the audit would refuse it without --resume)
    proc = subprocess.run([sys.executable, __file__, "--audit-child", spec], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"the audit failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- pool workers: (b)'s inputs and (c)

_WORKER: dict = {}


def _init_worker(bench: Bench, spec) -> None:
    import cv2

    from audit.datasets import open_dataset

    cv2.setNumThreads(1)  # one process per core
    _WORKER.update(dataset=open_dataset(bench.task, bench.data), spec=spec, corrupt_at=bench.corrupt_at)


def _ready(_: int) -> int:
    return os.getpid()


def _corrupt_all(indices: list[int], corruptions: list[str], severity: int) -> tuple[int, float]:
    """(c): read and decode each image once, bring it to the corruption point, apply every corruption."""
    from audit.corruptions import corrupt
    from audit.tasks.preprocess import to_input_geometry

    ds, spec = _WORKER["dataset"], _WORKER["spec"]
    cpu = time.process_time()
    for index in indices:
        image = ds.load_image(index)
        if _WORKER["corrupt_at"] == "input":
            image = to_input_geometry(image, spec)[0]
        for name in corruptions:
            corrupt(image, name, severity, seed=0, image_id=ds.image_id(index), profile="imagenet-c")
    return len(indices), time.process_time() - cpu


def _cell_inputs(indices: list[int], corruption: str, severity: int) -> list:
    """(b)'s inputs: the network input of each image in one cell, as the audit computes it."""
    from audit.corruptions import corrupt
    from audit.tasks.preprocess import normalise, preprocess, to_input_geometry

    ds, spec = _WORKER["dataset"], _WORKER["spec"]
    out = []
    for index in indices:
        image = ds.load_image(index)
        if corruption == "clean":
            out.append(preprocess(image, spec)[0])
            continue
        kw = dict(seed=0, image_id=ds.image_id(index), profile="imagenet-c")
        if _WORKER["corrupt_at"] == "input":
            out.append(normalise(corrupt(to_input_geometry(image, spec)[0], corruption, severity, **kw), spec))
        else:
            out.append(preprocess(corrupt(image, corruption, severity, **kw), spec)[0])
    return out


def chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def start_pool(bench: Bench, spec, processes: int) -> ProcessPoolExecutor:
    import multiprocessing as mp

    pool = ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(bench, spec))
    list(pool.map(_ready, range(4 * processes)))  # every process started and its dataset open
    return pool


def corruption_limit(pool, n: int, corruptions: list[str], severity: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (summed over the processes) to corrupt every image."""
    t0 = time.perf_counter()
    parts = list(pool.map(_corrupt_all, chunks(n, 2), [corruptions] * n, [severity] * n))
    wall = time.perf_counter() - t0
    assert sum(done for done, _ in parts) == n
    return wall, sum(cpu for _, cpu in parts)


# ---------------------------------------------------------------- (b) the inference limit

def open_bare_engine(bench: Bench, threads):
    from audit.engines.base import open_engine
    from audit.tasks import TaskAdapter, resolve_spec
    from audit.datasets import task_type

    engine = open_engine(bench.model, threads=threads)
    spec = resolve_spec(engine, task_type(bench.task), None, bench.overrides, benchmark=bench.task)
    return engine, spec, TaskAdapter(spec, engine)


def inference_limit(pool, engine, adapter, n: int, cells: list, batch_size: int) -> tuple[float, float, float]:
    """Wall and CPU seconds (this process: ONNX Runtime's threads) of `engine.run` over every cell's
    inputs (prepared per cell by `pool`, not timed), and the mean number of detections per image."""
    import numpy as np

    seconds, cpu, detections, images = 0.0, 0.0, 0, 0
    for corruption, severity in cells:
        arrays = [x for part in pool.map(_cell_inputs, chunks(n, 4), [corruption] * n, [severity] * n) for x in part]
        if adapter.batchable:
            batches = [np.stack(arrays[i:i + batch_size]) for i in range(0, n, batch_size)]
        else:
            batches = [x if adapter.image_only else x[None] for x in arrays]
        batches = [b.astype(adapter.input_dtype, copy=False) for b in batches]
        del arrays
        if not images:  # ONNX Runtime's first run allocates and plans; the audit's model check runs it once too
            adapter.engine.run({adapter.input_name: batches[0]})
        t0, c0 = time.perf_counter(), time.process_time()
        outputs = [adapter.engine.run({adapter.input_name: b}) for b in batches]
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if adapter.spec.task == "detection":
            detections += sum(len(o[0]) for o in outputs)  # boxes [k, 4] per image
        images += n
    return seconds, cpu, detections / images


# ---------------------------------------------------------------- the runs and the report

def defaults(threads, workers) -> str:
    """What the audit picks for --threads / --workers when they are not given, in words."""
    cpus = os.cpu_count() or 1
    t = f"--threads {threads}" if threads else "--threads: ONNX Runtime's default (one per physical core)"
    w = f"--workers {workers}" if workers is not None else f"--workers: the audit's default (it picks {max(1, cpus - 1)} here)"
    return f"{cpus} CPUs; {t}; {w}"


def measure_task(bench: Bench, n: int, args, work: Path) -> dict:
    from audit.corruptions import names

    corruptions = names("benchmark")
    cells = [("clean", 0)] + [(c, args.severity) for c in corruptions]
    engine, spec, adapter = open_bare_engine(bench, args.threads)
    batch = 8 if adapter.batchable else 1  # AuditConfig's default batch size where the model takes batches
    audits, bares, corrs, cpu = [], [], [], {"inference": [], "corruption": []}
    pool = start_pool(bench, spec, os.cpu_count() or 1)
    try:
        for r in range(args.repeat):
            audits.append(run_audit_subprocess(bench, work / "runs" / f"{bench.kind}-{n}-{r}", "benchmark",
                                               [args.severity], args.workers, args.threads))
            print(f"  [{r + 1}/{args.repeat}] audit {audits[-1]['wall_s']:.1f} s", end="", flush=True)
            seconds, cpu_s, dets = inference_limit(pool, engine, adapter, n, cells, batch)
            bares.append(seconds)
            cpu["inference"].append(cpu_s)
            print(f", inference {seconds:.1f} s", end="", flush=True)
            seconds, cpu_s = corruption_limit(pool, n, corruptions, args.severity)
            corrs.append(seconds)
            cpu["corruption"].append(cpu_s)
            print(f", corruption {corrs[-1]:.1f} s  (load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        pool.shutdown()
    best = min(audits, key=lambda a: a["wall_s"])
    return {"images": n, "cells": len(cells), "batch": batch, "audit": best["wall_s"], "inference": min(bares),
            "corruption": min(corrs), "detections": dets, "main_peak_mb": max(a["main_peak_mb"] for a in audits),
            "tree_peak_mb": max(a["tree_peak_mb"] for a in audits), "base_mb": best["base_mb"],
            "all": {"audit": [a["wall_s"] for a in audits], "inference": bares, "corruption": corrs},
            "cpu": {"audit": min(a["cpu_s"] for a in audits), **{k: min(v) for k, v in cpu.items()}}}


def report_task(bench: Bench, m: dict) -> None:
    n, cells = m["images"], m["cells"]
    inferences = n * cells
    limit = max(m["inference"], m["corruption"])
    print(f"\n{bench.kind}: {n} images x {cells} cells = {inferences} inferences, batch {m['batch']}, "
          f"model {bench.model.name}" + (f", {m['detections']:.1f} detections per image" if bench.kind == "detection" else ""))
    print("| measurement | wall s (min) | images/s | all runs s | CPU s (min) |")
    print("|---|---|---|---|---|")
    rows = [("audit (run_audit)", "audit", inferences),
            ("inference limit (engine.run alone)", "inference", inferences),
            (f"corruption limit (decode once + 15 corruptions, {os.cpu_count()} processes)", "corruption", n * (cells - 1))]
    for label, key, count in rows:
        print(f"| {label} | {m[key]:.1f} | {count / m[key]:.1f} | {', '.join(f'{s:.1f}' for s in m['all'][key])} | "
              f"{m['cpu'][key]:.1f} |")
    verdict = "PASS" if m["audit"] <= 1.2 * limit else "FAIL"
    print(f"audit / max(limits) = {m['audit'] / limit:.2f}x  [{verdict}, target <= 1.2x]; "
          f"audit / inference = {m['audit'] / m['inference']:.2f}x; audit / corruption = {m['audit'] / m['corruption']:.2f}x; "
          f"audit / (inference + corruption) = {m['audit'] / (m['inference'] + m['corruption']):.2f}x")
    cpu = m["cpu"]  # less sensitive to other load on the machine than the wall times (ONNX Runtime's spinning counts)
    print(f"CPU time: audit {cpu['audit']:.1f} s (main process + its workers) / (inference {cpu['inference']:.1f} s + "
          f"corruption {cpu['corruption']:.1f} s) = {cpu['audit'] / (cpu['inference'] + cpu['corruption']):.2f}x")
    print(f"peak memory of the audit: main process {m['main_peak_mb']:.0f} MB (VmHWM; {m['base_mb']:.0f} MB after "
          f"imports), whole process tree {m['tree_peak_mb']:.0f} MB (sampled PSS sum)", flush=True)


def memory_cells(bench: Bench, n: int, args, work: Path) -> None:
    rows = {}
    for cells, corruptions, severities in ((7, ",".join(SEVEN), [3]), (76, "benchmark", [1, 2, 3, 4, 5])):
        rows[cells] = run_audit_subprocess(bench, work / "runs" / f"mem-{bench.kind}-{n}-{cells}", corruptions,
                                           severities, args.workers, args.threads)
    print(f"\n{bench.kind}: peak memory vs cells, {n} images (fresh process per row)")
    print("| cells | main process peak MB (VmHWM) | process tree peak MB (sampled PSS sum) | wall s |")
    print("|---|---|---|---|")
    for cells, r in rows.items():
        print(f"| {cells} | {r['main_peak_mb']:.0f} | {r['tree_peak_mb']:.0f} | {r['wall_s']:.1f} |")
    print(f"76 / 7 cells: main process {rows[76]['main_peak_mb'] / rows[7]['main_peak_mb']:.2f}x, "
          f"process tree {rows[76]['tree_peak_mb'] / rows[7]['tree_peak_mb']:.2f}x (flat = 1.00x)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["detection", "classification", "both"], default="both")
    parser.add_argument("--images", type=int, default=None,
                        help=f"images per task (default {DEFAULT_IMAGES['detection']} detection, "
                             f"{DEFAULT_IMAGES['classification']} classification)")
    parser.add_argument("--severity", type=int, default=3, choices=[1, 2, 3, 4, 5])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the minimum is quoted")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the audit's)")
    parser.add_argument("--workers", type=int, default=None, help="corruption workers (default: the audit's)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/robustaudit-bench"), help="cache of data, models, runs")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes (few images)")
    parser.add_argument("--memory-images", type=int, default=None, help="images for the 7 vs 76 cell memory runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the 7 vs 76 cell memory runs")
    parser.add_argument("--no-timing", action="store_true", help="only the 7 vs 76 cell memory runs")
    parser.add_argument("--audit-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.audit_child:
        audit_child(args.audit_child)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    warnings.filterwarnings("ignore")
    kinds = ["detection", "classification"] if args.task == "both" else [args.task]
    print(f"machine: {defaults(args.threads, args.workers)}; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for kind in [] if args.no_timing else kinds:
        n = args.images or (QUICK_IMAGES if args.quick else DEFAULT_IMAGES)[kind]
        t0 = time.perf_counter()
        bench = make_bench(kind, args.work, n)
        print(f"\n{kind}: data and model ready in {time.perf_counter() - t0:.1f} s ({bench.data})", flush=True)
        report_task(bench, measure_task(bench, n, args, args.work))
    if not args.no_memory:
        for kind in kinds:
            n = args.memory_images or (QUICK_MEMORY_IMAGES if args.quick else MEMORY_IMAGES)[kind]
            memory_cells(make_bench(kind, args.work, n), n, args, args.work)
    print(f"\nload average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
