"""Resolve what a model means: one precedence over every source of the model spec.

Every key comes from the first source that sets it: a flag, then `--model-config`, then the model's
metadata (robustaudit's or Ultralytics'), then what the model's graph shows (`inferred`: the output
convention from the outputs, the input size from a fixed input shape), then the output convention's
contract (input scaling, resize policy, size rules: `CONVENTION_CONTRACT`), then the task's benchmark
default (a classifier's ImageNet / CIFAR evaluation transform). Any source may hold any subset of the
keys; the ModelSpec is built once from the merged values and validated. A convention's contract
applies whichever source named the convention. `spec.origins` says where each value came from; an
input value nobody set is `assumed` and, with the benchmark defaults, listed in
`provenance["defaulted"]`, so the results document says which values were assumed rather than read.
Label spaces the convention fixes are applied when the labels are mapped (audit.tasks.labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.engines.base import Engine, TensorInfo
from audit.errors import ConfigError, ModelError
from audit.spec.config import read_config
from audit.spec.model import DEFAULT_CROP_PCT, SPEC_KEYS, ModelSpec, metadata_values
from audit.spec.ultralytics import is_ultralytics, ultralytics_spec_fields

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# timm's and torchvision's ImageNet evaluation transform: shorter side to 256, centre 224 crop, bilinear
IMAGENET_EVAL = {"resize": "center_crop", "crop_pct": DEFAULT_CROP_PCT, "interpolation": "bilinear",
                 "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "RGB"}
# CIFAR-10(-C) models are evaluated on the 32x32 images as they are: no crop
CIFAR_EVAL = {"resize": "fixed", "interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
              "channel_order": "RGB"}
# torchvision's and timm's segmentation evaluation: ImageNet statistics on RGB
SEGMENTATION_EVAL = {"interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "RGB"}
# what a convention implies for the input, whichever source named it: torchvision detectors resize and
# normalise inside the graph; Ultralytics models take RGB [0, 1] pixels, letterboxed (RT-DETR: stretched)
_RAW_PIXELS = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "channel_order": "RGB"}
CONVENTION_CONTRACT: dict[str, dict[str, Any]] = {
    "torchvision_detection": {"resize": "none", **_RAW_PIXELS},
    **{c: {"resize": "letterbox", "interpolation": "bilinear", **_RAW_PIXELS} for c in ("yolov8", "yolov8_seg", "yolo_end2end")},
    **{c: {"resize": "fixed", "interpolation": "bilinear", **_RAW_PIXELS} for c in ("rtdetr", "rtdetr_scores")},
}
# size rule of conventions that take any input size: resized to a fixed input shape, else fed as they are
SIZE_FOLLOWS_GRAPH = ("segmentation_logits", "segmentation_labels", "mmdeploy")
# what the model is fed: such a value nobody set is assumed (and listed) rather than read
INPUT_KEYS = ("input_size", "resize", "crop_pct", "interpolation", "min_size", "max_size", "mean", "std", "channel_order")
# the keys Ultralytics' metadata states; the rest of its spec is the convention's contract
_ULTRALYTICS_STATED = ("output_convention", "input_size", "class_names", "label_space", "provenance")
ORIGINS = ("flag", "model-config", "metadata", "inferred", "convention", "default", "assumed", "unset")


@dataclass
class SpecSource:
    """One source of model-spec keys: where it is (an origin of ORIGINS), its name in `spec_source`, its keys."""

    origin: str
    name: str
    values: dict[str, Any]


def resolve_spec(engine: Engine, task_type: str, model_config: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, benchmark: str | None = None) -> ModelSpec:
    """The ModelSpec for `engine`: each key from the first source that sets it (see the module docstring).

    `overrides` are the flags (None: not given); `benchmark` (the --task name, e.g. cifar10) picks the
    evaluation transform a classifier defaults to. `spec.origins` says where each value came from (flag,
    model-config, metadata, inferred, convention, default, assumed, unset); `spec.provenance["spec_source"]`
    sums it up. The model's class names are the model's own, never the dataset's: how labels map to the
    dataset is decided by `audit.tasks.labels.resolve_labels`.

    Example:
        >>> spec = resolve_spec(engine, "classification", overrides={"input_size": (32, 32)})  # doctest: +SKIP
        >>> spec.origins["input_size"], spec.origins["mean"]  # doctest: +SKIP
        ('flag', 'default')
    """
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    sources = spec_sources(engine, task_type, model_config, flags)
    values, origins = merge_sources(sources)
    values["task"], origins["task"] = task_type, _task_origin(sources, task_type, benchmark)
    _infer_from_graph(engine, task_type, values, origins)
    layers = [("convention", convention_contract(values["output_convention"], values.get("input_size"))),
              ("default", benchmark_defaults(task_type, benchmark))]
    for origin, layer in layers:
        for key, value in layer.items():
            if key not in values:
                values[key], origins[key] = value, origin
    _check_size(values, origins)
    provenance = _provenance(sources)
    spec = ModelSpec.build({**values, "provenance": provenance}, "the model spec")
    spec.origins = complete_origins(spec, origins)
    defaulted = sorted(k for k, o in spec.origins.items() if o in ("default", "assumed") and _used(k, spec))
    spec.provenance = {**provenance, "spec_source": _summary(sources, spec, benchmark or task_type),
                       **({"defaulted": defaulted} if defaulted else {})}
    return spec


def spec_sources(engine: Engine, task_type: str, model_config: str | Path | None,
                 flags: dict[str, Any]) -> list[SpecSource]:
    """The given sources in precedence order: flags, --model-config, the model's metadata."""
    out = [SpecSource("flag", "flags", dict(flags))]
    if model_config is not None:
        values = read_config(model_config)
        prov = values.get("provenance")
        name = prov.get("spec_source", "model config") if isinstance(prov, dict) else "model config"
        out.append(SpecSource("model-config", str(name), values))
    meta = engine.metadata()
    if "robustaudit" in meta:
        out.append(SpecSource("metadata", "robustaudit metadata", metadata_values(meta)))
    elif is_ultralytics(meta):
        read = ultralytics_spec_fields(meta, engine.outputs, task_type)
        out.append(SpecSource("metadata", "Ultralytics metadata", {k: read[k] for k in _ULTRALYTICS_STATED if k in read}))
    return out


