"""FAB (Croce & Hein, ICML 2020): the Fast Adaptive Boundary attack, untargeted and targeted (FAB-T), L-inf and L2.

FAB looks for the smallest perturbation that changes the class. At the iterate x it linearises the
boundary between the true class c and a class s, g(z) = f_s(x) - f_c(x) + <grad (f_s - f_c)(x), z - x>
(untargeted: the s whose linearised boundary is nearest, |f_s - f_c| / ||grad (f_s - f_c)||_q with q the
dual norm; FAB-T: the target class), and projects both x and the clean image x_orig onto {g = 0} within
the box [0, 1]^d (the smallest step in the attacked norm: `project_to_hyperplane`). The next iterate is

    x <- clip((1 - a) (x + eta d_x) + a (x_orig + eta d_orig), 0, 1),  a = min(|d_x| / (|d_x| + |d_orig|), alpha_max)

with the paper's overshoot eta = 1.05 and alpha_max = 0.1. A misclassified iterate is kept if it is the
smallest found, and the search steps back towards x_orig: x <- x_orig + beta (x - x_orig), beta = 0.9.
The first run starts at x_orig; each further restart at a random point at distance min(u, eps) / 2 from
it (u: the smallest adversarial norm found so far; L-inf: uniform noise rescaled to that sup-norm, L2: a
Gaussian direction), clipped to [0, 1]. After the iterations the final search (3 steps) moves the best
adversarial point along the segment to x_orig, to where the margin z_c - z_a, interpolated linearly
between the last correct and the last adversarial point, crosses zero (each step keeps the side it lands on).

In an audit FAB answers "is there an adversarial example within eps": an image leaves the computation as
soon as a misclassified point within the budget is found (the updates are per image, so the others'
trajectories do not change), and the images not broken within the budget come back unperturbed.
`minimal_adversarial` runs it without a budget and returns the smallest perturbation found per image.
Default 100 iterations (the paper's); FAB-T attacks the 2nd..10th most likely classes of the clean image
in turn (AutoAttack's 9 targets, as APGD-T). Every forward pass counts one evaluation: the clean pass, one
per iteration (its linearisation also tells whether the previous step broke the image), one more after
each backward step, and the final search's. The untargeted version backpropagates once per class in each
pass, FAB-T once: FAB-T is the one for many classes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from audit.attacks.budget import Budget
from audit.attacks.core import batch_seed, check_inputs, register_attack
from audit.errors import ConfigError

FAB_STEPS = 100
FAB_T_TARGETS = 9
ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9
FINAL_SEARCH_STEPS = 3
_TINY = 1e-12


def project_to_hyperplane(x, w, c, norm: str):
    """The smallest step d (L-inf or L2) with <w, d> = c and x + d in [0, 1], per row of flat tensors.

    With d_i = sign(w_i) min(r, room_i) (L-inf) or sign(w_i) min(r |w_i|, room_i) (L2), where room_i is
    the distance to the box in the direction sign(w_i) (the KKT form of both problems), <w, d> grows piecewise
    linearly in r: sorting the breakpoints gives the exact r. Where the box cannot reach the hyperplane,
    the box's corner nearest to it (d_i = sign(w_i) room_i).

    Example:
        >>> import torch
        >>> project_to_hyperplane(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 2.0]]), torch.tensor([0.3]), "l2")
        tensor([[0.0600, 0.1200]])
        >>> project_to_hyperplane(torch.tensor([[0.5, 0.9]]), torch.tensor([[1.0, 1.0]]), torch.tensor([0.3]), "linf")
        tensor([[0.2000, 0.1000]])
    """
    import torch

    flip = torch.where(c < 0, -1.0, 1.0).to(w.dtype)  # <w, d> = c  <=>  <-w, d> = -c: solve with c >= 0
    w, c = w * flip[:, None], c * flip
    aw = w.abs()
    live = aw > _TINY
    room = torch.where(w > 0, 1 - x, x).clamp_min(0)
    saturated = torch.where(live, aw * room, 0.0)  # what coordinate i gives once it reaches the box
    if norm == "linf":
        key, slope = torch.where(live, room, 1e30), torch.where(live, aw, 0.0)
    else:
        key, slope = torch.where(live, room / aw.clamp_min(_TINY), 1e30), torch.where(live, aw ** 2, 0.0)
    key, order = key.sort(dim=1)
    saturated, slope = saturated.gather(1, order), slope.gather(1, order)
    before = saturated.cumsum(1) - saturated  # sum over the coordinates already at the box
    after = slope.flip(1).cumsum(1).flip(1)  # rate of the coordinates still growing
    reach = before + key * after  # <w, d> with r at each breakpoint: nondecreasing
    k = (reach < c[:, None]).sum(1, keepdim=True)
    kk = k.clamp(max=x.shape[1] - 1)
    r = (c[:, None] - before.gather(1, kk)) / after.gather(1, kk).clamp_min(_TINY)
    r = torch.where(k < x.shape[1], r.clamp_min(0), torch.inf)
    grow = r if norm == "linf" else r * aw
    return torch.where(live, w.sign() * torch.minimum(grow, room), 0.0)


def _norms(d, norm: str):
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _boundary(module, x, y, t, norm: str, grads: bool = True):
    """Logits at x and the nearest linearised boundary (FAB-T: the target's): (logits, g, w) with
    g(z) = g + <w, z - x> the linear model of f_s - f_y; w is flat. `grads=False`: logits only."""
    import torch

    if not grads:
        with torch.no_grad():
            return module(x), None, None
    x = x.detach().requires_grad_(True)
    rows = torch.arange(len(x), device=x.device)
    with torch.enable_grad():
        z = module(x)
        z_y = z[rows, y]
        classes = [t] if t is not None else [torch.full_like(y, s) for s in range(z.shape[1])]
        best_d = torch.full((len(x),), torch.inf, device=x.device)
        best_g, best_w = torch.zeros(len(x), device=x.device), torch.zeros_like(x).flatten(1)
        for k, s in enumerate(classes):  # one backward per class, keeping only the nearest boundary's gradient
            g = z[rows, s] - z_y
            w, = torch.autograd.grad(g.sum(), [x], retain_graph=k < len(classes) - 1)
            w = w.flatten(1)
            dual = w.abs().sum(1) if norm == "linf" else w.norm(dim=1)
            dist = torch.where(s == y, torch.inf, g.detach().abs() / (dual + _TINY))
            near = (dist < best_d) | (k == 0)
            best_d = torch.where(near, dist, best_d)
            best_g = torch.where(near, g.detach(), best_g)
            best_w = torch.where(near[:, None], w, best_w)
    return z.detach(), best_g, best_w


def _step(x, x0, g, w, norm: str):
    """One FAB step from x: the biased combination of the projections of x and x_orig, overshot, clipped."""
    import torch

    xf, x0f = x.flatten(1), x0.flatten(1)
    both = project_to_hyperplane(torch.cat([xf, x0f]), torch.cat([w, w]), torch.cat([-g, -g - ((x0f - xf) * w).sum(1)]), norm)
    d1, d2 = both[:len(xf)], both[len(xf):]  # one sort for both projections
    n1, n2 = _norms(d1, norm), _norms(d2, norm)
    a = (n1 / (n1 + n2).clamp_min(_TINY)).clamp(0, ALPHA_MAX)[:, None]
    return ((1 - a) * (xf + ETA * d1) + a * (x0f + ETA * d2)).clamp(0, 1).view_as(x)


def _final_search(module, x0, y, lo_z, hi, hi_z, steps: int):
    """Move the adversarial points `hi` towards x0 where the margin, interpolated linearly, crosses zero."""
    import torch

    lo, rows = x0.clone(), torch.arange(len(x0), device=x0.device)
    for _ in range(steps):
        a = hi_z.argmax(1)
        m_lo, m_hi = lo_z[rows, y] - lo_z[rows, a], hi_z[rows, y] - hi_z[rows, a]  # >= 0 and <= 0
        t = (m_lo / (m_lo - m_hi).clamp_min(_TINY)).clamp(0, 1).view(-1, 1, 1, 1)
        mid = lo + t * (hi - lo)
        with torch.no_grad():
            z = module(mid)
        ok = z.argmax(1) == y
        lo[ok], lo_z[ok] = mid[ok], z[ok]
        hi[~ok], hi_z[~ok] = mid[~ok], z[~ok]
    return hi


def fab_single(module, x0, y, clean_z, start, norm: str, steps: int, stop: float, t=None):
    """One FAB run from `start` on tensors; returns (smallest adversarial found, its norm or inf, evaluations).

    An image leaves the run once its smallest adversarial norm is <= `stop` (0: never; the final search
    then refines every image). `clean_z` are the logits of x0, `t` the target classes (None: untargeted).
    """
    import torch

    n, dev = len(x0), x0.device
    best, best_z = x0.clone(), clean_z.clone()
    best_n = torch.full((n,), torch.inf, device=dev)
    used = torch.zeros(n, dtype=torch.int64)
    rows = torch.arange(n, device=dev)  # the images still in the run
    targeted = t is not None
    s = {"x": start.clone(), "x0": x0, "y": y, "t": t if targeted else y}  # per-image state of the images in the run
    z, g, w = _boundary(module, s["x"], y, t, norm, grads=steps > 0)
    used += 1
    for i in range(steps + 1):
        hit = z.argmax(1) != s["y"]
        if hit.any():
            size = _norms(s["x"] - s["x0"], norm)
            better = hit & (size < best_n[rows])
            best[rows[better]], best_z[rows[better]], best_n[rows[better]] = s["x"][better], z[better], size[better]
            keep = best_n[rows] > stop
            if not keep.all():  # broken within the budget: these images are done
                s, z, hit = {k: v[keep] for k, v in s.items()}, z[keep], hit[keep]
                g, w, rows = (g[keep] if g is not None else g), (w[keep] if w is not None else w), rows[keep]
            if i < steps and hit.any():  # the backward step, and the boundary from there
                s["x"][hit] = s["x0"][hit] + BETA * (s["x"][hit] - s["x0"][hit])
                z[hit], g[hit], w[hit] = _boundary(module, s["x"][hit], s["y"][hit], s["t"][hit] if targeted else None, norm)
                used[rows[hit].cpu()] += 1
        if i == steps or not len(rows):
            break
        s["x"] = _step(s["x"], s["x0"], g, w, norm)
        z, g, w = _boundary(module, s["x"], s["y"], s["t"] if targeted else None, norm, grads=i < steps - 1)
        used[rows.cpu()] += 1
    found = rows[best_n[rows] < torch.inf]
    if len(found) and FINAL_SEARCH_STEPS:
        best[found] = _final_search(module, x0[found], y[found], clean_z[found].clone(), best[found].clone(),
                                    best_z[found].clone(), FINAL_SEARCH_STEPS)
        best_n[found] = _norms(best[found] - x0[found], norm)
        used[found.cpu()] += FINAL_SEARCH_STEPS
    return best, best_n, used


def _random_start(x0, radius, norm: str, gen):
    """A random point at distance `radius` (per image) from x0 in the norm, clipped to [0, 1]."""
    import torch

    t = torch.rand(x0.shape, generator=gen) * 2 - 1 if norm == "linf" else torch.randn(x0.shape, generator=gen)
    t = t.to(x0.device)
    return (x0 + radius.view(-1, 1, 1, 1) * t / _norms(t, norm).clamp_min(_TINY).view(-1, 1, 1, 1)).clamp(0, 1)


def _search(module, xt, yt, *, norm: str, eps: float, stop: float, steps: int, restarts: int, gen, targeted: bool):
    """FAB's runs over restarts (and FAB-T's targets), each on the images not yet within `stop`.

    Returns (smallest adversarial found, its norm or inf, evaluations, clean logits)."""
    import torch

    with torch.no_grad():
        clean_z = module(xt)
    used = torch.ones(len(xt), dtype=torch.int64)
    classes = clean_z.shape[1]
    if classes < 2:
        raise ConfigError(f"fab needs a model with at least 2 classes (this one has {classes})")
    order = clean_z.argsort(dim=1, descending=True)
    targets = [order[:, k] for k in range(1, min(FAB_T_TARGETS, classes - 1) + 1)] if targeted else [None]
    best, best_n = xt.clone(), torch.full((len(xt),), torch.inf, device=xt.device)
    best_n[clean_z.argmax(1) != yt] = 0.0  # already misclassified: nothing to find
    for tgt in targets:
        for r in range(restarts):
            idx = torch.nonzero(best_n > stop).flatten()
            if not len(idx):
                return best, best_n, used, clean_z
            x0 = xt[idx]
            start = x0 if r == 0 else _random_start(x0, best_n[idx].clamp(max=eps) / 2, norm, gen)
            adv, size, n = fab_single(module, x0, yt[idx], clean_z[idx], start, norm, steps, stop,
                                      None if tgt is None else tgt[idx])
            used[idx.cpu()] += n
            better = size < best_n[idx]
            best[idx[better]], best_n[idx[better]] = adv[better], size[better]
    return best, best_n, used, clean_z


def _run(target, x, y, budget: Budget, seed: int, steps, restarts: int, targeted: bool):
    import torch

    from audit.attacks import _torch as T

    module, xt, yt, gen = T.setup(target, x, y, seed)
    best, best_n, used, _ = _search(module, xt, yt, norm=budget.norm, eps=budget.eps, stop=budget.eps,
                                    steps=steps or FAB_STEPS, restarts=restarts, gen=gen, targeted=targeted)
    broken = best_n <= budget.eps
    out = torch.where(broken.view(-1, 1, 1, 1), best, xt)  # the unbroken come back unperturbed
    return out.cpu().numpy().astype(np.float32), broken.cpu().numpy(), used.numpy()


@register_attack("fab", white_box=True, summary="FAB: minimal-norm boundary attack (Croce & Hein 2020), all classes, 100 steps")
def fab(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None):
    """Untargeted FAB: the nearest linearised boundary among all classes (one backward per class per step)."""
    return _run(target, x, y, budget, seed, steps, restarts, targeted=False)


@register_attack("fab-t", white_box=True, summary="targeted FAB against the 9 most likely other classes, 100 steps each")
def fab_t(target, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int, steps=None, restarts=1, queries=None):
    """FAB-T: one targeted FAB run per target class (the 2nd..10th most likely), each on the unbroken images."""
    return _run(target, x, y, budget, seed, steps, restarts, targeted=True)


def minimal_adversarial(target, x, y, norm: str, *, eps: float, seed: int = 0, steps: int | None = None,
                        restarts: int = 1, targeted: bool = False, batch_size: int = 32,
                        progress: Callable[[int], None] = lambda n: None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAB without a budget: the smallest adversarial perturbation found for every image.

    Args:
        target: a `TorchTarget` (or any target with gradients).
        x, y: images float32 [N, 3, H, W] in [0, 1] and labels.
        norm: "linf" or "l2".
        eps: the scale of the restarts' random starts (at distance min(u, eps) / 2; unused with restarts=1).
        seed, steps, restarts, targeted: as for `run_attack("fab" / "fab-t", ...)`.
        progress: called with the number of images each finished batch adds.

    Returns:
        (x_adv float32, distance float64 per image: 0 if misclassified clean, inf if none was found,
        evaluations per image). Where none was found, x_adv is the clean image.

    Example:
        >>> x_adv, dist, used = minimal_adversarial(target, x, y, "l2", eps=0.5)  # doctest: +SKIP
        >>> float(np.median(dist))  # doctest: +SKIP
        0.21
    """
    from audit.attacks import _torch as T

    Budget(norm, eps)  # validates the norm and eps
    x, y = check_inputs(x, y)
    if not getattr(target, "differentiable", False):
        raise ConfigError(f"FAB needs gradients but the {getattr(target, 'source', 'given')} target has none")
    out, dist, used = x.copy(), np.full(len(x), np.inf), np.zeros(len(x), np.int64)
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        module, xt, yt, gen = T.setup(target, x[sl], y[sl], batch_seed(seed, start))
        best, best_n, n, _ = _search(module, xt, yt, norm=norm, eps=eps, stop=0.0, steps=steps or FAB_STEPS,
                                     restarts=restarts, gen=gen, targeted=targeted)
        out[sl], dist[sl], used[sl] = best.cpu().numpy(), best_n.cpu().numpy(), n.numpy()
        progress(len(x[sl]))
    return out, dist, used
