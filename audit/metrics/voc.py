"""Pascal VOC AP at IoU 0.5, as the devkit's `voc_eval` computes it, beside COCO's AP on the same detections.

Per class: detections sorted by score; each is matched to the unmatched-or-not ground-truth box of
its image with the largest IoU (VOC's +1 pixel convention: area = (xmax - xmin + 1)(ymax - ymin + 1));
IoU > 0.5 with a difficult box counts neither way, with a box already taken is a false positive
(a duplicate), with a new box a true positive; otherwise a false positive. AP is the 11-point
interpolated precision (VOC2007) or the area under the monotone precision envelope (VOC2010+),
averaged over the classes that have non-difficult ground truth.

Detections (continuous xyxy pixels, 0-based) enter VOC coordinates as xmin = x0 + 1, xmax = x1, as
the devkit's detection files are written by py-faster-rcnn / mmdetection.

Example:
    >>> voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]), eleven_point=False)
    0.75
"""

from __future__ import annotations

import numpy as np

from audit.metrics.coco import CocoAP


def voc_ap(recall: np.ndarray, precision: np.ndarray, eleven_point: bool) -> float:
    """AP from cumulative recall / precision (the devkit's `voc_ap`)."""
    if eleven_point:
        return float(sum((precision[recall >= t].max() if (recall >= t).any() else 0.0) for t in np.arange(0, 1.1, 0.1)) / 11)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _overlaps(box: np.ndarray, gts: np.ndarray) -> np.ndarray:
    ix = np.minimum(gts[:, 2], box[2]) - np.maximum(gts[:, 0], box[0]) + 1
    iy = np.minimum(gts[:, 3], box[3]) - np.maximum(gts[:, 1], box[1]) + 1
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)  # noqa: E731
    return inter / (area(box) + area(gts) - inter)


def class_ap(gt: dict[int, tuple[np.ndarray, np.ndarray]], dets: list[tuple[int, float, np.ndarray]],
             eleven_point: bool) -> float | None:
    """AP of one class. `gt[image] = (boxes N x 4 in VOC coordinates, difficult N)`; `dets` = (image, score, box)."""
    npos = sum(int((~difficult).sum()) for _, difficult in gt.values())
    if npos == 0:
        return None
    taken = {image: np.zeros(len(boxes), bool) for image, (boxes, _) in gt.items()}
    order = sorted(range(len(dets)), key=lambda k: -dets[k][1])
    tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
    for rank, k in enumerate(order):
        image, _, box = dets[k]
        boxes, difficult = gt.get(image, (np.zeros((0, 4)), np.zeros(0, bool)))
        ious = _overlaps(box, boxes) if len(boxes) else np.zeros(0)
        best = int(np.argmax(ious)) if len(ious) else -1
        if best < 0 or ious[best] <= 0.5:
            fp[rank] = 1
        elif not difficult[best]:
            if taken[image][best]:
                fp[rank] = 1
            else:
                tp[rank], taken[image][best] = 1, True
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    return voc_ap(tp / npos, tp / np.maximum(tp + fp, np.finfo(np.float64).eps), eleven_point)


class VocCocoAP(CocoAP):
    """COCO AP plus `voc_AP50` from the same per-image detections (so resume and bootstrap work alike)."""

    def __init__(self, coco_gt: dict, image_ids, with_masks: bool = False, eleven_point: bool = False):
        super().__init__(coco_gt, image_ids, with_masks)
        self.eleven_point = eleven_point
        self._gt_by_image: dict[int, list[dict]] = {}
        for ann in coco_gt["annotations"]:
            self._gt_by_image.setdefault(ann["image_id"], []).append(ann)

    def compute_on(self, positions: np.ndarray | None = None) -> dict[str, float | None]:
        out = super().compute_on(positions)
        out["voc_AP50"] = self.voc_ap50(np.asarray(sorted(self.dets) if positions is None else positions, np.int64))
        return out

    def voc_ap50(self, positions: np.ndarray) -> float | None:
        """Mean VOC AP50 over classes with ground truth, on the images at `positions` (repeats are separate draws)."""
        gt: dict[int, dict[int, tuple[list, list]]] = {}
        dets: dict[int, list] = {}
        for draw, pos in enumerate(positions):
            for ann in self._gt_by_image.get(self.image_ids[pos], []):
                x, y, w, h = ann["bbox"]
                boxes, difficult = gt.setdefault(ann["category_id"], {}).setdefault(draw, ([], []))
                boxes.append([x + 1, y + 1, x + w, y + h])
                difficult.append(bool(ann.get("iscrowd")))
            entry = self.dets.get(int(pos))
            for box, score, cat in zip(*(entry[k] for k in ("boxes", "scores", "cats"))) if entry else ():
                dets.setdefault(int(cat), []).append((draw, float(score), np.array([box[0] + 1, box[1] + 1, box[2], box[3]], np.float64)))
        aps = []
        for cat, per_image in gt.items():
            arrays = {i: (np.asarray(b, np.float64).reshape(-1, 4), np.asarray(d, bool)) for i, (b, d) in per_image.items()}
            ap = class_ap(arrays, dets.get(cat, []), self.eleven_point)
            if ap is not None:
                aps.append(ap)
        return float(np.mean(aps)) if aps else None
