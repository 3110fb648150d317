"""Top-1 / top-5 accuracy, streamed per image."""

from __future__ import annotations

import numpy as np


class Accuracy:
    """Top-k accuracy; per-image hit flags are the state, so bootstrap resampling is exact.

    Example:
        >>> m = Accuracy(labels=[1, 0], num_classes=3)
        >>> m.update(0, np.array([0.1, 0.8, 0.1])); m.update(1, np.array([0.2, 0.7, 0.1]))
        >>> m.compute()["top1"]
        0.5
    """

    def __init__(self, labels, num_classes: int):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_classes = num_classes
        self.hit1 = np.zeros(len(self.labels), bool)
        self.hit5 = np.zeros(len(self.labels), bool)
        self.seen = np.zeros(len(self.labels), bool)

    def update(self, index: int, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        label = self.labels[index]
        self.hit1[index] = order[0] == label
        self.hit5[index] = label in order[:5]
        self.seen[index] = True

    def compute_on(self, positions: np.ndarray | None = None) -> dict[str, float | None]:
        pos = np.flatnonzero(self.seen) if positions is None else positions
        if len(pos) == 0:
            return {"top1": None, "top5": None}
        out = {"top1": float(self.hit1[pos].mean())}
        out["top5"] = float(self.hit5[pos].mean()) if self.num_classes >= 5 else None
        return out

    def compute(self) -> dict[str, float | None]:
        return self.compute_on(None)

    def state(self) -> dict[str, np.ndarray]:
        return {"hit1": self.hit1, "hit5": self.hit5, "seen": self.seen}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.hit1, self.hit5, self.seen = (np.asarray(state[k], bool) for k in ("hit1", "hit5", "seen"))
