"""Everything `audit run` does, callable from Python: `run_audit(AuditConfig(...)) -> AuditResult`.

Example:
    >>> from audit.api import AuditConfig, run_audit
    >>> result = run_audit(AuditConfig(model="model.onnx", task="coco", data="data/coco"))  # doctest: +SKIP
    >>> result.summary["metrics"]["bbox_AP"]["rPC"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit import results
from audit.cellstore import CellStore
from audit.corruptions import get, names
from audit.corruptions.api import check_severity
from audit.corruptions.plugins import load_files, loaded
from audit.corruptions.registry import USER
from audit.datasets import open_dataset, task_type
from audit.engines.base import open_engine
from audit.environment import environment
from audit.errors import ConfigError
from audit.metrics import METRICS_INFO, PRIMARY_METRIC, make_metric, metric_names
from audit.metrics.robustness import bootstrap_ci, summarize
from audit.runner import CORRUPT_AT, LocalExecutor, PrepareContext, all_cells, default_corrupt_at, run_cells
from audit.safety import prepare_out, write_error
from audit.tasks import TaskAdapter, check_model, resolve_spec
from audit.tasks.labels import DatasetLabels


@dataclass
class AuditConfig:
    """The settings of one audit (the `audit run` flags)."""

    model: str
    task: str
    data: str
    out: str | None = None
    format: str | None = None  # dataset layout (audit.datasets.recognize.FORMATS); None / "auto": recognised from data
    annotations: str | None = None
    images: str | None = None
    corruptions: str = "benchmark"
    severities: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    profile: str | None = None  # default: cifar-10-c for cifar10, imagenet-c otherwise
    batch_size: int = 8
    workers: int | None = None
    seed: int = 0
    limit: int | None = None
    skip_bad: bool = False
    resume: bool = False
    provider: str = "cpu"
    fp16: bool = False
    trt_cache: str | None = None
    threads: int | None = None
    model_config: str | None = None
    ignore_unmatched_labels: bool = False  # class names / table entries without a counterpart: left out, listed
    overrides: dict[str, Any] = field(default_factory=dict)  # input_size, mean, std, output_convention, ...
    num_classes: int | None = None
    ignore_index: int = 255
    cifar_c: str | None = None
    fail_under_rpc: float | None = None
    fail_under_mpc: float | None = None
    bootstrap: int | None = None  # samples; default 1000 with --limit, none otherwise
    examples: int = 3
    executor: str = "local"  # local, or ray (cells as Ray tasks; see audit/ray_executor.py)
    ray_address: str | None = None
    reference_corruptions: bool = False  # imagecorruptions' own code path (slow)
    max_image_pixels: int | None = None  # larger images are refused before decoding (default: audit.imageio's)
    corrupt_at: str | None = None  # original or input (audit.runner.CORRUPT_AT); default per task
    corruption_plugins: list[str] = field(default_factory=list)  # plug-in files (audit.corruptions.plugins)
    report: bool = True
    progress: bool = True


@dataclass
class AuditResult:
    """Where the files are and the headline figures."""

    out: Path
    document: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        return self.document["summary"]

    @property
    def verdict(self) -> dict[str, Any]:
        return self.document["verdict"]


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_audit(config: AuditConfig) -> AuditResult:
    """Audit `config.model` on `config.data` under the selected corruptions; write OUT/results.json.

    A --fail-under gate that is not met shows in `result.verdict` (status "fail"); the CLI turns it
    into exit code 2.
    """
    started = time.time()
    out = prepare_out(config.out or f"runs/{Path(config.model).stem}-{config.task}")
    setup = prepare(config)
    ttype, corruptions, severities, profile = setup.task_type, setup.corruptions, setup.severities, setup.profile
    dataset, engine, spec, adapter, with_masks = setup.dataset, setup.engine, setup.spec, setup.adapter, setup.with_masks

    store = CellStore(out)
    model_hash = sha256_of(config.model)
    manifest = {"model_sha256": model_hash, "task": config.task, "data": str(Path(config.data).resolve()),
                "images": [dataset.image_id(i) for i in range(min(len(dataset), 50))], "num_images": len(dataset),
                "corruptions": corruptions, "severities": severities, "seed": config.seed, "profile": profile,
                "limit": config.limit, "spec": spec.to_metadata(), "reference": config.reference_corruptions,
                "label_mapping": {k: setup.label_mapping[k] for k in ("space", "table")},
                "corrupt_at": setup.context.corrupt_at}
    if plugins_doc():  # a resumed run needs the same plug-ins (files by hash, packages by version)
        manifest["plugins"] = [{k: p[k] for k in ("origin", "version", "sha256")} for p in plugins_doc()]
    store.check_manifest(manifest, config.resume)

    cells = all_cells(corruptions, severities)
    todo = [c for c in cells if not store.has(c)]
    context = setup.context
    bar = _progress(len(todo) * len(dataset), config.progress)
    try:
        if config.executor == "ray":
            from audit.ray_executor import run_cells_ray

            metrics = run_cells_ray(todo, config, store, on_images=bar.update)
        elif config.executor == "local":
            metrics = run_setup_cells(setup, config, todo, store, on_images=bar.update)
        else:
            raise ConfigError(f"unknown executor '{config.executor}'; valid: local, ray")
    finally:
        bar.close()

    records = [store.load(c)[0] for c in cells]
    keys = metric_names(ttype, with_masks, dataset)
    cell_docs = [{"corruption": r["corruption"], "group": "clean" if r["corruption"] == "clean" else get(r["corruption"]).group,
                  "severity": r["severity"], "metrics": {k: r["metrics"].get(k) for k in keys},
                  "num_images": r["num_images"], "seconds": r["seconds"]} for r in records]
    summary = summarize(cell_docs, keys)
    primary = PRIMARY_METRIC[ttype]
    samples = config.bootstrap if config.bootstrap is not None else (1000 if config.limit else 0)
    if samples and corruptions:
        loaded = {c: metrics.get(c) or _restore(dataset, with_masks, store.load(c)[1]) for c in cells}
        subset_cells = {c: m for c, m in loaded.items() if c[0] != "clean" and c[0] in names(summary["subset"] if summary["subset"] != "evaluated" else "all")}
        summary["metrics"][primary]["ci"] = bootstrap_ci(loaded[("clean", 0)], subset_cells, primary, len(dataset),
                                                         samples=samples, seed=config.seed)
    verdict = _verdict(summary["metrics"][primary], config)
    examples = []
    if config.examples:
        from audit.examples import pick_cells, write_examples

        examples = write_examples(out, context, adapter, pick_cells(corruptions, severities), config.examples, config.seed)

    doc = {
        "kind": results.KIND, "schema_version": results.SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2), "status": "complete",
        "model": {"name": Path(config.model).name, "path": str(config.model), "sha256": model_hash,
                  "format": "tensorrt" if Path(config.model).suffix in (".engine", ".plan", ".trt") else "onnx",
                  "spec_source": {"from": spec.provenance.get("spec_source", "unknown"),
                                  "defaulted": list(spec.provenance.get("defaulted", []))},
                  "metadata": {**asdict(spec), "input_size": list(spec.input_size) if spec.input_size else None,
                               "mean": list(spec.mean), "std": list(spec.std)},
                  "label_mapping": setup.label_mapping},
        "task": {"name": config.task, "type": ttype, "primary_metric": primary,
                 "metrics": {k: METRICS_INFO[k] for k in keys}, "class_names": dataset.class_names},
        "engine": {"name": engine.info.name, "provider": engine.info.provider, "active_providers": engine.info.active_providers,
                   "precision": engine.info.precision, "batch_size": config.batch_size if adapter.batchable else 1,
                   "device": engine.info.device},
        "dataset": {**dataset.describe(), "limit": config.limit, "subset_seed": config.seed if config.limit else None},
        "corruption": {"profile": profile, "corrupt_at": context.corrupt_at, "resolution": _resolution(context, spec),
                       "source": "cifar-10-c npy" if dataset.prerendered() else
                       ("on-the-fly, imagecorruptions' own code" if config.reference_corruptions else "on-the-fly"),
                       "corruptions": corruptions, "severities": severities, "seed": config.seed,
                       "user_defined": [c for c in corruptions if get(c).subset == USER], "plugins": plugins_doc()},
        "cells": cell_docs, "summary": summary,
        "thresholds": {"fail_under_rpc": config.fail_under_rpc, "fail_under_mpc": config.fail_under_mpc},
        "verdict": verdict, "examples": examples, "environment": environment(),
        "files": {"cells_csv": "cells.csv"},
    }
    renderer = _report_renderer() if config.report else None
    if renderer:
        doc["files"]["report"] = "report.html"
    results.write(doc, out / "results.json")
    results.atomic_write_text(out / "cells.csv", _cells_csv(cell_docs, keys))
    if renderer:
        try:
            renderer([out / "results.json"], out / "report.html")
        except OSError as exc:
            raise write_error(out / "report.html", exc, "--out") from None
    return AuditResult(out, doc)


@dataclass
class Setup:
    """Everything an audit needs before it runs cells (built by the driver and by remote workers)."""

    task_type: str
    corruptions: list[str]
    severities: list[int]
    profile: str
    dataset: Any
    engine: Any
    spec: Any
    adapter: TaskAdapter
    with_masks: bool
    context: PrepareContext
    label_mapping: dict[str, Any]  # audit.tasks.labels.LabelMapping.describe()


def prepare(config: AuditConfig) -> Setup:
    """Open the data and the model, resolve what the model means, and check one image end to end."""
    ttype = task_type(config.task)
    severities = sorted({check_severity(s) for s in config.severities})
    load_files(config.corruption_plugins)
    corruptions = names(config.corruptions)
    profile = config.profile or ("cifar-10-c" if config.task == "cifar10" else "imagenet-c")
    dataset = open_dataset(config.task, config.data, annotations=config.annotations, images=config.images,
                           num_classes=config.num_classes, ignore_index=config.ignore_index, cifar_c=config.cifar_c,
                           skip_bad=config.skip_bad, max_image_pixels=config.max_image_pixels,
                           format=config.format).subset(config.limit, config.seed)
    engine = open_engine(config.model, provider=config.provider, fp16=config.fp16, cache_dir=config.trt_cache,
                         threads=config.threads)
    spec = resolve_spec(engine, ttype, config.model_config, config.overrides, benchmark=config.task)
    adapter = TaskAdapter(spec, engine)
    mapping = check_model(adapter, dataset, config.ignore_unmatched_labels)
    with_masks = ttype == "detection" and getattr(dataset, "has_masks", False) and _gives_masks(engine, spec)
    corrupt_at = config.corrupt_at or default_corrupt_at(config.task)
    if corrupt_at not in CORRUPT_AT:
        raise ConfigError(f"unknown corrupt_at '{corrupt_at}'; valid: {', '.join(CORRUPT_AT)}")
    context = PrepareContext(dataset, spec, config.seed, profile, config.reference_corruptions, corrupt_at,
                             tuple(str(p) for p in config.corruption_plugins))
    return Setup(ttype, corruptions, severities, profile, dataset, engine, spec, adapter, with_masks, context,
                 mapping.describe(spec.class_names, DatasetLabels.of(dataset)))


def run_setup_cells(setup: Setup, config: AuditConfig, cells: list, store: CellStore, on_images=lambda n: None,
                    workers: int | None = None) -> dict:
    """Run `cells` in this process (with local corruption workers), saving each to `store`."""
    # default: leave one core to the engine (measured on 2 cores: 1 worker beat 2 by 1.5x end to end)
    workers = workers if workers is not None else (config.workers if config.workers is not None
                                                   else max(1, (os.cpu_count() or 2) - 1))
    return run_cells(cells, dataset=setup.dataset, adapter=setup.adapter, context=setup.context, store=store,
                     executor=LocalExecutor(workers), batch_size=config.batch_size if setup.adapter.batchable else 1,
                     with_masks=setup.with_masks, on_images=on_images)


def plugins_doc() -> list[dict[str, Any]]:
    """The corruption plug-ins loaded in this process, as the results document lists them."""
    return [p.describe() for p in loaded()]


def _resolution(context: PrepareContext, spec) -> str:
    """Where the images were corrupted, in words, for the results document."""
    if context.corrupt_at == "original" or spec.resize == "none":
        where = "original image resolution, before resize and normalisation"
    else:
        size = "x".join(map(str, spec.input_size)) if spec.input_size else "the network input size"
        where = f"network input geometry ({spec.resize} to {size}), after resize, before normalisation"
    return where + ("; pre-rendered files as published" if context.dataset.prerendered() else "")


def _gives_masks(engine, spec) -> bool:
    """Whether the model's detections carry instance masks: an output named "masks" (torchvision,
    mmdeploy), torchvision's unnamed [K, 1, H, W] mask output, or YOLO mask prototypes."""
    image_only = len(engine.inputs[0].shape) == 3
    if any(o.name.lower() == "masks" or (image_only and len(o.shape) == 4 and not (isinstance(o.shape[1], int) and o.shape[1] != 1))
           for o in engine.outputs):
        return True
    prototypes = any(len(o.shape) == 4 for o in engine.outputs)
    return spec.output_convention == "yolov8_seg" or (spec.output_convention == "yolo_end2end" and prototypes)


def _restore(dataset, with_masks: bool, state: dict):
    metric = make_metric(dataset, with_masks=with_masks)
    metric.load_state(state)
    return metric


def _verdict(figures: dict, config: AuditConfig) -> dict[str, Any]:
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


def _cells_csv(cells: list[dict], keys: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["corruption", "group", "severity", "num_images", "seconds", *keys])
    for c in cells:
        writer.writerow([c["corruption"], c["group"], c["severity"], c["num_images"], c["seconds"],
                         *("" if c["metrics"][k] is None else f"{c['metrics'][k]:.6f}" for k in keys)])
    return buf.getvalue()


def _report_renderer():
    """reports.write_report when the reports package provides it (it ships with robustaudit)."""
    try:
        from reports import write_report
    except ImportError:
        return None
    return write_report


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="auditing", disable=not enabled, dynamic_ncols=True, smoothing=0.1)


__all__ = ["AuditConfig", "AuditResult", "run_audit"]
