"""Reading and writing images: uint8 RGB arrays in, atomic writes out, one-line errors.

EXIF orientation is not applied, as COCO tools do not apply it: annotations refer to the stored
pixel grid.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from audit.errors import DatasetError

# suffix -> (Pillow format, save options). PNG and other lossless formats stay lossless.
_FORMATS = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
    ".webp": ("WEBP", {"lossless": True}),
}
IMAGE_SUFFIXES = tuple(_FORMATS)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB (grayscale, palette, RGBA and 16-bit are converted).

    Example:
        >>> read_image("val2017/000000000139.jpg").shape  # doctest: +SKIP
        (426, 640, 3)
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                arr = (arr / max(arr.max(), 1) * 255).astype(np.uint8)
                return np.stack([arr] * 3, axis=-1)
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}; check the dataset path or use --skip-bad") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path} ({exc.__class__.__name__}: {exc}); replace the file or use --skip-bad") from None


def image_ok(path: str | Path) -> str | None:
    """Cheap check that a file exists and has a decodable image header; the reason if not."""
    try:
        with Image.open(path) as img:
            img.verify()
        return None
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "bad image"
        return f"unreadable ({exc.__class__.__name__})"


def write_image(path: str | Path, image: np.ndarray, quality: int | None = None) -> None:
    """Write uint8 HxWx3 `image` atomically in the format its suffix names (PNG lossless, JPEG q95).

    The file appears complete or not at all: a temporary file in the same folder is renamed.

    Example:
        >>> write_image("out/gaussian_noise/3/a.png", np.zeros((32, 32, 3), np.uint8))  # doctest: +SKIP
    """
    path = Path(path)
    fmt, options = _FORMATS.get(path.suffix.lower(), ("PNG", {}))
    if quality is not None and fmt == "JPEG":
        options = {**options, "quality": quality}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            Image.fromarray(image).save(fh, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
