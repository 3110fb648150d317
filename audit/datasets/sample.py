"""A seeded sample of images from any dataset root robustaudit reads, or from a plain image folder.

Used by INT8 calibration and the export parity check (`audit export --calibration / --parity-images`):
the root is recognised as `--data` is (YOLO, VOC, Cityscapes, COCO, ADE20K, CIFAR-10 batches); any
other folder is searched recursively for image files. Images are read lazily, one at a time, so a
sample of 1024 x 2048 Cityscapes frames never sits in memory at once.

Example:
    >>> sample = open_images("data/cifar", n=128, seed=0)  # doctest: +SKIP
    >>> sample.describe()  # doctest: +SKIP
    {'source': 'data/cifar', 'format': 'cifar10', 'images': 128, 'available': 10000, 'seed': 0}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from audit.errors import DatasetError, RobustAuditError
from audit.io.images import IMAGE_SUFFIXES, read_image
from audit.io.safety import check_inside


@dataclass
class ImageSample:
    """`indices` of a source of `available` images, read on demand by `load(index)`."""

    source: str
    format: str
    seed: int
    available: int
    indices: list[int]
    load: Callable[[int], np.ndarray]

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.load(i) for i in self.indices)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "images": len(self.indices),
                "available": self.available, "seed": self.seed}


def seeded_indices(total: int, n: int, seed: int) -> list[int]:
    """`n` distinct positions of `total`, drawn with `seed`, in ascending order (all of them when n >= total)."""
    if n >= total:
        return list(range(total))
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False)).tolist()


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not p.name.startswith("."))
    for p in files:
        check_inside(folder, p, "image", p.relative_to(folder).as_posix())
    return files


def from_reader(reader: Any, source: str, fmt: str, n: int, seed: int) -> ImageSample:
    """A sample of anything with `len()` and `load_image(i)` (audit and fine-tuning readers alike)."""
    if len(reader) == 0:
        raise DatasetError(f"no images in {source} ({fmt})")
    return ImageSample(source, fmt, seed, len(reader), seeded_indices(len(reader), n, seed), reader.load_image)


def open_images(path: str | Path, n: int = 128, seed: int = 0, task: str | None = None,
                format: str | None = None) -> ImageSample:
    """A seeded sample of `n` images of the dataset at `path` (its evaluation split), or of a folder of images.

    `task` / `format` pin the reader; without them the layout is recognised, and a folder in no
    known layout is read as plain images (searched recursively).
    """
    from audit.datasets import open_dataset
    from audit.datasets.recognize import recognise_any

    shown = str(path)
    path = Path(path).absolute()  # images are read later, maybe from another working folder (INT8 quantisation)
    if not path.exists():
        raise DatasetError(f"image folder not found: {shown}; give a dataset root or a folder of the task's images")
    if n < 1:
        raise DatasetError(f"the sample size must be at least 1, got {n}")
    try:
        task, format = recognise_any(path, task, format)
    except RobustAuditError:
        task = None
    if task is not None:
        ds = open_dataset(task, path, format=format)  # a bad image in the sample is an error naming it
        return from_reader(ds, shown, ds.format, n, seed)
    if not path.is_dir():
        raise DatasetError(f"{shown} is neither a dataset robustaudit reads nor a folder of images")
    files = _folder_files(path)
    if not files:
        raise DatasetError(f"no images under {shown} ({', '.join(IMAGE_SUFFIXES)}), and it is in no dataset layout "
                           f"robustaudit reads; give a folder of the task's images or a dataset root")
    return ImageSample(shown, "image folder", seed, len(files), seeded_indices(len(files), n, seed),
                       lambda i: read_image(files[i]))
