"""Summarise an audit from its cell store: per-cell documents, robustness summary, bootstrap, verdict.

Finished cells live on disk only; the bootstrap reads their metric states back one cell at a time
(`StoredCells`), so the memory does not grow with the number of cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

from audit.results.cellstore import CellStore
from audit.corruptions import get, names
from audit.execution.context import Cell
from audit.metrics import PRIMARY_METRIC, make_metric, metric_names
from audit.metrics.robustness import bootstrap_ci, summarize
from audit.tasks.labels import DROP_REASONS, add_counts


@dataclass
class Summary:
    """What the results document says about the numbers."""

    keys: list[str]  # the metric names, in the document's order
    cells: list[dict[str, Any]]  # the document's `cells`
    summary: dict[str, Any]
    verdict: dict[str, Any]
    predictions: dict[str, Any] | None = None  # detections kept / left out by reason, over every cell


class StoredCells(Mapping):
    """Metric objects of finished cells, restored from the store on each access (nothing cached)."""

    def __init__(self, store: CellStore, cells: list[Cell], dataset, with_masks: bool):
        self.store, self.cells, self.dataset, self.with_masks = store, cells, dataset, with_masks

    def __getitem__(self, cell: Cell):
        if cell not in self.cells:
            raise KeyError(cell)
        metric = make_metric(self.dataset, with_masks=self.with_masks)
        metric.load_state(self.store.load(cell)[1])
        return metric

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)


def summarise(setup, config, store: CellStore, cells: list[Cell]) -> Summary:
    """The document's cells, summary (with the bootstrap CI where asked) and verdict, from `store`."""
    keys = metric_names(setup.task_type, setup.with_masks, setup.dataset)
    records = [store.load(c)[0] for c in cells]
    cell_docs = [cell_doc(r, keys) for r in records]
    summary = summarize(cell_docs, keys)
    primary = PRIMARY_METRIC[setup.task_type]
    samples = config.bootstrap if config.bootstrap is not None else (1000 if config.limit else 0)
    if samples and setup.corruptions:
        chosen = set(names(summary["subset"] if summary["subset"] != "evaluated" else "all"))
        stored = StoredCells(store, cells, setup.dataset, setup.with_masks)
        subset = StoredCells(store, [c for c in cells if c[0] != "clean" and c[0] in chosen], setup.dataset, setup.with_masks)
        summary["metrics"][primary]["ci"] = bootstrap_ci(stored[("clean", 0)], subset, primary, len(setup.dataset),
                                                         samples=samples, seed=config.seed)
    predictions = prediction_counts(records) if setup.task_type == "detection" else None
    return Summary(keys, cell_docs, summary, verdict(summary["metrics"][primary], config), predictions)


def prediction_counts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The detections of every cell, kept and left out by reason (`audit.tasks.labels.LabelMapping.tally`),
    with how many cells were counted (a cell resumed from an older run may carry no counts)."""
    counted = [r["predictions"] for r in records if isinstance(r.get("predictions"), dict)]
    totals: dict[str, Any] = {"total": 0, "kept": 0, **{reason: 0 for reason in DROP_REASONS}}
    for counts in counted:
        add_counts(totals, counts)
    return {**totals, "cells_counted": len(counted), "cells": len(records)}


def cell_doc(record: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A stored cell record as the results document lists it."""
    return {"corruption": record["corruption"], "group": "clean" if record["corruption"] == "clean" else get(record["corruption"]).group,
            "severity": record["severity"], "metrics": {k: record["metrics"].get(k) for k in keys},
            "num_images": record["num_images"], "seconds": record["seconds"]}


def verdict(figures: dict, config) -> dict[str, Any]:
    """The --fail-under gates against the primary metric's rPC and mPC."""
    reasons, status = [], "none"
    for name, limit, value in (("rPC", config.fail_under_rpc, figures.get("rPC")), ("mPC", config.fail_under_mpc, figures.get("mPC"))):
        if limit is None:
            continue
        status = "pass" if status == "none" else status
        if value is None or value < limit:
            status = "fail"
            shown = "undefined" if value is None else f"{value:.4f}"
            reasons.append(f"{name} {shown} is under the required {limit:.4f}")
        else:
            reasons.append(f"{name} {value:.4f} meets {limit:.4f}")
    return {"status": status, "reasons": reasons}
