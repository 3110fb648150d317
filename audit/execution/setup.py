"""Everything an audit opens before it runs cells: `prepare(config) -> Setup`.

Built once by the driver, and once per long-lived worker (a Ray actor) on the machine that runs the
engine; `audit.api` and `audit.execution.ray` both import it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.corruptions import names
from audit.corruptions.api import check_severity
from audit.corruptions.plugins import load_files, loaded
from audit.datasets import open_dataset, task_type
from audit.engines.base import open_engine
from audit.errors import ConfigError, require
from audit.execution.context import CORRUPT_AT, PrepareContext, default_corrupt_at
from audit.tasks import TaskAdapter, check_model, resolve_spec
from audit.tasks.labels import DatasetLabels


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
    requested_batch: int = 8  # --batch-size

    @property
    def batch_size(self) -> int:
        """Images per engine call: --batch-size, or 1 where the model takes one image at a time."""
        return self.requested_batch if self.adapter.batchable else 1


def prepare(config) -> Setup:
    """Open the data and the model of `config` (an `audit.api.AuditConfig`), resolve what the model
    means, and check one image end to end."""
    ttype = task_type(config.task)
    check_flags(config, ttype)
    severities = sorted({check_severity(s) for s in config.severities})
    load_files(config.corruption_plugins)
    corruptions = names(config.corruptions)
    if not corruptions:  # --corruptions none: the clean cell alone, so no severity was audited either
        severities = []
    profile = config.profile or ("cifar-10-c" if config.task == "cifar10" else "imagenet-c")
    dataset = open_dataset(config.task, config.data, annotations=config.annotations, images=config.images,
                           num_classes=config.num_classes, ignore_index=config.ignore_index, cifar_c=config.cifar_c,
                           skip_bad=config.skip_bad, max_image_pixels=config.max_image_pixels,
                           format=config.format).subset(config.limit, config.seed)
    # corruption workers share the CPU with a CPU engine: its threads then sleep instead of spin-waiting
    # between operators, so the workers run in those gaps (benchmarks/audit_scale.py: about 10 % less wall)
    shares_cpu = config.provider == "cpu" and (config.workers is None or config.workers > 0)
    engine = open_engine(config.model, provider=config.provider, fp16=config.fp16, cache_dir=config.trt_cache,
                         threads=config.threads, spin=not shares_cpu)
    spec = resolve_spec(engine, ttype, config.model_config, config.overrides, benchmark=config.task)
    adapter = TaskAdapter(spec, engine)
    mapping = check_model(adapter, dataset, config.ignore_unmatched_labels)
    with_masks = ttype == "detection" and getattr(dataset, "has_masks", False) and gives_masks(engine, spec)
    corrupt_at = config.corrupt_at or default_corrupt_at(config.task)
    if corrupt_at not in CORRUPT_AT:
        raise ConfigError(f"unknown corrupt_at '{corrupt_at}'; valid: {', '.join(CORRUPT_AT)}")
    context = PrepareContext(dataset, spec, config.seed, profile, config.reference_corruptions, corrupt_at,
                             tuple(str(p) for p in config.corruption_plugins), check_corrupt_device(config, corruptions))
    return Setup(task_type=ttype, corruptions=corruptions, severities=severities, profile=profile, dataset=dataset,
                 engine=engine, spec=spec, adapter=adapter, with_masks=with_masks, context=context,
                 label_mapping=mapping.describe(spec.class_names, DatasetLabels.of(dataset)),
                 requested_batch=config.batch_size)


def check_flags(config, ttype: str) -> None:
    """Refuse a flag that would do nothing under the chosen provider, model or task (one line): a run
    that records fp32 after --fp16 was asked for is a silently wrong record."""
    engine_file = str(config.model).lower().endswith((".engine", ".plan", ".trt"))
    for flag, given, works, instead in (
            ("--fp16", config.fp16, config.provider == "tensorrt" and not engine_file,
             "it builds FP16 engines with --provider tensorrt on an .onnx model; for FP16 elsewhere export an FP16 "
             "model (audit export --precision fp16)"),
            ("--trt-cache", config.trt_cache, config.provider == "tensorrt" and not engine_file,
             "it caches the engines of --provider tensorrt on an .onnx model"),
            ("--ray-address", config.ray_address, config.executor == "ray", "it is the cluster of --executor ray"),
            ("--cifar-c", config.cifar_c, config.task in ("cifar10", "classification"), "it is for CIFAR-10 data"),
            ("--num-classes", config.num_classes, ttype == "segmentation", "it is for segmentation folders"),
            ("--annotations", config.annotations, ttype == "detection", "it is a COCO json for detection"),
            ("--images", config.images, ttype == "detection", "it is COCO's image folder for detection")):
        if given and not works:
            where = (f"--provider {config.provider}" + (" with a TensorRT engine" if engine_file else "")
                     if flag in ("--fp16", "--trt-cache") else f"--executor {config.executor}"
                     if flag == "--ray-address" else f"--task {config.task}")
            raise ConfigError(f"{flag} does nothing with {where} ({instead}); drop it")


def plugins_doc() -> list[dict[str, Any]]:
    """The corruption plug-ins loaded in this process, as the results document lists them."""
    return [p.describe() for p in loaded()]


def gives_masks(engine, spec) -> bool:
    """Whether the model's detections carry instance masks: an output named "masks" (torchvision,
    mmdeploy), torchvision's unnamed [K, 1, H, W] mask output, or YOLO mask prototypes."""
    image_only = len(engine.inputs[0].shape) == 3
    if any(o.name.lower() == "masks" or (image_only and len(o.shape) == 4 and not (isinstance(o.shape[1], int) and o.shape[1] != 1))
           for o in engine.outputs):
        return True
    prototypes = any(len(o.shape) == 4 for o in engine.outputs)
    return spec.output_convention == "yolov8_seg" or (spec.output_convention == "yolo_end2end" and prototypes)


def check_corrupt_device(config, corruptions: list[str]) -> str | None:
    """`--corrupt-device cpu|cuda`: the torch kernels on that device, for corruptions that all have one (one-line
    errors otherwise); None: the NumPy kernels."""
    device = getattr(config, "corrupt_device", None)
    if device is None:
        return None
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--corrupt-device takes cpu or cuda, got '{device}'")
    if config.reference_corruptions:
        raise ConfigError("--corrupt-device runs our torch kernels and --reference-corruptions imagecorruptions' own "
                          "code: give one of them")
    require("torch", "gpu-corruptions", "--corrupt-device")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--corrupt-device cuda: torch sees no CUDA device here; use --corrupt-device cpu or leave "
                          "it out (the NumPy kernels)")
    from audit.corruptions.torch import has_torch_kernel

    missing = [c for c in corruptions if not has_torch_kernel(c)]
    if missing:
        raise ConfigError(f"--corrupt-device: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no torch "
                          "kernel; leave them out of --corruptions or leave --corrupt-device out")
    return device
