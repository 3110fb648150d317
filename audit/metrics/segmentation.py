"""Semantic segmentation: mIoU accumulated over the whole dataset (mmsegmentation's convention)."""

from __future__ import annotations

import numpy as np

from audit.errors import ModelError


class MeanIoU:
    """Per-image intersection / union / target pixel counts per class; sums over images, then the
    nan-mean over classes (a class absent from both prediction and ground truth is nan).

    Example:
        >>> m = MeanIoU([np.array([[2, 1, 0, 0]])], num_classes=3)
        >>> m.update(0, np.array([[2, 1, 0, 1]]))
        >>> round(m.compute()["mIoU"], 4)
        0.6667
    """

    def __init__(self, targets, num_classes: int, ignore_index: int = 255):
        self.targets = targets  # sequence-like: targets[i] -> int label map
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        n = len(targets)
        self.inter = np.zeros((n, num_classes), np.int64)
        self.union = np.zeros((n, num_classes), np.int64)
        self.area_gt = np.zeros((n, num_classes), np.int64)
        self.seen = np.zeros(n, bool)

    def update(self, index: int, pred: np.ndarray) -> None:
        gt = self.targets[index]
        if pred.shape != gt.shape:
            raise ModelError(f"predicted label map {pred.shape} does not match the ground truth {gt.shape}")
        valid = gt != self.ignore_index
        p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
        k = self.num_classes
        p = np.where((p >= 0) & (p < k), p, k)  # out-of-range predictions count as wrong for every class
        inter = np.bincount(g[p == g], minlength=k)[:k]
        area_p = np.bincount(p, minlength=k + 1)[:k]
        area_g = np.bincount(g, minlength=k)[:k]
        self.inter[index], self.union[index], self.area_gt[index] = inter, area_p + area_g - inter, area_g
        self.seen[index] = True

    def compute_on(self, positions: np.ndarray | None = None) -> dict[str, float | None]:
        pos = np.flatnonzero(self.seen) if positions is None else positions
        inter, union, gt = self.inter[pos].sum(0), self.union[pos].sum(0), self.area_gt[pos].sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
            acc = np.where(gt > 0, inter / np.maximum(gt, 1), np.nan)
        if np.all(np.isnan(iou)):
            return {"mIoU": None, "aAcc": None, "mAcc": None}
        total = gt.sum()
        return {"mIoU": float(np.nanmean(iou)), "aAcc": float(inter.sum() / total) if total else None,
                "mAcc": float(np.nanmean(acc)) if not np.all(np.isnan(acc)) else None}

    def compute(self) -> dict[str, float | None]:
        return self.compute_on(None)

    def state(self) -> dict[str, np.ndarray]:
        return {"inter": self.inter, "union": self.union, "area_gt": self.area_gt, "seen": self.seen}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.inter, self.union, self.area_gt = (np.asarray(state[k], np.int64) for k in ("inter", "union", "area_gt"))
        self.seen = np.asarray(state["seen"], bool)
