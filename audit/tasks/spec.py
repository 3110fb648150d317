"""Resolve what a model means: its own metadata, a --model-config file, flags, or a guess.

A guess reads the model's inputs and outputs; what it cannot read (a classifier's preprocessing) it
takes from the benchmark's evaluation transform and lists under `provenance["defaulted"]`, so the
results document says which values were assumed rather than read.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from audit.engines.base import Engine, TensorInfo
from audit.errors import ConfigError, ModelError
from audit.modelspec import DEFAULT_CROP_PCT, ModelSpec
from audit.tasks.ultralytics import is_ultralytics, ultralytics_spec_fields

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# timm's and torchvision's ImageNet evaluation transform: shorter side to 256, centre 224 crop, bilinear
IMAGENET_EVAL = {"resize": "center_crop", "crop_pct": DEFAULT_CROP_PCT, "interpolation": "bilinear",
                 "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
# CIFAR-10(-C) models are evaluated on the 32x32 images as they are: no crop
CIFAR_EVAL = {"resize": "fixed", "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
# what a convention named with --output-convention implies for the input, when the outputs did not say it:
# torchvision detectors resize and normalise inside the graph; Ultralytics models take [0, 1] pixels
_RAW_PIXELS = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
CONVENTION_INPUT: dict[str, dict[str, Any]] = {
    "torchvision_detection": {"resize": "none", "input_size": None, **_RAW_PIXELS},
    **{c: {"resize": "letterbox", **_RAW_PIXELS} for c in ("yolov8", "yolov8_seg", "yolo_end2end")},
    **{c: {"resize": "fixed", **_RAW_PIXELS} for c in ("rtdetr", "rtdetr_scores")},
}


def resolve_spec(engine: Engine, task_type: str, model_config: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, benchmark: str | None = None) -> ModelSpec:
    """The ModelSpec for `engine`: metadata written by our exporter (flags win), else the config file,
    else the metadata of a known exporter (Ultralytics; flags win), else flags, else a guess from the
    model's inputs and outputs where it is unambiguous.

    `benchmark` (the --task name, e.g. cifar10) picks the evaluation transform a classifier guess
    defaults to. `spec.origins` says where each value came from (metadata, model-config, flag,
    inferred, assumed: a guess's benchmark default, default); `spec.provenance["spec_source"]` sums it up.
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
        given, source, summary = {k for k in meta if k != "robustaudit"}, "metadata", "robustaudit metadata"
    elif model_config is not None:
        spec = ModelSpec.from_file(model_config, **overrides)
        given, source = _config_keys(model_config), "model-config"
        summary = spec.provenance.get("spec_source", "model config")
    elif is_ultralytics(meta):
        read = ultralytics_spec_fields(meta, engine.outputs, task_type)
        spec = _build({**read, **overrides})
        given, source, summary = set(read), "metadata", "Ultralytics metadata"
    else:
        spec, given = _guess(engine, task_type, overrides, benchmark)
        source, summary = "inferred", spec.provenance["spec_source"]
    if spec.task != task_type:
        raise ConfigError(f"the model is a {spec.task} model but --task asks for {task_type}")
    assumed = set(spec.provenance.get("defaulted", []))
    spec.origins = {f.name: "flag" if f.name in overrides else "assumed" if f.name in assumed
                    else source if f.name in given else "default"
                    for f in fields(ModelSpec) if f.name not in ("origins", "provenance")}
    if "task" not in given:
        spec.origins["task"] = "flag"  # --task
    spec.provenance = {**spec.provenance, "spec_source": summary + (" + flags" if overrides else "")}
    return spec


def _config_keys(path: str | Path) -> set[str]:
    """The ModelSpec keys a --model-config file gives (a timm pretrained_cfg translated first)."""
    import yaml

    from audit.pretrained_cfg import is_timm_cfg, merge_timm_cfg

    data = yaml.safe_load(Path(path).read_text()) or {}  # already validated by ModelSpec.from_file
    if is_timm_cfg(data):
        data = merge_timm_cfg(data, {f.name for f in fields(ModelSpec)})
    return set(data)


def _static_hw(engine: Engine) -> tuple[int, int] | None:
    shape = engine.inputs[0].shape
    if len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:]):
        return int(shape[2]), int(shape[3])
    return None


