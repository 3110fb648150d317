"""UperNet (pyramid pooling + FPN, Xiao et al. 2018) that exports to ONNX with dynamic input sizes.

Adaptive average pooling to bins that don't divide the feature map has no ONNX form, so the pyramid
pooling module averages with pooling matrices built from the feature map itself: row i of the
matrix for b bins averages positions floor(i*H/b) .. ceil((i+1)*H/b) - 1, exactly what
`adaptive_avg_pool2d` does, and every size is derived from tensors so the traced graph stays dynamic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    """A k x k convolution (same padding), batch norm and ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _pool_matrix(length_ref: torch.Tensor, bins: int) -> torch.Tensor:
    """[bins, L] averaging matrix for a 1-D axis whose positions are given by `length_ref` ([L])."""
    pos = torch.cumsum(torch.ones_like(length_ref), 0) - 1  # 0..L-1, derived from data: dynamic in ONNX
    length = pos[-1:] + 1
    idx = torch.arange(bins, dtype=pos.dtype, device=pos.device)
    start = torch.floor(idx * length / bins)
    end = torch.ceil((idx + 1) * length / bins)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    weights = inside.to(length_ref.dtype)
    return weights / weights.sum(1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Exportable equivalent of `F.adaptive_avg_pool2d(x, bins)` for NCHW `x`.

    Example:
        >>> x = torch.rand(1, 2, 7, 5)
        >>> torch.allclose(adaptive_avg_pool(x, 3), F.adaptive_avg_pool2d(x, 3), atol=1e-6)
        True
    """
    ph = _pool_matrix(x[0, 0, :, 0], bins)  # [b, H]
    pw = _pool_matrix(x[0, 0, 0, :], bins)  # [b, W]
    return torch.matmul(torch.matmul(ph, x), pw.transpose(0, 1))


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling on the deepest feature map: bins 1, 2, 3, 6, upsampled and concatenated."""

    def __init__(self, cin: int, channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        self.stages = nn.ModuleList(conv_bn_relu(cin, channels, 1) for _ in bins)
        self.bottleneck = conv_bn_relu(cin + len(bins) * channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        for b, stage in zip(self.bins, self.stages):
            pooled = x.mean((2, 3), keepdim=True) if b == 1 else adaptive_avg_pool(x, b)
            outs.append(F.interpolate(stage(pooled), size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.bottleneck(torch.cat(outs, 1))


class UperNetHead(nn.Module):
    """PPM on the last level, FPN top-down over all levels, fusion at the finest level, 1x1 classifier."""

    def __init__(self, in_channels: list[int], num_classes: int, channels: int = 512, dropout: float = 0.1):
        super().__init__()
        self.ppm = PyramidPooling(in_channels[-1], channels)
        self.lateral = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels[:-1])
        self.fpn = nn.ModuleList(conv_bn_relu(channels, channels, 3) for _ in in_channels[:-1])
        self.fuse = conv_bn_relu(len(in_channels) * channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        laterals = [lat(f) for lat, f in zip(self.lateral, feats[:-1])] + [self.ppm(feats[-1])]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: add the coarser level, upsampled
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:],
                                                              mode="bilinear", align_corners=False)
        outs = [conv(lat) for conv, lat in zip(self.fpn, laterals[:-1])] + [laterals[-1]]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [F.interpolate(o, size=size, mode="bilinear", align_corners=False) for o in outs[1:]]
        return self.classifier(self.dropout(self.fuse(torch.cat(outs, 1))))
