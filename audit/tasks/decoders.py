"""The built-in output conventions' decoders: classification and segmentation logits, label maps,
torchvision detection and mmdeploy. Ultralytics' decoders are in audit/tasks/yolo.py; both register
into audit.tasks.conventions.CONVENTIONS when the package is imported.
"""

from __future__ import annotations

import numpy as np

from audit.errors import ModelError
from audit.tasks.conventions import CONVENTIONS
from audit.tasks.preprocess import boxes_to_original, map_to_original
from audit.tasks.types import Detections


def _rank(out: np.ndarray, ranks: tuple[int, ...], what: str, convention: str) -> None:
    if out.ndim not in ranks:
        raise ModelError(f"model output {what} has shape {list(out.shape)} but convention {convention} expects rank "
                         f"{' or '.join(map(str, ranks))}; give --output-convention or --model-config")


@CONVENTIONS.register("classification_logits")
def _classification(outputs, metas, ctx, names):
    out = outputs[0]
    _rank(out, (2,), "0", "classification_logits")
    if out.shape[0] != len(metas):
        raise ModelError(f"model output 0 has {out.shape[0]} rows for a batch of {len(metas)} images")
    return [row.astype(np.float32) for row in out]


@CONVENTIONS.register("segmentation_logits")
def _seg_logits(outputs, metas, ctx, names):
    out = outputs[0]
    _rank(out, (4,), "0", "segmentation_logits [N, C, H, W]")
    preds = []
    for logits, meta in zip(out, metas):
        # resize the logits (bilinear) to the original size, then argmax: better than resizing labels
        up = map_to_original(np.ascontiguousarray(logits.transpose(1, 2, 0), dtype=np.float32), meta, nearest=False)
        preds.append(up.argmax(axis=-1).astype(np.int64))
    return preds


@CONVENTIONS.register("segmentation_labels")
def _seg_labels(outputs, metas, ctx, names):
    out = outputs[0]
    _rank(out, (3, 4), "0", "segmentation_labels [N, H, W]")
    out = out[:, 0] if out.ndim == 4 else out
    return [map_to_original(lab.astype(np.int32), meta, nearest=True).astype(np.int64) for lab, meta in zip(out, metas)]


def _by_name(outputs: list[np.ndarray], names: list[str], wanted: list[str]) -> list[np.ndarray | None]:
    lowered = [n.lower() for n in names]
    if all(w in lowered for w in wanted[:3]):
        return [outputs[lowered.index(w)] if w in lowered else None for w in wanted]
    return [outputs[i] if i < len(outputs) else None for i in range(len(wanted))]


def _by_structure(outputs: list[np.ndarray]) -> list[np.ndarray | None]:
    """torchvision detection outputs told apart by dtype and shape (exports often leave them unnamed):
    boxes float [K, 4], labels integer [K], scores float [K], masks float [K, 1, H, W]."""
    found: dict[str, np.ndarray] = {}
    for out in outputs:
        floating = np.issubdtype(out.dtype, np.floating)
        kind = ("boxes" if out.ndim == 2 and out.shape[1] == 4 and floating else
                "scores" if out.ndim == 1 and floating else "labels" if out.ndim == 1 else
                "masks" if out.ndim == 4 and floating else None)
        if kind is None or kind in found:
            return [None] * 4
        found[kind] = out
    return [found.get(k) for k in ("boxes", "labels", "scores", "masks")]


@CONVENTIONS.register("torchvision_detection")
def _torchvision(outputs, metas, ctx, names):
    # dtype and shape first: torchvision's RetinaNet / FCOS return boxes, scores, labels, so names
    # copied from Faster R-CNN's order (boxes, labels, scores) label the wrong tensors
    found = _by_structure(outputs)
    boxes, labels, scores, masks = found if all(v is not None for v in found[:3]) else \
        _by_name(outputs, names, ["boxes", "labels", "scores", "masks"])
    if boxes is None or labels is None or scores is None:
        raise ModelError(f"convention torchvision_detection expects outputs boxes, labels, scores[, masks]; the model has {names}")
    _rank(boxes, (2,), "boxes", "torchvision_detection [K, 4]")
    meta = metas[0]
    keep = scores >= ctx.score_threshold
    det_masks = None
    if masks is not None:
        m = masks[keep][:, 0] if masks.ndim == 4 else masks[keep]
        det_masks = np.stack([map_to_original(x.astype(np.float32), meta, nearest=False) >= ctx.mask_threshold for x in m]) \
            if len(m) else np.zeros((0, *meta["orig"]), bool)
    lab = labels[keep].astype(np.int64)
    return [Detections(boxes_to_original(boxes[keep], meta), scores[keep].astype(np.float32), lab, ctx.categories(lab), det_masks)]


@CONVENTIONS.register("mmdeploy")
def _mmdeploy(outputs, metas, ctx, names):
    dets, labels, masks = _by_name(outputs, names, ["dets", "labels", "masks"])
    if dets is None or labels is None:
        raise ModelError(f"convention mmdeploy expects outputs dets [1,K,5] and labels [1,K]; the model has {names}")
    _rank(dets, (3,), "dets", "mmdeploy [N, K, 5]")
    preds = []
    for i, meta in enumerate(metas):
        d, lab = dets[i], labels[i].astype(np.int64)
        keep = d[:, 4] >= ctx.score_threshold
        det_masks = None
        if masks is not None:
            det_masks = np.stack([map_to_original(m.astype(np.float32), meta, nearest=False) >= ctx.mask_threshold
                                  for m in masks[i][keep]]) if keep.any() else np.zeros((0, *meta["orig"]), bool)
        preds.append(Detections(boxes_to_original(d[keep, :4], meta), d[keep, 4].astype(np.float32), lab[keep],
                                ctx.categories(lab[keep]), det_masks))
    return preds
