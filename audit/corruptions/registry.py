"""The corruption registry: names, groups, subsets and per-profile parameters.

Adding a corruption is one decorated pure kernel:

    @corruption("gaussian_noise", group="noise", params={
        "imagenet-c": (.08, .12, .18, .26, .38),
        "cifar-10-c": (.04, .06, .08, .09, .10),
    })
    def gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
        ...

A kernel gets a read-only uint8 HxWx3 image, the parameter of the requested profile and severity,
and a NumPy Generator (its only source of randomness). It returns the corrupted image on the 0..255
scale in any real dtype and the same HxW; the API clips to [0, 255] and truncates to uint8 as the
reference's `np.uint8()` does. Registry-wide tests pick every registered corruption up.

Plug-ins (audit.corruptions.plugins) use the same decorator: while a plug-in loads, what it registers
gets subset "user" (never in the benchmark mPC), the group it declares (default "user") and the
plug-in as its `origin`; `params` may then be one sequence of 5 values for every profile.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from audit.errors import ConfigError
from audit.registry import Registry, unknown_name

Kernel = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]

GROUPS = ("noise", "blur", "weather", "digital", "cbar")  # cbar: ImageNet-C-bar, its own group
SUBSETS = ("benchmark", "holdout", "cbar", "user")  # cbar: the ImageNet-C-bar suite; user: plug-ins (never in mPC)
USER = "user"  # the subset (and default group) of plug-in corruptions
PROFILES = {
    "imagenet-c": "imagecorruptions 1.1.2 parameters (Michaelis et al. 2019), any image of at least 32x32",
    "cifar-10-c": "the milder constants of hendrycks/robustness make_cifar_c.py, for 32x32 images",
}
MIN_SIZE = {"imagenet-c": 32, "cifar-10-c": 8}


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: metadata, kernel and per-profile parameters (index = severity - 1)."""

    name: str
    group: str
    subset: str
    kernel: Kernel
    params: dict[str, tuple[Any, ...]]
    random: bool
    origin: str = "builtin"  # or the plug-in that registered it (a distribution name or a file path)

    def param(self, profile: str, severity: int) -> Any:
        """The kernel parameter for `profile` at `severity` (1..5)."""
        if profile not in self.params:
            raise ConfigError(f"unknown corruption profile '{profile}'; valid: {', '.join(PROFILES)}")
        return self.params[profile][severity - 1]


CORRUPTIONS: Registry[Corruption] = Registry("corruption", listing="audit list corruptions")


def corruption(
    name: str,
    *,
    group: str | None = None,
    params: dict[str, Sequence[Any]] | Sequence[Any],
    subset: str | None = None,
    random: bool = True,
) -> Callable[[Kernel], Kernel]:
    """Register the decorated kernel as corruption `name` (see the module docstring)."""
    origin = _PLUGIN_ORIGIN[-1] if _PLUGIN_ORIGIN else "builtin"
    group, subset, table = _declaration(name, group, subset, params, plugin=origin != "builtin")

    def deco(kernel: Kernel) -> Kernel:
        CORRUPTIONS.add(name, Corruption(name, group, subset, kernel, table, random, origin))
        return kernel

    return deco


def _declaration(name: str, group: str | None, subset: str | None, params: Any, plugin: bool) -> tuple[str, str, dict]:
    """Check a declaration; returns (group, subset, params per profile)."""
    if plugin:
        if subset not in (None, USER):
            raise ValueError(f"{name}: a plug-in corruption has subset '{USER}', got {subset!r}")
        group, subset = group or USER, USER
        if not isinstance(group, str) or not group.replace("_", "").replace("-", "").isalnum() or (group != USER and group in ("all", "none", "clean", *SUBSETS)):
            raise ValueError(f"{name}: group must be a word of letters, digits, _ or - (not all, none, clean or a built-in subset), got {group!r}")
        if not isinstance(params, dict):
            params = {profile: params for profile in PROFILES}
    else:
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
        subset = subset or "benchmark"
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if not isinstance(params, dict) or set(params) != set(PROFILES) or any(len(v) != 5 for v in params.values()):
        raise ValueError(f"{name}: params need 5 values for each profile {list(PROFILES)}")
    return group, subset, {k: tuple(v) for k, v in params.items()}


