"""Does the ONNX export agree with PyTorch? Task-aware comparisons with explicit tolerances.

- classifiers: max |logit difference| and top-1 agreement;
- segmenters: agreement of the argmax label maps;
- detectors: boxes matched first (an optimal assignment on IoU and score, same class, IoU >= 0.5:
  near-tied scores reorder detections, so a raw tensor difference misleads), then the box and score
  differences among matches (and the mean mask probability difference for Mask R-CNN), and the
  share of detections left unmatched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audit.errors import ExportError, RobustAuditError
from audit.spec.model import ModelSpec

# tolerance per precision: FP32 must agree closely; FP16 / INT8 are reported, and fail only when broken
# (INT8 detections are judged on average, boxes by their IoU with PyTorch's and scores by the mean
# difference: under INT8 rounding a weak detection may move a few pixels or change its score by a lot
# and still be the same detector; the audit then measures what that costs in AP)
TOLERANCES = {
    "fp32": {"logit_abs": 1e-3, "top1_agree": 1.0, "pixel_agree": 0.999, "box_abs": 0.5, "iou_mean": 0.99,
             "score_abs": 1e-3, "score_mean": 1e-3, "unmatched": 0.02, "mask_abs": 1e-2},
    "fp16": {"logit_abs": 5e-2, "top1_agree": 0.98, "pixel_agree": 0.99, "box_abs": 2.0, "iou_mean": 0.95,
             "score_abs": 2e-2, "score_mean": 2e-2, "unmatched": 0.1, "mask_abs": 5e-2},
    "int8": {"logit_abs": float("inf"), "top1_agree": 0.8, "pixel_agree": 0.9, "box_abs": float("inf"), "iou_mean": 0.75,
             "score_abs": float("inf"), "score_mean": 0.1, "unmatched": 0.3, "mask_abs": 0.2},
}


@dataclass
class Parity:
    """Figures per input size, and whether every one is within tolerance."""

    precision: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a detector that detected nothing: the box check compared nothing
    inputs: str = "seeded noise"  # what the check ran on

    @property
    def ok(self) -> bool:
        return not self.failures


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x1, y1 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def match_detections(ref: dict, ours: dict, iou: float = 0.5) -> dict[str, float]:
    """Pair ours with ref (same label, IoU >= `iou`) by an optimal assignment that minimises
    (1 - IoU) + |score difference|; differences among the pairs.

    Matching by IoU alone pairs duplicates wrongly: two overlapping boxes on one object, scored .74 and
    .2, may swap partners and show a score difference that no detection really has.
    """
    from scipy.optimize import linear_sum_assignment

    rb, ob = ref["boxes"].reshape(-1, 4), ours["boxes"].reshape(-1, 4)
    pairs: list[tuple[int, int]] = []
    ious = np.zeros((len(rb), len(ob)))
    if len(rb) and len(ob):
        ious = _iou(rb, ob) * (ref["labels"][:, None] == ours["labels"][None, :])
        valid = ious >= iou
        cost = np.where(valid, (1 - ious) + np.abs(ref["scores"][:, None] - ours["scores"][None, :]), 1e6)
        pairs = [(r, o) for r, o in zip(*linear_sum_assignment(cost)) if valid[r, o]]
    n = max(len(rb), len(ob), 1)
    box = max((float(np.abs(rb[r] - ob[o]).max()) for r, o in pairs), default=0.0)
    score_diffs = [abs(float(ref["scores"][r] - ours["scores"][o])) for r, o in pairs]
    iou_mean = float(np.mean([ious[r, o] for r, o in pairs])) if pairs else 1.0
    figures = {"matched": len(pairs), "unmatched_share": (len(rb) + len(ob) - 2 * len(pairs)) / (2 * n),
               "box_abs": box, "iou_mean": iou_mean,
               "score_abs": max(score_diffs, default=0.0), "score_mean": float(np.mean(score_diffs)) if pairs else 0.0}
    if ref.get("masks") is not None and ours.get("masks") is not None:  # mean |probability difference| per mask
        figures["mask_abs"] = max((float(np.abs(ref["masks"][r].astype(np.float32) - ours["masks"][o]).mean())
                                   for r, o in pairs), default=0.0)
    return figures


def load_images(folder: str | Path | None, count: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A seeded sample of `count` images (HWC uint8 RGB) of `folder`: any dataset root robustaudit reads,
    or a folder of images; [] when no folder is given."""
    if folder is None:
        return []
    from audit.datasets.sample import open_images

    return list(open_images(folder, n=count, seed=seed))


