"""Classification datasets: CIFAR-10 python batches (optionally with CIFAR-10-C .npy) and image folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from audit.datasets.base import Dataset
from audit.errors import DatasetError
from audit.imageio import IMAGE_SUFFIXES


class Cifar10(Dataset):
    """The CIFAR-10 test batch (python pickle format). Image ids are `test_batch/<index>`.

    With `cifar_c` (a folder of the published CIFAR-10-C .npy files), corrupted cells are read from
    there instead of being made: `<corruption>.npy` holds 5 x 10000 images, severity-major.
    """

    format = "cifar10"
    task_type = "classification"

    def __init__(self, root: Path, cifar_c: Path | None = None):
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        batch, meta = _unpickle(folder / "test_batch"), folder / "batches.meta"
        names = [n.decode() for n in _unpickle(meta)[b"label_names"]] if meta.is_file() else [str(k) for k in range(10)]
        super().__init__(root, names)
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{folder / 'test_batch'} is not a CIFAR-10 batch ({exc})") from None
        if len(labels) != len(data) or (labels < 0).any() or (labels >= len(names)).any():
            raise DatasetError(f"{folder / 'test_batch'}: {len(labels)} labels for {len(data)} images, or labels out of range")
        self._data, self._labels = data, labels
        self._items = [{"id": f"test_batch/{i}", "path": folder / "test_batch", "row": i} for i in range(len(data))]
        self.cifar_c = cifar_c
        if cifar_c is not None and not Path(cifar_c).is_dir():
            raise DatasetError(f"CIFAR-10-C folder not found: {cifar_c}")
        # listed once: the runner asks for every image of every cell
        self._prerendered = set() if cifar_c is None else {
            (p.stem, s) for p in Path(cifar_c).glob("*.npy") if p.stem != "labels" for s in range(1, 6)}

    def load_image(self, index: int) -> np.ndarray:
        return self._data[self._items[index]["row"]]

    def target(self, index: int) -> int:
        return int(self._labels[self._items[index]["row"]])

    def prerendered(self) -> set[tuple[str, int]]:
        return self._prerendered

    def load_corrupted(self, index: int, corruption: str, severity: int) -> np.ndarray:
        arr = _npy(Path(self.cifar_c) / f"{corruption}.npy")
        n = len(self._data)
        if arr.shape[0] != 5 * n:
            raise DatasetError(f"{corruption}.npy has {arr.shape[0]} images; expected 5 x {n}")
        return arr[(severity - 1) * n + self._items[index]["row"]]


_NPY_CACHE: dict[Path, np.ndarray] = {}


def _npy(path: Path) -> np.ndarray:
    if path not in _NPY_CACHE:
        try:
            _NPY_CACHE[path] = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {path} ({exc})") from None
    return _NPY_CACHE[path]


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="bytes")
    except FileNotFoundError:
        raise DatasetError(f"CIFAR-10 file not found: {path}; --data must hold cifar-10-batches-py/") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DatasetError(f"{path} is not a CIFAR-10 python batch ({exc})") from None


class ImageFolder(Dataset):
    """ImageNet-style folders root/<class>/<image>; classes in sorted order."""

    format = "imagefolder"
    task_type = "classification"

    def __init__(self, root: Path):
        if not root.is_dir():
            raise DatasetError(f"image folder not found: {root}")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        super().__init__(root, classes)
        for label, name in enumerate(classes):
            for img in sorted((root / name).rglob("*")):
                if img.suffix.lower() in IMAGE_SUFFIXES:
                    self._items.append({"id": img.relative_to(root).as_posix(), "path": img, "label": label})

    def target(self, index: int) -> int:
        return self._items[index]["label"]