_PLUGIN_ORIGIN: list[str] = []


@contextmanager
def registering_plugin(origin: str) -> Iterator[None]:
    """Within this block, `@corruption` registers user-defined corruptions of plug-in `origin`."""
    _PLUGIN_ORIGIN.append(origin)
    try:
        yield
    finally:
        _PLUGIN_ORIGIN.pop()


def get(name: str) -> Corruption:
    """The registered corruption `name`; an unknown name lists the valid ones."""
    _load_families()
    return CORRUPTIONS.get(name)


def names(selection: str | Sequence[str] = "benchmark") -> list[str]:
    """Expand a selection into corruption names, in the protocol's order.

    `selection` is a subset (benchmark, holdout, cbar, user, all), a group (noise, blur, weather,
    digital: the benchmark corruptions of that group; cbar; a plug-in's own group: its corruptions), a
    corruption name, 'none', or a list / comma-separated string of any of these.

    Example:
        >>> names("noise")
        ['gaussian_noise', 'shot_noise', 'impulse_noise']
    """
    _load_families()
    items = selection.split(",") if isinstance(selection, str) else list(selection)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item == "all":
            picked = CORRUPTIONS.names()
        elif item == "none":
            picked = []
        elif item in SUBSETS:
            picked = [n for n in CORRUPTIONS.names() if CORRUPTIONS.get(n).subset == item]
        elif item in GROUPS:
            picked = [n for n in CORRUPTIONS.names() if CORRUPTIONS.get(n).group == item and CORRUPTIONS.get(n).subset == "benchmark"]
        elif item in _plugin_groups():
            picked = [n for n in CORRUPTIONS.names() if CORRUPTIONS.get(n).group == item]
        elif item in CORRUPTIONS:
            picked = [item]
        else:
            valid = ["all", "none", *SUBSETS, *GROUPS, *_plugin_groups(), *CORRUPTIONS.names()]
            raise ConfigError(unknown_name("corruption or set", item, valid, "audit list corruptions"))
        out.extend(n for n in picked if n not in out)
    return sorted(out, key=_protocol_order())


def _protocol_order() -> Callable[[str], tuple[int, int]]:
    """Sort key: family module in FAMILY_MODULES order, then registration order; others last.

    Registration order alone depends on which module a caller imported first (a test importing
    audit.corruptions.cbar directly registers it before noise).
    """
    registered = CORRUPTIONS.names()

    def key(name: str) -> tuple[int, int]:
        family = CORRUPTIONS.get(name).kernel.__module__.rsplit(".", 1)[-1]
        rank = FAMILY_MODULES.index(family) if family in FAMILY_MODULES else len(FAMILY_MODULES)
        return rank, registered.index(name)

    return key


def _plugin_groups() -> list[str]:
    groups = (CORRUPTIONS.get(n).group for n in CORRUPTIONS.names() if CORRUPTIONS.get(n).subset == USER)
    return [g for g in dict.fromkeys(groups) if g not in GROUPS]


# The protocol's order (section 1 of the ImageNet-C protocol); families register in this order.
FAMILY_MODULES = ("noise", "blur", "weather", "digital", "holdout", "cbar")
# What fills the registry on first use: the package's __init__ installs audit.corruptions.plugins.load_builtins
# (the built-in families, then the installed entry points), so this module imports nothing back.
_LOADERS: list[Callable[[], None]] = []


def set_loader(load: Callable[[], None]) -> None:
    """Install the function that registers the built-in families and plug-ins on first use (idempotent)."""
    _LOADERS[:] = [load]


def _load_families() -> None:
    for load in _LOADERS:
        load()
