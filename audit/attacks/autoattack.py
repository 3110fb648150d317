"""The AutoAttack-style ensemble (Croce & Hein 2020, standard version without FAB).

APGD-CE, then APGD-T (targeted DLR; APGD-DLR for a 3-class model, skipped for 2 classes), then
Square, each on the images the previous ones left unbroken: the worst case per image. On a target
without gradients only Square runs, and `run_attack` names the outcome
"autoattack(square only: target not differentiable)". `steps` applies to the APGD stages (default
100), `queries` to Square (default 1000; standard AutoAttack uses 5000), `restarts` to each stage.
"""

from __future__ import annotations

import numpy as np

from audit.attacks import apgd, square as square_mod
from audit.attacks.budget import Budget
from audit.attacks.core import register_attack


def stages(target, classes: int | None) -> list:
    """The attack functions of the ensemble for this target, in order."""
    if not target.differentiable:
        return [square_mod.square]
    dlr = apgd.apgd_t if (classes or 0) >= 4 else apgd.apgd_dlr if (classes or 0) == 3 else None
    return [apgd.apgd_ce] + ([dlr] if dlr else []) + [square_mod.square]


@register_attack("autoattack", white_box=False,
                 summary="APGD-CE -> APGD-T -> Square on the still-robust images (Square only without gradients)")
def autoattack(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts: int = 1,
               queries: int | None = None):
    """Run the ensemble's stages in turn on the images not yet broken; returns the worst case per image."""
    best = x.copy()
    broken = np.zeros(len(x), bool)
    used = np.zeros(len(x), np.int64)
    classes = target.logits(x[:1]).shape[1] if len(x) and target.differentiable else None  # a shape probe
    for k, fn in enumerate(stages(target, classes)):
        idx = np.flatnonzero(~broken)
        if not len(idx):
            break
        adv, hit, n = fn(target, x[idx], y[idx], budget, seed=seed + k, steps=steps, restarts=restarts, queries=queries)
        used[idx] += n
        best[idx] = adv  # the broken ones for good; the rest hold the latest stage's point
        broken[idx[hit]] = True
    return best, broken, used
