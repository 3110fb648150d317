"""Everything `audit run` does, callable from Python: `run_audit(AuditConfig(...)) -> AuditResult`.

Example:
    >>> from audit.api import AuditConfig, run_audit
    >>> result = run_audit(AuditConfig(model="model.onnx", task="coco", data="data/coco"))  # doctest: +SKIP
    >>> result.summary["metrics"]["bbox_AP"]["rPC"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.results.cellstore import CellStore
from audit.errors import ConfigError
from audit.execution.document import build_document, write_outputs
from audit.execution.local import LocalExecutor
from audit.execution.setup import Setup, plugins_doc, prepare
from audit.io.hashing import model_record
from audit.execution.summary import summarise
from audit.execution.cells import all_cells, run_cells
from audit.io.safety import prepare_out
from audit.io.progress import progress_bar


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
    executor: str = "local"  # local, or ray (groups of cells on long-lived Ray actors; see audit/execution/ray.py)
    ray_address: str | None = None
    reference_corruptions: bool = False  # imagecorruptions' own code path (slow)
    max_image_pixels: int | None = None  # larger images are refused before decoding (default: audit.io.images's)
    corrupt_at: str | None = None  # original or input (audit.execution.cells.CORRUPT_AT); default per task
    corrupt_device: str | None = None  # cpu / cuda: the torch corruption kernels there; None: the NumPy kernels
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


def run_audit(config: AuditConfig) -> AuditResult:
    """Audit `config.model` on `config.data` under the selected corruptions; write OUT/results.json.

    prepare (open data and model) -> execute (the cells not yet in OUT/cells) -> summarise (from the
    cell store) -> write. A --fail-under gate that is not met shows in `result.verdict` (status
    "fail"); the CLI turns it into exit code 2.
    """
    started = time.time()
    out = prepare_out(config.out or f"runs/{Path(config.model).stem}-{config.task}")
    setup = prepare(config)
    store = CellStore(out)
    identity = model_record(config.model)  # the graph and every file it loads (external weights)
    store.check_manifest(manifest(config, setup, identity["sha256"]), config.resume)
    cells = all_cells(setup.corruptions, setup.severities)
    execute(setup, config, [c for c in cells if not store.has(c)], store)
    numbers = summarise(setup, config, store, cells)
    examples = []
    if config.examples:
        from audit.execution.examples import pick_cells, write_examples

        examples = write_examples(out, setup.context, setup.adapter, pick_cells(setup.corruptions, setup.severities),
                                  config.examples, config.seed)
    doc = build_document(config, setup, numbers, identity=identity, duration_s=time.time() - started, examples=examples)
    write_outputs(doc, out, numbers.keys, report_renderer() if config.report else None)
    return AuditResult(out, doc)


def manifest(config: AuditConfig, setup: Setup, model_hash: str) -> dict[str, Any]:
    """What the run is (OUT/run.json): `--resume` continues only the same audit."""
    dataset = setup.dataset
    doc = {"model_sha256": model_hash, "task": config.task, "data": str(Path(config.data).resolve()),
           "images": [dataset.image_id(i) for i in range(min(len(dataset), 50))], "num_images": len(dataset),
           "corruptions": setup.corruptions, "severities": setup.severities, "seed": config.seed, "profile": setup.profile,
           "limit": config.limit, "spec": setup.spec.to_metadata(), "reference": config.reference_corruptions,
           "label_mapping": {k: setup.label_mapping[k] for k in ("space", "table")},
           "corrupt_at": setup.context.corrupt_at, "corrupt_device": setup.context.device}
    if plugins_doc():  # a resumed run needs the same plug-ins (files by hash, packages by version)
        doc["plugins"] = [{k: p[k] for k in ("origin", "version", "sha256")} for p in plugins_doc()]
    return doc


def execute(setup: Setup, config: AuditConfig, todo: list, store: CellStore) -> None:
    """Run the cells `todo` with the configured executor, saving each to `store` as it finishes."""
    if config.executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor '{config.executor}'; valid: local, ray")
    bar = progress_bar(len(todo) * len(setup.dataset), "auditing", config.progress)
    try:
        if config.executor == "ray":
            from audit.execution.ray import run_cells_ray

            run_cells_ray(todo, config, store, on_images=bar.update)
        else:
            run_setup_cells(setup, config, todo, store, on_images=bar.update)
    finally:
        bar.close()


def run_setup_cells(setup: Setup, config: AuditConfig, cells: list, store: CellStore, on_images=lambda n: None,
                    workers: int | None = None) -> None:
    """Run `cells` in this process (with local corruption workers), saving each to `store`."""
    # default: leave one core to the engine (measured on 2 cores: 1 worker beat 2 by 1.5x end to end)
    workers = workers if workers is not None else (config.workers if config.workers is not None
                                                   else max(1, (os.cpu_count() or 2) - 1))
    run_cells(cells, dataset=setup.dataset, adapter=setup.adapter, context=setup.context, store=store,
              executor=LocalExecutor(workers), batch_size=setup.batch_size, with_masks=setup.with_masks,
              on_images=on_images)



__all__ = ["AuditConfig", "AuditResult", "Setup", "prepare", "run_audit"]


def report_renderer():
    """reports.write_report when the reports package provides it (it ships with robustaudit)."""
    try:
        from reports import write_report
    except ImportError:
        return None
    return write_report
