"""AugMix (Hendrycks et al. 2020) on [0,1] images, for classification.

Operations: autocontrast, equalize, posterize, rotate, solarize, shear, translate (the colour,
contrast, brightness and sharpness ops are left out because they overlap the test corruptions).
Severity 3 as in the AugMix CIFAR code: magnitudes uniform in [0.1, severity/10] of each op's range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from finetune.augment._mix import mix_chains, uniform


def _level(g: torch.Generator, severity: int) -> float:
    return uniform(g, 0.1, severity / 10)


def _signed(g: torch.Generator, value: float) -> float:
    return value if uniform(g) < 0.5 else -value


def _uint8_op(fn):
    """Run a uint8 op (equalize, posterize, ...) on a [0,1] float image."""
    def op(x: torch.Tensor, g: torch.Generator, severity: int) -> torch.Tensor:
        return fn((x * 255).round().to(torch.uint8), g, severity).to(x.dtype) / 255
    return op


OPS = {
    "autocontrast": _uint8_op(lambda x, g, s: TF.autocontrast(x)),
    "equalize": _uint8_op(lambda x, g, s: TF.equalize(x)),
    "posterize": _uint8_op(lambda x, g, s: TF.posterize(x, 4 - min(3, int(_level(g, s) * 4)))),
    "solarize": _uint8_op(lambda x, g, s: TF.solarize(x, 255 - int(_level(g, s) * 255))),
    "rotate": lambda x, g, s: TF.rotate(x, _signed(g, _level(g, s) * 30)),
    "shear": lambda x, g, s: TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                                       shear=[_signed(g, _level(g, s) * 17), 0.0]),
    "translate": lambda x, g, s: TF.affine(x, angle=0.0, translate=[int(_signed(g, _level(g, s) * x.shape[-1] / 3)), 0],
                                           scale=1.0, shear=[0.0, 0.0]),
}


def augmix(batch: torch.Tensor, g: torch.Generator, severity: int = 3) -> torch.Tensor:
    """AugMix each image of an [N, 3, H, W] batch in [0,1]; same shape, values in [0,1].

    Example:
        >>> out = augmix(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0))
        >>> out.shape
        torch.Size([2, 3, 32, 32])
    """
    ops = [lambda x, g, f=f: f(x, g, severity) for f in OPS.values()]
    return torch.stack([mix_chains(img, ops, g) for img in batch])


def jsd_loss(logits_clean: torch.Tensor, logits_aug1: torch.Tensor, logits_aug2: torch.Tensor) -> torch.Tensor:
    """The Jensen-Shannon consistency term of AugMix (multiply by 12, its paper weight).

    Example:
        >>> float(jsd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3)))
        0.0
    """
    probs = [F.softmax(lg, dim=1) for lg in (logits_clean, logits_aug1, logits_aug2)]
    log_mix = torch.clamp(sum(probs) / 3, 1e-7, 1).log()
    return sum(F.kl_div(log_mix, p, reduction="batchmean") for p in probs) / 3
