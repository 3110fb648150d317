"""Which reader a `--data` path needs: the format recognised from the folder, or given with `--format`.

Detection: a YOLO `data.yaml` (or a root with `images/` and `labels/`), a Pascal VOC
`Annotations/ImageSets/JPEGImages` (or `VOCdevkit/VOC20xx` below), else the COCO layout.
Segmentation: Cityscapes (`gtFine/` and `leftImg8bit/`), ADE20K, generic image / mask folders.
Classification: CIFAR-10 python batches, ImageNet-style folders.

Example:
    >>> recognise("detection", Path("datasets/coco8/coco8.yaml"))  # doctest: +SKIP
    'yolo'
"""

from __future__ import annotations

from pathlib import Path

from audit.datasets.cityscapes import is_cityscapes
from audit.datasets.voc import is_voc_year
from audit.datasets.yolo import find_yaml
from audit.errors import ConfigError, DatasetError
from audit.registry import unknown_name

FORMATS = {"coco": "detection", "yolo": "detection", "voc": "detection", "ade20k": "segmentation",
           "cityscapes": "segmentation", "segfolder": "segmentation", "cifar10": "classification",
           "imagefolder": "classification"}
LOOKED_FOR = {
    "detection": "a YOLO data.yaml (or images/ + labels/), a Pascal VOC Annotations/ + ImageSets/ + JPEGImages/ "
                 "(or VOCdevkit/VOC20xx), a COCO annotations/instances_val2017.json + val2017/",
    "segmentation": "Cityscapes gtFine/ + leftImg8bit/, ADE20K images/validation + annotations/validation, "
                    "images/ + masks/ (with --num-classes)",
    "classification": "CIFAR-10 python batches (cifar-10-batches-py/ or test_batch), class folders of images",
}


def is_yolo(path: Path) -> bool:
    if path.is_file():
        return find_yaml(path) is not None
    return path.is_dir() and (find_yaml(path) is not None or ((path / "images").is_dir() and (path / "labels").is_dir()))


def is_voc(path: Path) -> bool:
    return path.is_dir() and (is_voc_year(path) or any(is_voc_year(p) for pattern in ("VOC*", "VOCdevkit/VOC*")
                                                       for p in path.glob(pattern)))


def is_cifar(path: Path) -> bool:
    return path.is_dir() and ((path / "cifar-10-batches-py").is_dir() or (path / "test_batch").is_file()
                              or any(path.glob("data_batch_*")))


def recognise(task_type: str, path: Path, task: str = "", format: str | None = None) -> str:
    """The format name for `path` under `task_type`; `format` (not "auto") wins when it fits the task."""
    if format and format != "auto":
        if format not in FORMATS:
            raise ConfigError(unknown_name("--format", format, ["auto", *FORMATS]))
        if FORMATS[format] != task_type:
            raise ConfigError(f"--format {format} holds {FORMATS[format]} data, but --task {task} is {task_type}")
        return format
    if task_type == "detection":
        return "yolo" if is_yolo(path) else "voc" if is_voc(path) else "coco"
    if task_type == "segmentation":
        if path.is_dir() and is_cityscapes(path):
            return "cityscapes"
        return "ade20k" if task == "ade20k" else "segfolder"
    return "cifar10" if task == "cifar10" or is_cifar(path) else "imagefolder"


def unrecognised(task_type: str, path: Path) -> DatasetError:
    """The one-line error for a folder in none of the layouts of `task_type`."""
    return DatasetError(f"{path} is in no {task_type} layout robustaudit reads; looked for {LOOKED_FOR[task_type]}; "
                        f"fix --data or give --format")


def recognise_any(path: Path, task: str | None = None, format: str | None = None) -> tuple[str, str | None]:
    """(task, format) for a dataset root given without --task (`audit corrupt --data`): the format's own
    task when `format` is given, else the first layout found (YOLO, VOC, Cityscapes, COCO, ADE20K, CIFAR-10)."""
    if task:
        return task, format
    if format and format != "auto":
        if format not in FORMATS:
            raise ConfigError(unknown_name("--format", format, ["auto", *FORMATS]))
        return FORMATS[format], format
    if not path.exists():
        raise DatasetError(f"data path not found: {path}")
    for fmt, found in (("yolo", is_yolo(path)), ("voc", is_voc(path)), ("cityscapes", path.is_dir() and is_cityscapes(path)),
                       ("coco", (path / "annotations").is_dir() and (path / "val2017").is_dir()),
                       ("ade20k", (path / "images" / "validation").is_dir() and (path / "annotations" / "validation").is_dir()),
                       ("cifar10", is_cifar(path))):
        if found:
            return FORMATS[fmt], fmt
    raise DatasetError(f"{path} is in no layout robustaudit reads; looked for "
                       f"{'; '.join(LOOKED_FOR.values())}; give --images for a plain image folder, or --format")
