"""Torch helpers of the white-box attacks: the module, seeded noise, losses, steps and projections.

Imported only by the white-box attacks, inside their functions: `import audit.attacks` needs no torch.
"""

from __future__ import annotations

import numpy as np
import torch

from audit.attacks.budget import Budget


def setup(target, x: np.ndarray, y: np.ndarray, seed: int):
    """(module, x tensor, y tensor, CPU generator seeded with `seed`) on the module's device."""
    module = target.module()
    params = list(module.parameters()) + list(module.buffers())
    device = params[0].device if params else torch.device("cpu")
    gen = torch.Generator().manual_seed(int(seed) % (2 ** 63))
    return module, torch.from_numpy(np.ascontiguousarray(x)).to(device), torch.from_numpy(y).to(device), gen


def per_sample_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """[N, 1, 1, 1] L-inf or L2 norm of each sample of `t`."""
    flat = t.flatten(1)
    n = flat.abs().amax(1) if norm == "linf" else flat.norm(p=2, dim=1)
    return n.view(-1, 1, 1, 1)


def random_start(x: torch.Tensor, budget: Budget, gen: torch.Generator) -> torch.Tensor:
    """A random point of the ball around `x` (uniform per pixel for L-inf; random direction and radius for L2)."""
    if budget.norm == "linf":
        delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * budget.eps
    else:
        d = torch.randn(x.shape, generator=gen)
        r = torch.rand((len(x), 1, 1, 1), generator=gen)
        delta = d / per_sample_norm(d, "l2").clamp_min(1e-12) * r * budget.eps
    return (x + delta.to(x.device)).clamp(0, 1)


def project(x_adv: torch.Tensor, x: torch.Tensor, budget: Budget) -> torch.Tensor:
    """`x_adv` projected onto the ball around `x`, then clipped to [0, 1]."""
    delta = x_adv - x
    if budget.norm == "linf":
        delta = delta.clamp(-budget.eps, budget.eps)
    else:
        n = per_sample_norm(delta, "l2")
        delta = delta * torch.where(n > budget.eps, budget.eps / n.clamp_min(1e-12), torch.ones_like(n))
    return (x + delta).clamp(0, 1)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent step of unit size: sign(grad) for L-inf, grad / ||grad||_2 for L2."""
    if norm == "linf":
        return grad.sign()
    return grad / per_sample_norm(grad, "l2").clamp_min(1e-12)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy."""
    return torch.nn.functional.cross_entropy(logits, y, reduction="none")


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Croce & Hein's untargeted Difference of Logits Ratio: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3)."""
    srt = logits.sort(dim=1).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    top_is_y = (logits.argmax(1) == y).float()
    other = srt[:, -2] * top_is_y + srt[:, -1] * (1 - top_is_y)
    return -(z_y - other) / (srt[:, -1] - srt[:, -3] + 1e-12)


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)."""
    srt = logits.sort(dim=1).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    z_t = logits.gather(1, t[:, None])[:, 0]
    return -(z_y - z_t) / (srt[:, -1] - 0.5 * (srt[:, -3] + srt[:, -4]) + 1e-12)


def loss_and_grad(module, x_adv: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-sample loss, logits, d loss / d x_adv): one forward and one backward pass."""
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = module(x_adv)
        loss = loss_fn(logits)
        grad, = torch.autograd.grad(loss.sum(), [x_adv])
    return loss.detach(), logits.detach(), grad.detach()
