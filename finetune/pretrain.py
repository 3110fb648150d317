"""A tiny stand-in for ImageNet pre-training, standard or adversarial, for studies that run on a CPU.

Seed 003 (Zhang et al.) compares standard with adversarially robust ImageNet pre-training. Robust
ImageNet checkpoints exist for ResNet-50 (a study file gives them as `weights: PATH`), but not for the
tiny test networks a CPU study uses; so a backbone may instead be pre-trained here on synthetic shapes
(32x32, drawn with a seed of its own, not the downstream data), either on clean images or with PGD
adversarial training (Madry et al.: L-inf, random start, on [0, 1] pixels before normalisation). The
body's weights are saved as a plain state dict that `finetune.weights.load_backbone_weights` reads.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.datasets import synthetic
from audit.errors import ConfigError
from audit.results.document import atomic_write_bytes, atomic_write_text
from finetune.config import IMAGENET_MEAN, IMAGENET_STD

DEFAULTS = {"adversarial": False, "eps": 8 / 255, "pgd_steps": 3, "epochs": 3, "n_images": 512, "size": 32,
            "batch_size": 64, "lr": 3e-3, "seed": 1}


def settings(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Checked pre-training settings (DEFAULTS overridden by `raw`); one-line errors naming `where`.

    Example:
        >>> settings({"adversarial": True}, "study")["pgd_steps"]
        3
    """
    unknown = sorted(str(k) for k in raw if k not in DEFAULTS)
    if unknown:
        raise ConfigError(f"{where}: unknown pretrain key(s) {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    out = {**DEFAULTS, **raw}
    if not isinstance(out["adversarial"], bool):
        raise ConfigError(f"{where}: pretrain.adversarial must be true or false")
    for key in ("pgd_steps", "epochs", "n_images", "size", "batch_size", "seed"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < (0 if key == "seed" else 1):
            raise ConfigError(f"{where}: pretrain.{key} must be a positive integer, got {out[key]!r}")
    for key in ("eps", "lr"):
        if not isinstance(out[key], (int, float)) or isinstance(out[key], bool) or not 0 < out[key] <= 1:
            raise ConfigError(f"{where}: pretrain.{key} must be a number in (0, 1], got {out[key]!r}")
    return out


def pretrain_backbone(arch: str, out: str | Path, options: dict[str, Any], log=lambda m: None) -> Path:
    """Pre-train `arch` on synthetic shapes (PGD-adversarially when options["adversarial"]); save its body.

    Skipped when `out` and its settings file show the same pre-training already finished.

    Example:
        >>> pretrain_backbone("test_resnet", "runs/pre/robust.pt", settings({"adversarial": True}, "x"))  # doctest: +SKIP
    """
    from finetune.models import build_model

    out = Path(out)
    marker = out.with_suffix(".json")
    wanted = json.dumps({"arch": arch, **options}, sort_keys=True)
    if out.is_file() and marker.is_file() and marker.read_text() == wanted:
        return out
    log(f"pre-training {arch} on synthetic shapes ({'PGD adversarial' if options['adversarial'] else 'standard'})")
    torch.manual_seed(options["seed"])
    rng = np.random.default_rng(options["seed"])
    labels = np.arange(options["n_images"]) % len(synthetic.SHAPES)
    size = options["size"]
    images = np.stack([synthetic.draw_scene(rng, size, size, 1, [k])[0] for k in labels])
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    y = torch.tensor(labels)
    model = build_model({"backbone": arch, "head": "linear", "num_classes": len(synthetic.SHAPES), "mode": "full"})
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    forward = lambda v: model((v - mean) / std)  # noqa: E731  attacked and trained on [0, 1] pixels
    opt = torch.optim.Adam(model.parameters(), lr=options["lr"])
    gen = torch.Generator().manual_seed(options["seed"])
    for _ in range(options["epochs"]):
        for idx in torch.randperm(len(x), generator=gen).split(options["batch_size"]):
            xb, yb = x[idx], y[idx]
            if options["adversarial"]:
                xb = pgd(forward, model, xb, yb, options["eps"], options["pgd_steps"], gen)
            model.train()
            loss = nn.functional.cross_entropy(forward(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    buf = io.BytesIO()
    torch.save(model.backbone.body.state_dict(), buf)
    atomic_write_bytes(out, buf.getvalue())
    atomic_write_text(marker, wanted)
    return out


def pgd(forward, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
        gen: torch.Generator) -> torch.Tensor:
    """L-inf PGD with a random start (step 2.5 eps / steps), on [0, 1] pixels, the model in eval mode."""
    model.eval()
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    step = 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = nn.functional.cross_entropy(forward((x + delta).clamp(0, 1)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()
