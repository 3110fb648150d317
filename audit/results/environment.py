"""The results document's `environment` section: software versions and machine."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from audit import __version__

PACKAGES = ("numpy", "scipy", "opencv-python", "scikit-image", "imagecorruptions", "onnxruntime", "onnxruntime-gpu",
            "tensorrt", "faster-coco-eval", "torch", "torchvision", "timm")


def environment() -> dict:
    """Versions of robustaudit, Python and the packages that shape the numbers; platform and CPU count."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"robustaudit": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "packages": packages}
