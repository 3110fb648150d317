"""Example images as small embedded thumbnails (base64 data URIs), within a byte budget.

A report must open from an email attachment, so images travel inside the file. Thumbnails are
downscaled to the size they are shown at and re-encoded (JPEG for photos, PNG for RGBA overlays),
and the whole report stops embedding images once its budget is spent (noted in the report).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

THUMB_SIDE = 192  # shown at up to ~180 CSS px; larger sources are downscaled to this
JPEG_QUALITY = 78


class ImageBudget:
    """Counts embedded bytes; refuses images once `limit` bytes of base64 are spent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.skipped = 0

    def take(self, size: int) -> bool:
        """Reserve `size` bytes; False (and count a skip) when that would exceed the limit."""
        if self.used + size > self.limit:
            self.skipped += 1
            return False
        self.used += size
        return True


def data_uri(path: Path, budget: ImageBudget, keep_alpha: bool = False) -> str | None:
    """The image at `path` as a downscaled data URI, or None if unreadable or over budget.

    Example:
        >>> data_uri(Path("examples/00001-clean-s0.jpg"), ImageBudget(4_000_000))  # doctest: +SKIP
        'data:image/jpeg;base64,/9j/4AAQ...'
    """
    try:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if max(image.size) > THUMB_SIDE:
        image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.LANCZOS)
    buf = io.BytesIO()
    if keep_alpha or image.mode in ("RGBA", "LA", "P"):
        image.convert("RGBA").save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        mime = "image/jpeg"
    encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    if not budget.take(len(encoded)):
        return None
    return f"data:{mime};base64,{encoded}"


def resolve(base: Path, relative: str) -> Path | None:
    """`relative` under `base`, or None if it escapes the results folder (a crafted document).

    Example:
        >>> resolve(Path("/out"), "../etc/passwd") is None
        True
    """
    candidate = (base / relative).resolve()
    try:
        candidate.relative_to(base.resolve())
    except ValueError:
        return None
    return candidate
