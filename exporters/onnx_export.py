"""torch -> ONNX for the three tasks, with robustaudit metadata written into the file.

All tasks use the TorchScript-based exporter (`dynamo=False`) at opset 17: torchvision detectors
only export that way (the dynamo exporter fails on their NMS), and it is what the tests pin.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from audit.errors import ExportError
from audit.spec.model import ModelSpec

OUTPUTS = {"classification": ["logits"], "segmentation": ["logits"], "detection": ["boxes", "labels", "scores"]}


def output_names(spec: ModelSpec, model) -> list[str]:
    names = list(OUTPUTS[spec.task])
    if spec.task == "detection" and getattr(model, "roi_heads", None) is not None and model.roi_heads.has_mask():
        names.append("masks")
    return names


def example_input(spec: ModelSpec, size: tuple[int, int]):
    import torch

    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, *size, generator=g)
    return ([image],) if spec.task == "detection" else (image[None],)


def export_onnx(model, spec: ModelSpec, out: Path, *, opset: int = 17, dynamic: bool = True,
                size: tuple[int, int] | None = None) -> Path:
    """Export `model` to `out` and write `spec` as metadata_props; returns `out`."""
    import onnx
    import torch

    size = size or spec.input_size or (320, 320)
    names = output_names(spec, model)
    input_name = "image" if spec.task == "detection" else "images"
    if spec.task == "detection":
        axes = {input_name: {1: "height", 2: "width"}, **{n: {0: "detections"} for n in names}}
    elif spec.task == "segmentation":
        axes = {input_name: {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
        axes = axes if dynamic else {input_name: {0: "batch"}, "logits": {0: "batch"}}
    else:
        axes = {input_name: {0: "batch", **({2: "height", 3: "width"} if dynamic else {})}, "logits": {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, example_input(spec, size), str(out), input_names=[input_name], output_names=names,
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
    except Exception as exc:  # exporter failures come in many types
        raise ExportError(f"torch.onnx.export failed: {str(exc).splitlines()[0][:200]}") from None
    proto = onnx.load(str(out))
    meta = spec.to_metadata()
    meta["provenance"] = meta.get("provenance", "{}")
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(out))
    return out


def write_metadata(path: Path, spec: ModelSpec) -> None:
    """Replace the robustaudit metadata of an ONNX file (after precision conversion)."""
    import onnx

    proto = onnx.load(str(path))
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in spec.to_metadata()]
    del proto.metadata_props[:]
    for key, value in [*keep, *spec.to_metadata().items()]:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
