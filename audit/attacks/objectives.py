"""What an attack optimises and how its result is judged, per task: the one place where classification
and semantic segmentation differ for the attack algorithms (which take an objective, not a task).

- classification: labels [N]; target output [N, C] logits. Loss cross-entropy; an image is broken
  once its top-1 is wrong (PGD stops attacking it); Square minimises the margin z_y - max_{i != y} z_i.
- segmentation: labels [N, H, W] at the network input geometry, -1 for pixels left out of the loss
  (the dataset's ignore index, classes the model lacks, padding); target output [N, C, H, W] logits
  (or an [N, H, W] label map from an argmax-only engine, query access only). Loss: the mean per-pixel
  cross-entropy over an image's valid pixels; no image is ever "broken", so PGD runs every step on
  every image and keeps the final iterate (across restarts the one with the fewest correct pixels);
  Square minimises the fraction of correctly labelled valid pixels. `SEGPGD` weighs the cross-entropy
  as SegPGD does (Gu et al. 2022): (1 - l) on the pixels still right and l on those already wrong,
  l = t / (2T) at step t = 0..T-1, so the attack first spends itself on the pixels it has not yet flipped.

`judge` is what `run_attack` reports per image in `AttackOutcome.correct`: top-1 correctness (bool)
for classification, the fraction of correctly labelled valid pixels (float) for segmentation.
NumPy only at import: the torch parts import torch when called.

Example:
    >>> y = np.array([[[0, 1], [-1, 1]]])
    >>> out = np.zeros((1, 2, 2, 2), np.float32); out[0, 1] = 1  # predicts class 1 everywhere
    >>> SEGMENTATION.judge(out, y).tolist(), SEGMENTATION.search_loss(out, y).tolist()
    ([0.6666666666666666], [0.6666666666666666])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import ConfigError


def margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z_y - max_{i != y} z_i per row: <= 0 means misclassified."""
    z = np.asarray(logits, np.float64).copy()
    rows = np.arange(len(y))
    z_y = z[rows, y].copy()
    z[rows, y] = -np.inf
    return z_y - z.max(axis=1)


@dataclass(frozen=True)
class Objective:
    """The task-specific parts of an attack (see the module docstring)."""

    task: str
    weighting: str = "mean"  # segmentation: "mean" (every valid pixel alike) or "segpgd"

    def check(self, out: np.ndarray, y: np.ndarray) -> None:
        """One-line `ConfigError` if the labels do not fit the target's output."""
        classes = out.shape[1] if self.task == "classification" or out.ndim == 4 else None
        valid = y[y >= 0] if self.task == "segmentation" else y
        if self.task == "segmentation" and out.shape[-2:] != y.shape[-2:]:
            raise ConfigError(f"segmentation labels {list(y.shape[1:])} do not match the target's output {list(out.shape[-2:])}")
        if valid.size and (valid.min() < 0 or (classes is not None and valid.max() >= classes)):
            raise ConfigError(f"attack labels must be class indices in [0, {classes - 1 if classes else '?'}] for this "
                              f"{classes}-class model, got {int(valid.min())}..{int(valid.max())}")

    def attackable(self, y: np.ndarray, judged: np.ndarray) -> np.ndarray:
        """Which images of a batch are attacked: classification the correct ones; segmentation every
        image with at least one valid pixel (no early stop, so a partly wrong image is attacked too)."""
        if self.task == "classification":
            return np.asarray(judged, bool)
        return (y.reshape(len(y), -1) >= 0).any(axis=1)

    def judge(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per image: top-1 correct (bool), or the fraction of correct valid pixels (float, nan for none)."""
        if self.task == "classification":
            return np.asarray(out).argmax(1) == y
        correct, valid = _pixel_counts(out, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return correct / np.where(valid > 0, valid, np.nan)

    def search_loss(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Square's per-image loss, minimised; an image with loss <= 0 is not queried further."""
        if self.task == "classification":
            return margins(out, y)
        correct, valid = _pixel_counts(out, y)
        return correct / np.maximum(valid, 1)

    # torch parts (white-box attacks)

    def loss(self, logits, y, progress: float = 0.0):
        """Per-image loss, maximised: cross-entropy, or its mean over each image's valid pixels (SegPGD:
        weighted by `progress` = t / T, the fraction of the steps done)."""
        import torch

        if self.task == "classification":
            return torch.nn.functional.cross_entropy(logits, y, reduction="none")
        per_pixel = torch.nn.functional.cross_entropy(logits, y.clamp_min(0), reduction="none")
        valid = (y >= 0).to(per_pixel.dtype)
        weight = valid
        if self.weighting == "segpgd":
            lam = progress / 2
            wrong = (logits.argmax(1) != y).to(per_pixel.dtype)
            weight = valid * ((1 - lam) * (1 - wrong) + lam * wrong)
        return (per_pixel * weight).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)

    def broken(self, logits, y):
        """Per image, whether an iterate already succeeded (PGD then keeps it and stops): never for segmentation."""
        import torch

        if self.task == "classification":
            return logits.argmax(1) != y
        return torch.zeros(len(y), dtype=torch.bool, device=y.device)

    def score(self, logits, y):
        """Per image, what the attacker lowers (top-1 hit 0/1, or the fraction of correct valid pixels)."""
        if self.task == "classification":
            return (logits.argmax(1) == y).float()
        valid = y >= 0
        correct = ((logits.argmax(1) == y) & valid).flatten(1).sum(1).float()
        return correct / valid.flatten(1).sum(1).clamp_min(1).float()


CLASSIFICATION = Objective("classification")
SEGMENTATION = Objective("segmentation")
SEGPGD = Objective("segmentation", weighting="segpgd")


def objective_for(y: np.ndarray) -> Objective:
    """The objective for labels `y`: [N] class indices (classification) or [N, H, W] label maps (segmentation)."""
    return SEGMENTATION if np.ndim(y) == 3 else CLASSIFICATION


def _pixel_counts(out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correct, valid) pixel counts per image; `out` is [N, C, H, W] logits or an [N, H, W] label map."""
    out = np.asarray(out)
    pred = out.argmax(1) if out.ndim == 4 else np.rint(out).astype(np.int64)
    valid = y >= 0
    correct = ((pred == y) & valid).reshape(len(y), -1).sum(1)
    return correct.astype(np.float64), valid.reshape(len(y), -1).sum(1).astype(np.float64)
