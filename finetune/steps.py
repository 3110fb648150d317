"""One training step's loss per task, with the batch augmented by PRIME / AugMix first."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from finetune.augment import augmix, prime
from finetune.augment.augmix import jsd_loss
from finetune.config import FinetuneConfig


def _norm(x: torch.Tensor, pre: dict) -> torch.Tensor:
    mean = torch.tensor(pre["mean"], device=x.device)[:, None, None]
    return (x - mean) / torch.tensor(pre["std"], device=x.device)[:, None, None]


def _augment(x: torch.Tensor, cfg: FinetuneConfig, g: torch.Generator) -> torch.Tensor:
    if cfg.augment == "prime":
        profile = "cifar" if max(x.shape[-2:]) <= 64 else "imagenet"
        return prime(x, g, profile, geometric=cfg.task_type == "classification")
    if cfg.augment == "augmix":
        return augmix(x, g)
    return x


def training_loss(net, images, targets, cfg: FinetuneConfig, pre: dict, g: torch.Generator, device) -> torch.Tensor:
    """The loss of one batch (augmented on the CPU with generator `g`, then moved to `device`).

    Example:
        >>> loss = training_loss(model, x, y, cfg, ckpt_pre, torch.Generator().manual_seed(0), "cpu")  # doctest: +SKIP
    """
    if cfg.task_type == "detection":
        images = [_augment(im[None], cfg, g)[0].to(device) for im in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        return sum(net(images, targets).values())
    y = targets.to(device)
    if cfg.task_type == "segmentation":
        return F.cross_entropy(net(_norm(_augment(images, cfg, g).to(device), pre)), y, ignore_index=255)
    if cfg.jsd:  # AugMix + JSD: clean, two augmented views in one forward pass
        views = torch.cat([images, augmix(images, g), augmix(images, g)]).to(device)
        clean, aug1, aug2 = net(_norm(views, pre)).chunk(3)
        return F.cross_entropy(clean, y) + 12 * jsd_loss(clean, aug1, aug2)
    return F.cross_entropy(net(_norm(_augment(images, cfg, g).to(device), pre)), y)
