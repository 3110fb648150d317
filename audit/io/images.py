"""Reading and writing images: uint8 RGB arrays in, atomic writes out, one-line errors.

EXIF orientation is not applied, as COCO tools do not apply it: annotations refer to the stored
pixel grid.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from audit.errors import DatasetError
from audit.io.safety import atomic_write, check_regular_file

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


# Pillow's own warning threshold (about 0.27 GB as RGB): larger is refused unless --max-image-pixels
# raises it. A PNG of 100000 x 100000 pixels compresses to a few kB and would decode to 30 GB.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485


@contextmanager
def open_image(path: str | Path, max_pixels: int | None = None, what: str = "image") -> Iterator[Image.Image]:
    """Open an image lazily (header only) and refuse it before decoding if it claims too many pixels.

    `max_pixels` defaults to `DEFAULT_MAX_IMAGE_PIXELS`; a larger image is a `DatasetError` naming the
    file and the flag that raises the limit, never an out-of-memory kill.

    Example:
        >>> with open_image("a.png") as img:  # doctest: +SKIP
        ...     img.size
    """
    limit = int(max_pixels or DEFAULT_MAX_IMAGE_PIXELS)
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # Pillow's own bomb check must not refuse what the user allowed
    check_regular_file(path, what)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:  # Pillow's own check, at twice its threshold
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"claims {found.group(1)} pixels" if found else "claims too many pixels"
            raise DatasetError(f"{what} {path} {size}, over the limit of {limit} (a decompression bomb or an absurd size); "
                               f"raise --max-image-pixels if it is genuine") from None
    with img:
        pixels = img.width * img.height
        if pixels > limit:
            raise DatasetError(f"{what} {path} is {img.width} x {img.height} = {pixels} pixels, over the limit of {limit} "
                               f"(a decompression bomb or an absurd size); raise --max-image-pixels if it is genuine")
        yield img


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB (grayscale, palette, RGBA and 16-bit are converted).

    Larger than `max_pixels` (default `DEFAULT_MAX_IMAGE_PIXELS`): `DatasetError` before decoding.

    Example:
        >>> read_image("val2017/000000000139.jpg").shape  # doctest: +SKIP
        (426, 640, 3)
    """
    path = Path(path)
    try:
        with open_image(path, max_pixels) as img:
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                arr = (arr / max(arr.max(), 1) * 255).astype(np.uint8)
                return np.stack([arr] * 3, axis=-1)
            arr = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}; check the dataset path or use --skip-bad") from None
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error... on bad files
        raise DatasetError(f"cannot read image {path} ({exc.__class__.__name__}: {str(exc)[:100]}); replace the file or use --skip-bad") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise DatasetError(f"cannot read image {path} (decoded to shape {arr.shape}); replace the file or use --skip-bad")
    return arr


def image_ok(path: str | Path, max_pixels: int | None = None) -> str | None:
    """Cheap check that a file exists and has a decodable image header of an allowed size; the reason if not."""
    try:
        with open_image(path, max_pixels) as img:
            img.verify()
        return None
    except FileNotFoundError:
        return "missing"
    except DatasetError as exc:
        return "too many pixels (see --max-image-pixels)" if "--max-image-pixels" in str(exc) else "not a regular file"
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "bad image"
        return f"unreadable ({exc.__class__.__name__})"


def write_image(path: str | Path, image: np.ndarray, quality: int | None = None) -> None:
    """Write uint8 HxWx3 `image` atomically in the format its suffix names (PNG lossless, JPEG q95).

    The file appears complete or not at all (a temporary file in the same folder is renamed), with
    the user's umask mode; a failed write is one `OutputError`.

    Example:
        >>> write_image("out/gaussian_noise/3/a.png", np.zeros((32, 32, 3), np.uint8))  # doctest: +SKIP
    """
    path = Path(path)
    fmt, options = _FORMATS.get(path.suffix.lower(), ("PNG", {}))
    if quality is not None and fmt == "JPEG":
        options = {**options, "quality": quality}
    atomic_write(path, lambda fh: Image.fromarray(image).save(fh, format=fmt, **options), fsync=False)
