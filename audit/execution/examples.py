"""Example images for the report: a few images, clean and corrupted, with the model's predictions.

Thumbnails (longest side 256) go to OUT/examples/; predictions are scaled to thumbnail pixels and
written as the results schema's `annotation` objects (boxes, label-map overlays, top classes).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from audit.io.images import write_image
from audit.execution.cells import PrepareContext, cell_input
from audit.io.safety import atomic_write
from audit.tasks.adapter import TaskAdapter
from audit.tasks.types import Detections

THUMB = 256
# a fixed, distinguishable palette for label-map overlays (class k -> colour k mod 20)
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
                    [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
                    [0, 0, 128], [128, 128, 128]], np.uint8)


def pick_cells(corruptions: list[str], severities: list[int], count: int = 3) -> list[tuple[str, int]]:
    """Clean plus up to `count` corruptions spread over the list, at low / middle / high severity."""
    if not corruptions:
        return [("clean", 0)]
    chosen = [corruptions[int(i)] for i in np.linspace(0, len(corruptions) - 1, min(count, len(corruptions)))]
    sev = sorted({severities[0], severities[len(severities) // 2], severities[-1]})
    return [("clean", 0)] + [(c, s) for c in dict.fromkeys(chosen) for s in sev]


def write_examples(out: Path, context: PrepareContext, adapter: TaskAdapter, cells: list[tuple[str, int]],
                   n_images: int, seed: int) -> list[dict]:
    """Run the model on a few images in `cells`, write thumbnails, return schema `examples` entries."""
    ds = context.dataset
    picks = sorted(np.random.default_rng(seed).choice(len(ds), size=min(n_images, len(ds)), replace=False).tolist())
    folder = out / "examples"
    names = dict(zip(getattr(ds, "category_ids", []), ds.class_names))
    entries = []
    for index in picks:
        gt = _ground_truth(ds, index)
        for corruption, severity in cells:
            image, x, meta = cell_input(context, index, corruption, severity)
            pred = adapter.infer([x], [meta])[0]
            scale = THUMB / max(image.shape[:2])
            th, tw = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
            stem = f"{index:05d}-{corruption}-s{severity}"
            write_image(folder / f"{stem}.jpg", cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA), quality=85)
            entry = {"image_id": ds.image_id(index), "corruption": corruption, "severity": severity,
                     "image": f"examples/{stem}.jpg", "width": tw, "height": th,
                     "prediction": _annotation(pred, ds.class_names, scale, (th, tw), folder, stem, names),
                     "ground_truth": _annotation(gt, ds.class_names, scale, (th, tw), folder, stem + "-gt", names, min_score=0.0)
                     if gt is not None else None}
            entries.append(entry)
    return entries


def _ground_truth(ds, index: int):
    if ds.task_type == "classification":
        return {"label": ds.class_names[ds.target(index)]}
    if ds.task_type == "segmentation":
        return ds.target(index)
    image_id = ds.target(index)
    anns = [a for a in ds.coco_gt["annotations"] if a["image_id"] == image_id]
    boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32)
    cats = np.array([a["category_id"] for a in anns], np.int64)
    return Detections(boxes.reshape(-1, 4), np.ones(len(anns), np.float32), cats, cats)


def _annotation(pred, class_names: list[str], scale: float, size: tuple[int, int], folder: Path, stem: str,
                category_names: dict[int, str], min_score: float = 0.3) -> dict:
    """What the report draws: a label, up to 20 boxes scoring at least `min_score` (0 for ground truth), a label-map overlay or top-5 classes."""
    if isinstance(pred, dict):
        return {"type": "label", "label": pred["label"]}
    if isinstance(pred, Detections):
        keep = np.argsort(-pred.scores)[:20]
        keep = keep[pred.scores[keep] >= min_score]
        return {"type": "boxes", "boxes": [[round(float(v) * scale, 1) for v in b] for b in pred.boxes[keep]],
                "labels": [category_names.get(int(c), str(int(c))) for c in pred.category_ids[keep]],
                "scores": [round(float(s), 3) for s in pred.scores[keep]]}
    if pred.ndim == 2:  # label map -> RGBA overlay of the thumbnail's size
        small = cv2.resize(pred.astype(np.int32), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        rgba = np.zeros((*size, 4), np.uint8)
        valid = (small >= 0) & (small < 255)
        rgba[valid, :3] = PALETTE[small[valid] % len(PALETTE)]
        rgba[valid, 3] = 140
        from PIL import Image

        atomic_write(folder / f"{stem}.png", lambda fh: Image.fromarray(rgba, "RGBA").save(fh, format="PNG"), fsync=False)
        return {"type": "label_map", "overlay": f"examples/{stem}.png"}
    scores = np.asarray(pred, np.float64)
    probs = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    top = np.argsort(-probs)[:5]
    return {"type": "classes", "top": [{"label": class_names[i] if i < len(class_names) else str(i), "score": round(float(probs[i]), 4)} for i in top]}
