"""Auto-PGD (Croce & Hein 2020): APGD-CE, APGD-DLR and the targeted APGD-T, L-inf and L2.

Parameter-free PGD: the step size starts at 2 * eps and is halved at checkpoints
w_j = ceil(p_j * steps) (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) when
(1) the loss rose in at most rho = 0.75 of the steps since the previous checkpoint, or (2) the step
size was not halved at the previous checkpoint and the best loss has not improved since; on a halving
the iterate restarts from the best point. Steps use momentum alpha = 0.75 (1 on the first step).
Default 100 steps (the paper's); `restarts` random starts, each on the images not yet broken.
APGD-T runs the targeted DLR loss against the 2nd..10th most likely classes of the clean image, in turn.
An image is broken if any iterate misclassifies it; the first such iterate is returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.attacks.budget import Budget
from audit.attacks.core import register_attack
from audit.errors import ConfigError

APGD_STEPS = 100
RHO = 0.75
MOMENTUM = 0.75
APGD_T_TARGETS = 9


def checkpoints(steps: int) -> set[int]:
    """The iterations (1-based counts of steps done) at which APGD may halve its step size.

    Example:
        >>> sorted(checkpoints(100))[:5]
        [22, 41, 57, 70, 80]
    """
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return {w for w in (math.ceil(round(v * steps, 6)) for v in p[1:]) if 0 < w <= steps}


def _start(x, budget: Budget, gen):
    """APGD's random start: a random direction scaled to the ball's surface (L-inf: max |t| = eps)."""
    import torch

    from audit.attacks import _torch as T

    if budget.norm == "linf":
        t = torch.rand(x.shape, generator=gen) * 2 - 1
    else:
        t = torch.randn(x.shape, generator=gen)
    t = t.to(x.device)
    return (x + budget.eps * t / T.per_sample_norm(t, budget.norm).clamp_min(1e-12)).clamp(0, 1)


def apgd_single(module, x, y, budget: Budget, steps: int, gen, loss_fn):
    """One APGD run on tensors x, y; returns (adversarial or best-loss images, broken mask, evaluations).

    `loss_fn(logits, rows)` gives the per-sample loss of the images `rows` (indices into x). An image
    leaves the computation as soon as an iterate misclassifies it (kept as its adversarial example);
    APGD's updates are per image, so the others' trajectories do not change.
    """
    import torch

    from audit.attacks import _torch as T

    marks = checkpoints(steps)
    n = len(x)
    out, broken = x.clone(), torch.zeros(n, dtype=torch.bool, device=x.device)
    used = torch.zeros(n, dtype=torch.int64)
    rows = torch.arange(n, device=x.device)  # the images still in the run
    x0 = x
    adv = _start(x0, budget, gen)
    loss, logits, grad = T.loss_and_grad(module, adv, lambda z: loss_fn(z, rows))
    used += 1
    s = {"adv": adv, "x_prev": adv.clone(), "grad": grad, "loss_prev": loss, "loss_best": loss.clone(),
         "x_best": adv.clone(), "grad_best": grad.clone(),
         "eta": torch.full((n, 1, 1, 1), 2.0 * budget.eps, device=x.device),
         "rises": torch.zeros(n, device=x.device), "reduced": torch.ones(n, dtype=torch.bool, device=x.device),
         "best_at_check": loss.clone(), "x0": x0, "y": y}
    wrong = logits.argmax(1) != y
    last_mark = 0
    for k in range(steps + 1):
        if wrong.any():  # record the adversarial iterates and drop those images from the run
            out[rows[wrong]] = s["adv"][wrong]
            broken[rows[wrong]] = True
            keep = ~wrong
            s = {key: v[keep] for key, v in s.items()}
            rows = rows[keep]
        if k == steps or not len(rows):
            break
        a = 1.0 if k == 0 else MOMENTUM
        adv, x0 = s["adv"], s["x0"]
        z = T.project(adv + s["eta"] * T.ascent_direction(s["grad"], budget.norm), x0, budget)
        s["x_prev"], s["adv"] = adv, T.project(adv + a * (z - adv) + (1 - a) * (adv - s["x_prev"]), x0, budget)
        loss, logits, s["grad"] = T.loss_and_grad(module, s["adv"], lambda z, r=rows: loss_fn(z, r))
        used[rows.cpu()] += 1
        wrong = logits.argmax(1) != s["y"]
        s["rises"] += (loss > s["loss_prev"]).float()
        s["loss_prev"] = loss
        better = loss > s["loss_best"]
        s["x_best"][better], s["grad_best"][better], s["loss_best"][better] = s["adv"][better], s["grad"][better], loss[better]
        if k + 1 in marks:
            span = k + 1 - last_mark
            halve = (s["rises"] <= RHO * span) | (~s["reduced"] & (s["best_at_check"] >= s["loss_best"]))
            s["eta"][halve] /= 2
            s["adv"][halve], s["grad"][halve] = s["x_best"][halve], s["grad_best"][halve]
            s["reduced"], s["best_at_check"], last_mark = halve, s["loss_best"].clone(), k + 1
            s["rises"].zero_()
    out[rows] = s["x_best"]
    return out, broken, used


@dataclass
class _Tally:
    """What the restarts share, updated in place: queries used, images broken, the best point of each image."""

    used: Any
    broken: Any
    best: Any


def _restarts(module, x, y, make_loss, tally: _Tally, *, budget, steps, restarts, gen):
    """`restarts` APGD runs, each on the images of (x, y) not yet broken; updates `tally`."""
    import torch

    for _ in range(restarts):
        idx = torch.nonzero(~tally.broken).flatten()
        if not len(idx):
            return
        adv, hit, n = apgd_single(module, x[idx], y[idx], budget, steps, gen, make_loss(idx))
        tally.used[idx.cpu()] += n
        tally.best[idx] = adv  # the adversarial ones, and the best-loss points of the rest
        tally.broken[idx[hit]] = True


def _run(target, x, y, budget, seed, steps, restarts, loss: str):
    import torch

    from audit.attacks import _torch as T

    module, xt, yt, gen = T.setup(target, x, y, seed)
    steps = steps or APGD_STEPS
    tally = _Tally(used=torch.zeros(len(xt), dtype=torch.int64),
                   broken=torch.zeros(len(xt), dtype=torch.bool, device=xt.device), best=xt.clone())
    schedule = dict(budget=budget, steps=steps, restarts=restarts, gen=gen)
    if loss == "dlr-t":
        with torch.no_grad():
            order = module(xt).argsort(dim=1, descending=True)
        tally.used += 1
        classes = order.shape[1]
        if classes < 4:
            raise ConfigError(f"apgd-t needs a model with at least 4 classes (this one has {classes}); use apgd-dlr or apgd-ce")
        for rank in range(1, min(APGD_T_TARGETS, classes - 1) + 1):
            tgt = order[:, rank]
            _restarts(module, xt, yt, lambda idx, tgt=tgt: (lambda z, r: T.dlr_targeted_loss(z, yt[idx][r], tgt[idx][r])),
                      tally, **schedule)
    else:
        if loss == "dlr":
            with torch.no_grad():
                classes = module(xt[:1]).shape[1]  # a shape probe, not an attack query
            if classes < 3:
                raise ConfigError(f"apgd-dlr needs a model with at least 3 classes (this one has {classes}); use apgd-ce")
        fn = T.ce_loss if loss == "ce" else T.dlr_loss
        _restarts(module, xt, yt, lambda idx: (lambda z, r: fn(z, yt[idx][r])), tally, **schedule)
    return tally.best.cpu().numpy().astype(np.float32), tally.broken.cpu().numpy(), tally.used.numpy()


@register_attack("apgd-ce", white_box=True, summary="Auto-PGD on the cross-entropy (Croce & Hein 2020), 100 steps")
def apgd_ce(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None):
    """APGD with the cross-entropy loss."""
    return _run(target, x, y, budget, seed, steps, restarts, "ce")


@register_attack("apgd-dlr", white_box=True, summary="Auto-PGD on the Difference of Logits Ratio loss, 100 steps")
def apgd_dlr(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None):
    """APGD with the untargeted DLR loss (scale-invariant; needs >= 3 classes)."""
    return _run(target, x, y, budget, seed, steps, restarts, "dlr")


@register_attack("apgd-t", white_box=True, summary="targeted Auto-PGD (DLR) against the 9 most likely other classes")
def apgd_t(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None):
    """APGD-T: the targeted DLR loss, one run per target class (needs >= 4 classes)."""
    return _run(target, x, y, budget, seed, steps, restarts, "dlr-t")
