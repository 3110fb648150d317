"""`audit finetune`: fine-tune an ImageNet backbone on CIFAR-10, COCO or ADE20K (the `train` extra)."""

from __future__ import annotations

import os

import click

from audit.cli.options import FORMAT_CHOICES, FORMAT_HELP
from audit.errors import ConfigError

TASKS = ["cifar10", "coco", "ade20k", "classification", "detection", "segmentation"]


def _size(value: str | None) -> tuple[int, int] | None:
    """'512' -> (512, 512); '480,640' -> (480, 640)."""
    if value is None:
        return None
    try:
        parts = [int(v) for v in value.replace("x", ",").split(",")]
    except ValueError:
        raise ConfigError(f"--input-size takes N or H,W (detection: MIN,MAX), got '{value}'") from None
    if len(parts) not in (1, 2):
        raise ConfigError(f"--input-size takes N or H,W (detection: MIN,MAX), got '{value}'")
    return (parts[0], parts[-1])


@click.command()
@click.option("--task", required=True, type=click.Choice(TASKS), help="Dataset / task type.")
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="Dataset root in its standard layout (cifar-10-batches-py, COCO train2017/val2017, ADEChallengeData2016, "
                   "a YOLO data.yaml, a VOCdevkit, Cityscapes).")
@click.option("--format", "data_format", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--backbone", required=True, help="timm or torchvision name: resnet50, swin_tiny_patch4_window7_224 (swin_t), ...")
@click.option("--weights", default="imagenet", show_default=True, help="imagenet (hub download), none, or a local checkpoint PATH.")
@click.option("--mode", default="full", show_default=True, type=click.Choice(["fixed", "full"]),
              help="fixed: frozen backbone and batch-norm statistics; full: train everything.")
@click.option("--lr", type=float, default=None, help="Learning rate [default: cifar .01, detection .02, segmentation .01].")
@click.option("--epochs", type=int, default=None, help="Epochs [default: cifar 100, detection 12, segmentation 40].")
@click.option("--batch-size", type=int, default=None, help="Batch size per process [default: cifar 64, detection 2, segmentation 8].")
@click.option("--augment", default="none", show_default=True, type=click.Choice(["none", "prime", "augmix"]))
@click.option("--jsd", is_flag=True, help="AugMix Jensen-Shannon consistency loss (weight 12).")
@click.option("--head", type=click.Choice(["linear", "fasterrcnn", "maskrcnn", "upernet"]), default=None,
              help="Task head [default: linear, fasterrcnn, upernet].")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str), help="Output folder (checkpoint.pt, train_log.jsonl).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--input-size", default=None, help="Training size N or H,W (detection: MIN,MAX of the R-CNN resize).")
@click.option("--val-split", default=None, help="Validation split name (val2017, validation, val).")
@click.option("--num-classes", type=int, default=None, help="Class count for generic segmentation folders.")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0), help="Data loader workers.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="At most this many steps per epoch (quick looks).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def finetune(task, data, data_format, backbone, weights, mode, lr, epochs, batch_size, augment, jsd, head, out, resume, input_size,
             val_split, num_classes, workers, seed, device, max_steps, quiet):
    """Fine-tune a backbone with a task head; write OUT/checkpoint.pt for `audit export`.

    Several GPUs: launch with `torchrun --nproc-per-node N -m audit.cli.main finetune ...`.

    Example:

        audit finetune --task cifar10 --data data/cifar --backbone resnet50 --weights augmix_r50.pth --mode fixed --out runs/r50
    """
    from finetune.config import FinetuneConfig

    config = FinetuneConfig(task=task, data=data, format=data_format, backbone=backbone, out=out, weights=weights, mode=mode, lr=lr,
                            epochs=epochs, batch_size=batch_size, augment=augment, jsd=jsd, input_size=_size(input_size),
                            val_split=val_split, num_classes=num_classes, head=head, workers=workers, seed=seed,
                            device=device, resume=resume, max_steps=max_steps, progress=not quiet)
    config.resolved()  # argument errors before torch is imported
    from audit.errors import require

    require("torch", "train", "audit finetune")
    require("timm", "train", "audit finetune")
    from finetune.train import run_finetune

    path = run_finetune(config)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line, from the process that wrote it
        click.echo(f"checkpoint: {path}")
