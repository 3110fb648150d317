"""What to export: an `audit finetune` checkpoint, or a torchvision / timm model by name.

Returns the eval-mode torch model, the ModelSpec it will carry, and provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import CheckpointError, ConfigError
from audit.io.hashing import sha256_of
from audit.spec.model import ModelSpec

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CONVENTION = {"classification": "classification_logits", "segmentation": "segmentation_logits",
              "detection": "torchvision_detection"}


@dataclass
class Source:
    """A model ready to export, what it means, and where it came from."""

    model: Any  # torch.nn.Module in eval mode
    spec: ModelSpec
    dataset: tuple[str, str] | None = None  # (task, folder) a checkpoint was fine-tuned on: default parity images


def from_checkpoint(path: str | Path) -> Source:
    """Rebuild an `audit finetune` checkpoint's model and its spec (detectors feed [0, 1] images)."""
    from finetune.checkpoint import load_checkpoint
    from finetune.models import build_model

    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model"])
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: the weights do not fit the model ({len(missing)} missing, {len(unexpected)} unexpected keys)")
    pre, task = ckpt["preprocessing"], ckpt["task"]
    spec_kw: dict[str, Any] = dict(task=task, output_convention=CONVENTION[task], class_names=list(ckpt["class_names"]),
                                   label_to_category=ckpt.get("label_to_category"), ignore_index=ckpt.get("ignore_index", 255))
    if task == "detection":  # torchvision's R-CNN transform resizes and normalises inside the graph
        spec_kw.update(resize="none", mean=(0, 0, 0), std=(1, 1, 1))
    else:
        spec_kw.update(resize="fixed", input_size=tuple(pre["input_size"]), mean=tuple(pre["mean"]), std=tuple(pre["std"]))
    prov = ckpt.get("provenance", {})
    spec_kw["provenance"] = {"source": str(path), "source_sha256": sha256_of(path), "backbone": ckpt["model"].get("backbone"),
                             "mode": ckpt["model"].get("mode"), "augment": prov.get("augment"), "lr": prov.get("lr"),
                             "epochs": prov.get("epochs"), "final_metric": prov.get("final_metric")}
    data = prov.get("dataset") or {}
    dataset = (str(data["task"]), str(data["path"])) if data.get("task") and data.get("path") else None
    return Source(model.eval(), ModelSpec(**spec_kw), dataset)


def from_name(name: str, *, weights: str | None, num_classes: int | None, input_size: tuple[int, int] | None) -> Source:
    """`torchvision:NAME` or `timm:NAME` (random init unless --weights PATH: nothing is downloaded)."""
    import torch

    kind, _, arch = name.partition(":")
    if kind not in ("torchvision", "timm") or not arch:
        raise ConfigError(f"unknown export source '{name}': give a checkpoint file, torchvision:NAME or timm:NAME")
    if kind == "timm":
        import timm

        if arch not in timm.list_models():
            raise ConfigError(f"timm has no model '{arch}'; see timm.list_models()")
        model = timm.create_model(arch, pretrained=False, **({"num_classes": num_classes} if num_classes else {}))
        task = "classification"
    else:
        from torchvision import models

        try:
            builder = models.get_model_builder(arch)
        except ValueError:
            raise ConfigError(f"torchvision has no model '{arch}'; see torchvision.models.list_models()") from None
        task = "detection" if arch in models.list_models(models.detection) else (
            "segmentation" if arch in models.list_models(models.segmentation) else "classification")
        kw: dict[str, Any] = {"weights": None}
        if num_classes:
            kw["num_classes"] = num_classes
        if task != "classification":
            kw["weights_backbone"] = None
        model = builder(**kw)
        if task == "segmentation":
            model = _SegmentationOut(model)
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        missing, unexpected = model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=False)
        if missing and len(missing) == len(model.state_dict()):
            raise CheckpointError(f"{weights}: no key matched the {name} model")
    # a model made by name knows no class names: say how its labels are read instead of inventing names
    spec_kw: dict[str, Any] = dict(task=task, output_convention=CONVENTION[task], label_space="index",
                                   provenance={"source": name, "weights": weights or "random init"})
    if task == "detection":
        # torchvision's detectors keep label 0 for the background; with its default 91 classes (COCO) the
        # label is the COCO category id, otherwise (a fine-tuned head) background + index
        coco_layout = (num_classes or 91) == 91
        spec_kw.update(resize="none", mean=(0, 0, 0), std=(1, 1, 1),
                       label_space="category-id" if coco_layout else "index+background")
        if coco_layout:  # its class names, so an audit on other data than COCO can tell (audit/tasks/labels.py)
            from torchvision.models._meta import _COCO_CATEGORIES

            spec_kw["class_names"] = list(_COCO_CATEGORIES)
    elif kind == "timm":
        spec_kw.update(timm_eval_spec(model, input_size))
    elif task == "classification":  # torchvision's ImageClassification: shorter side 256, centre 224, bilinear
        spec_kw.update(resize="center_crop", input_size=tuple(input_size or (224, 224)), crop_pct=224 / 256,
                       interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    else:
        spec_kw.update(resize="fixed", input_size=tuple(input_size or (224, 224)), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Source(model.eval(), ModelSpec(**spec_kw))


def timm_eval_spec(model, input_size: tuple[int, int] | None) -> dict[str, Any]:
    """ModelSpec keys for timm's evaluation transform of `model` (its pretrained_cfg); --input-size wins."""
    from audit.spec.timm_cfg import spec_keys_from_timm

    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    keys = spec_keys_from_timm({k: cfg.get(k) for k in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")})
    keys.pop("provenance", None)
    keys["input_size"] = tuple(input_size or keys.get("input_size") or (224, 224))
    return keys


class _SegmentationOut:
    """torchvision segmentation models return {"out": logits}; export the logits."""

    def __new__(cls, model):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)["out"]

        return Wrapped(model)


def load_source(source: str, *, weights: str | None = None, num_classes: int | None = None,
                input_size: tuple[int, int] | None = None) -> Source:
    """A checkpoint path, or a model name with a `torchvision:` / `timm:` prefix."""
    if Path(source).is_file():
        return from_checkpoint(source)
    if ":" in source:
        return from_name(source, weights=weights, num_classes=num_classes, input_size=input_size)
    raise CheckpointError(f"no checkpoint at {source}; give an 'audit finetune' checkpoint, torchvision:NAME or timm:NAME")
