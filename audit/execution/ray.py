"""Cells of one audit on a Ray cluster (`audit run --executor ray`): long-lived actors, groups of cells.

Each actor (`AuditWorker`: one per GPU with a GPU provider, else one per `--workers`+1 CPUs) opens
the data and the model once and then runs many groups of cells, each with the same runner as a local
run: work units prepared by its own corruption worker processes (the CPUs it reserves), the engine
in the actor. A group comes back as its cells' records and metric states; the driver writes each
cell to the store as it arrives, so `--resume` after a driver crash continues, and the numbers equal
a local run's with the same seed. An actor that dies (killed, out of memory, its node lost) is
replaced and its group re-queued, up to `max_retries` times per group. Actors read the model and the
dataset from paths they all see (a shared filesystem).
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter, deque
from dataclasses import replace
from typing import Any, Callable

from audit.results.cellstore import CellStore
from audit.errors import RobustAuditError, require
from audit.execution.local import LocalExecutor
from audit.execution.setup import prepare
from audit.execution.units import CELLS_PER_UNIT, cell_groups
from audit.execution.cells import Cell, run_cells


class AuditWorker:
    """A long-lived worker: opens the data and the engine once, then runs groups of cells."""

    def __init__(self, config, workers: int):
        self.error: RobustAuditError | None = None
        try:
            self.setup = prepare(config)
        except RobustAuditError as exc:  # raised from `run`, so the driver shows it as a task error
            self.error = exc
        self.executor = LocalExecutor(workers, keep=True)

    def run(self, cells: list[Cell]) -> list[tuple[dict, dict]]:
        """Run `cells` over all images; their (record, state) pairs, as the cell store holds them."""
        if self.error is not None:
            raise self.error
        setup = self.setup
        with tempfile.TemporaryDirectory() as tmp:
            store = CellStore(tmp)
            run_cells(list(cells), dataset=setup.dataset, adapter=setup.adapter, context=setup.context, store=store,
                      executor=self.executor, batch_size=setup.batch_size, with_masks=setup.with_masks,
                      cells_per_unit=len(cells))
            return [store.load(cell) for cell in cells]


def plan_actors(resources: dict[str, float], config, gpus_each: float, n_cells: int) -> tuple[int, int, int]:
    """(actors, CPUs per actor, corruption workers per actor) for the cluster's `resources`."""
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus_each:
        actors = max(1, int(resources.get("GPU", 1) / gpus_each))
        cpus_each = max(1, cpus // actors)
        workers = config.workers if config.workers is not None else cpus_each - 1
    else:
        workers = config.workers if config.workers is not None else 1
        cpus_each = workers + 1
        actors = max(1, cpus // cpus_each)
    return min(actors, max(1, n_cells)), cpus_each, workers


def run_cells_ray(cells: list[Cell], config, store: CellStore, on_images: Callable[[int], None] = lambda n: None,
                  num_gpus: float = 0.0, max_retries: int = 3, cells_per_unit: int = CELLS_PER_UNIT,
                  actor_class: type = AuditWorker) -> dict[Cell, Any]:
    """Run `cells` on Ray actors, saving each to `store` as it finishes; returns {} (states are on disk)."""
    ray = require("ray", "ray", "Running audits on a Ray cluster")
    if not cells:
        return {}
    if not ray.is_initialized():
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    gpus_each = num_gpus or (1 if config.provider != "cpu" else 0)
    n_actors, cpus_each, workers = plan_actors(ray.cluster_resources(), config, gpus_each, len(cells))
    # groups small enough that every actor gets work, at most `cells_per_unit` (the memory bound)
    per_group = max(1, min(cells_per_unit, math.ceil(len(cells) / n_actors)))
    groups = deque(cell_groups(cells, per_group))
    remote = ray.remote(num_cpus=cpus_each, num_gpus=gpus_each, max_restarts=0, max_task_retries=0)(actor_class)
    # the engine gets the CPUs the corruption workers leave, unless the user chose its threads
    actor_config = replace(config, threads=config.threads or max(1, cpus_each - workers))
    actors = [remote.remote(actor_config, workers) for _ in range(min(n_actors, len(groups)))]
    idle, running, failures = list(actors), {}, Counter()
    try:
        while groups or running:
            while groups and idle:
                actor, group = idle.pop(), groups.popleft()
                running[actor.run.remote(list(group))] = (actor, group)
            done, _ = ray.wait(list(running), num_returns=1)
            actor, group = running.pop(done[0])
            try:
                outputs = ray.get(done[0])
            except ray.exceptions.RayActorError:  # the actor died: replace it, re-queue its group
                failures[group] += 1
                if failures[group] > max_retries:
                    raise RobustAuditError(f"cells {_names(group)}: their worker died {max_retries + 1} times; "
                                           "rerun with --resume") from None
                actors.remove(actor)
                actor = remote.remote(actor_config, workers)
                actors.append(actor)
                groups.appendleft(group)
                idle.append(actor)
                continue
            except ray.exceptions.RayTaskError as exc:  # the group raised: show the cause, not Ray's wrapper
                cause = exc.cause if isinstance(getattr(exc, "cause", None), RobustAuditError) else None
                raise cause or RobustAuditError(f"cells {_names(group)} failed on the cluster: {str(exc).splitlines()[0]}") from None
            for cell, (record, state) in zip(group, outputs):
                store.save(cell, record, state)
                on_images(record["num_images"])
            idle.append(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
    return {}


def _names(group) -> str:
    return ", ".join(f"{c} severity {s}" for c, s in group)
