"""The AutoAttack ensemble (Croce & Hein 2020, the standard version): APGD-CE, APGD-T, FAB-T, Square.

APGD-CE, then APGD-T (targeted DLR; APGD-DLR for a 3-class model, skipped for 2 classes), then FAB-T
(targeted FAB against the 2nd..10th most likely classes), then Square, each on the images the previous
ones left unbroken: the worst case per image. On a target without gradients only Square runs, and
`run_attack` names the outcome "autoattack(square only: target not differentiable)". `steps` applies to
the APGD and FAB-T stages (default 100, the paper's), `queries` to Square (default 1000; standard
AutoAttack uses 5000), `restarts` to each stage. Each stage draws from its own seed, fixed by its place
in the standard order, so leaving a stage out (`run_stages`) does not change the others' draws.
"""

from __future__ import annotations

import numpy as np

from audit.attacks import apgd, fab as fab_mod, square as square_mod
from audit.attacks.budget import Budget
from audit.attacks.core import register_attack

STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
_FNS = {"apgd-ce": apgd.apgd_ce, "apgd-t": apgd.apgd_t, "apgd-dlr": apgd.apgd_dlr, "fab-t": fab_mod.fab_t,
        "square": square_mod.square}


def stages(target, classes: int | None, names: tuple[str, ...] = STANDARD) -> list[tuple[str, int]]:
    """The ensemble's stages for this target, in order, each with its seed offset.

    Example:
        >>> class T: differentiable = True
        >>> stages(T(), 10), stages(T(), 3)[1], stages(T(), 2)
        ([('apgd-ce', 0), ('apgd-t', 1), ('fab-t', 2), ('square', 3)], ('apgd-dlr', 1), [('apgd-ce', 0), ('fab-t', 2), ('square', 3)])
    """
    if not target.differentiable:
        return [("square", 0)] if "square" in names else []
    out = []
    for k, name in enumerate(STANDARD):
        if name not in names:
            continue
        if name == "apgd-t":  # its DLR loss needs 4 classes; APGD-DLR takes its place for 3
            name = "apgd-t" if (classes or 0) >= 4 else "apgd-dlr" if (classes or 0) == 3 else None
        if name:
            out.append((name, k))
    return out


def run_stages(target, x: np.ndarray, y: np.ndarray, budget: Budget, names: tuple[str, ...] = STANDARD, *, seed: int,
               steps=None, restarts: int = 1, queries: int | None = None):
    """Run the stages `names` (a subset of `STANDARD`) in turn on the images not yet broken; the worst case per image."""
    best = x.copy()
    broken = np.zeros(len(x), bool)
    used = np.zeros(len(x), np.int64)
    classes = target.logits(x[:1]).shape[1] if len(x) and target.differentiable else None  # a shape probe
    for name, k in stages(target, classes, names):
        idx = np.flatnonzero(~broken)
        if not len(idx):
            break
        adv, hit, n = _FNS[name](target, x[idx], y[idx], budget, seed=seed + k, steps=steps, restarts=restarts,
                                 queries=queries)
        used[idx] += n
        best[idx] = adv  # the broken ones for good; the rest hold the latest stage's point
        broken[idx[hit]] = True
    return best, broken, used


@register_attack("autoattack", white_box=False,
                 summary="APGD-CE -> APGD-T -> FAB-T -> Square on the still-robust images (Square only without gradients)")
def autoattack(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts: int = 1,
               queries: int | None = None):
    """The standard AutoAttack ensemble on a batch: `run_stages` with all four stages."""
    return run_stages(target, x, y, budget, STANDARD, seed=seed, steps=steps, restarts=restarts, queries=queries)
