"""The fine-tuning loop: one process on CPU or GPU, or several GPUs under torchrun (DDP).

Reproducible and resumable: every random draw comes from seeded generators (model init, the
sampler's per-epoch shuffle, a per-step augmentation generator) and the checkpoint written after
each epoch carries the optimizer, scheduler and RNG states, so `--resume` continues exactly where
an uninterrupted run would be. Only rank 0 writes (checkpoint, JSON-lines log).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from audit.errors import CheckpointError, ConfigError
from audit.io.safety import prepare_out
from finetune.checkpoint import load_checkpoint, save_checkpoint
from finetune.config import IMAGENET_MEAN, IMAGENET_STD, FinetuneConfig
from finetune.data import TaskData, collate, open_split
from finetune.evaluate import evaluate
from finetune.models import backbone_of, build_model, resolve_backbone
from finetune.schedule import make_optimizer, make_scheduler
from finetune.steps import training_loss
from finetune.weights import load_backbone_weights

CHECKPOINT = "checkpoint.pt"
LOG = "train_log.jsonl"


def _dist() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for, but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


def _model_cfg(cfg: FinetuneConfig, train_reader) -> tuple[dict, list | None]:
    """build_model kwargs and the detection label -> category id table."""
    model = {"backbone": resolve_backbone(cfg.backbone), "head": cfg.head, "mode": cfg.mode,
             "num_classes": len(train_reader.class_names)}
    label_to_category = None
    if cfg.task_type == "detection":
        label_to_category = [None] + list(train_reader.category_ids)
        model.update(num_classes=len(label_to_category), min_size=cfg.input_size[0], max_size=cfg.input_size[1],
                     mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    # architecture knobs (smaller heads for quick runs); the defaults are the published sizes
    model.update({k: int(cfg.extra[k]) for k in ("decoder_channels", "fpn_channels", "rois_per_image", "detections_per_image",
                                                  "proposals_per_image") if k in cfg.extra})
    return model, label_to_category


def _preprocessing(cfg: FinetuneConfig) -> dict:
    det = cfg.task_type == "detection"
    return {"input_size": list(cfg.input_size), "resize": "keep_ratio" if det else "fixed",
            "min_size": cfg.input_size[0] if det else None, "max_size": cfg.input_size[1] if det else None,
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "normalize_in_model": det}


def _init_weights(model: torch.nn.Module, cfg: FinetuneConfig) -> dict | None:
    if cfg.weights in ("imagenet", "none"):
        return None
    return load_backbone_weights(backbone_of(model).body, cfg.weights)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Run:
    """The state of one fine-tuning run (so the steps below stay short)."""

    def __init__(self, cfg: FinetuneConfig):
        self.cfg = cfg
        self.rank, self.world, local = _dist()
        self.device = _device(cfg.device, local)
        self.out = Path(cfg.out)
        self.train_reader = open_split(cfg.task, cfg.data, True, num_classes=cfg.num_classes, format=cfg.format)
        self.val_reader = open_split(cfg.task, cfg.data, False, cfg.val_split, cfg.num_classes, cfg.format)
        self.model_cfg, self.label_to_category = _model_cfg(cfg, self.train_reader)
        self.pre = _preprocessing(cfg)
        self.with_masks = cfg.head == "maskrcnn"
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_cfg, pretrained=cfg.weights == "imagenet")
        self.weights_report = _init_weights(self.model, cfg)
        self.model.to(self.device)
        label_of = {c: i for i, c in enumerate(self.label_to_category or []) if c is not None}
        size = cfg.input_size if cfg.task_type != "detection" else None
        self.data = TaskData(self.train_reader, cfg.task_type, size, label_of, self.with_masks)
        self.sampler = torch.utils.data.DistributedSampler(self.data, self.world, self.rank, shuffle=True, seed=cfg.seed)
        self.loader = torch.utils.data.DataLoader(self.data, batch_size=cfg.batch_size, sampler=self.sampler,
                                                  num_workers=cfg.workers, collate_fn=collate, drop_last=len(self.data) > cfg.batch_size)
        self.steps_per_epoch = min(len(self.loader), cfg.max_steps or len(self.loader))
        self.optimizer = make_optimizer(self.model, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg.task_type, cfg.epochs, self.steps_per_epoch)
        self.start_epoch = self._resume() if cfg.resume else 0
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _resume(self) -> int:
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise CheckpointError(f"--resume: no checkpoint to resume from at {path}; run without --resume first")
        ckpt = load_checkpoint(path)
        if {k: ckpt["model"].get(k) for k in ("backbone", "head", "mode")} != {k: self.model_cfg[k] for k in ("backbone", "head", "mode")}:
            raise CheckpointError(f"--resume: {path} is a {ckpt['model']['backbone']} {ckpt['model']['head']} "
                                  f"({ckpt['model']['mode']}) run, not this one; use another --out")
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        return int(ckpt["epoch"])

    def checkpoint(self, epoch: int, final_metric: dict | None = None) -> Path:
        cfg = self.cfg
        import timm

        prov = {"backbone": self.model_cfg["backbone"], "weights": str(cfg.weights), "mode": cfg.mode, "augment": cfg.augment,
                "lr": cfg.lr, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "dataset": {"task": cfg.task, "path": str(cfg.data),
                "train_images": len(self.data), "val_images": len(self.val_reader)}, "final_metric": final_metric or {},
                "torch": str(torch.__version__), "timm": str(timm.__version__), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "seed": cfg.seed, "world_size": self.world, "weights_report": self.weights_report and
                {k: len(v) for k, v in self.weights_report.items()}}
        return save_checkpoint({
            "task": cfg.task_type, "model": self.model_cfg, "state_dict": self.model.state_dict(),
            "class_names": list(self.train_reader.class_names), "label_to_category": self.label_to_category,
            "ignore_index": 255, "preprocessing": self.pre, "provenance": prov, "epoch": epoch,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "rng": _rng_state(),
        }, self.out / CHECKPOINT)

    def epoch(self, epoch: int, log) -> None:
        from tqdm import tqdm

        self.net.train()
        self.sampler.set_epoch(epoch)
        bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
                   disable=not self.cfg.progress or self.rank != 0, leave=False)
        for step, (images, targets) in enumerate(self.loader):
            if step >= self.steps_per_epoch:
                break
            g = torch.Generator().manual_seed(hash((self.cfg.seed, epoch, step, self.rank)) & 0x7FFF_FFFF)
            loss = training_loss(self.net, images, targets, self.cfg, self.pre, g, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if self.rank == 0:
                log({"epoch": epoch + 1, "step": step + 1, "loss": float(loss.detach()), "lr": self.optimizer.param_groups[0]["lr"],
                     "time": round(time.time(), 3)})
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        bar.close()


def run_finetune(config: FinetuneConfig) -> Path:
    """Fine-tune per `config`; write a checkpoint each epoch and return the final checkpoint's path.

    Example:
        >>> path = run_finetune(FinetuneConfig(task="cifar10", data="data/cifar", backbone="resnet18",
        ...                                    weights="none", out="runs/r18", epochs=1))  # doctest: +SKIP
    """
    cfg = config.resolved()
    resolve_backbone(cfg.backbone)  # fail on a bad name before reading any data
    prepare_out(cfg.out)
    run = _Run(cfg)
    with open(run.out / LOG, "a" if cfg.resume else "w") as fh:
        def log(record: dict) -> None:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        for epoch in range(run.start_epoch, cfg.epochs):
            run.epoch(epoch, log)
            if run.rank == 0:
                run.checkpoint(epoch + 1)
        path = run.out / CHECKPOINT
        if run.rank == 0:
            metric = evaluate(run.model, run.val_reader, cfg.task_type, run.pre, run.device, cfg.batch_size,
                              run.label_to_category, run.with_masks, limit=cfg.extra.get("eval_limit"))
            log({"epoch": cfg.epochs, "final_metric": metric, "time": round(time.time(), 3)})
            path = run.checkpoint(cfg.epochs, metric)
    if run.world > 1:
        torch.distributed.barrier()  # the other ranks wait for rank 0's evaluation and checkpoint
        torch.distributed.destroy_process_group()
    return path
