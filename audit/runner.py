"""The audit pipeline: corruption workers -> batches -> engine -> metrics -> cell store.

Work is cut into `CellJob`s (a batch of images of one cell: clean, or one corruption at one
severity). Worker processes load, corrupt (at the original resolution, or at the network input
geometry with `corrupt_at="input"`: see CORRUPT_AT) and preprocess the next jobs
while the engine runs in the main process; finished cells are evaluated and saved in a background
thread while the next cell runs. Everything is seeded per (seed, image id, corruption, severity),
so the numbers do not depend on workers, batch size or order.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from audit.cellstore import CellStore
from audit.corruptions import corrupt
from audit.datasets.base import Dataset
from audit.errors import RobustAuditError
from audit.metrics import make_metric
from audit.modelspec import ModelSpec
from audit.tasks.adapter import TaskAdapter
from audit.tasks.preprocess import map_to_original, normalise, preprocess, to_input_geometry

Cell = tuple[str, int]
CORRUPT_AT = {
    "original": "the full original image, then resize and normalisation (COCO-C, Cityscapes-C, CIFAR-10-C)",
    "input": "the image at the network input geometry (resized / cropped, uint8), then normalisation "
             "(ImageNet-C: the 224x224 centre crop)",
}


def default_corrupt_at(task: str) -> str:
    """Where the benchmark behind `--task` corrupted its images: ImageNet-C corrupted the centre crop
    the network sees; CIFAR-10-C, COCO-C and the segmentation benchmarks the whole image."""
    return "input" if task == "classification" else "original"


@dataclass(frozen=True)
class CellJob:
    """One batch of one cell: picklable, so any executor (local processes, a cluster) can run it."""

    corruption: str  # "clean" for the clean data
    severity: int
    indices: tuple[int, ...]


@dataclass
class PrepareContext:
    """What a worker needs to turn a job into network inputs."""

    dataset: Dataset
    spec: ModelSpec
    seed: int
    profile: str
    reference: bool = False  # imagecorruptions' own code path instead of our kernels
    corrupt_at: str = "original"  # see CORRUPT_AT
    plugins: tuple[str, ...] = ()  # corruption plug-in files (--corruption-plugin): workers import them too


_CONTEXT: PrepareContext | None = None


def _init_worker(context: PrepareContext) -> None:
    global _CONTEXT
    from audit.corruptions.plugins import load_files  # entry point plug-ins load with the registry

    load_files(context.plugins)  # a spawned worker starts with the built-ins only
    _CONTEXT = context


def load_cell_image(ctx: PrepareContext, index: int, corruption: str, severity: int) -> np.ndarray:
    """The pixels of image `index` in a cell: clean, pre-rendered (CIFAR-10-C) or corrupted on the fly."""
    ds = ctx.dataset
    if corruption == "clean":
        return ds.load_image(index)
    if (corruption, severity) in ds.prerendered():
        return ds.load_corrupted(index, corruption, severity)
    return corrupt(ds.load_image(index), corruption, severity, seed=ctx.seed, image_id=ds.image_id(index),
                   profile=ctx.profile, reference=ctx.reference)


def cell_input(ctx: PrepareContext, index: int, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image `index` in a cell as the network input: (the corrupted image at the original size, the
    network input, its meta). Corrupted before the resize, or after it with `corrupt_at="input"`."""
    if ctx.corrupt_at == "original" or corruption == "clean" or (corruption, severity) in ctx.dataset.prerendered():
        image = load_cell_image(ctx, index, corruption, severity)
        x, meta = preprocess(image, ctx.spec)
        return image, x, meta
    resized, meta = to_input_geometry(ctx.dataset.load_image(index), ctx.spec)
    resized = corrupt(resized, corruption, severity, seed=ctx.seed, image_id=ctx.dataset.image_id(index),
                      profile=ctx.profile, reference=ctx.reference)
    shown = resized if ctx.spec.resize == "center_crop" else map_to_original(resized, meta, nearest=False)
    return shown, normalise(resized, ctx.spec), meta


