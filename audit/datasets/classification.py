"""Classification datasets: CIFAR-10 python batches (optionally with CIFAR-10-C .npy) and image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.datasets.base import Dataset
from audit.errors import DatasetError
from audit.io.images import IMAGE_SUFFIXES
from audit.io.safety import check_inside, check_regular_file
from audit.io.unpickle import load_restricted


class Cifar10(Dataset):
    """The CIFAR-10 test batch (python pickle format). Image ids are `test_batch/<index>`.

    With `cifar_c` (a folder of the published CIFAR-10-C .npy files), corrupted cells are read from
    there instead of being made: `<corruption>.npy` holds 5 x 10000 images, severity-major.
    """

    format = "cifar10"
    task_type = "classification"

    def __init__(self, root: Path, cifar_c: Path | None = None):
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        meta = folder / "batches.meta"
        names = read_label_names(meta) if meta.is_file() else [str(k) for k in range(10)]
        super().__init__(root, names)
        data, labels = read_batch(folder / "test_batch")
        if (labels >= len(names)).any():
            raise DatasetError(f"{folder / 'test_batch'}: label {int(labels.max())} is outside the {len(names)} classes of {meta}")
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
    """A CIFAR-10-C file: uint8 N x 32 x 32 x 3, memory-mapped, never unpickled."""
    if path not in _NPY_CACHE:
        try:
            check_regular_file(path, "CIFAR-10-C file")
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise DatasetError(f"CIFAR-10-C file not found: {path}; check --cifar-c") from None
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - numpy's header parser raises ValueError, OSError, SyntaxError, ... on bad files
            raise DatasetError(f"cannot read {path} as a .npy array ({type(exc).__name__}: {str(exc)[:100]})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (32, 32, 3):
            shape = getattr(arr, "shape", "?")
            raise DatasetError(f"{path} holds {getattr(arr, 'dtype', type(arr).__name__)} {shape}; "
                               f"a CIFAR-10-C file holds uint8 N x 32 x 32 x 3")
        _NPY_CACHE[path] = arr
    return _NPY_CACHE[path]


def _unpickle(path: Path) -> dict:
    """A CIFAR python pickle, through the restricted unpickler (data only, nothing the file names runs)."""
    try:
        check_regular_file(path, "CIFAR-10 file")
        with open(path, "rb") as fh:
            obj = load_restricted(fh, str(path))
    except FileNotFoundError:
        raise DatasetError(f"CIFAR-10 file not found: {path}; --data must hold cifar-10-batches-py/") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc.strerror})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path} is not a CIFAR-10 python batch (it holds a {type(obj).__name__}, not a dict)")
    return obj


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images (uint8 N x 32 x 32 x 3) and labels (int64, non-negative) of a CIFAR-10 python batch.

    Example:
        >>> data, labels = read_batch(Path("cifar-10-batches-py/test_batch"))  # doctest: +SKIP
    """
    batch = _unpickle(path)
    raw, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path} is not a CIFAR-10 batch: 'data' must be a uint8 N x 3072 array, "
                           f"got {getattr(raw, 'dtype', type(raw).__name__)} {getattr(raw, 'shape', '')}")
    if not isinstance(labels, (list, np.ndarray)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < 2**31 for v in labels):
        raise DatasetError(f"{path} is not a CIFAR-10 batch: 'labels' must be a list of non-negative integers")
    if len(labels) != len(raw):
        raise DatasetError(f"{path}: {len(labels)} labels for {len(raw)} images")
    return raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64).reshape(-1)


def read_label_names(path: Path) -> list[str]:
    """The class names of a CIFAR `batches.meta` pickle."""
    names = _unpickle(path).get(b"label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DatasetError(f"{path} is not a CIFAR-10 batches.meta: 'label_names' must be a list of names")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


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
                    check_inside(root, img, "image", img.relative_to(root).as_posix())
                    self._items.append({"id": img.relative_to(root).as_posix(), "path": img, "label": label})

    def target(self, index: int) -> int:
        return self._items[index]["label"]
