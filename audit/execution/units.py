"""Work units: a chunk of images x a group of cells, prepared by a worker that decodes each image once.

A worker reads and decodes image `i` once and derives every cell's input from it: the clean image,
each corruption x severity (seeded per (seed, corruption, severity, image id), so the pixels equal a
cell-by-cell run's), a pre-rendered CIFAR-10-C cell from its own file; with `corrupt_at="input"` it
resizes once and corrupts the resized image. What goes back to the main process is the uint8 image
at the network-input geometry with its meta (a quarter of the float32 input's bytes); the main
process normalises it (`audit.tasks.preprocess.normalise`, unchanged) just before the engine.

Chunks are whole engine batches (`plan_units`), so every cell is batched exactly as a cell-by-cell
run batches it: consecutive image positions, `batch_size` at a time, from position 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.execution.context import Cell, PrepareContext, worker_context
from audit.tasks.preprocess import to_input_geometry

CELLS_PER_UNIT = 8  # cells whose metrics are in flight at once: bounds the main process's memory


@dataclass(frozen=True)
class WorkUnit:
    """Images `indices` (dataset positions) of every cell in `cells`: picklable, for any executor."""

    cells: tuple[Cell, ...]
    indices: tuple[int, ...]


@dataclass
class PreparedCell:
    """One cell's inputs for a unit's images: uint8 HxWx3 at the network-input geometry, and metas."""

    images: list[np.ndarray]
    metas: list[dict]


def cell_groups(cells: list[Cell], cells_per_unit: int = CELLS_PER_UNIT) -> list[tuple[Cell, ...]]:
    """`cells` in order, cut into groups of at most `cells_per_unit`."""
    size = max(1, cells_per_unit)
    return [tuple(cells[i:i + size]) for i in range(0, len(cells), size)]


def plan_units(cells: list[Cell], n_images: int, batch_size: int, cells_per_unit: int = CELLS_PER_UNIT,
               batches_per_unit: int = 1) -> list[WorkUnit]:
    """Units group by group, each group's images in chunks of whole batches (`batches_per_unit`).

    A group's cells finish together after its last chunk, so at most one group of metrics (plus the
    read-ahead) is in flight, whatever the number of cells.

    Example:
        >>> [u.indices for u in plan_units([("clean", 0), ("fog", 1)], 5, 2)]
        [(0, 1), (2, 3), (4,)]
    """
    chunk = max(1, batch_size) * max(1, batches_per_unit)
    return [WorkUnit(group, tuple(range(start, min(start + chunk, n_images))))
            for group in cell_groups(cells, cells_per_unit) for start in range(0, n_images, chunk)]


def prepare_unit(unit: WorkUnit, ctx: PrepareContext | None = None) -> tuple[WorkUnit, dict[Cell, PreparedCell]]:
    """Decode each image of `unit` once and derive every cell's network-geometry uint8 input (in a worker)."""
    ctx = ctx or worker_context()
    out = {cell: PreparedCell([], []) for cell in unit.cells}
    for index in unit.indices:
        for cell, (image, meta) in image_cells(ctx, index, unit.cells).items():
            out[cell].images.append(image)
            out[cell].metas.append(meta)
    return unit, out


def image_cells(ctx: PrepareContext, index: int, cells: tuple[Cell, ...]) -> dict[Cell, tuple[np.ndarray, dict]]:
    """Image `index` in each of `cells`, as `runner.cell_input` makes it but before normalisation."""
    ds, spec = ctx.dataset, ctx.spec
    prerendered = ds.prerendered()
    decoded: list = []  # the clean image, read and decoded at most once
    resized: list = []  # the clean image at the input geometry with its meta, computed at most once

    def clean() -> np.ndarray:
        if not decoded:
            decoded.append(ds.load_image(index))
        return decoded[0]

    def clean_resized() -> tuple[np.ndarray, dict]:
        if not resized:
            resized.append(to_input_geometry(clean(), spec))
        return resized[0]

    out = {}
    for corruption, severity in cells:
        if (corruption, severity) in prerendered:
            image, meta = to_input_geometry(ds.load_corrupted(index, corruption, severity), spec)
        elif corruption == "clean":
            image, meta = clean_resized()
        elif ctx.corrupt_at == "original":
            image, meta = to_input_geometry(ctx.corrupt(clean(), corruption, severity, ds.image_id(index)), spec)
        else:
            base, meta = clean_resized()
            image = ctx.corrupt(base, corruption, severity, ds.image_id(index))
        out[(corruption, severity)] = (image, dict(meta))
    return out
