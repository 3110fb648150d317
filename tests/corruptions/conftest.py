"""Shared test images for the corruption tests: real photos from scikit-image's bundled data."""

import cv2
import numpy as np
import pytest
import skimage.data


def photo(h: int, w: int, which: str = "astronaut") -> np.ndarray:
    """A bundled scikit-image photo resized to h x w (uint8 RGB)."""
    return cv2.resize(getattr(skimage.data, which)(), (w, h), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def small_photo() -> np.ndarray:
    return photo(48, 64)
