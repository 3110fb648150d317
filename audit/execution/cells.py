"""The audit pipeline: work units -> workers (decode once, corrupt, uint8) -> engine -> metrics -> cell store.

Work is cut into `WorkUnit`s (a chunk of whole engine batches of images x a group of cells:
`audit.execution.units`). An executor prepares the next units in worker processes (each image read
and decoded once per unit, every cell of the group derived from it, sent back as uint8 at the
network-input geometry) while the engine runs in this process: `run_cells` normalises each batch,
runs it, and updates the cell's metric. When a group's last chunk is done its cells are evaluated
and saved in a background thread and dropped from memory, so the main process holds one group of
metrics (and the read-ahead) whatever the number of cells; the summary reads the cells back from the
store. Everything is seeded per (seed, image id, corruption, severity) and every cell is batched as
a cell-by-cell run batches it, so the numbers do not depend on workers, units or order.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Protocol

from audit.results.cellstore import CellStore
from audit.datasets.base import Dataset
from audit.execution.context import (CORRUPT_AT, Cell, PrepareContext, cell_input, default_corrupt_at, init_worker,
                                     load_cell_image)
from audit.execution.units import CELLS_PER_UNIT, PreparedCell, WorkUnit, plan_units
from audit.metrics import make_metric
from audit.tasks.adapter import TaskAdapter
from audit.tasks.labels import add_counts
from audit.tasks.types import Detections
from audit.execution.normalise import Normaliser


class Executor(Protocol):
    """Prepares work units (anywhere) and yields them, with their inputs, in the order given."""

    def map(self, units: list[WorkUnit], context: PrepareContext) -> Iterator[tuple[WorkUnit, dict[Cell, PreparedCell]]]: ...


def run_cells(cells: list[Cell], *, dataset: Dataset, adapter: TaskAdapter, context: PrepareContext, store: CellStore,
              executor: Executor, batch_size: int, with_masks: bool, on_images: Callable[[int], None] = lambda n: None,
              cells_per_unit: int = CELLS_PER_UNIT) -> None:
    """Run `cells`, saving each to `store` as it finishes (nothing is kept: read them back from the store)."""
    units = plan_units(cells, len(dataset), batch_size, cells_per_unit)
    remaining: dict[Cell, int] = {cell: 0 for cell in cells}
    for unit in units:
        for cell in unit.cells:
            remaining[cell] += 1
    normaliser = Normaliser(context.spec)
    live: dict[Cell, Any] = {}  # metrics of the cells in flight only
    seconds: dict[Cell, float] = {}
    counts: dict[Cell, dict[str, int]] = {}  # detections kept / left out by reason (audit.tasks.labels.DROP_REASONS)
    saving: list[Future] = []
    with ThreadPoolExecutor(max_workers=1) as finisher:
        for unit, prepared in executor.map(units, context):
            for cell in unit.cells:
                metric = live.setdefault(cell, make_metric(dataset, with_masks=with_masks))
                t0 = time.perf_counter()
                run_batches(adapter, normaliser, metric, unit.indices, prepared[cell], batch_size,
                            counts.setdefault(cell, {}))
                seconds[cell] = seconds.get(cell, 0.0) + time.perf_counter() - t0
                on_images(len(unit.indices))
                remaining[cell] -= 1
                if remaining[cell] == 0:  # evaluate and save while the next units run; then forget it
                    saving.append(finisher.submit(_finish, store, cell, live.pop(cell), len(dataset), seconds.pop(cell),
                                                  counts.pop(cell)))
            for done in [f for f in saving if f.done()]:
                done.result()  # re-raise a failed save now, not at the end
            saving = [f for f in saving if not f.done()]
            while len(saving) > cells_per_unit:  # saving lags: wait, so that at most a group waits on disk
                saving.pop(0).result()
        for f in saving:
            f.result()


def run_batches(adapter: TaskAdapter, normaliser: Normaliser, metric: Any, indices: tuple[int, ...],
                prepared: PreparedCell, batch_size: int, counts: dict[str, int] | None = None) -> None:
    """Normalise (once, here, just before the engine), infer and update one cell's metric, batch by batch;
    each detection is added to `counts` as kept or left out, by reason."""
    for start in range(0, len(indices), batch_size):
        stop = start + batch_size
        arrays = [normaliser(image) for image in prepared.images[start:stop]]
        for index, pred in zip(indices[start:stop], adapter.infer(arrays, prepared.metas[start:stop])):
            if counts is not None and isinstance(pred, Detections) and adapter.mapping is not None:
                add_counts(counts, adapter.mapping.tally(pred.labels))
            metric.update(index, pred)


def _finish(store: CellStore, cell: Cell, metric: Any, n_images: int, seconds: float,
            counts: dict[str, int] | None = None) -> None:
    record = {"corruption": cell[0], "severity": cell[1], "metrics": metric.compute(), "num_images": n_images,
              "seconds": round(seconds, 3)}
    if counts:  # detection cells (classification and segmentation drop no prediction)
        record["predictions"] = counts
    store.save(cell, record, metric.state())


def all_cells(corruptions: Iterable[str], severities: Iterable[int]) -> list[Cell]:
    """The clean cell first, then every (corruption, severity)."""
    return [("clean", 0)] + [(c, s) for c in corruptions for s in severities]


__all__ = ["CORRUPT_AT", "Cell", "Executor", "PrepareContext", "all_cells", "cell_input", "default_corrupt_at",
           "init_worker", "load_cell_image", "run_batches", "run_cells"]
