"""Decoders for the outputs of Ultralytics' ONNX exports: YOLOv8 / YOLO11 / YOLO26 detection and
instance segmentation, their end-to-end (NMS-free) variants, and RT-DETR.

Written from the behaviour of Ultralytics' predict-mode postprocessing (not its code), so that on the
same outputs robustaudit keeps the same detections (tests/conformance/test_ultralytics.py):

- raw YOLO outputs [N, 4 + C (+ M), A]: a candidate's score is its best class score (one label per
  box), candidates with score > threshold (strictly) are kept, at most 30,000 by score, then greedy
  NMS per class (IoU > nms_iou suppresses), then the best `max_detections`;
- masks: logits = coefficients @ prototypes, brought to the original image the way Ultralytics'
  `retina_masks=True` path does (upsample x1/2/4 so that the letterbox padding falls on whole
  prototype pixels, crop the padding, bilinear resize), thresholded at sigmoid 0.5, then cropped
  to the box (columns x1 <= x < x2, rows y1 <= y < y2 in original pixels);
- end-to-end rows [N, K, 6 (+ M)] (x1, y1, x2, y2, score, class): score > threshold, first K kept;
- RT-DETR: [N, K, 6] (cx, cy, w, h normalised to the input, score, class), Ultralytics >= 8.4's
  top-k head, or [N, Q, 4 + C] per-query sigmoid class scores (older exports). No NMS.
"""

from __future__ import annotations

import cv2
import numpy as np

from audit.errors import ModelError
from audit.tasks.conventions import CONVENTIONS, DecodeContext, nms
from audit.tasks.preprocess import boxes_to_original
from audit.tasks.types import Detections

MAX_NMS = 30_000  # candidates NMS looks at, as Ultralytics' max_nms
MASK_CHUNK = 32  # masks resized per OpenCV call: bounds the float memory to 32 x H x W


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """Centre-size boxes to corner boxes."""
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def yolo_candidates(raw: np.ndarray, num_classes: int, ctx: DecodeContext):
    """One image's raw [4 + C + M, A] output -> kept (boxes xyxy, scores, labels, extra [K, M])."""
    cand = raw.T
    cls = cand[:, 4:4 + num_classes]
    labels, scores = cls.argmax(1), cls.max(1)
    keep = np.flatnonzero(scores > ctx.score_threshold)
    if keep.size > MAX_NMS:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:MAX_NMS]]
    boxes = cxcywh_to_xyxy(cand[keep, :4])
    kept = keep[nms(boxes, scores[keep], ctx.nms_iou, labels=labels[keep], max_keep=ctx.max_detections)]
    return cxcywh_to_xyxy(cand[kept, :4]), scores[kept], labels[kept].astype(np.int64), cand[kept, 4 + num_classes:]


def _detections(boxes, scores, labels, meta, ctx, masks=None) -> Detections:
    return Detections(boxes_to_original(boxes, meta), scores.astype(np.float32), labels, ctx.categories(labels), masks)


