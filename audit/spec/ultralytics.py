"""Read the metadata Ultralytics' exporter writes into an ONNX file, as a robustaudit `ModelSpec`.

`model.export(format="onnx")` stores strings in `metadata_props`: `author` "Ultralytics", `task`
(detect, segment, classify, pose, obb, ...), `names` (a Python dict literal `{0: 'person', ...}`),
`imgsz` ("[640, 640]"), `stride`, `batch`, `head` (Detect, Segment, RTDETRDecoder, ...), `end2end`,
`args` (a dict literal with `nms`, `dynamic`, ...), `version`. Literals are parsed with
`ast.literal_eval`, never evaluated.

Ultralytics feeds RGB [0, 1] pixels, letterboxed (grey 114, centred) to imgsz; RT-DETR stretches
the image to imgsz instead.
"""

from __future__ import annotations

import ast
from typing import Any

from audit.engines.base import TensorInfo
from audit.errors import ModelError

SUPPORTED_TASKS = {"detect": "detection", "segment": "detection"}
_TASK_HINT = {"detection": "--task coco (or another detection task)"}


def is_ultralytics(meta: dict[str, str]) -> bool:
    """True for the metadata of an Ultralytics export."""
    return meta.get("author", "").startswith("Ultralytics") or {"task", "names", "imgsz", "stride"} <= set(meta)


def _literal(meta: dict[str, str], key: str) -> Any:
    raw = meta.get(key)
    if raw is None:
        raise ModelError(f"the Ultralytics metadata has no '{key}'; re-export the model with Ultralytics, or give --model-config")
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ModelError(f"the Ultralytics metadata '{key}' is not a Python literal: {raw[:60]!r}; "
                         "re-export the model or give --model-config") from None


def class_names(meta: dict[str, str]) -> list[str]:
    """`names` {0: 'a', 1: 'b'} (or a list) -> ['a', 'b']; the indices must be 0..C-1."""
    names = _literal(meta, "names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names or sorted(names) != list(range(len(names))):
        raise ModelError(f"the Ultralytics metadata 'names' must map class indices 0..C-1 to names; got {meta['names'][:60]!r}")
    return [str(names[i]) for i in range(len(names))]


def input_size(meta: dict[str, str]) -> tuple[int, int]:
    """`imgsz` "[H, W]" (or "640") -> (H, W)."""
    size = _literal(meta, "imgsz")
    size = [size, size] if isinstance(size, int) else size
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ModelError(f"the Ultralytics metadata 'imgsz' must be [H, W] in pixels; got {meta['imgsz'][:60]!r}")
    return int(size[0]), int(size[1])


def _flag(meta: dict[str, str], key: str) -> bool:
    return meta.get(key, "False").strip() == "True"


def output_convention(meta: dict[str, str], outputs: list[TensorInfo], num_classes: int) -> str:
    """The decoder for this export, from its head and flags and the shape of its first output."""
    last = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if meta.get("head") == "RTDETRDecoder":
        # Ultralytics >= 8.4 exports top-k rows [N, K, 6]; older ones per-query class scores [N, Q, 4 + C]
        return "rtdetr_scores" if last == 4 + num_classes and last != 6 else "rtdetr"
    nms_embedded = "args" in meta and isinstance(_literal(meta, "args"), dict) and bool(_literal(meta, "args").get("nms"))
    if _flag(meta, "end2end") or nms_embedded:
        return "yolo_end2end"
    return "yolov8_seg" if meta.get("task") == "segment" else "yolov8"


def ultralytics_spec_fields(meta: dict[str, str], outputs: list[TensorInfo], task_type: str) -> dict[str, Any]:
    """ModelSpec fields for an Ultralytics export audited as `task_type`; one-line ModelError when
    the Ultralytics task is one robustaudit cannot audit or does not fit `task_type`.

    Example:
        >>> meta = {"author": "Ultralytics", "task": "detect", "names": "{0: 'cat'}", "imgsz": "[64, 64]", "stride": "32"}
        >>> ultralytics_spec_fields(meta, [], "detection")["output_convention"]
        'yolov8'
    """
    task = meta.get("task", "")
    if task not in SUPPORTED_TASKS:
        raise ModelError(f"the model is an Ultralytics '{task}' model; robustaudit audits Ultralytics "
                         f"{' and '.join(SUPPORTED_TASKS)} models only (COCO boxes / masks)")
    if SUPPORTED_TASKS[task] != task_type:
        raise ModelError(f"the model is an Ultralytics '{task}' model, a {SUPPORTED_TASKS[task]} model, but --task asks "
                         f"for {task_type}; audit it with {_TASK_HINT[SUPPORTED_TASKS[task]]}")
    names = class_names(meta)
    convention = output_convention(meta, outputs, len(names))
    return {"task": SUPPORTED_TASKS[task], "output_convention": convention, "input_size": input_size(meta),
            "resize": "fixed" if convention.startswith("rtdetr") else "letterbox",
            "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "channel_order": "RGB",
            "class_names": names, "label_space": "names",
            "provenance": {"exporter": "ultralytics", "version": meta.get("version"), "head": meta.get("head"),
                           "description": meta.get("description")}}
