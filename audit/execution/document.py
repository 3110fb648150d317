"""The results document of an audit and the files written beside it (results.json, cells.csv, report.html)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from audit.results import document as results
from audit.corruptions import get
from audit.corruptions.registry import USER
from audit.results.environment import environment
from audit.execution.setup import Setup, plugins_doc
from audit.execution.summary import Summary
from audit.metrics import METRICS_INFO, PRIMARY_METRIC
from audit.io.safety import write_error

# renders results documents into one HTML file: reports.write_report([results.json, ...], report.html)
Renderer = Callable[[list[Path], Path], Any]


def build_document(config, setup: Setup, numbers: Summary, *, identity: dict[str, Any], duration_s: float,
                   examples: list) -> dict[str, Any]:
    """The results document (audit/results/schemas) of a finished audit."""
    spec, engine, dataset, context = setup.spec, setup.engine, setup.dataset, setup.context
    return {
        "kind": results.KIND, "schema_version": results.SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 2), "status": "complete",
        "model": {"name": Path(config.model).name, "path": str(config.model), **identity,
                  "format": "tensorrt" if Path(config.model).suffix in (".engine", ".plan", ".trt") else "onnx",
                  "spec_source": {"from": spec.provenance.get("spec_source", "unknown"),
                                  "defaulted": list(spec.provenance.get("defaulted", []))},
                  "metadata": {**asdict(spec), "input_size": list(spec.input_size) if spec.input_size else None,
                               "mean": list(spec.mean), "std": list(spec.std)},
                  "label_mapping": {**setup.label_mapping,
                                    **({"predictions": numbers.predictions} if numbers.predictions else {})}},
        "task": {"name": config.task, "type": setup.task_type, "primary_metric": PRIMARY_METRIC[setup.task_type],
                 "metrics": {k: METRICS_INFO[k] for k in numbers.keys}, "class_names": dataset.class_names},
        "engine": {"name": engine.info.name, "provider": engine.info.provider, "active_providers": engine.info.active_providers,
                   "precision": engine.info.precision, "batch_size": setup.batch_size, "device": engine.info.device},
        "dataset": {**dataset.describe(), "limit": config.limit, "subset_seed": config.seed if config.limit else None},
        "corruption": {"profile": setup.profile, "corrupt_at": context.corrupt_at, "resolution": resolution(context, spec),
                       "device": context.device,
                       "source": "cifar-10-c npy" if dataset.prerendered() else
                       ("on-the-fly, imagecorruptions' own code" if config.reference_corruptions else
                        f"on-the-fly, torch kernels on {context.device}" if context.device else "on-the-fly"),
                       "corruptions": setup.corruptions, "severities": setup.severities, "seed": config.seed,
                       "user_defined": [c for c in setup.corruptions if get(c).subset == USER], "plugins": plugins_doc()},
        "cells": numbers.cells, "summary": numbers.summary,
        "thresholds": {"fail_under_rpc": config.fail_under_rpc, "fail_under_mpc": config.fail_under_mpc},
        "verdict": numbers.verdict, "examples": examples, "environment": environment(),
        "files": {"cells_csv": "cells.csv"},
    }


def write_outputs(doc: dict[str, Any], out: Path, keys: list[str], renderer: Renderer | None) -> None:
    """results.json, cells.csv and, given a `renderer` (the layer above hands in reports.write_report), report.html."""
    if renderer:
        doc["files"]["report"] = "report.html"
    results.write(doc, out / "results.json")
    results.atomic_write_text(out / "cells.csv", cells_csv(doc["cells"], keys))
    if renderer:
        try:
            renderer([out / "results.json"], out / "report.html")
        except OSError as exc:
            raise write_error(out / "report.html", exc, "--out") from None


def resolution(context, spec) -> str:
    """Where the images were corrupted, in words, for the results document."""
    if context.corrupt_at == "original" or spec.resize == "none":
        where = "original image resolution, before resize and normalisation"
    else:
        size = "x".join(map(str, spec.input_size)) if spec.input_size else "the network input size"
        where = f"network input geometry ({spec.resize} to {size}), after resize, before normalisation"
    return where + ("; pre-rendered files as published" if context.dataset.prerendered() else "")


def cells_csv(cells: list[dict], keys: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["corruption", "group", "severity", "num_images", "seconds", *keys])
    for c in cells:
        writer.writerow([c["corruption"], c["group"], c["severity"], c["num_images"], c["seconds"],
                         *("" if c["metrics"][k] is None else f"{c['metrics'][k]:.6f}" for k in keys)])
    return buf.getvalue()
