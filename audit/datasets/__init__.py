"""Torch-free readers of the real dataset formats, and `open_dataset` to pick one by task and folder.

Example:
    >>> ds = open_dataset("coco", "data/coco")  # doctest: +SKIP
    >>> ds.image_id(0), ds.load_image(0).shape  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from audit.datasets.base import Dataset
from audit.datasets.classification import Cifar10, ImageFolder
from audit.datasets.cityscapes import open_cityscapes
from audit.datasets.coco import CocoDataset
from audit.datasets.recognize import FORMATS, recognise, unrecognised
from audit.datasets.segmentation import open_ade20k, open_segmentation_folder
from audit.datasets.voc import open_voc
from audit.datasets.yolo import open_yolo
from audit.errors import ConfigError, DatasetError
from audit.registry import unknown_name

TASKS = {
    "coco": "detection", "detection": "detection",
    "ade20k": "segmentation", "segmentation": "segmentation",
    "cifar10": "classification", "classification": "classification",
}


def task_type(task: str) -> str:
    """The task type (classification, detection, segmentation) of a --task name."""
    try:
        return TASKS[task]
    except KeyError:
        raise ConfigError(unknown_name("task", task, TASKS)) from None


def open_dataset(task: str, path: str | Path, *, annotations=None, images=None, num_classes=None, ignore_index=255,
                 reduce_zero_label=None, cifar_c=None, skip_bad=False, max_image_pixels=None, format=None) -> Dataset:
    """Open the dataset for `task` at `path`, its layout recognised from the folder (or `format`).

    Images (and label maps) claiming more than `max_image_pixels` are refused before decoding.
    """
    ttype = task_type(task)
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"data path not found: {root}")
    fmt = "coco" if annotations or images else recognise(ttype, root, task, format)
    if fmt == "coco":
        ds = _open_coco(root, annotations, images, skip_bad, max_image_pixels)
    elif fmt == "yolo":
        ds = open_yolo(root, skip_bad=skip_bad, max_pixels=max_image_pixels)
    elif fmt == "voc":
        ds = open_voc(root)
    elif fmt == "cityscapes":
        ds = open_cityscapes(root)
    elif fmt == "ade20k":
        ds = open_ade20k(root, ignore_index=ignore_index)
    elif fmt == "segfolder":
        ds = open_segmentation_folder(root, num_classes, ignore_index, bool(reduce_zero_label))
    elif fmt == "cifar10":
        ds = Cifar10(root, Path(cifar_c) if cifar_c else None)
    else:
        ds = ImageFolder(root)
    ds.max_pixels = max_image_pixels
    if fmt in ("coco", "voc") and not skip_bad:
        ds.check_files()
    if skip_bad and ds.format != "cifar10":
        ds.drop_bad_images()
    ds.check_not_empty()
    return ds


def _open_coco(root: Path, annotations, images, skip_bad: bool, max_image_pixels) -> CocoDataset:
    if not annotations and not (root / "annotations").is_dir():
        raise unrecognised("detection", root)
    ann = Path(annotations) if annotations else root / "annotations" / "instances_val2017.json"
    img = Path(images) if images else root / "val2017"
    return CocoDataset(ann, img, root)


__all__ = ["Dataset", "FORMATS", "TASKS", "open_dataset", "task_type"]
