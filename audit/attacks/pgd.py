"""FGSM and PGD (Madry et al. 2018), L-inf and L2, white-box on a differentiable target.

PGD: a seeded random start in the ball, `steps` (default 10) steps of size 2.5 * eps / steps
(robustbench / Madry convention; L-inf sign steps, L2 normalised-gradient steps), projection onto the
ball and clipping to [0, 1] after every step, cross-entropy loss. An image counts as broken if any
iterate is misclassified, and the first such iterate is kept. FGSM: one step of size eps from the
clean image (no random start).

Both run on segmentation too, with `objective=SEGMENTATION` (audit.attacks.objectives): the mean
per-pixel cross-entropy over the valid pixels, every step on every image, the final iterate kept.
`segpgd` (segmentation only) is this PGD with SegPGD's weighting of the pixels (Gu et al. 2022).
"""

from __future__ import annotations

import numpy as np

from audit.attacks.budget import Budget
from audit.attacks.core import register_attack
from audit.attacks.objectives import CLASSIFICATION

TASKS = ("classification", "segmentation")

PGD_STEPS = 10
PGD_STEP_FACTOR = 2.5


@register_attack("fgsm", white_box=True, summary="one signed-gradient (L2: normalised-gradient) step of size eps", tasks=TASKS)
def fgsm(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None,
         objective=CLASSIFICATION):
    """Goodfellow et al. 2015: x + eps * sign(grad CE) (L2: eps * grad / ||grad||), clipped to [0, 1]."""
    from audit.attacks import _torch as T

    module, xt, yt, _ = T.setup(target, x, y, seed)
    _, _, grad = T.loss_and_grad(module, xt, lambda z: objective.loss(z, yt))
    adv = T.project(xt + budget.eps * T.ascent_direction(grad, budget.norm), xt, budget)
    # one forward-backward pass per image; whether it broke the image is run_attack's final check
    return adv.cpu().numpy().astype(np.float32), np.zeros(len(x), bool), np.ones(len(x), np.int64)


@register_attack("pgd", white_box=True, summary="projected gradient descent, random start, 10 steps of 2.5*eps/steps",
                 tasks=TASKS)
def pgd(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps: int | None = None,
        restarts: int = 1, queries=None, objective=CLASSIFICATION):
    """Madry et al. PGD with `restarts` seeded random starts, each on the images not yet broken (an
    unbroken image keeps the final iterate of the restart that left it the lowest `objective.score`)."""
    import torch

    from audit.attacks import _torch as T

    steps = steps or PGD_STEPS
    alpha = PGD_STEP_FACTOR * budget.eps / steps
    module, xt, yt, gen = T.setup(target, x, y, seed)
    best = xt.clone()
    broken = torch.zeros(len(xt), dtype=torch.bool, device=xt.device)
    used = torch.zeros(len(xt), dtype=torch.int64)
    kept = torch.full((len(xt),), float("inf"), device=xt.device)  # the score of each unbroken image's kept iterate
    for _ in range(restarts):
        idx = torch.nonzero(~broken).flatten()
        if not len(idx):
            break
        x0, y0 = xt[idx], yt[idx]
        adv = T.random_start(x0, budget, gen)
        hit = torch.zeros(len(idx), dtype=torch.bool, device=xt.device)
        for step in range(steps):
            alive = torch.nonzero(~hit).flatten()
            if not len(alive):
                break
            _, logits, grad = T.loss_and_grad(module, adv[alive], lambda z: objective.loss(z, y0[alive], step / steps))
            used[idx[alive].cpu()] += 1
            wrong = objective.broken(logits, y0[alive])
            newly = alive[wrong]  # this iterate is already adversarial: keep it
            best[idx[newly]] = adv[newly]
            hit[newly] = True
            step = adv[alive] + alpha * T.ascent_direction(grad, budget.norm)
            adv[alive] = T.project(step, x0[alive], budget)
        last = torch.nonzero(~hit).flatten()  # the final iterate of the still-unbroken images
        if len(last):
            with torch.no_grad():
                logits = module(adv[last])
            used[idx[last].cpu()] += 1
            wrong = objective.broken(logits, y0[last])
            score = objective.score(logits, y0[last])
            better = score <= kept[idx[last]]  # classification: always (an unbroken image scores 1 each restart)
            best[idx[last[better]]] = adv[last[better]]
            kept[idx[last[better]]] = score[better]
            hit[last[wrong]] = True
        broken[idx] = hit
    return best.cpu().numpy().astype(np.float32), broken.cpu().numpy(), used.numpy()


@register_attack("segpgd", white_box=True, summary="SegPGD: PGD whose loss moves weight from right to wrong pixels",
                 tasks=("segmentation",))
def segpgd(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps: int | None = None,
           restarts: int = 1, queries=None, objective=None):
    """Gu et al. 2022: `pgd` with the SegPGD-weighted cross-entropy (audit.attacks.objectives.SEGPGD)."""
    from audit.attacks.objectives import SEGPGD

    return pgd(target, x, y, budget, seed=seed, steps=steps, restarts=restarts, objective=SEGPGD)
