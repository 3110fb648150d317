"""Load-time checks of a plug-in corruption: the registry-wide properties the built-ins are tested for.

On two small images (32x32 and 48x64), both profiles and all five severities, through `corrupt` (the
path every run takes): no exception, an HxW or HxWx3 real-valued finite output, the input untouched,
the same output under the same seed, and a visible change at severity 5. A failure is a
`CorruptionError` naming the corruption and what failed. Severity monotonicity is a warning: some
published corruptions (frost, spatter) are not monotonic either.
"""

from __future__ import annotations

import numpy as np

from audit.corruptions.api import corrupt, rng_for
from audit.corruptions.registry import PROFILES, get
from audit.errors import CorruptionError

SHAPES = ((32, 32), (48, 64))
SEVERITIES = (1, 2, 3, 4, 5)


def probe_image(h: int, w: int) -> np.ndarray:
    """A deterministic photo-like uint8 image: gradients, edges and mild texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(h * 1000 + w)
    base = np.stack([255 * xx / max(w - 1, 1), 255 * yy / max(h - 1, 1), 128 + 100 * np.sin(xx / 3 + yy / 5)], -1)
    base[h // 4: h // 2, w // 4: w // 2] = (230, 40, 40)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def check_corruption(name: str) -> list[str]:
    """Check corruption `name`; returns warnings, raises `CorruptionError` on a broken property.

    Example:
        >>> check_corruption("gaussian_noise")
        []
    """
    for h, w in SHAPES:
        image = probe_image(h, w)
        changed = False
        for profile in PROFILES:
            for severity in SEVERITIES:
                out = _checked_output(name, image, profile, severity)
                changed = changed or not np.array_equal(out, image)
        if not changed:
            raise CorruptionError(f"corruption '{name}' leaves a {w}x{h} image unchanged at every severity")
    return _monotonic_warning(name)


def _checked_output(name: str, image: np.ndarray, profile: str, severity: int) -> np.ndarray:
    where = f"corruption '{name}' at severity {severity} ({profile}, {image.shape[1]}x{image.shape[0]} image)"
    spec = get(name)
    before = image.copy()
    view = image.view()
    view.flags.writeable = False
    try:
        raw = np.asarray(spec.kernel(view, spec.param(profile, severity), rng_for(0, name, severity, "check", profile)))
    except Exception as exc:  # noqa: BLE001 - foreign code
        raise CorruptionError(f"{where} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    _check_raw(raw, image, where)
    if not np.array_equal(image, before):
        raise CorruptionError(f"{where} changed its input image; work on a copy")
    first = corrupt(image, name, severity, seed=0, image_id="check", profile=profile)
    again = corrupt(image, name, severity, seed=0, image_id="check", profile=profile)
    if not np.array_equal(first, again):
        raise CorruptionError(f"{where} is not deterministic under one seed; draw random numbers from the rng argument only")
    return first


def _check_raw(raw: np.ndarray, image: np.ndarray, where: str) -> None:
    if raw.shape not in (image.shape, image.shape[:2]):
        raise CorruptionError(f"{where} returned shape {raw.shape} for an input of {image.shape}; return HxW or HxWx3")
    if not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)) or raw.dtype == np.bool_:
        raise CorruptionError(f"{where} returned dtype {raw.dtype}; return real numbers on 0..255")
    if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
        raise CorruptionError(f"{where} returned NaN or infinite values")


def _monotonic_warning(name: str) -> list[str]:

    image = probe_image(*SHAPES[-1])
    seeds = range(3 if get(name).random else 1)
    dev = [float(np.mean([np.abs(corrupt(image, name, s, seed=k, image_id="m").astype(np.float64) - image).mean()
                          for k in seeds])) for s in SEVERITIES]
    slack = 0.05 * max(dev)
    if all(b >= a - slack for a, b in zip(dev, dev[1:])):
        return []
    shown = ", ".join(f"{d:.1f}" for d in dev)
    return [f"corruption '{name}' does not get stronger with severity (mean change per severity: {shown})"]
