"""Output conventions: the registry of decoders (one per convention) and what they share (context, NMS).

Decoders take the engine outputs for a batch, the per-image preprocessing metas and a context
(label -> category mapping, score / NMS thresholds) and return one prediction per image:
classification float scores [C]; segmentation int label map [H, W]; detection `Detections`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from audit.registry import Registry


@dataclass
class DecodeContext:
    """What decoders need besides the outputs. `mapping` (audit.tasks.labels.LabelMapping) turns the
    model's labels into the dataset's categories; without it labels pass through unchanged, as they
    do while the mapping is being resolved."""

    score_threshold: float = 0.001
    nms_iou: float = 0.7
    max_detections: int = 100
    mask_threshold: float = 0.5
    mapping: Any = None

    def categories(self, labels: np.ndarray) -> np.ndarray:
        if self.mapping is not None:
            return self.mapping.categories(labels)
        return np.asarray(labels).astype(np.int64)


Decoder = Callable[[list[np.ndarray], list[dict], DecodeContext, list[str]], list]
CONVENTIONS: Registry[Decoder] = Registry("output convention", listing="audit list conventions")


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, labels: np.ndarray | None = None,
        max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, by decreasing score.

    With `labels`, a box only suppresses boxes of its own label (per-class NMS in one pass); with
    `max_keep`, it stops after that many kept boxes (those are the best ones, since greedy NMS keeps
    in decreasing score order).
    """
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        survive = inter / np.maximum(area[i] + area[rest] - inter, 1e-9) <= iou
        if labels is not None:
            survive |= labels[rest] != labels[i]
        order = rest[survive]
    return np.asarray(keep, np.int64)
