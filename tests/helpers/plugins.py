"""Tiny corruption plug-ins for the tests: a package with an entry point, and plug-in files.

The package is made discoverable without pip: its folder holds the module and a `.dist-info` with
`entry_points.txt`, and goes on sys.path (importlib.metadata finds it there, and spawned workers
inherit sys.path). `forget_plugins` removes whatever a test loaded, so that other tests (and the
registry-wide parametrised tests, collected at import) see the built-ins only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LENS_DIRT = '''
import numpy as np
from audit.corruptions import corruption


@corruption("lens_dirt", group="optics", params=(0.1, 0.2, 0.3, 0.4, 0.5))
def lens_dirt(x, strength, rng):
    """Dark blotches at random places, darker with strength."""
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    out = x.astype(np.float32)
    for cy, cx in rng.uniform(0, 1, size=(3, 2)):
        blot = np.exp(-((yy - cy * h) ** 2 + (xx - cx * w) ** 2) / (2 * (0.15 * min(h, w)) ** 2))
        out *= 1 - strength * blot[..., None]
    return out
'''

GOOD_FILE = '''
import numpy as np
from audit.corruptions import corruption


@corruption("sensor_banding", params={"imagenet-c": (4, 8, 12, 16, 20), "cifar-10-c": (2, 4, 6, 8, 10)})
def sensor_banding(x, amplitude, rng):
    rows = rng.normal(0, amplitude, size=(x.shape[0], 1, 1))
    return x + rows
'''

BROKEN = {
    "raises": '''
from audit.corruptions import corruption

@corruption("plug_raises", params=(1, 2, 3, 4, 5))
def k(x, p, rng):
    if p == 5:
        raise ZeroDivisionError("severity five")
    return x + p
''',
    "shape": '''
from audit.corruptions import corruption

@corruption("plug_shape", params=(1, 2, 3, 4, 5))
def k(x, p, rng):
    return x[::2]
''',
    "nondeterministic": '''
import numpy as np
from audit.corruptions import corruption

@corruption("plug_global_rng", params=(1, 2, 3, 4, 5))
def k(x, p, rng):
    return x + np.random.normal(0, 10 * p, x.shape)
''',
    "duplicate": '''
from audit.corruptions import corruption

@corruption("fog", params=(1, 2, 3, 4, 5))
def k(x, p, rng):
    return x + p
''',
    "writes": '''
from audit.corruptions import corruption

@corruption("plug_writes", params=(1, 2, 3, 4, 5))
def k(x, p, rng):
    x[0, 0] = 0
    return x
''',
}


def write_package(root: Path, version: str = "0.3.1") -> Path:
    """A distribution `lensdirt-plugin` with one `robustaudit.corruptions` entry point; returns its folder."""
    (root / "lensdirt").mkdir(parents=True)
    (root / "lensdirt" / "__init__.py").write_text(LENS_DIRT)
    info = root / f"lensdirt_plugin-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: lensdirt-plugin\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[robustaudit.corruptions]\nlens = lensdirt\n")
    return root


def write_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def forget_plugins(extra_paths: list[str] = ()) -> None:
    """Unload every plug-in, take their folders off sys.path and rescan entry points next time."""
    from audit.corruptions import plugins

    for plugin in plugins.loaded():
        plugins.unload(plugin)
    for p in extra_paths:
        while p in sys.path:
            sys.path.remove(p)
    import importlib

    importlib.invalidate_caches()
    plugins._SCANNED = False


@pytest.fixture
def lens_package(tmp_path):
    """The lens_dirt package discoverable through its entry point for one test (sys.path, rescan)."""
    root = str(write_package(tmp_path / "site"))
    sys.path.insert(0, root)  # spawned workers inherit sys.path, so they find the entry point too
    forget_plugins()  # rescan entry points with the package on sys.path
    yield root
    forget_plugins([root])


@pytest.fixture
def only_builtins_afterwards():
    """After the test: no plug-in left loaded, the registry back to the 29 built-ins (19 ImageNet-C + 10 C-bar)."""
    from audit.corruptions import names, plugins

    yield
    forget_plugins()
    assert len(names("all")) == 29 and not plugins.loaded()
