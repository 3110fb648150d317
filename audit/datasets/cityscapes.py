"""Cityscapes semantic segmentation: `leftImg8bit/<split>/<city>/*_leftImg8bit.png` with
`gtFine/<split>/<city>/*_gtFine_labelIds.png`, the 34 label ids mapped to the 19 train ids.

The table is the official one (cityscapesScripts `helpers/labels.py`): ids whose `trainId` is 255
(void, ego vehicle, rectification border, parking, rail track, guard rail, bridge, tunnel,
polegroup, caravan, trailer, license plate...) are ignored; mIoU is over the 19 train classes.
Label maps stay uint8 (2 MB per 1024 x 2048 map) and are cached like any segmentation folder's.

Example:
    >>> ds = open_cityscapes("data/cityscapes")  # doctest: +SKIP
    >>> ds.class_names[:3]  # doctest: +SKIP
    ['road', 'sidewalk', 'building']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.datasets.base import Dataset
from audit.datasets.segmentation import SegmentationFolder, _LabelCache
from audit.errors import DatasetError
from audit.io.images import open_image
from audit.io.safety import check_inside

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle")
# labelId -> trainId for the ids that have one; every other id (0-6, 9, 10, 14-16, 18, 29, 30, -1) is 255
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
             26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
IGNORE = 255


def label_lut() -> np.ndarray:
    """A 256-entry uint8 table labelId -> trainId (255 for ignored ids and values past 33)."""
    lut = np.full(256, IGNORE, np.uint8)
    for label_id, train_id in TRAIN_IDS.items():
        lut[label_id] = train_id
    return lut


def is_cityscapes(path: Path) -> bool:
    return (path / "gtFine").is_dir() and (path / "leftImg8bit").is_dir()


class Cityscapes(SegmentationFolder):
    """Cityscapes `split` (val by default); `target(i)` is the train-id map (uint8, 255 ignored)."""

    format = "cityscapes"

    def __init__(self, root: str | Path, split: str = "val"):
        root = Path(root)
        images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
        for folder in (images, labels):
            if not folder.is_dir():
                raise DatasetError(f"Cityscapes folder not found: {folder}; --data must hold leftImg8bit/{split} and gtFine/{split}")
        # SegmentationFolder pairs by stem; Cityscapes pairs <x>_leftImg8bit.png with <x>_gtFine_labelIds.png,
        # so its folder scan is skipped and the pairs are listed here (Dataset.__init__ directly)
        Dataset.__init__(self, root, CITYSCAPES_CLASSES)
        self.ignore_index, self.reduce_zero_label = IGNORE, False
        self._labels = _LabelCache()
        self._lut = label_lut()
        for img in sorted(images.rglob("*_leftImg8bit.png")):
            rel = img.relative_to(images).as_posix()
            mask = labels / rel.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
            if not mask.is_file():
                raise DatasetError(f"no label map for {rel}: expected {mask.relative_to(root)}")
            check_inside(images, img, "image", rel)
            check_inside(labels, mask, "label map", mask.relative_to(labels).as_posix())
            self._items.append({"id": rel, "path": img, "mask": mask})

    def _read_labels(self, path: Path) -> np.ndarray:
        try:
            with open_image(path, self.max_pixels, "label map") as m:
                if m.mode not in ("L", "P", "I", "I;16"):
                    raise DatasetError(f"label map {path} has mode {m.mode}; expected a single-channel labelIds PNG")
                ids = np.asarray(m)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on bad files
            raise DatasetError(f"cannot read label map {path} ({type(exc).__name__}: {str(exc)[:100]})") from None
        labels = self._lut[np.clip(ids, 0, 255).astype(np.uint8)] if ids.dtype != np.uint8 else self._lut[ids]
        labels.flags.writeable = False
        return labels


def open_cityscapes(root: str | Path, split: str = "val") -> Cityscapes:
    """Cityscapes at `root` (the folder holding leftImg8bit/ and gtFine/)."""
    return Cityscapes(root, split)
