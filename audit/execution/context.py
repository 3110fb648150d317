"""What a worker needs to turn an image of a cell into a network input, and the cell-by-cell path.

`PrepareContext` travels to every worker once (at start-up); `cell_input` is the reference path for
one image of one cell (used by the examples and the conformance tests; the work units derive the
same pixels for many cells from one decode: `audit.execution.units`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from audit.corruptions import corrupt
from audit.datasets.base import Dataset
from audit.spec.model import ModelSpec
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


@dataclass
class PrepareContext:
    """What a worker needs to turn a unit into network inputs."""

    dataset: Dataset
    spec: ModelSpec
    seed: int
    profile: str
    reference: bool = False  # imagecorruptions' own code path instead of our kernels
    corrupt_at: str = "original"  # see CORRUPT_AT
    plugins: tuple[str, ...] = ()  # corruption plug-in files (--corruption-plugin): workers import them too
    device: str | None = None  # --corrupt-device: the torch kernels (audit.corruptions.torch) on cpu / cuda

    def corrupt(self, image: np.ndarray, corruption: str, severity: int, image_id: str) -> np.ndarray:
        """`image` (uint8 HxWx3) under `corruption` at `severity`, seeded by this audit's seed and `image_id`:
        the NumPy kernels (or imagecorruptions' own code), or with `device` the torch kernels on that device,
        which draw the same random numbers (equal up to float rounding: docs/corruptions.md)."""
        if self.device is None:
            return corrupt(image, corruption, severity, seed=self.seed, image_id=image_id, profile=self.profile,
                           reference=self.reference)
        import torch  # the gpu-corruptions extra; checked when the audit is set up

        from audit.corruptions.torch import corrupt_torch

        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        out = corrupt_torch(tensor, corruption, severity, seed=self.seed, image_id=image_id, profile=self.profile)
        return out.cpu().numpy()


WORKER_NICENESS = 10  # added to a corruption worker's niceness (Unix); 0..19, higher yields more
_CONTEXT: PrepareContext | None = None


def init_worker(context: PrepareContext) -> None:
    """A worker process's initializer: the plug-ins, then the context its units read."""
    global _CONTEXT
    from audit.corruptions.plugins import load_files  # entry point plug-ins load with the registry

    load_files(context.plugins)  # a spawned worker starts with the built-ins only
    _CONTEXT = context
    _lower_priority()


def _lower_priority() -> None:
    """Corruption workers yield the CPU to the engine, which the whole audit waits on: where they share
    cores, an engine operator whose thread is preempted stalls all its threads (benchmarks/audit_scale.py)."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform, or not permitted: run at normal priority
        pass


def worker_context() -> PrepareContext:
    """The context `init_worker` installed in this process."""
    if _CONTEXT is None:
        raise RuntimeError("no PrepareContext in this process: pass one, or start the worker with init_worker")
    return _CONTEXT


def load_cell_image(ctx: PrepareContext, index: int, corruption: str, severity: int) -> np.ndarray:
    """The pixels of image `index` in a cell: clean, pre-rendered (CIFAR-10-C) or corrupted on the fly."""
    ds = ctx.dataset
    if corruption == "clean":
        return ds.load_image(index)
    if (corruption, severity) in ds.prerendered():
        return ds.load_corrupted(index, corruption, severity)
    return ctx.corrupt(ds.load_image(index), corruption, severity, ds.image_id(index))


def cell_input(ctx: PrepareContext, index: int, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image `index` in a cell as the network input: (the corrupted image at the original size, the
    network input, its meta). Corrupted before the resize, or after it with `corrupt_at="input"`."""
    if ctx.corrupt_at == "original" or corruption == "clean" or (corruption, severity) in ctx.dataset.prerendered():
        image = load_cell_image(ctx, index, corruption, severity)
        x, meta = preprocess(image, ctx.spec)
        return image, x, meta
    resized, meta = to_input_geometry(ctx.dataset.load_image(index), ctx.spec)
    resized = ctx.corrupt(resized, corruption, severity, ctx.dataset.image_id(index))
    shown = resized if ctx.spec.resize == "center_crop" else map_to_original(resized, meta, nearest=False)
    return shown, normalise(resized, ctx.spec), meta