def merge_sources(sources: list[SpecSource]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each key from the first source that sets it (not None); the task is checked, not merged."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source in sources:
        for key, value in source.values.items():
            if key in ("task", "provenance") or value is None or key in values:
                continue
            values[key], origins[key] = value, source.origin
    return values, origins


def _task_origin(sources: list[SpecSource], task_type: str, benchmark: str | None) -> str:
    """--task decides the task: a source that names another one is a one-line error. The origin is
    `flag` when --task was given (`benchmark`), else the first source that names the task."""
    named = [(s.values["task"], s) for s in sources if s.values.get("task") is not None]
    for task, source in named:
        if task != task_type:
            raise ConfigError(f"the model is a {task} model ({source.origin}) but --task asks for {task_type}")
    return "flag" if benchmark is not None or not named else named[0][1].origin


def convention_contract(convention: str, input_size: Any) -> dict[str, Any]:
    """What `convention` implies for the input (CONVENTION_CONTRACT, SIZE_FOLLOWS_GRAPH).

    Example:
        >>> convention_contract("mmdeploy", None)
        {'resize': 'none'}
    """
    contract = dict(CONVENTION_CONTRACT.get(convention, {}))
    if convention in SIZE_FOLLOWS_GRAPH:
        contract["resize"] = "fixed" if input_size else "none"
    return contract


def benchmark_defaults(task_type: str, benchmark: str | None) -> dict[str, Any]:
    """The task's benchmark evaluation transform: what a value nobody gave defaults to."""
    if task_type == "classification":
        return dict(CIFAR_EVAL if benchmark == "cifar10" else IMAGENET_EVAL)
    if task_type == "segmentation":
        return dict(SEGMENTATION_EVAL)
    return {}  # detection benchmarks fix no input transform: each detector family brings its own


def _infer_from_graph(engine: Engine, task_type: str, values: dict[str, Any], origins: dict[str, str]) -> None:
    """What the graph shows, where no source said it: the input size (a fixed input shape) and the
    output convention (the outputs' names, ranks and dtypes)."""
    if "input_size" not in values and _static_hw(engine):
        values["input_size"], origins["input_size"] = _static_hw(engine), "inferred"
    if "output_convention" not in values:
        values["output_convention"], origins["output_convention"] = infer_convention(engine, task_type, values.get("input_size")), "inferred"


def infer_convention(engine: Engine, task_type: str, input_size: Any = None) -> str:
    """The output convention the model's outputs identify for `task_type`, or a one-line ModelError."""
    outs = engine.outputs
    names = {o.name.lower() for o in outs}
    if task_type == "classification" and len(outs) == 1 and len(outs[0].shape) == 2:
        return "classification_logits"
    if task_type == "segmentation" and len(outs) == 1 and len(outs[0].shape) in (3, 4):
        return "segmentation_logits" if len(outs[0].shape) == 4 else "segmentation_labels"
    if task_type == "detection":
        if {"boxes", "labels", "scores"} <= names or is_torchvision_detection(engine.inputs, outs):
            return "torchvision_detection"
        if {"dets", "labels"} <= names:
            return "mmdeploy"
        if len(outs) == 1 and len(outs[0].shape) == 3 and input_size:
            return "yolov8"
    shapes = {o.name: list(o.shape) for o in outs}
    raise ModelError(f"the model carries no robustaudit metadata and its outputs {shapes} do not identify a "
                     f"{task_type} convention; give --output-convention (see 'audit list conventions') or --model-config")


def _check_size(values: dict[str, Any], origins: dict[str, str]) -> None:
    resize = values.get("resize")
    if resize in ("fixed", "letterbox", "center_crop") and values.get("input_size") is None:
        raise ModelError(f"resize policy '{resize}' ({origins.get('resize')}) needs an input size and the model's "
                         "input size is dynamic: give --input-size H W (or input_size in --model-config)")


def _provenance(sources: list[SpecSource]) -> dict[str, Any]:
    """Provenance entries of every source, the higher source winning a shared entry."""
    merged: dict[str, Any] = {}
    for source in reversed(sources):
        prov = source.values.get("provenance")
        if prov is not None and not isinstance(prov, dict):
            raise ConfigError(f"model spec field 'provenance' ({source.origin}) must be a mapping, got {str(prov)[:80]!r}")
        merged.update(prov or {})
    merged.pop("defaulted", None)  # recomputed for this resolution
    return merged


def _used(key: str, spec: ModelSpec) -> bool:
    """Whether an input key changes what the model is fed under the spec's resize policy."""
    if key in ("input_size", "interpolation"):
        return spec.resize != "none"
    if key == "crop_pct":
        return spec.resize == "center_crop"
    if key in ("min_size", "max_size"):
        return spec.resize == "keep_ratio"
    return True


def complete_origins(spec: ModelSpec, origins: dict[str, str]) -> dict[str, str]:
    """An origin for every key: the source's, else `assumed` (an input value nobody set, in use), else `unset`."""
    return {key: origins.get(key) or ("assumed" if key in INPUT_KEYS and _used(key, spec) else "unset")
            for key in SPEC_KEYS if key != "provenance"}


def _summary(sources: list[SpecSource], spec: ModelSpec, benchmark: str) -> str:
    """`spec_source`: the sources that gave a value, in precedence order, each once."""
    names = {s.origin: s.name for s in sources}
    names.update(inferred="the model's inputs and outputs", convention=f"the {spec.output_convention} convention",
                 default=f"the {benchmark} benchmark default", assumed="assumed values")
    given = {o for k, o in spec.origins.items() if k != "task"}
    return " + ".join(names[o] for o in ORIGINS if o in given and o in names)


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
