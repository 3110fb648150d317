"""What an attack runs against: the deployed engine (black-box) or a differentiable torch classifier.

Every target takes [N, 3, H, W] float32 images in [0, 1] at the network input geometry, in RGB, and
returns [N, C] float32 logits. Normalisation (channel order, mean, std) happens inside the target,
exactly as `audit.tasks.preprocess.normalise` does it, so perturbations live in pixel space.
A segmentation model's target returns [N, C, H, W] logits at the input size (bilinear, as `audit run`
resizes them; an engine with an argmax inside returns its [N, H, W] label map, query access only).

- `EngineTarget`: an `audit.engines` engine; NumPy + ONNX Runtime only (no torch), query access only.
- `TorchTarget`: a torch classifier that takes normalised input; `module()` wraps the normalisation
  so gradients flow to the [0, 1] pixels. Made by `onnx_target` (the deployed ONNX graph itself,
  via onnx2torch) or a PyTorch source (audit.attack_audit.sources.source_target: a fine-tuning checkpoint, `torchvision:NAME`, `timm:NAME`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from audit.conversion.rewrite import canonical_for_torch
from audit.errors import ConfigError, ModelError, require
from audit.spec.model import ModelSpec


@runtime_checkable
class Target(Protocol):
    """A classifier under attack: `logits` on [0, 1] pixels; `module` when gradients exist."""

    source: str  # "engine", "onnx", "checkpoint", "torchvision", "timm", "torch"
    differentiable: bool

    def logits(self, x01: np.ndarray) -> np.ndarray:
        """[N, C] float32 logits of [N, 3, H, W] float32 images in [0, 1]."""
        ...

    def module(self) -> Any:
        """A torch.nn.Module: [N, 3, H, W] float in [0, 1] -> logits; `ConfigError` if not differentiable."""
        ...


def normalise_batch(x01: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """[N, 3, H, W] RGB [0, 1] -> the network input: channel order, then (x - mean) / std, float32.

    The batched twin of `audit.tasks.preprocess.normalise` (which also starts from uint8: / 255).
    """
    x = np.asarray(x01, np.float32)
    if spec.channel_order == "BGR":
        x = x[:, ::-1]
    mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def _not_differentiable(what: str) -> ConfigError:
    return ConfigError(f"{what} gives no gradients: use the black-box attack (--attack square) or a gradient source "
                       "(the ONNX graph via onnx2torch, a checkpoint, torchvision:NAME or timm:NAME)")


class EngineTarget:
    """The deployed engine, queried on float inputs (float16 if the engine wants it); black-box only.

    Example:
        >>> target = EngineTarget(open_engine("model.onnx"), spec)  # doctest: +SKIP
        >>> target.logits(np.zeros((2, 3, 32, 32), np.float32)).shape  # doctest: +SKIP
        (2, 4)
    """

    source = "engine"
    differentiable = False

    def __init__(self, engine: Any, spec: ModelSpec):
        if spec.task not in ("classification", "segmentation"):
            raise ConfigError("adversarial attacks support classification and segmentation models; "
                              f"this model's task is '{spec.task}'")
        self.engine, self.spec = engine, spec
        info = engine.inputs[0]
        self._input = info.name
        self._dtype = np.float16 if info.dtype == np.float16 else np.float32
        batch = info.shape[0] if info.shape else None
        self._batch = batch if isinstance(batch, int) and batch > 0 else None  # a fixed batch dimension

    def logits(self, x01: np.ndarray) -> np.ndarray:
        feed = normalise_batch(x01, self.spec).astype(self._dtype, copy=False)
        step = self._batch or len(feed)
        outs = []
        for i in range(0, len(feed), max(step, 1)):
            chunk = feed[i:i + step]
            n = len(chunk)
            if self._batch and n < self._batch:  # pad a fixed-batch engine's last chunk
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self._batch - n, axis=0)])
            out = np.asarray(self.engine.run({self._input: chunk})[0], np.float32)
            if self.spec.task == "segmentation":
                out = dense_at_input(out, feed.shape[2:], self.spec.output_convention)
            elif out.ndim != 2:
                raise ModelError(f"the model's first output has shape {list(out.shape)}; an attack needs [N, C] class logits")
            outs.append(out[:n])
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)

    def module(self):
        raise _not_differentiable("the inference engine")


def dense_at_input(out: np.ndarray, size: tuple[int, int], convention: str) -> np.ndarray:
    """A segmentation engine's output at the input size: [N, C, H, W] logits resized bilinearly (as
    the `segmentation_logits` decoder resizes them), or an [N, H, W] label map resized nearest.

    Example:
        >>> dense_at_input(np.zeros((1, 5, 4, 4), np.float32), (8, 8), "segmentation_logits").shape
        (1, 5, 8, 8)
    """
    from audit.tasks.preprocess import map_to_original

    labels = convention == "segmentation_labels"
    if labels and out.ndim == 4 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != (3 if labels else 4):
        raise ModelError(f"the model's first output has shape {list(out.shape)}; convention {convention} expects "
                         f"{'[N, H, W] labels' if labels else '[N, C, H, W] logits'}")
    if tuple(out.shape[-2:]) == tuple(size):
        return out
    meta = {"pad": (0, 0), "input": tuple(size), "scale": (1.0, 1.0), "orig": tuple(size)}  # a map at a stride of the input
    if labels:
        return np.stack([map_to_original(m, meta, nearest=True) for m in out]).astype(np.float32)
    planes = [map_to_original(np.ascontiguousarray(z.transpose(1, 2, 0)), meta, nearest=False) for z in out]
    return np.stack([p.reshape(*size, -1).transpose(2, 0, 1) for p in planes]).astype(np.float32)


class TorchTarget:
    """A torch classifier on normalised input, attacked on [0, 1] pixels; eval mode, frozen parameters.

    Example:
        >>> target = TorchTarget(torch.nn.Sequential(...), spec, source="torch")  # doctest: +SKIP
        >>> target.module()(torch.rand(1, 3, 32, 32)).shape  # doctest: +SKIP
        torch.Size([1, 4])
    """

    differentiable = True

    def __init__(self, module: Any, spec: ModelSpec, source: str = "torch"):
        import torch

        self.spec, self.source = spec, source
        module = module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self._module = _Normalised(module, spec)
        params = list(module.parameters())
        self.device = params[0].device if params else torch.device("cpu")

    def logits(self, x01: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(x01, np.float32)).to(self.device)
            return self._module(x).float().cpu().numpy()

    def module(self):
        return self._module


def _Normalised(inner: Any, spec: ModelSpec):
    """torch.nn.Module: [0, 1] RGB pixels -> channel order, (x - mean) / std -> `inner`."""
    import torch

    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner
            self.bgr = spec.channel_order == "BGR"
            self.dense = spec.task == "segmentation"
            self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, x):
            if self.bgr:
                x = x.flip(1)
            out = self.inner((x - self.mean) / self.std)
            if self.dense and out.shape[-2:] != x.shape[-2:]:  # logits at a stride: to the input size, as decoded
                out = torch.nn.functional.interpolate(out.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
            return out.float()

    return Normalised().eval()


def onnx_target(path: str | Path, spec: ModelSpec) -> TorchTarget:
    """The ONNX graph itself as a differentiable torch module (onnx2torch): white-box on what is deployed.

    FP16 graphs (FP32 input and output, half inside) run as they are, half precision included; INT8 QDQ
    graphs run as a float simulation with straight-through rounding gradients (`audit.conversion.qdq`);
    graphs with ops onnx2torch cannot convert raise a one-line `ModelError`.

    Example:
        >>> target = onnx_target("model.onnx", spec)  # doctest: +SKIP
    """
    if spec.output_convention == "segmentation_labels":
        raise ModelError(f"{Path(path).name} outputs a label map (argmax inside the graph): it has no usable gradients; "
                         "use --gradients checkpoint:PATH or torchvision:NAME, or the black-box attack (--gradients none)")
    onnx = require("onnx", "cpu", "Reading the ONNX graph for a white-box attack")
    onnx2torch = require("onnx2torch", "attack", "Turning the ONNX graph into a differentiable module")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    from audit.conversion import qdq  # registers onnx2torch converters for QuantizeLinear / DequantizeLinear

    try:
        module = onnx2torch.convert(qdq.dequantised_constants(canonical_for_torch(onnx.load(str(path)))))
    except Exception as exc:  # onnx2torch raises NotImplementedError / KeyError for unsupported ops
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"{path.name}: onnx2torch cannot turn this graph into torch ({reason}); use a gradient source "
                         "(checkpoint, torchvision:NAME, timm:NAME) or --gradients none --attack square") from None
    return TorchTarget(_Float32(module), spec, source="onnx")


def _Float32(inner: Any):
    """A converted graph with float32 logits (an FP16 export keeps its own casts and half weights)."""
    import torch

    class Float32(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            return out.float()

    return Float32()
