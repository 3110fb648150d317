"""Torch datasets for fine-tuning over the torch-free readers of `audit.datasets`.

Training splits: CIFAR-10 `data_batch_*` (read here: the audit reader serves the test batch only),
COCO `train2017` + `annotations/instances_train2017.json`, ADE20K `images/training`, a YOLO
data.yaml's `train`, VOC `trainval.txt` (else `train.txt`), Cityscapes `train`. Validation: CIFAR
`test_batch`, COCO `val2017`, ADE20K `validation`, YOLO `val`, VOC `test.txt` / `val.txt`,
Cityscapes `val` (or `--val-split`). Items are clean [0,1]
float tensors; augmentation happens per batch in the training loop with a seeded generator, so a
resumed run draws exactly what an uninterrupted one would, whatever the number of workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audit.datasets import open_dataset
from audit.datasets.classification import read_batch
from audit.datasets.coco import CocoDataset
from audit.datasets.cityscapes import open_cityscapes
from audit.datasets.segmentation import open_ade20k
from audit.datasets.voc import open_voc
from audit.datasets.yolo import open_yolo
from audit.errors import DatasetError


class CifarTrain:
    """The CIFAR-10 training batches `data_batch_*` (python pickle format)."""

    task_type = "classification"

    def __init__(self, root: Path):
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        files = sorted(folder.glob("data_batch_*"))
        if not files:
            raise DatasetError(f"no CIFAR-10 training batches (data_batch_*) in {folder}")
        data, labels = [], []
        for path in files:  # the restricted unpickler: a crafted batch cannot run code
            images, batch_labels = read_batch(path)
            data.append(images)
            labels.extend(int(v) for v in batch_labels)
        self._data, self._labels = np.concatenate(data), labels
        self.class_names = open_dataset("cifar10", root).class_names

    def __len__(self) -> int:
        return len(self._labels)

    def load_image(self, index: int) -> np.ndarray:
        return self._data[index]

    def target(self, index: int) -> int:
        return self._labels[index]


def open_split(task: str, root: str | Path, train: bool, val_split: str | None = None, num_classes: int | None = None,
               format: str | None = None):
    """The training or validation reader of `task` at `root`, its layout recognised as `audit run` does.

    Example:
        >>> ds = open_split("ade20k", "data/ADEChallengeData2016", train=True)  # doctest: +SKIP
    """
    from audit.datasets import task_type
    from audit.datasets.recognize import recognise

    root = Path(root)
    if not root.exists():
        raise DatasetError(f"--data folder not found: {root}")
    fmt = recognise(task_type(task), root, task, format)
    if fmt == "yolo":  # data.yaml's train / val; images/train, images/val without one
        return open_yolo(root, "train" if train else (val_split or "val"))
    if fmt == "voc":  # ImageSets/Main trainval.txt or train.txt; test.txt or val.txt
        return open_voc(root, "train" if train else (val_split or "val"))
    if fmt == "cityscapes":
        return open_cityscapes(root, "train" if train else (val_split or "val"))
    if not root.is_dir():
        raise DatasetError(f"--data must be a folder for {task}, got the file {root}")
    if task == "cifar10" or fmt == "cifar10":
        return CifarTrain(root) if train else open_dataset("cifar10", root)
    if task in ("coco", "detection"):
        split = "train2017" if train else (val_split or "val2017")
        return CocoDataset(root / "annotations" / f"instances_{split}.json", root / split, root)
    if task == "ade20k":
        return open_ade20k(root, "training" if train else (val_split or "validation"))
    split = "train" if train else (val_split or "val")
    if not (root / split).is_dir():
        raise DatasetError(f"{task} fine-tuning expects {root}/train and {root}/{split} in the audit layout")
    return open_dataset(task, root / split, num_classes=num_classes)


def to_tensor(image: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 HxWx3 -> float [3, H, W] on [0, 1], optionally resized (bilinear, antialiased)."""
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)
    return x


class TaskData(torch.utils.data.Dataset):
    """(image, target) pairs for the training loop: class index, label map or torchvision target."""

    def __init__(self, reader, task_type: str, size: tuple[int, int], label_of_category: dict | None = None,
                 with_masks: bool = False):
        self.reader, self.task_type, self.size = reader, task_type, size
        self.label_of_category, self.with_masks = label_of_category, with_masks
        if task_type == "detection":
            self._anns: dict[int, list] = {}
            for ann in reader.coco_gt["annotations"]:
                self._anns.setdefault(ann["image_id"], []).append(ann)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int):
        image = self.reader.load_image(i)
        if self.task_type == "classification":
            return to_tensor(image, self.size), int(self.reader.target(i))
        if self.task_type == "segmentation":
            mask = torch.from_numpy(self.reader.target(i).astype(np.int64))
            mask = F.interpolate(mask[None, None].float(), size=self.size, mode="nearest")[0, 0].long()
            return to_tensor(image, self.size), mask
        return to_tensor(image), self._detection_target(i, image.shape[:2])

    def _detection_target(self, i: int, hw: tuple[int, int]) -> dict:
        anns = [a for a in self._anns.get(self.reader.target(i), []) if not a.get("iscrowd") and a["bbox"][2] > 1 and a["bbox"][3] > 1]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32).reshape(-1, 4)
        target = {"boxes": boxes, "labels": torch.tensor([self.label_of_category[a["category_id"]] for a in anns], dtype=torch.int64)}
        if self.with_masks:
            target["masks"] = torch.from_numpy(np.stack([_ann_mask(a, hw) for a in anns]) if anns else np.zeros((0, *hw), np.uint8))
        return target


def _ann_mask(ann: dict, hw: tuple[int, int]) -> np.ndarray:
    from faster_coco_eval.core import mask as mask_util

    seg = ann.get("segmentation")
    if isinstance(seg, list):
        rle = mask_util.merge(mask_util.frPyObjects(seg, hw[0], hw[1]))
    elif isinstance(seg, dict):
        rle = mask_util.frPyObjects(seg, hw[0], hw[1]) if isinstance(seg.get("counts"), list) else seg
    else:  # no polygon: the box is the best mask there is
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        m = np.zeros(hw, np.uint8)
        m[y:y + h, x:x + w] = 1
        return m
    return mask_util.decode(rle).astype(np.uint8)


def collate(batch):
    """Stack classification / segmentation batches; keep detection images and targets as lists."""
    images, targets = zip(*batch)
    if isinstance(targets[0], dict):
        return list(images), list(targets)
    return torch.stack(images), torch.as_tensor(np.stack(targets)) if not torch.is_tensor(targets[0]) else torch.stack(targets)
