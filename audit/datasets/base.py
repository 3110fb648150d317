"""The `Dataset` base class: indexed images with targets, seeded subsets, and bad-file skipping.

Readers of the real formats subclass it and fill `_items` (one record per image) in `__init__`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audit.errors import DatasetError
from audit.io.images import image_ok, read_image


class Dataset:
    """Images with targets. Subclasses set format, task_type, class_names and `_items`.

    Each item is a dict with at least `id` (the image path relative to the image folder: it seeds
    the corruptions) and `path`; `target(i)` reads what the task needs.
    """

    format: str = ""
    task_type: str = ""
    max_pixels: int | None = None  # images claiming more pixels are refused (None: imageio's default)
    note: str = ""  # how the metrics read this format (YOLO, VOC: COCO AP on converted ground truth)
    chosen: str | None = None  # which of several datasets under --data was audited (a VOCdevkit's newest year)

    def __init__(self, root: str | Path, class_names: Sequence[str]):
        self.root = Path(root)
        self.class_names = list(class_names)
        self.skipped: list[tuple[str, str]] = []
        self._items: list[dict[str, Any]] = []

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self._items)

    def image_id(self, index: int) -> str:
        """The image's path relative to its image folder (stable; seeds the corruptions)."""
        return self._items[index]["id"]

    def load_image(self, index: int) -> np.ndarray:
        """uint8 HxWx3 RGB pixels of image `index`; DatasetError naming the file if unreadable."""
        return read_image(self._items[index]["path"], self.max_pixels)

    def target(self, index: int) -> Any:
        raise NotImplementedError

    def prerendered(self) -> set[tuple[str, int]]:
        """Cells (corruption, severity) this dataset ships pre-corrupted (CIFAR-10-C); usually none."""
        return set()

    def load_corrupted(self, index: int, corruption: str, severity: int) -> np.ndarray:
        raise DatasetError(f"{self.format} data ships no pre-rendered {corruption} severity {severity}")

    def select(self, indices: Sequence[int]) -> "Dataset":
        """A view on the images at `indices` (in that order)."""
        view = copy.copy(self)
        view._items = [self._items[i] for i in indices]
        return view

    def subset(self, limit: int | None, seed: int) -> "Dataset":
        """A seeded subset of `limit` images (sorted by position, stable across runs), or self."""
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise DatasetError(f"--limit must be at least 1, got {limit}")
        chosen = np.sort(np.random.default_rng(seed).choice(len(self), size=limit, replace=False))
        return self.select(chosen.tolist())

    def drop_bad_images(self) -> None:
        """Check every image's header; drop unreadable or missing ones into `skipped` (--skip-bad)."""
        good = []
        for item in self._items:
            reason = image_ok(item["path"], self.max_pixels)
            if reason is None:
                good.append(item)
            else:
                self.skipped.append((item["id"], reason))
        self._items = good

    def check_not_empty(self) -> None:
        if not self._items:
            hint = f" ({len(self.skipped)} skipped as bad)" if self.skipped else ""
            raise DatasetError(f"the {self.format} dataset at {self.root} has no images{hint}; check --data")

    def describe(self) -> dict[str, Any]:
        """The results document's `dataset` section (without limit / seed, which the runner adds)."""
        return {
            "path": str(self.root),
            "format": self.format,
            "num_images": len(self),
            "num_skipped": len(self.skipped),
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped[:100]],
            **({"note": self.note} if self.note else {}),
            **({"chosen": self.chosen} if self.chosen else {}),
        }
