"""Backbones (timm, with torchvision name aliases) and the task models built on them.

Every model keeps its backbone in a `Backbone` wrapper at `model.backbone` (detection:
`model.backbone.body`), so state dict keys are the same in both transfer modes and fixed mode can
keep the backbone's batch-norm statistics frozen even while the rest of the model trains.
`build_model(checkpoint["model"])` rebuilds the architecture without downloading anything.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from audit.errors import CheckpointError, ConfigError
from finetune.upernet import UperNetHead

# torchvision model names -> the timm architecture with the same layers (timm ResNets use
# torchvision's parameter names, so torchvision ResNet state dicts load as they are).
ALIASES = {"swin_t": "swin_tiny_patch4_window7_224", "swin_tiny": "swin_tiny_patch4_window7_224",
           "mobilenet_v3_large": "mobilenetv3_large_100", "mobilenet_v3_small": "mobilenetv3_small_100",
           "resnext50_32x4d": "resnext50_32x4d", "wide_resnet50_2": "wide_resnet50_2"}


def resolve_backbone(name: str) -> str:
    """The timm name of `name`, or ConfigError listing close names.

    Example:
        >>> resolve_backbone("swin_t")
        'swin_tiny_patch4_window7_224'
    """
    import timm

    name = ALIASES.get(name, name)
    if timm.is_model(name):
        return name
    import difflib

    close = difflib.get_close_matches(name, timm.list_models() + list(ALIASES), n=6, cutoff=0.6)
    hint = f"; close names: {', '.join(close)}" if close else "; see timm.list_models()"
    raise ConfigError(f"unknown backbone '{name}'{hint}")


def _timm_kwargs(name: str) -> dict:
    # Swin / ViT-style models check the input size against the pretraining size unless told not to.
    return {"strict_img_size": False} if name.startswith(("swin", "vit", "deit")) else {}


def create_timm(name: str, pretrained: bool, **kwargs) -> nn.Module:
    """timm.create_model, turning a failed ImageNet download into a one-line CheckpointError."""
    import timm

    name = resolve_backbone(name)
    if not pretrained:
        return timm.create_model(name, pretrained=False, **_timm_kwargs(name), **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **_timm_kwargs(name), **kwargs)
    except Exception as exc:  # hub/network errors come in many types (OSError, HF errors, RuntimeError)
        raise CheckpointError(f"could not download ImageNet weights for {name} (offline? {type(exc).__name__}); "
                              f"pass --weights PATH to a local checkpoint") from None


class Backbone(nn.Module):
    """A timm network (pooled features for classification, a feature pyramid otherwise).

    When `frozen`, its parameters get no gradient and `train()` leaves it in eval mode, so the
    batch-norm running statistics stay as loaded (the paper's fixed-feature transfer). With
    `norm_eval` (R-CNN heads, as in mmdetection's Mask R-CNN: 2 images per GPU are too few for batch
    statistics) only the batch-norm layers stay in eval mode and everything else trains.
    """

    def __init__(self, body: nn.Module, frozen: bool = False, norm_eval: bool = False):
        super().__init__()
        self.body = body
        self.frozen = frozen
        self.norm_eval = norm_eval
        fmt = getattr(body, "output_fmt", "NCHW")
        self.nhwc = getattr(fmt, "value", fmt) == "NHWC"  # timm's Swin feature maps are channels-last
        if frozen:
            body.requires_grad_(False)
            body.eval()

    def train(self, mode: bool = True) -> "Backbone":
        self.training = mode
        self.body.train(mode and not self.frozen)
        if mode and self.norm_eval:  # trainable weights, but ImageNet BN statistics (tiny detection batches)
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor):
        out = self.body(x)
        if isinstance(out, (list, tuple)) and self.nhwc:
            out = [f.permute(0, 3, 1, 2).contiguous() for f in out]
        return out

    @property
    def channels(self) -> list[int]:
        """Output channels per feature level (dense) or of the pooled features (classification)."""
        info = getattr(self.body, "feature_info", None)
        return info.channels() if hasattr(info, "channels") else [self.body.num_features]


class Classifier(nn.Module):
    """Backbone -> pooled features -> linear layer; eval forward gives logits [N, C]."""

    def __init__(self, backbone: Backbone, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class Segmenter(nn.Module):
    """Backbone pyramid -> UperNet; logits [N, C, H, W] at the input resolution."""

    def __init__(self, backbone: Backbone, num_classes: int, channels: int = 512):
        super().__init__()
        self.backbone = backbone
        self.head = UperNetHead(backbone.channels, num_classes, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class FPNBackbone(nn.Module):
    """Backbone pyramid + torchvision FPN (256 channels, an extra max-pooled level), for R-CNNs."""

    def __init__(self, backbone: Backbone, out_channels: int = 256):
        super().__init__()
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        self.body = backbone
        self.fpn = FeaturePyramidNetwork(backbone.channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))


def _detector(cfg: dict, backbone: Backbone) -> nn.Module:
    from torchvision.models.detection import FasterRCNN, MaskRCNN

    cls = MaskRCNN if cfg["head"] == "maskrcnn" else FasterRCNN
    return cls(FPNBackbone(backbone, int(cfg.get("fpn_channels", 256))), num_classes=cfg["num_classes"],
               min_size=cfg.get("min_size", 800), max_size=cfg.get("max_size", 1333),
               image_mean=list(cfg.get("mean", (0.485, 0.456, 0.406))), image_std=list(cfg.get("std", (0.229, 0.224, 0.225))),
               box_batch_size_per_image=int(cfg.get("rois_per_image", 512)),
               box_detections_per_img=int(cfg.get("detections_per_image", 100)),
               # proposals kept by the RPN at inference (per level before NMS, in all after): the box head
               # runs on each, so they set a small detector's inference cost (torchvision's 320 px
               # mobile preset keeps 150)
               rpn_pre_nms_top_n_test=int(cfg.get("proposals_per_image", 1000)),
               rpn_post_nms_top_n_test=int(cfg.get("proposals_per_image", 1000)))


def build_model(model_cfg: dict, pretrained: bool = False) -> nn.Module:
    """Build the architecture `model_cfg` describes (checkpoint["model"]); no download unless `pretrained`.

    Keys: backbone, head (linear | fasterrcnn | maskrcnn | upernet), num_classes (detection counts
    background), mode (fixed | full), and optionally decoder_channels (UperNet, 512), fpn_channels
    (256), rois_per_image (512), detections_per_image (100), proposals_per_image (1000, at inference), norm_eval (keep backbone BN
    statistics; default True for R-CNN heads), min_size, max_size, mean, std (R-CNN transform).

    Example:
        >>> m = build_model({"backbone": "resnet18", "head": "linear", "num_classes": 10, "mode": "fixed"})
        >>> m.eval()(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    head, name = model_cfg.get("head"), model_cfg.get("backbone")
    if head not in ("linear", "fasterrcnn", "maskrcnn", "upernet") or not isinstance(name, str):
        raise ConfigError(f"model config needs a backbone name and a head in linear/fasterrcnn/maskrcnn/upernet, got {model_cfg}")
    frozen = model_cfg.get("mode", "full") == "fixed"
    name = resolve_backbone(name)
    if head == "linear":
        body = create_timm(name, pretrained, num_classes=0)
        return Classifier(Backbone(body, frozen), int(model_cfg["num_classes"]))
    body = create_timm(name, pretrained, features_only=True, out_indices=_last_four(name))
    backbone = Backbone(body, frozen, norm_eval=bool(model_cfg.get("norm_eval", head in ("fasterrcnn", "maskrcnn"))))
    if head == "upernet":
        return Segmenter(backbone, int(model_cfg["num_classes"]), int(model_cfg.get("decoder_channels", 512)))
    return _detector(model_cfg, backbone)


def _last_four(name: str) -> tuple[int, ...]:
    """Indices of the stride 4, 8, 16, 32 levels (timm lists a stride-2 stem level first for CNNs)."""
    import timm

    n = len(timm.create_model(name, pretrained=False, features_only=True, **_timm_kwargs(name)).feature_info)
    return tuple(range(n - 4, n)) if n >= 4 else tuple(range(n))


def backbone_of(model: nn.Module) -> Backbone:
    """The `Backbone` wrapper inside any model `build_model` makes."""
    bb = model.backbone
    return bb.body if isinstance(bb, FPNBackbone) else bb
