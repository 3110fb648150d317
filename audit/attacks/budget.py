"""The threat model: a norm and a radius on [0, 1] pixels at the network input geometry.

Perturbations are added to the image in [0, 1] *before* normalisation, at the geometry the network
sees (after resize / crop), clipped to [0, 1], and fed to the engine as floats: never re-quantised to
uint8, so a 1/255 step survives the pipeline. The NumPy helpers here (projection, the norm of a
perturbation, the budget check) are shared by the white-box (torch) and black-box (NumPy) attacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from audit.errors import ConfigError

NORMS = ("linf", "l2")
# float32 slack of the budget check: the projections are exact up to rounding of x +- eps in float32
LINF_TOL = 1e-6
L2_RTOL = 1e-5



def eps_label(eps: float, norm: str) -> str:
    """A budget as people write it: '8/255 (0.0314)' for L-inf budgets in whole 255ths, else the number.

    Example:
        >>> eps_label(8 / 255, "linf"), eps_label(0.5, "l2"), eps_label(0.01, "linf")
        ('8/255 (0.0314)', '0.5', '0.01')
    """
    k = eps * 255
    if norm == "linf" and abs(k - round(k)) < 1e-6 and round(k):
        return f"{round(k)}/255 ({eps:.4f})"
    return f"{eps:.6g}"

@dataclass(frozen=True)
class Budget:
    """An L-inf or L2 ball of radius `eps` in [0, 1] pixel units (8/255 etc.).

    Example:
        >>> Budget("linf", 8 / 255).eps == 8 / 255
        True
        >>> Budget("l1", 0.1)
        Traceback (most recent call last):
        ...
        audit.errors.ConfigError: unknown attack norm 'l1'; valid: linf, l2
    """

    norm: str
    eps: float

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ConfigError(f"unknown attack norm '{self.norm}'; valid: {', '.join(NORMS)}")
        try:
            eps = float(self.eps)
        except (TypeError, ValueError):
            raise ConfigError(f"attack eps must be a number, got {self.eps!r}") from None
        if not math.isfinite(eps) or eps < 0:
            raise ConfigError(f"attack eps must be a finite number >= 0, got {self.eps!r}")
        if self.norm == "linf" and eps > 1:
            raise ConfigError(f"an L-inf eps is in [0, 1] pixel units (8/255 = 0.031), got {eps}; write e.g. 8/255")
        object.__setattr__(self, "eps", eps)

    def __str__(self) -> str:
        return f"{self.norm} eps={self.eps:.6g}"


def parse_eps(text: str) -> list[float]:
    """Budgets from a comma-separated list of numbers or fractions, in the order given.

    Example:
        >>> [round(e, 6) for e in parse_eps("0, 1/255,8/255,0.5")]
        [0.0, 0.003922, 0.031373, 0.5]
    """
    items = [t.strip() for t in str(text).split(",")]
    if not text or not str(text).strip() or any(not t for t in items):
        raise ConfigError(f"--eps expects a comma-separated list such as 0,1/255,2/255,8/255, got '{text}'")
    out: list[float] = []
    for item in items:
        try:
            value = float(Fraction(item.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"--eps: '{item}' is not a number or a fraction such as 8/255") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"--eps: '{item}' is negative; budgets are >= 0 (0 is the clean accuracy)")
        if value in out:
            raise ConfigError(f"--eps: '{item}' is given twice")
        out.append(value)
    return out


def norms(delta: np.ndarray, norm: str) -> np.ndarray:
    """Per-sample L-inf or L2 norm of a [N, ...] perturbation (float64)."""
    flat = np.asarray(delta, np.float64).reshape(len(delta), -1)
    if norm == "linf":
        return np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(len(flat))
    return np.sqrt((flat ** 2).sum(axis=1))


def project(x_adv: np.ndarray, x: np.ndarray, budget: Budget) -> np.ndarray:
    """`x_adv` moved into the budget's ball around `x` and into [0, 1] (float32)."""
    x = np.asarray(x, np.float32)
    delta = np.asarray(x_adv, np.float32) - x
    if budget.norm == "linf":
        delta = np.clip(delta, -budget.eps, budget.eps)
    else:
        n = norms(delta, "l2").reshape(-1, *[1] * (delta.ndim - 1))
        scale = np.minimum(1.0, budget.eps / np.maximum(n, 1e-12)) * (1 - 1e-7)
        delta = (delta * np.where(n > budget.eps, scale, 1.0)).astype(np.float32)
    return np.clip(x + delta, 0.0, 1.0).astype(np.float32)


def check_within(x_adv: np.ndarray, x: np.ndarray, budget: Budget) -> None:
    """Raise (a bug, not a user error) if a perturbation leaves [0, 1] or the budget's ball."""
    if x_adv.shape != x.shape or x_adv.dtype != np.float32:
        raise RuntimeError(f"attack returned {x_adv.dtype} {x_adv.shape}, expected float32 {x.shape}")
    if not np.isfinite(x_adv).all() or x_adv.min(initial=0.0) < 0 or x_adv.max(initial=0.0) > 1:
        raise RuntimeError("attack returned pixels outside [0, 1]")
    n = norms(x_adv - x, budget.norm)
    limit = budget.eps + (LINF_TOL if budget.norm == "linf" else L2_RTOL * max(budget.eps, 1e-6))
    if (n > limit).any():
        raise RuntimeError(f"attack left the {budget} ball: max norm {n.max():.8g}")
