"""Loading published backbone checkpoints (robust ResNet-50s and others) into a `Backbone`.

Robust models come as plain state dicts, wrapped ({"state_dict": ...}, {"model": ...}), saved from
DataParallel ("module." prefixes) or with the backbone under a prefix ("backbone.", "encoder.").
torchvision and timm ResNets share parameter names, so both load into timm ResNets directly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from audit.errors import CheckpointError

_WRAPPERS = ("state_dict", "model", "model_state", "net", "module")
_PREFIXES = ("module.", "model.", "backbone.", "encoder.", "body.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint file, unwrapped and without "module." prefixes.

    Example:
        >>> sd = read_state_dict("ant_resnet50.pth")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}; pass --weights imagenet, none or a checkpoint path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / non-torch files
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
    for _ in range(3):  # wrappers can nest: {"model": {"state_dict": ...}}
        if isinstance(obj, dict):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is not None and not any(torch.is_tensor(v) for v in obj.values()):
                obj = inner
    if not isinstance(obj, dict) or not any(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict (looked inside {', '.join(_WRAPPERS)})")
    return {_strip(k): v for k, v in obj.items() if torch.is_tensor(v)}


def _strip(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def _match(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """Rename `source` keys onto `target` keys, trying the usual prefixes; the best (prefix, mapping)."""
    best: tuple[str, dict[str, torch.Tensor]] = ("", {})
    for prefix in ("",) + _PREFIXES:
        renamed = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        hits = {k: v for k, v in renamed.items() if k in target and target[k].shape == v.shape}
        if len(hits) > len(best[1]):
            best = (prefix, hits)
    return best


def load_backbone_weights(body: nn.Module, path: str | Path) -> dict:
    """Load a checkpoint into a backbone network, warning about missing and unexpected keys.

    Returns {"loaded", "missing", "unexpected"} (key lists). Raises CheckpointError if nothing matches.

    Example:
        >>> report = load_backbone_weights(model.backbone.body, "augmix_resnet50.pth")  # doctest: +SKIP
    """
    source = read_state_dict(path)
    target = body.state_dict()
    prefix, matched = _match(source, target)
    if not matched:
        raise CheckpointError(f"no parameter of {path} fits the backbone ({len(source)} keys, e.g. "
                              f"{', '.join(list(source)[:3])}; the backbone expects e.g. {', '.join(list(target)[:3])}); "
                              f"check --backbone")
    body.load_state_dict(matched, strict=False)
    missing = [k for k in target if k not in matched and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in source if not (k.startswith(prefix) and k[len(prefix):] in matched)]
    if missing or unexpected:
        warnings.warn(f"{path}: loaded {len(matched)} tensors; {len(missing)} missing (e.g. {', '.join(missing[:3]) or '-'}), "
                      f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3]) or '-'})", stacklevel=2)
    return {"loaded": sorted(matched), "missing": missing, "unexpected": unexpected}
