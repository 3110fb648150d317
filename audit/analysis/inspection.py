"""`inspect_model`: what robustaudit reads from a model before a long run.

Inputs and outputs, the metadata it found, the resolved ModelSpec with where each value came from
(flag, model-config, metadata, inferred, convention, default, assumed) and, given a dataset, the label mapping the audit
would use. `audit inspect` prints it; `audit run` resolves exactly the same way.

Example:
    >>> report = inspect_model("yolo.onnx", task="coco", data="data/coco")  # doctest: +SKIP
    >>> report["label_mapping"]["space"]  # doctest: +SKIP
    'names'
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from audit.errors import ConfigError, ModelError

from audit.spec.model import TASK_TYPES
from audit.spec.ultralytics import SUPPORTED_TASKS, is_ultralytics


def inspect_model(model: str | Path, task: str | None = None, data: str | Path | None = None,
                  model_config: str | Path | None = None, overrides: dict[str, Any] | None = None,
                  ignore_unmatched_labels: bool = False, annotations: str | None = None,
                  images: str | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """Open `model`, resolve its spec (and, with `data`, its label mapping); nothing is audited."""
    from audit.datasets import open_dataset, task_type
    from audit.engines.base import open_engine
    from audit.tasks import TaskAdapter, resolve_spec

    engine = open_engine(str(model), provider="cpu")
    meta = engine.metadata()
    ttype = task_type(task) if task else _task_from_metadata(meta)
    spec = resolve_spec(engine, ttype, model_config, overrides or {}, benchmark=task)
    report: dict[str, Any] = {
        "model": str(model),
        "inputs": [_tensor(t) for t in engine.inputs],
        "outputs": [_tensor(t) for t in engine.outputs],
        "metadata": {"formats": [name for name, found in (("robustaudit", "robustaudit" in meta),
                                                          ("ultralytics", is_ultralytics(meta))) if found],
                     "keys": sorted(meta)},
        "task_type": ttype,
        "spec": {k: v for k, v in asdict(spec).items() if k != "origins"},
        "origins": spec.origins,
        "label_mapping": None,
        "label_problems": [],
    }
    if data is not None:
        if not task:
            raise ConfigError("--data needs --task (coco, ade20k, cifar10, ...) to know how to read the dataset")
        dataset = open_dataset(task, data, annotations=annotations, images=images, num_classes=num_classes)
        report["label_mapping"], report["label_problems"] = _mapping_and_problems(
            TaskAdapter(spec, engine), dataset, ignore_unmatched_labels)
    return report


def _mapping_and_problems(adapter, dataset, ignore_unmatched: bool) -> tuple[dict | None, list[str]]:
    """The label mapping an audit would use, and what stops it: inspect shows a mapping problem rather
    than failing on it (with the categories only one side has left out, where that is the problem)."""
    from audit.tasks import check_model
    from audit.tasks.labels import DatasetLabels

    problems: list[str] = []
    for lenient in (ignore_unmatched, True):
        try:
            mapping = check_model(adapter, dataset, lenient)
        except (ConfigError, ModelError) as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
            continue
        return mapping.describe(adapter.spec.class_names, DatasetLabels.of(dataset)), problems
    return None, problems


def _task_from_metadata(meta: dict[str, str]) -> str:
    raw = str(meta.get("task", "")).strip().lower()
    task = raw if raw in TASK_TYPES else SUPPORTED_TASKS.get(raw)  # ours, else Ultralytics' (detect, segment)
    if task is None:
        raise ConfigError("the model's metadata does not say its task; give --task (coco, ade20k, cifar10, classification, ...)")
    return task


def _tensor(info) -> dict[str, Any]:
    return {"name": info.name, "shape": [d if isinstance(d, int) else str(d) for d in info.shape],
            "dtype": str(info.dtype)}


def render_text(report: dict[str, Any]) -> str:
    """The inspection as aligned plain text (what `audit inspect` prints)."""
    lines = [f"model: {report['model']}", f"metadata: {', '.join(report['metadata']['formats']) or 'none'}"
             + (f" (keys: {', '.join(report['metadata']['keys'])})" if report["metadata"]["keys"] else ""), "inputs:"]
    lines += [f"  {t['name']}: {t['dtype']} {t['shape']}" for t in report["inputs"]]
    lines.append("outputs:")
    lines += [f"  {t['name']}: {t['dtype']} {t['shape']}" for t in report["outputs"]]
    lines.append(f"spec ({report['task_type']}):")
    for key, value in report["spec"].items():
        if key == "provenance" or value in (None, [], {}):
            continue
        shown = value if not isinstance(value, list) or len(value) <= 8 else f"{value[:8]} ... ({len(value)})"
        lines.append(f"  {key:18s} {str(shown):48s} [{report['origins'].get(key, 'unset')}]")
    assumed = report["spec"]["provenance"].get("defaulted")
    if assumed:
        lines.append(f"  nobody set {', '.join(assumed)}: assumed as shown; give them by flag or in --model-config")
    mapping, problems = report["label_mapping"], report.get("label_problems") or []
    if mapping is None and not problems:
        lines.append("label mapping: decided against a dataset; give --task and --data to see it")
    elif mapping is None:
        lines.append("label mapping: none could be resolved")
    else:
        lines.append(f"label mapping: {mapping['space']} ({mapping['source']}: {mapping['reason']})")
        for row in mapping["table"][:100]:
            name = f" {row['model_name']!r}" if row.get("model_name") else ""
            lines.append(f"  label {row['label']}{name} -> "
                         + ("(none)" if row["category_id"] is None else f"{row['category_id']} {row['category']!r}"))
        for key, what in (("unmatched_model", "model classes left out"), ("unmatched_dataset", "dataset categories not named")):
            if mapping[key]:
                lines.append(f"  {what} ({len(mapping[key])}): {', '.join(map(str, mapping[key]))}")
    if problems:
        lines.append("label mapping problems (an audit stops on these):")
        lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
