"""Typed predictions, the contract between output decoding (audit/tasks) and metrics (audit/metrics).

- classification: `np.ndarray` float [C] scores (logits or probabilities) for one image;
- segmentation: `np.ndarray` integer [H, W] label map at the original image size;
- detection: `Detections` in original image pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Detections of one image, boxes as xyxy in original image pixels.

    `labels` are the model's class indices; `category_ids` the dataset's category ids for them
    (ModelSpec.label_to_category), which is what COCO evaluation uses. `masks`, when the model gives
    them, are boolean [K, H, W] at the original image size.

    Example:
        >>> d = Detections.empty()
        >>> len(d)
        0
    """

    boxes: np.ndarray  # float32 [K, 4] xyxy
    scores: np.ndarray  # float32 [K]
    labels: np.ndarray  # int64 [K]
    category_ids: np.ndarray  # int64 [K]
    masks: np.ndarray | None = None  # bool [K, H, W]

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, with_masks_shape: tuple[int, int] | None = None) -> "Detections":
        masks = None if with_masks_shape is None else np.zeros((0, *with_masks_shape), bool)
        z = np.zeros((0,), np.int64)
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), z, z.copy(), masks)
