"""The validation metric at the end of fine-tuning: top-1, mIoU or COCO box (and mask) AP.

Uses the streaming metrics of `audit.metrics`, on predictions at the original image size, so the
number is the one `audit run` would report for the clean images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from audit.metrics.classification import Accuracy
from audit.metrics.coco import CocoAP
from audit.metrics.segmentation import MeanIoU
from audit.metrics.voc import VocCocoAP
from audit.tasks.types import Detections
from finetune.data import to_tensor


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean, device=x.device)[:, None, None]) / torch.tensor(std, device=x.device)[:, None, None]


@torch.no_grad()
def evaluate(model: torch.nn.Module, reader, task_type: str, pre: dict, device: torch.device, batch_size: int = 8,
             label_to_category: list | None = None, with_masks: bool = False, limit: int | None = None) -> dict:
    """Run `model` over the validation `reader` and return its metrics (primary key first).

    Example:
        >>> evaluate(model, val_reader, "classification", ckpt["preprocessing"], torch.device("cpu"))  # doctest: +SKIP
        {'top1': 0.91, 'top5': 0.99}
    """
    model.eval()
    n = len(reader) if limit is None else min(limit, len(reader))
    if task_type == "classification":
        metric = Accuracy([reader.target(i) for i in range(n)], len(reader.class_names))
    elif task_type == "segmentation":
        metric = MeanIoU([reader.target(i) for i in range(n)], len(reader.class_names), getattr(reader, "ignore_index", 255))
    elif "voc_AP50" in getattr(reader, "extra_metrics", ()):  # Pascal VOC: its own AP50 beside COCO's
        metric = VocCocoAP(reader.coco_gt, [reader.target(i) for i in range(n)], with_masks, reader.eleven_point)
    else:
        metric = CocoAP(reader.coco_gt, [reader.target(i) for i in range(n)], with_masks=with_masks)
    size = tuple(pre["input_size"]) if task_type != "detection" else None
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        images = [reader.load_image(i) for i in idx]
        if task_type == "detection":
            outputs = model([to_tensor(im).to(device) for im in images])
            for i, out in zip(idx, outputs):
                metric.update(i, _detections(out, label_to_category, with_masks))
            continue
        x = _normalise(torch.stack([to_tensor(im, size) for im in images]).to(device), pre["mean"], pre["std"])
        logits = model(x)
        for k, i in enumerate(idx):
            if task_type == "classification":
                metric.update(i, logits[k].float().cpu().numpy())
            else:
                full = F.interpolate(logits[k:k + 1], size=images[k].shape[:2], mode="bilinear", align_corners=False)
                metric.update(i, full[0].argmax(0).cpu().numpy())
    return {k: (float(v) if v is not None else None) for k, v in metric.compute().items()}


def _detections(out: dict, label_to_category: list, with_masks: bool) -> Detections:
    labels = out["labels"].cpu().numpy().astype(np.int64)
    masks = (out["masks"][:, 0] > 0.5).cpu().numpy() if with_masks and "masks" in out else None
    return Detections(boxes=out["boxes"].cpu().numpy().astype(np.float32), scores=out["scores"].cpu().numpy().astype(np.float32),
                      labels=labels, category_ids=np.array([label_to_category[k] for k in labels], np.int64), masks=masks)
