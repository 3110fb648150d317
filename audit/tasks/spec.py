"""Resolve what a model means: its own metadata, a --model-config file, flags, or a safe guess."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from audit.engines.base import Engine
from audit.errors import ConfigError, ModelError
from audit.modelspec import ModelSpec
from audit.tasks.ultralytics import is_ultralytics, ultralytics_spec_fields


def resolve_spec(engine: Engine, task_type: str, model_config: str | Path | None = None,
                 overrides: dict[str, Any] | None = None) -> ModelSpec:
    """The ModelSpec for `engine`: metadata written by our exporter (flags win), else the config file,
    else the metadata of a known exporter (Ultralytics; flags win), else flags, else a guess from the
    model's outputs where it is unambiguous. `spec.origins` says where each value came from
    (metadata, model-config, flag, inferred, default).

    The model's class names are the model's own (metadata, config, flag), never the dataset's: how
    labels map to the dataset is decided by `audit.tasks.labels.resolve_labels`.

    Example:
        >>> spec = resolve_spec(engine, "classification", overrides={"input_size": (32, 32)})  # doctest: +SKIP
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    meta = engine.metadata()
    if "robustaudit" in meta:
        spec = ModelSpec.from_metadata(meta)
        spec = ModelSpec(**{**spec.__dict__, **overrides}) if overrides else spec
        given, source = {k for k in meta if k != "robustaudit"}, "metadata"
    elif model_config is not None:
        spec = ModelSpec.from_file(model_config, **overrides)
        given, source = _config_keys(model_config), "model-config"
    elif is_ultralytics(meta):
        read = ultralytics_spec_fields(meta, engine.outputs, task_type)
        spec = _build({**read, **overrides})
        given, source = set(read), "metadata"
    else:
        spec, given = _guess(engine, task_type, overrides)
        source = "inferred"
    if spec.task != task_type:
        raise ConfigError(f"the model is a {spec.task} model but --task asks for {task_type}")
    spec.origins = {f.name: "flag" if f.name in overrides else source if f.name in given else "default"
                    for f in fields(ModelSpec) if f.name not in ("origins", "provenance")}
    if "task" not in given:
        spec.origins["task"] = "flag"  # --task
    return spec


def _config_keys(path: str | Path) -> set[str]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}  # already validated by ModelSpec.from_file
    return set(data)


def _static_hw(engine: Engine) -> tuple[int, int] | None:
    shape = engine.inputs[0].shape
    if len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:]):
        return int(shape[2]), int(shape[3])
    return None


def _guess(engine: Engine, task_type: str, flags: dict[str, Any]) -> tuple[ModelSpec, set[str]]:
    outs = engine.outputs
    names = [o.name.lower() for o in outs]
    hw = flags.get("input_size") or _static_hw(engine)
    base: dict[str, Any] = {"task": task_type, "input_size": hw}
    if task_type == "classification" and len(outs) == 1 and len(outs[0].shape) == 2:
        base.update(output_convention="classification_logits", resize="fixed")
    elif task_type == "segmentation" and len(outs) == 1 and len(outs[0].shape) in (3, 4):
        conv = "segmentation_logits" if len(outs[0].shape) == 4 else "segmentation_labels"
        base.update(output_convention=conv, resize="fixed" if hw else "none")
    elif task_type == "detection" and {"boxes", "labels", "scores"} <= set(names):
        # torchvision detectors resize and normalise inside the graph: feed original [0, 1] pixels
        base.update(output_convention="torchvision_detection", resize="none", mean=(0, 0, 0), std=(1, 1, 1), input_size=None)
    elif task_type == "detection" and {"dets", "labels"} <= set(names):
        base.update(output_convention="mmdeploy", resize="fixed" if hw else "none")
    elif task_type == "detection" and len(outs) == 1 and len(outs[0].shape) == 3 and hw:
        base.update(output_convention="yolov8", resize="letterbox", mean=(0, 0, 0), std=(1, 1, 1))
    elif "output_convention" not in flags:
        shapes = {o.name: list(o.shape) for o in outs}
        raise ModelError(f"the model carries no robustaudit metadata and its outputs {shapes} do not identify a "
                         f"{task_type} convention; give --output-convention (see 'audit list conventions') or --model-config")
    inferred = set(base) - {"task"} - ({"input_size"} if base.get("input_size") is None else set())
    base.update(flags)
    if base.get("resize", "fixed") == "fixed" and base.get("input_size") is None:
        if base.get("output_convention") in ("classification_logits",):
            raise ModelError("the model's input size is dynamic: give --input-size H W")
        base["resize"] = "none"
    return _build(base), inferred


def _build(values: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec(**values)
    except TypeError as exc:
        raise ConfigError(f"bad model options: {exc}") from None