def prepare(job: CellJob, ctx: PrepareContext | None = None) -> tuple[CellJob, list[np.ndarray], list[dict]]:
    """Load, corrupt and preprocess the images of a job (runs in a worker process)."""
    ctx = ctx or _CONTEXT
    arrays, metas = [], []
    for index in job.indices:
        _, x, meta = cell_input(ctx, index, job.corruption, job.severity)
        arrays.append(x)
        metas.append(meta)
    return job, arrays, metas


class LocalExecutor:
    """Prepares jobs in local worker processes with bounded read-ahead (0 workers: in-process)."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, jobs: list[CellJob], context: PrepareContext) -> Iterator[tuple[CellJob, list, list]]:
        if self.workers == 0:
            for job in jobs:
                yield prepare(job, context)
            return
        window = 2 * self.workers + 2  # enough to keep the engine fed, bounded memory
        # concurrent.futures rather than multiprocessing.Pool: a worker that dies (killed, out of
        # memory, cannot import) breaks the pool with an error instead of hanging the audit.
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                   initargs=(context,))
        try:
            pending: deque = deque()
            todo = iter(jobs)
            for job in todo:
                pending.append(pool.submit(prepare, job))
                if len(pending) >= window:
                    break
            while pending:
                try:
                    result = pending.popleft().result()
                except BrokenProcessPool:
                    raise RobustAuditError("a corruption worker process died (out of memory, or killed); "
                                      "rerun with --resume, and fewer --workers if memory is short") from None
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(prepare, nxt))
                yield result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def plan_jobs(cells: list[Cell], n_images: int, batch_size: int) -> list[CellJob]:
    """Cut every cell into batches of consecutive image positions."""
    return [CellJob(c, s, tuple(range(start, min(start + batch_size, n_images))))
            for c, s in cells for start in range(0, n_images, batch_size)]


def run_cells(cells: list[Cell], *, dataset: Dataset, adapter: TaskAdapter, context: PrepareContext, store: CellStore,
              executor: LocalExecutor, batch_size: int, with_masks: bool,
              on_images: Callable[[int], None] = lambda n: None) -> dict[Cell, Any]:
    """Run `cells`, saving each as it finishes; returns their metric objects."""
    jobs = plan_jobs(cells, len(dataset), batch_size)
    remaining = {cell: 0 for cell in cells}
    for job in jobs:
        remaining[(job.corruption, job.severity)] += 1
    metrics: dict[Cell, Any] = {}
    started: dict[Cell, float] = {}
    saving: list[Future] = []
    with ThreadPoolExecutor(max_workers=1) as finisher:
        for job, arrays, metas in executor.map(jobs, context):
            cell = (job.corruption, job.severity)
            metric = metrics.setdefault(cell, make_metric(dataset, with_masks=with_masks))
            started.setdefault(cell, time.perf_counter())
            for index, pred in zip(job.indices, adapter.infer(arrays, metas)):
                metric.update(index, pred)
            on_images(len(job.indices))
            remaining[cell] -= 1
            if remaining[cell] == 0:  # evaluate and save while the next cell runs
                saving.append(finisher.submit(_finish, store, cell, metric, len(dataset), time.perf_counter() - started[cell]))
            for done in [f for f in saving if f.done()]:
                done.result()  # re-raise a failed save now, not at the end
            saving = [f for f in saving if not f.done()]
        for f in saving:
            f.result()
    return metrics


def _finish(store: CellStore, cell: Cell, metric: Any, n_images: int, seconds: float) -> None:
    record = {"corruption": cell[0], "severity": cell[1], "metrics": metric.compute(), "num_images": n_images,
              "seconds": round(seconds, 3)}
    store.save(cell, record, metric.state())


def all_cells(corruptions: Iterable[str], severities: Iterable[int]) -> list[Cell]:
    """The clean cell first, then every (corruption, severity)."""
    return [("clean", 0)] + [(c, s) for c in corruptions for s in severities]