def is_torchvision_detection(inputs: list[TensorInfo], outputs: list[TensorInfo]) -> bool:
    """torchvision's detector export, named or not: one [3, H, W] image in; boxes float [K, 4],
    labels int [K], scores float [K] and optionally masks float [K, 1, H, W] out, in any order."""
    if len(inputs) != 1 or len(inputs[0].shape) != 3 or len(outputs) not in (3, 4):
        return False
    kinds = sorted(_kind(o) for o in outputs)
    return kinds in (sorted(["boxes", "labels", "scores"]), sorted(["boxes", "labels", "scores", "masks"]))


def _kind(info: TensorInfo) -> str:
    floating = np.issubdtype(np.dtype(info.dtype), np.floating)
    rank, last = len(info.shape), info.shape[-1] if info.shape else None
    if rank == 2 and last == 4 and floating:
        return "boxes"
    if rank == 1:
        return "scores" if floating else "labels"
    if rank == 4 and floating and not (isinstance(info.shape[1], int) and info.shape[1] != 1):  # [K, 1, H, W]
        return "masks"
    return "other"


def _classifier_defaults(benchmark: str | None) -> dict[str, Any]:
    return dict(CIFAR_EVAL if benchmark == "cifar10" else IMAGENET_EVAL)


def _guess(engine: Engine, task_type: str, flags: dict[str, Any], benchmark: str | None = None) -> tuple[ModelSpec, set[str]]:
    outs = engine.outputs
    names = [o.name.lower() for o in outs]
    hw = flags.get("input_size") or _static_hw(engine)
    base: dict[str, Any] = {"task": task_type, "input_size": hw}
    defaults: dict[str, Any] = {}
    if task_type == "classification" and len(outs) == 1 and len(outs[0].shape) == 2:
        base.update(output_convention="classification_logits")
        defaults = _classifier_defaults(benchmark)
    elif task_type == "segmentation" and len(outs) == 1 and len(outs[0].shape) in (3, 4):
        conv = "segmentation_logits" if len(outs[0].shape) == 4 else "segmentation_labels"
        base.update(output_convention=conv, resize="fixed" if hw else "none")
        defaults = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}  # torchvision's and timm's statistics, assumed
    elif task_type == "detection" and ({"boxes", "labels", "scores"} <= set(names)
                                       or is_torchvision_detection(engine.inputs, outs)):
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
    flagged = flags.get("output_convention")
    if flagged and flagged != base.get("output_convention"):
        # the flag names the convention: its input contract replaces whatever the outputs suggested
        base = {"task": task_type, "input_size": hw, "output_convention": flagged}
        defaults = dict(CONVENTION_INPUT.get(flagged, {}))
    inferred = set(base) - {"task"} - ({"input_size"} if base.get("input_size") is None else set())
    base.update(flags)
    defaulted = sorted(k for k in defaults if k not in flags)
    base = {**{k: v for k, v in defaults.items() if k not in flags}, **base}
    if base.get("resize", "fixed") in ("fixed", "center_crop") and base.get("input_size") is None:
        if base.get("output_convention") in ("classification_logits",):
            raise ModelError("the model's input size is dynamic: give --input-size H W")
        base["resize"] = "none"
    base["provenance"] = {**base.get("provenance", {}), "spec_source": "guessed from the model's inputs and outputs"
                          + (" + flags" if flags else ""), **({"defaulted": defaulted} if defaulted else {})}
    return _build(base), inferred


def _build(values: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec(**values)
    except TypeError as exc:
        raise ConfigError(f"bad model options: {exc}") from None
