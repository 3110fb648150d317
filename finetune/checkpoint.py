"""The fine-tuning checkpoint: the contract between `finetune/` and `exporters/`.

A `torch.save`d dict: format "robustaudit.checkpoint", version 1, task, model (build_model kwargs),
state_dict, class_names, label_to_category, ignore_index, preprocessing, provenance, and for
`--resume` epoch, optimizer, scheduler and rng states. Writes are atomic (temp file + rename), so
an interrupted run never leaves a truncated checkpoint.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch.torch_version import TorchVersion

from audit.errors import CheckpointError
from audit.io.safety import atomic_write

FORMAT = "robustaudit.checkpoint"
VERSION = 1
REQUIRED = ("task", "model", "state_dict", "class_names", "preprocessing")


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """Write `ckpt` atomically to `path` (adding format and version).

    Example:
        >>> save_checkpoint({"task": "classification", ...}, "runs/r50/checkpoint.pt")  # doctest: +SKIP
    """
    path = Path(path)
    atomic_write(path, lambda fh: torch.save({"format": FORMAT, "version": VERSION, **ckpt}, fh), what="checkpoint")
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a robustaudit checkpoint, or raise a one-line CheckpointError.

    Example:
        >>> ckpt = load_checkpoint("runs/r50/checkpoint.pt")  # doctest: +SKIP
        >>> model = build_model(ckpt["model"]); model.load_state_dict(ckpt["state_dict"])  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # weights_only: tensors and plain containers only, so a crafted file cannot run code; our own
        # training state (optimizer, LambdaLR counters, torch RNG as a tensor) is plain data by design
        # (TorchVersion, a str subclass, is the provenance's torch version in checkpoints written before this change)
        with torch.serialization.safe_globals([TorchVersion]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it names {found.group(1)}" if found else "it is not a torch file of tensors and plain data"
        raise CheckpointError(f"{path} was not loaded: {what}, which a checkpoint written by `audit finetune` never holds "
                              f"(only tensors and plain data are loaded, so that a crafted file cannot run code)") from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file at all: torch raises many types
        raise CheckpointError(f"cannot read checkpoint {path} ({type(exc).__name__}); it is corrupt or not a torch file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a robustaudit checkpoint (made by `audit finetune`); "
                              f"for published backbone weights use --weights PATH")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}; this robustaudit reads version {VERSION}")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it was not written completely")
    return ckpt
