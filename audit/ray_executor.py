"""Cells of one audit as Ray tasks: for audits that outgrow one machine (`audit run --executor ray`).

Each task opens the data and the model itself (one engine per worker process, on the GPUs Ray gives
it), runs one cell with the same code as a local run, and returns the cell's record and metric state;
the driver writes each cell to the store as it arrives, so `--resume` after a driver crash continues
and the numbers equal a local run's with the same seed. A task whose worker dies is retried
elsewhere (max_retries). Workers read the model and the dataset from paths they all see (a shared
filesystem).
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable

from audit.cellstore import CellStore
from audit.errors import RobustAuditError, require


def run_cell(config, cell: tuple[str, int]) -> tuple[dict, dict]:
    """Run one cell in this process; returns (record, state) as the cell store holds them."""
    from dataclasses import replace

    from audit.api import prepare, run_setup_cells

    # the task holds one CPU: one engine thread, unless the user chose otherwise
    setup = prepare(replace(config, threads=config.threads or 1))
    with tempfile.TemporaryDirectory() as tmp:
        store = CellStore(tmp)
        run_setup_cells(setup, config, [cell], store, workers=0)
        return store.load(cell)


def run_cells_ray(cells: list[tuple[str, int]], config, store: CellStore, on_images: Callable[[int], None] = lambda n: None,
                  task: Callable = run_cell, num_gpus: float = 0.0, max_retries: int = 3) -> dict[tuple[str, int], Any]:
    """Run `cells` as Ray tasks, saving each to `store` as it finishes; returns {} (states are on disk)."""
    ray = require("ray", "ray", "Running audits on a Ray cluster")
    if not ray.is_initialized():
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=1, num_gpus=num_gpus or (1 if config.provider != "cpu" else 0),
                        max_retries=max_retries, retry_exceptions=False)(task)
    pending = {remote.remote(config, cell): cell for cell in cells}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(done[0])
        try:
            record, state = ray.get(done[0])
        except ray.exceptions.RayTaskError as exc:  # the task raised: show the cause, not Ray's wrapper
            cause = exc.cause if isinstance(getattr(exc, "cause", None), RobustAuditError) else None
            raise cause or RobustAuditError(f"cell {cell[0]} severity {cell[1]} failed on the cluster: {str(exc).splitlines()[0]}") from None
        except ray.exceptions.WorkerCrashedError:
            raise RobustAuditError(f"cell {cell[0]} severity {cell[1]}: its worker died {max_retries + 1} times; "
                                   "rerun with --resume") from None
        store.save(cell, record, state)
        on_images(record["num_images"])
    return {}
