"""The local executor: work units prepared in worker processes with bounded read-ahead.

`LocalExecutor(workers).map(units, context)` yields `(unit, {cell: PreparedCell})` in the order of
`units`; with 0 workers it prepares them in this process. Each worker receives the context once
(at start-up) and a unit per call; it sends back uint8 images, pickled (measured against
`multiprocessing.shared_memory`: see benchmarks/audit_profile.py and the README).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from audit.errors import RobustAuditError
from audit.execution.units import PreparedCell, WorkUnit, prepare_unit
from audit.execution.context import Cell, PrepareContext, init_worker


class LocalExecutor:
    """Prepares work units in local worker processes with bounded read-ahead (0 workers: in-process).

    The process pool starts on the first `map` and, with `keep=True`, serves later calls too (a
    long-lived Ray actor runs many groups of cells); `close()` ends it.
    """

    def __init__(self, workers: int, keep: bool = False):
        self.workers, self.keep = workers, keep
        self._pool: ProcessPoolExecutor | None = None
        self._context: PrepareContext | None = None

    def map(self, units: list[WorkUnit], context: PrepareContext) -> Iterator[tuple[WorkUnit, dict[Cell, PreparedCell]]]:
        if self.workers == 0:
            for unit in units:
                yield prepare_unit(unit, context)
            return
        # a unit holds a group of cells (8 x a batch of images): a unit per worker in flight and
        # one more waiting each keep the engine fed, with the memory bounded by the units in flight
        window = 2 * self.workers + 1
        pool = self._start(context)
        pending: deque = deque()
        try:
            todo = iter(units)
            for unit in todo:
                pending.append(pool.submit(prepare_unit, unit))
                if len(pending) >= window:
                    break
            while pending:
                try:
                    result = pending.popleft().result()
                except BrokenProcessPool:
                    self.close()
                    raise RobustAuditError("a corruption worker process died (out of memory, or killed); "
                                           "rerun with --resume, and fewer --workers if memory is short") from None
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(prepare_unit, nxt))
                yield result
        finally:
            for future in pending:
                future.cancel()
            if not self.keep:
                self.close()

    def close(self) -> None:
        """End the worker processes (queued units are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._context = None

    def _start(self, context: PrepareContext) -> ProcessPoolExecutor:
        if self._pool is not None and self._context is not context:
            self.close()  # another audit's context: its workers hold the old one
        if self._pool is None:
            # concurrent.futures rather than multiprocessing.Pool: a worker that dies (killed, out of
            # memory, cannot import) breaks the pool with an error instead of hanging the audit.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=init_worker,
                                             initargs=(context,))
            self._context = context
        return self._pool
