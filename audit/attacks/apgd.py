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
    """One APGD run on tensors x, y; returns (adversarial or best-loss images, broken mask, evaluations)."""
    import torch

    from audit.attacks import _torch as T

    marks = checkpoints(steps)
    adv = _start(x, budget, gen)
    loss, logits, grad = T.loss_and_grad(module, adv, loss_fn)
    used = 1
    broken = logits.argmax(1) != y
    out = x.clone()
    out[broken] = adv[broken]
    loss_best, x_best, grad_best = loss.clone(), adv.clone(), grad.clone()
    eta = torch.full((len(x), 1, 1, 1), 2.0 * budget.eps, device=x.device)
    x_prev, loss_prev = adv.clone(), loss.clone()
    rises = torch.zeros(len(x), device=x.device)
    reduced_before = torch.ones(len(x), dtype=torch.bool, device=x.device)
    best_at_check, last_mark = loss_best.clone(), 0
    for k in range(steps):
        a = 1.0 if k == 0 else MOMENTUM
        z = T.project(adv + eta * T.ascent_direction(grad, budget.norm), x, budget)
        new = T.project(adv + a * (z - adv) + (1 - a) * (adv - x_prev), x, budget)
        x_prev, adv = adv, new
        loss, logits, grad = T.loss_and_grad(module, adv, loss_fn)
        used += 1
        wrong = logits.argmax(1) != y
        first = wrong & ~broken
        out[first] = adv[first]
        broken |= wrong
        rises += (loss > loss_prev).float()
        loss_prev = loss
        better = loss > loss_best
        x_best[better], grad_best[better], loss_best[better] = adv[better], grad[better], loss[better]
        if k + 1 in marks:
            span = k + 1 - last_mark
            halve = (rises <= RHO * span) | (~reduced_before & (best_at_check >= loss_best))
            eta[halve] /= 2
            adv[halve], grad[halve] = x_best[halve], grad_best[halve]
            reduced_before, best_at_check, last_mark = halve, loss_best.clone(), k + 1
            rises.zero_()
    out[~broken] = x_best[~broken]
    return out, broken, used


def _restarts(module, x, y, budget, steps, restarts, gen, make_loss, used, broken, best):
    """`restarts` APGD runs, each on the images of (x, y) not yet broken; updates used / broken / best."""
    import torch

    for _ in range(restarts):
        idx = torch.nonzero(~broken).flatten()
        if not len(idx):
            return
        yi = y[idx]
        adv, hit, n = apgd_single(module, x[idx], yi, budget, steps, gen, make_loss(idx))
        used[idx.cpu()] += n
        best[idx] = adv  # the adversarial ones, and the best-loss points of the rest
        broken[idx[hit]] = True


def _run(target, x, y, budget, seed, steps, restarts, loss: str):
    import torch

    from audit.attacks import _torch as T

    module, xt, yt, gen = T.setup(target, x, y, seed)
    steps = steps or APGD_STEPS
    used = torch.zeros(len(xt), dtype=torch.int64)
    broken = torch.zeros(len(xt), dtype=torch.bool, device=xt.device)
    best = xt.clone()
    if loss == "dlr-t":
        with torch.no_grad():
            order = module(xt).argsort(dim=1, descending=True)
        used += 1
        classes = order.shape[1]
        if classes < 4:
            raise ConfigError(f"apgd-t needs a model with at least 4 classes (this one has {classes}); use apgd-dlr or apgd-ce")
        for rank in range(1, min(APGD_T_TARGETS, classes - 1) + 1):
            tgt = order[:, rank]
            _restarts(module, xt, yt, budget, steps, restarts, gen,
                      lambda idx: (lambda z: T.dlr_targeted_loss(z, yt[idx], tgt[idx])), used, broken, best)
    else:
        if loss == "dlr":
            with torch.no_grad():
                classes = module(xt[:1]).shape[1]  # a shape probe, not an attack query
            if classes < 3:
                raise ConfigError(f"apgd-dlr needs a model with at least 3 classes (this one has {classes}); use apgd-ce")
        fn = T.ce_loss if loss == "ce" else T.dlr_loss
        _restarts(module, xt, yt, budget, steps, restarts, gen, lambda idx: (lambda z: fn(z, yt[idx])), used, broken, best)
    return best.cpu().numpy().astype(np.float32), broken.cpu().numpy(), used.numpy()


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
