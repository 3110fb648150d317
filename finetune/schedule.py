"""Optimizers and learning-rate schedules per task type (the paper's defaults, see config.py).

Schedules are stepped once per iteration and expressed as LambdaLR factors of the iteration, so the
scheduler state is a counter that resumes exactly.
"""

from __future__ import annotations

import torch

from finetune.config import FinetuneConfig


def make_optimizer(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """SGD (momentum .9) over the trainable parameters; frozen backbones contribute none.

    Example:
        >>> opt = make_optimizer(model, cfg.resolved())  # doctest: +SKIP
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def lr_factor(task_type: str, epochs: int, steps_per_epoch: int):
    """The multiplicative lr factor as a function of the iteration index.

    classification: /10 every 50 epochs; detection: /10 at 2/3 and 8/9 of the run; segmentation:
    poly decay (1 - it / total) ** 0.9.

    Example:
        >>> f = lr_factor("classification", 100, 10)
        >>> f(0), round(f(500), 6), round(f(999), 6)
        (1.0, 0.1, 0.1)
    """
    total = max(1, epochs * steps_per_epoch)
    if task_type == "classification":
        return lambda it: 0.1 ** (it // max(1, 50 * steps_per_epoch))
    if task_type == "detection":
        marks = (int(total * 2 / 3), int(total * 8 / 9))
        return lambda it: 0.1 ** sum(it >= m for m in marks if m > 0)
    return lambda it: max(0.0, 1 - it / total) ** 0.9


def make_scheduler(optimizer: torch.optim.Optimizer, task_type: str, epochs: int, steps_per_epoch: int):
    """A per-iteration LambdaLR with `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(task_type, epochs, steps_per_epoch))
