"""The fine-tuning configuration (`FinetuneConfig`) and the paper's defaults per task type.

Defaults follow the fine-tuning setups of Yamada & Otani, "Transferability of ImageNet Robustness to
Downstream Tasks", and its supplement: CIFAR-10 uses SGD (momentum .9, weight decay 5e-4, lr .01
divided by 10 every 50 epochs, batch 64); detection SGD lr .02 with steps at 2/3 and 8/9 of the run
(the Mask R-CNN "1x" shape); segmentation SGD lr .01 with poly decay (power .9), as UperNet is
trained in mmsegmentation, which the paper's segmentation sweep (.0025-.01) is expressed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import ConfigError

TASK_TYPES = {
    "cifar10": "classification", "classification": "classification",
    "coco": "detection", "detection": "detection",
    "ade20k": "segmentation", "segmentation": "segmentation",
}

DEFAULTS = {
    "classification": {"lr": 0.01, "batch_size": 64, "epochs": 100, "weight_decay": 5e-4, "input_size": (32, 32)},
    "detection": {"lr": 0.02, "batch_size": 2, "epochs": 12, "weight_decay": 1e-4, "input_size": (800, 1333)},
    "segmentation": {"lr": 0.01, "batch_size": 8, "epochs": 40, "weight_decay": 5e-4, "input_size": (512, 512)},
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs; `None` fields take the task type's paper default.

    Example:
        >>> cfg = FinetuneConfig(task="cifar10", data="data/cifar", backbone="resnet50", out="runs/r50")
        >>> cfg.resolved().lr
        0.01
    """

    task: str
    data: str | Path
    backbone: str
    out: str | Path
    weights: str = "imagenet"  # "imagenet", "none" or a path to a local checkpoint
    mode: str = "full"  # "fixed" (frozen backbone and BN statistics) or "full"
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    augment: str = "none"  # "none", "prime" or "augmix"
    jsd: bool = False  # AugMix Jensen-Shannon consistency loss (classification only)
    input_size: tuple[int, int] | None = None  # classification/segmentation: resize; detection: (min_size, max_size)
    val_split: str | None = None
    format: str | None = None  # dataset layout (audit.datasets.recognize.FORMATS); None: recognised from data
    num_classes: int | None = None  # generic segmentation folders only
    head: str | None = None  # detection: "fasterrcnn" (default) or "maskrcnn"
    workers: int = 0
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    max_steps: int | None = None  # cap on steps per epoch (smoke tests, quick looks)
    progress: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def task_type(self) -> str:
        """classification, detection or segmentation."""
        try:
            return TASK_TYPES[self.task]
        except KeyError:
            raise ConfigError(f"unknown task '{self.task}'; valid: {', '.join(TASK_TYPES)}") from None

    def resolved(self) -> "FinetuneConfig":
        """A copy with the defaults filled in and the values checked."""
        d = DEFAULTS[self.task_type]
        values = {k: (getattr(self, k) if getattr(self, k) is not None else d[k])
                  for k in ("lr", "batch_size", "epochs", "weight_decay", "input_size")}
        cfg = FinetuneConfig(**{**self.__dict__, **values})
        cfg.input_size = tuple(int(v) for v in cfg.input_size)
        cfg.head = cfg.head or {"classification": "linear", "detection": "fasterrcnn", "segmentation": "upernet"}[cfg.task_type]
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ConfigError (one line) on inconsistent values."""
        if self.mode not in ("fixed", "full"):
            raise ConfigError(f"--mode must be 'fixed' or 'full', got '{self.mode}'")
        if self.augment not in ("none", "prime", "augmix"):
            raise ConfigError(f"--augment must be none, prime or augmix, got '{self.augment}'")
        if self.augment == "augmix" and self.task_type != "classification":
            raise ConfigError(f"--augment augmix applies to classification only (AugMix's geometric ops would move "
                              f"{self.task_type} labels); use --augment prime for {self.task}")
        if self.jsd and self.augment != "augmix":
            raise ConfigError("--jsd is the AugMix consistency loss; use it with --augment augmix")
        for name in ("lr", "epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise ConfigError(f"--input-size must be two sizes >= 16 (H W), got {self.input_size}")
        if self.weights not in ("imagenet", "none") and not Path(self.weights).is_file():
            raise ConfigError(f"--weights must be imagenet, none or a checkpoint file; {self.weights} is not a file")
        if self.head not in {"classification": ("linear",), "detection": ("fasterrcnn", "maskrcnn"),
                             "segmentation": ("upernet",)}[self.task_type]:
            raise ConfigError(f"head '{self.head}' does not fit task {self.task}")