def _split_protos(outputs: list[np.ndarray], convention: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(detections output, prototypes [N, M, h, w] or None) wherever the exporter put them."""
    protos = [o for o in outputs if o.ndim == 4]
    dets = [o for o in outputs if o.ndim == 3]
    if not dets:
        raise ModelError(f"convention {convention} expects a rank-3 output; the model gives shapes {[list(o.shape) for o in outputs]}")
    return dets[0], (protos[0] if protos else None)


@CONVENTIONS.register("yolov8")
def _yolov8(outputs, metas, ctx, names):
    out, _ = _split_protos(outputs, "yolov8 [N, 4 + C, A]")
    preds = []
    for raw, meta in zip(out, metas):
        boxes, scores, labels, _ = yolo_candidates(raw, raw.shape[0] - 4, ctx)
        preds.append(_detections(boxes, scores, labels, meta, ctx))
    return preds


@CONVENTIONS.register("yolov8_seg")
def _yolov8_seg(outputs, metas, ctx, names):
    out, protos = _split_protos(outputs, "yolov8_seg")
    if protos is None:
        raise ModelError(f"convention yolov8_seg expects prototypes [N, M, h, w] beside [N, 4 + C + M, A]; "
                         f"the model gives shapes {[list(o.shape) for o in outputs]}")
    num_classes = out.shape[1] - 4 - protos.shape[1]
    if num_classes < 1:
        raise ModelError(f"yolov8_seg: output {list(out.shape)} has no class scores beside {protos.shape[1]} mask coefficients")
    preds = []
    for raw, proto, meta in zip(out, protos, metas):
        boxes, scores, labels, coeffs = yolo_candidates(raw, num_classes, ctx)
        det = _detections(boxes, scores, labels, meta, ctx)
        det.masks = instance_masks(coeffs, proto, det.boxes, meta, ctx.mask_threshold)
        preds.append(det)
    return preds


@CONVENTIONS.register("yolo_end2end")
def _yolo_end2end(outputs, metas, ctx, names):
    out, protos = _split_protos(outputs, "yolo_end2end [N, K, 6]")
    if out.shape[-1] < 6:
        raise ModelError(f"convention yolo_end2end expects rows (x1, y1, x2, y2, score, class, ...); got shape {list(out.shape)}")
    preds = []
    for i, (rows, meta) in enumerate(zip(out, metas)):
        rows = rows[rows[:, 4] > ctx.score_threshold][: ctx.max_detections]
        det = _detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), meta, ctx)
        if protos is not None:
            det.masks = instance_masks(rows[:, 6:], protos[i], det.boxes, meta, ctx.mask_threshold)
        preds.append(det)
    return preds


def _rtdetr_rows(out: np.ndarray, convention: str) -> np.ndarray:
    if out.ndim != 3:
        raise ModelError(f"convention {convention} expects [N, K, 6] or [N, Q, 4 + C]; got shape {list(out.shape)}")
    return out


@CONVENTIONS.register("rtdetr")
def _rtdetr(outputs, metas, ctx, names):
    out = _rtdetr_rows(outputs[0], "rtdetr")
    if out.shape[-1] != 6:
        raise ModelError(f"convention rtdetr expects [N, K, 6] (cx, cy, w, h, score, class); got {list(out.shape)}: "
                         "an export of Ultralytics < 8.4 gives per-class scores, use --output-convention rtdetr_scores")
    preds = []
    for rows, meta in zip(out, metas):
        rows = rows[rows[:, 4] > ctx.score_threshold][: ctx.max_detections]
        preds.append(_detections(_rtdetr_boxes(rows[:, :4], meta), rows[:, 4], rows[:, 5].astype(np.int64), meta, ctx))
    return preds


@CONVENTIONS.register("rtdetr_scores")
def _rtdetr_scores(outputs, metas, ctx, names):
    out = _rtdetr_rows(outputs[0], "rtdetr_scores")
    preds = []
    for rows, meta in zip(out, metas):
        cls = rows[:, 4:]
        labels, scores = cls.argmax(1), cls.max(1)
        keep = np.flatnonzero(scores > ctx.score_threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")][: ctx.max_detections]
        preds.append(_detections(_rtdetr_boxes(rows[keep, :4], meta), scores[keep], labels[keep].astype(np.int64), meta, ctx))
    return preds


def _rtdetr_boxes(cxcywh: np.ndarray, meta: dict) -> np.ndarray:
    """Normalised centre boxes -> xyxy in network-input pixels."""
    ih, iw = meta["input"]
    return cxcywh_to_xyxy(cxcywh.astype(np.float32)) * np.array([iw, ih, iw, ih], np.float32)


def instance_masks(coeffs: np.ndarray, protos: np.ndarray, boxes: np.ndarray, meta: dict, threshold: float) -> np.ndarray:
    """Boolean [K, H, W] masks at the original size from mask coefficients [K, M] and prototypes
    [M, h, w] over the (letterboxed) network input; `boxes` are xyxy in original pixels."""
    h, w = meta["orig"]
    k = len(coeffs)
    out = np.zeros((k, h, w), bool)
    if not k:
        return out
    m, ph, pw = protos.shape
    logit_threshold = float(np.log(threshold / (1 - threshold)))
    logits = (coeffs.astype(np.float32) @ protos.reshape(m, -1).astype(np.float32)).reshape(k, ph, pw)
    for start in range(0, k, MASK_CHUNK):
        planes = np.ascontiguousarray(logits[start:start + MASK_CHUNK].transpose(1, 2, 0))
        out[start:start + MASK_CHUNK] = (_to_original(planes, meta) > logit_threshold).transpose(2, 0, 1)
    return _crop_to_boxes(out, boxes)


def _to_original(planes: np.ndarray, meta: dict) -> np.ndarray:
    """[h, w, K] maps over the network input -> [H, W, K] over the original image, padding removed."""
    h, w = meta["orig"]
    ph, pw = planes.shape[:2]
    ih, iw = meta["input"]
    stride = max(1, int(round(ih / ph)))
    new_h, new_w = max(round(h * min(ih / h, iw / w)), 1), max(round(w * min(ih / h, iw / w)), 1)
    pad = (ih - new_h) | (iw - new_w)
    factor = stride // np.gcd(stride, pad | pad // 2)  # smallest upsampling that puts the padding on whole pixels
    if factor > 1:
        planes = _resize(planes, pw * factor, ph * factor)
    uh, uw = planes.shape[:2]
    gain = min(uh / h, uw / w)
    ch, cw = max(round(h * gain), 1), max(round(w * gain), 1)
    top, left = round((uh - ch) / 2 - 0.1), round((uw - cw) / 2 - 0.1)
    return _resize(planes[top:top + ch, left:left + cw], w, h)


def _resize(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    if planes.shape[:2] == (height, width):
        return planes
    out = cv2.resize(planes, (width, height), interpolation=cv2.INTER_LINEAR)
    return out[..., None] if out.ndim == 2 else out


def _crop_to_boxes(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Zero each mask outside its box: pixel (y, x) is inside when x1 <= x < x2 and y1 <= y < y2."""
    _, h, w = masks.shape
    cols, rows = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    inside_x = (cols[None] >= boxes[:, 0:1]) & (cols[None] < boxes[:, 2:3])
    inside_y = (rows[None] >= boxes[:, 1:2]) & (rows[None] < boxes[:, 3:4])
    return masks & inside_y[:, :, None] & inside_x[:, None, :]
