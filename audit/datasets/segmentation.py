"""Semantic segmentation datasets: the ADE20K layout and generic image / mask folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from audit.datasets.base import Dataset
from audit.errors import DatasetError
from audit.io.images import IMAGE_SUFFIXES, open_image
from audit.io.safety import check_inside

# Decoded label maps kept across cells: an audit reads every label map once per (corruption,
# severity) cell, 76 times for 15 x 5 + clean. ADE20K's 2,000 validation maps are ~0.7 GB as uint8.
LABEL_CACHE_BYTES = 1 << 30


class _LabelCache:
    """Mask path -> decoded label map, up to `LABEL_CACHE_BYTES`. Shared by a dataset's views
    (`select` copies shallowly); pickles empty, so worker processes are not sent the maps."""

    def __init__(self):
        self.maps: dict[str, np.ndarray] = {}
        self.nbytes = 0

    def __reduce__(self):
        return (_LabelCache, ())

    def get(self, key: str) -> np.ndarray | None:
        return self.maps.get(key)

    def put(self, key: str, labels: np.ndarray) -> None:
        if self.nbytes + labels.nbytes <= LABEL_CACHE_BYTES:
            self.maps[key] = labels
            self.nbytes += labels.nbytes


class SegmentationFolder(Dataset):
    """Images and same-stem PNG label maps. With `reduce_zero_label` (ADE20K), label 0 ("other")
    becomes ignore_index and every other label k becomes k - 1.
    """

    format = "segfolder"
    task_type = "segmentation"

    def __init__(self, root, images: Path, masks: Path, class_names, ignore_index: int = 255, reduce_zero_label: bool = False):
        super().__init__(root, class_names)
        self.ignore_index = ignore_index
        self.reduce_zero_label = reduce_zero_label
        self._labels = _LabelCache()
        for folder, what in ((images, "image"), (masks, "mask")):
            if not folder.is_dir():
                raise DatasetError(f"{what} folder not found: {folder}")
        mask_by_stem = {p.stem: p for p in masks.rglob("*.png")}
        for img in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            rel = img.relative_to(images).as_posix()
            if img.stem not in mask_by_stem:
                raise DatasetError(f"no label map for {rel} in {masks} (expected {img.stem}.png)")
            check_inside(images, img, "image", rel)
            check_inside(masks, mask_by_stem[img.stem], "label map", mask_by_stem[img.stem].relative_to(masks).as_posix())
            self._items.append({"id": rel, "path": img, "mask": mask_by_stem[img.stem]})

    def target(self, index: int) -> np.ndarray:
        """The validated label map of image `index` (read-only; uint8 when labels and ignore_index fit)."""
        item = self._items[index]
        key = str(item["mask"])
        labels = self._labels.get(key)
        if labels is None:
            labels = self._read_labels(item["mask"])
            self._labels.put(key, labels)
        return labels

    def _read_labels(self, path: Path) -> np.ndarray:
        try:
            with open_image(path, self.max_pixels, "label map") as m:
                labels = np.asarray(m).astype(np.int64)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise OSError, ValueError, SyntaxError... on bad files
            raise DatasetError(f"cannot read label map {path} ({type(exc).__name__}: {str(exc)[:100]})") from None
        if labels.ndim != 2:
            raise DatasetError(f"label map {path} has shape {labels.shape}; expected a single-channel PNG")
        if self.reduce_zero_label:
            labels = np.where(labels == 0, self.ignore_index, labels - 1)
            labels[labels == self.ignore_index - 1] = self.ignore_index
        bad = (labels != self.ignore_index) & ((labels < 0) | (labels >= self.num_classes))
        if bad.any():
            raise DatasetError(f"label map {path} has label {int(labels[bad][0])} outside 0..{self.num_classes - 1}; check --num-classes")
        compact = 0 <= self.ignore_index <= 255 and self.num_classes <= 256
        labels = labels.astype(np.uint8) if compact else labels.astype(np.int32)
        labels.flags.writeable = False
        return labels


def open_ade20k(root: Path, split: str = "validation", ignore_index: int = 255) -> SegmentationFolder:
    """ADEChallengeData2016: images/<split>/*.jpg, annotations/<split>/*.png, label 0 ignored."""
    names = _ade_names(root)
    ds = SegmentationFolder(root, root / "images" / split, root / "annotations" / split, names,
                            ignore_index=ignore_index, reduce_zero_label=True)
    ds.format = "ade20k"
    return ds


def _ade_names(root: Path) -> list[str]:
    info = root / "objectInfo150.csv"
    if info.is_file():
        try:
            with info.open(newline="", encoding="utf-8") as fh:
                names = [str(row.get("Name") or "").split(";")[0] for row in csv.DictReader(fh)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"cannot read {info} ({type(exc).__name__}: {str(exc)[:100]}); fix or remove it") from None
        if not names or not all(names):
            raise DatasetError(f"{info} has no class names, or empty ones, in its 'Name' column; fix or remove it")
        return names
    return [f"class_{k}" for k in range(150)]


def open_segmentation_folder(root: Path, num_classes: int | None, ignore_index: int = 255,
                             reduce_zero_label: bool = False) -> SegmentationFolder:
    """Generic layout root/images + root/masks (same stems, PNG label maps)."""
    if num_classes is None:
        raise DatasetError("--task segmentation needs --num-classes (the model's class count)")
    return SegmentationFolder(root, root / "images", root / "masks", [f"class_{k}" for k in range(num_classes)],
                              ignore_index=ignore_index, reduce_zero_label=reduce_zero_label)
