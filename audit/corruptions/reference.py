"""The reference implementation: imagecorruptions 1.1.2, made to run on current libraries.

imagecorruptions is the code the published numbers (Michaelis et al. 2019) were made with, but as
shipped it no longer imports or runs: `pkg_resources` is gone from setuptools >= 81, scikit-image
removed `multichannel` (glass_blur, gaussian_blur) and NumPy 2 removed `np.float_` (fog). Rather than
patch the installed package or NumPy globally, this module loads the package's own source with the
smallest textual fixes and keeps it as a private module. It serves as the reference in tests and
benchmarks, and as `--reference` code path for users who want its exact pixels.

Its randomness comes from NumPy's global RNG (and scikit-image's, for impulse_noise, which we route
through the global RNG so that `np.random.seed` makes it deterministic); `reference_corrupt` seeds
it explicitly per call and restores the previous global state afterwards.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from pathlib import Path

import numpy as np

from audit.errors import MissingDependencyError

_MODULE_NAME = "audit.corruptions._imagecorruptions_fixed"
# (old, new, expected count): each fix must apply exactly as often as expected, or the source changed.
_FIXES = [
    ("from pkg_resources import resource_filename",
     "resource_filename = lambda _pkg, rel: os.path.join(_PACKAGE_DIR, rel)", 1),
    ("from scipy.ndimage.interpolation import map_coordinates", "from scipy.ndimage import map_coordinates", 1),
    ("multichannel=True", "channel_axis=-1", 3),
    ("np.float_)", "np.float64)", 1),
    ("mode='s&p', amount=c)", "mode='s&p', amount=c, rng=np.random.randint(2 ** 31))", 1),
]
_lock = threading.Lock()
_module: types.ModuleType | None = None


def package_dir() -> Path:
    """Folder of the installed imagecorruptions package (its frost textures live in `frost/`)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("imagecorruptions", "cpu", "The reference corruptions and frost textures")
    return Path(spec.origin).parent


def frost_textures() -> list[Path]:
    """The six frost texture files shipped inside imagecorruptions (Apache-2.0), in its order."""
    folder = package_dir() / "frost"
    files = [folder / f"frost{i}.png" for i in (1, 2, 3)] + [folder / f"frost{i}.jpg" for i in (4, 5, 6)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MissingDependencyError("imagecorruptions", "cpu", f"The frost textures (missing {missing[0]})")
    return files


def module() -> types.ModuleType:
    """The fixed `imagecorruptions.corruptions` module (loaded once)."""
    global _module
    with _lock:
        if _module is None:
            path = package_dir() / "corruptions.py"
            source = path.read_text()
            for old, new, count in _FIXES:
                found = source.count(old)
                if found != count:
                    raise RuntimeError(f"imagecorruptions source changed: '{old}' found {found}x, expected {count}x")
                source = source.replace(old, new)
            mod = types.ModuleType(_MODULE_NAME)
            mod.__file__ = str(path)
            mod._PACKAGE_DIR = str(path.parent)
            exec(compile(source, str(path), "exec"), mod.__dict__)  # noqa: S102 - our pinned dependency's code
            sys.modules[_MODULE_NAME] = mod
            _module = mod
    return _module


def reference_corrupt(image: np.ndarray, name: str, severity: int, seed: int | None = 0) -> np.ndarray:
    """Corrupt `image` with imagecorruptions' own code, following its `corrupt()` contract.

    uint8 HxW, HxWx1 or HxWx3 in (at least 32x32), uint8 HxWx3 out, cast with `np.uint8` (truncation).
    The global NumPy RNG is seeded with `seed` for the call and restored afterwards (None: unseeded).

    Example:
        >>> img = np.full((64, 64, 3), 128, np.uint8)
        >>> reference_corrupt(img, "brightness", 3).shape
        (64, 64, 3)
    """
    from PIL import Image

    mod = module()
    if image.ndim == 2:
        image = np.stack((image,) * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    fn = getattr(mod, name)
    with _lock:  # the global RNG is shared state
        state = np.random.get_state()
        try:
            if seed is not None:
                np.random.seed(seed % 2**32)
            out = fn(Image.fromarray(image), severity)
        finally:
            np.random.set_state(state)
    return np.uint8(out)