def dataset_images(task: str, folder: str | Path, count: int = 2) -> list[np.ndarray]:
    """The first `count` validation images of the dataset a checkpoint was fine-tuned on ([] when that
    folder is gone or unreadable: the check then runs on noise and says so)."""
    from finetune.data import open_split

    try:
        ds = open_split(task, folder, train=False)
        return [ds.load_image(i) for i in range(min(count, len(ds)))]
    except (RobustAuditError, OSError):  # a moved or partial dataset costs the default inputs, never the export
        return []


def _input(spec: ModelSpec, size: tuple[int, int], images: list[np.ndarray], index: int):
    """The model input at `size`: a task image resized (normalised unless the model normalises), else noise."""
    import torch

    from exporters.onnx_export import example_input

    if not images:
        return example_input(spec, size)[0]
    import cv2

    image = cv2.resize(images[index % len(images)], (size[1], size[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    if spec.task != "detection":
        image = (image - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return [x] if spec.task == "detection" else x[None]


def compare(model, onnx_path, spec: ModelSpec, sizes: list[tuple[int, int]], precision: str = "fp32",
            images: list[np.ndarray] | None = None) -> Parity:
    """Run PyTorch and ONNX Runtime on the same inputs at each size (task `images` when given, else
    seeded noise); collect figures."""
    import onnxruntime as ort
    import torch

    tol = TOLERANCES[precision]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    feed_type = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    result = Parity(precision)
    for i, size in enumerate(sizes):
        x = _input(spec, size, images or [], i)
        with torch.no_grad():
            ref = model(x)
        arr = (x[0] if spec.task == "detection" else x).numpy().astype(feed_type)
        got = session.run(None, {feed_name: arr})
        key = f"{size[0]}x{size[1]}"
        if spec.task == "classification":
            r, o = ref.numpy(), got[0].astype(np.float32)
            fig = {"logit_abs": float(np.abs(r - o).max()), "top1_agree": float((r.argmax(1) == o.argmax(1)).mean())}
            checks = [("logit_abs", fig["logit_abs"] <= tol["logit_abs"]), ("top1_agree", fig["top1_agree"] >= tol["top1_agree"])]
        elif spec.task == "segmentation":
            r, o = ref.numpy(), got[0].astype(np.float32)
            if r.shape != o.shape:
                raise ExportError(f"parity at {key}: ONNX output {list(o.shape)} vs PyTorch {list(r.shape)}")
            fig = {"pixel_agree": float((r.argmax(1) == o.argmax(1)).mean()), "logit_abs": float(np.abs(r - o).max())}
            checks = [("pixel_agree", fig["pixel_agree"] >= tol["pixel_agree"])]
        else:
            r = {k: v.numpy() for k, v in ref[0].items()}
            o = dict(zip([s.name for s in session.get_outputs()], got))
            fig = match_detections(r, o)
            checks = [("box_abs", fig["box_abs"] <= tol["box_abs"]), ("iou_mean", fig["iou_mean"] >= tol["iou_mean"]),
                      ("score_abs", fig["score_abs"] <= tol["score_abs"]), ("score_mean", fig["score_mean"] <= tol["score_mean"]),
                      ("unmatched_share", fig["unmatched_share"] <= tol["unmatched"]),
                      ("mask_abs", fig.get("mask_abs", 0.0) <= tol["mask_abs"])]
        result.figures[key] = fig
        result.failures += [f"{name} {fig[name]:.4g} at {key} (tolerance {tol.get(name, tol.get('unmatched'))})"
                            for name, ok in checks if not ok]
    if spec.task == "detection" and not any(f.get("matched") or f.get("unmatched_share") for f in result.figures.values()):
        result.notes.append("neither PyTorch nor ONNX Runtime detected anything on the parity inputs, so boxes were not "
                            "compared; give images of the task (--parity-images DIR) for a real check")
    return result
