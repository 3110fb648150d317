"""Preprocessing per model spec: uint8 RGB image -> float32 CHW network input, plus the geometry
needed to map predictions back to the original image. Pure and picklable: runs in worker processes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from audit.spec.model import ModelSpec

LETTERBOX_FILL = 114  # Ultralytics' grey
_CV2_INTERP = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}
_PIL_INTERP = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
               "nearest": Image.Resampling.NEAREST}


def preprocess(image: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, dict]:
    """Resize per `spec.resize` (`to_input_geometry`), then scale, normalise, HWC -> CHW (`normalise`).

    Example:
        >>> spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32))
        >>> x, meta = preprocess(np.zeros((64, 48, 3), np.uint8), spec)
        >>> x.shape, meta["orig"]
        ((3, 32, 32), (64, 48))
    """
    resized, meta = to_input_geometry(image, spec)
    return normalise(resized, spec), meta


def to_input_geometry(image: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, dict]:
    """The uint8 RGB image at the network input geometry (resized, padded or cropped) and its meta.

    This is where `--corrupt-at input` corrupts: after the resize, before normalisation.

    Example:
        >>> spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(224, 224),
        ...                  resize="center_crop")
        >>> to_input_geometry(np.zeros((300, 400, 3), np.uint8), spec)[0].shape
        (224, 224, 3)
    """
    h, w = image.shape[:2]
    top = left = 0
    interp = _CV2_INTERP[spec.interpolation]
    if spec.resize == "fixed":
        th, tw = spec.input_size
        resized = cv2.resize(image, (tw, th), interpolation=interp)
        scale = (th / h, tw / w)
    elif spec.resize == "keep_ratio":
        s = min(spec.min_size / min(h, w), spec.max_size / max(h, w))
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        resized = cv2.resize(image, (nw, nh), interpolation=interp)
        scale = (nh / h, nw / w)
    elif spec.resize == "letterbox":
        th, tw = spec.input_size
        s = min(th / h, tw / w)
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        top, left = (th - nh) // 2, (tw - nw) // 2
        resized = np.full((th, tw, 3), LETTERBOX_FILL, np.uint8)
        resized[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
        scale = (nh / h, nw / w)
    elif spec.resize == "center_crop":
        resized, scale, (top, left) = center_crop(image, spec.input_size, spec.crop_pct, spec.interpolation)
    else:
        resized, scale = image, (1.0, 1.0)
    meta = {"orig": (h, w), "scale": scale, "pad": (top, left), "input": tuple(resized.shape[:2])}
    return resized, meta


def normalise(resized: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """uint8 RGB HxWx3 at the input geometry -> float32 CHW: channel order, [0, 1], (x - mean) / std."""
    if spec.channel_order == "BGR":
        resized = resized[..., ::-1]
    x = resized.astype(np.float32) / np.float32(255)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def center_crop_resize_size(h: int, w: int, input_size: tuple[int, int], crop_pct: float) -> tuple[int, int]:
    """The (H, W) timm's eval transform resizes to before its centre crop (torchvision's for crop_pct 224/256).

    A square target: shorter side to floor(side / crop_pct), the longer side truncated as torchvision's
    Resize does; a non-square target: timm's ResizeKeepRatio (the smaller ratio, rounded).

    Example:
        >>> center_crop_resize_size(375, 500, (224, 224), 0.875)
        (256, 341)
    """
    sh, sw = (math.floor(v / crop_pct) for v in input_size)
    if sh == sw:
        short, long = min(h, w), max(h, w)
        new_short, new_long = sh, int(sh * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)
    ratio = min(h / sh, w / sw)
    return round(h / ratio), round(w / ratio)


def center_crop(image: np.ndarray, input_size: tuple[int, int], crop_pct: float,
                interpolation: str) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """timm / torchvision classification eval geometry on a uint8 image: resize, then the centre crop.

    Resizes with PIL, as both frameworks do on the PIL images of their evaluation loaders (PIL
    filters antialias when shrinking; OpenCV's do not). Returns the crop, the (y, x) scale of the
    resize and the (top, left) offset of the original image in the crop (negative: cropped away).
    """
    h, w = image.shape[:2]
    nh, nw = center_crop_resize_size(h, w, input_size, crop_pct)
    resized = image if (nh, nw) == (h, w) else np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), _PIL_INTERP[interpolation]))
    th, tw = input_size
    pad_h, pad_w = max(th - nh, 0), max(tw - nw, 0)
    if pad_h or pad_w:  # torchvision's CenterCrop pads a too-small image with zeros
        resized = np.pad(resized, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0)))
    ph, pw = resized.shape[:2]
    top, left = int(round((ph - th) / 2.0)), int(round((pw - tw) / 2.0))
    crop = np.ascontiguousarray(resized[top:top + th, left:left + tw])
    return crop, (nh / h, nw / w), (pad_h // 2 - top, pad_w // 2 - left)


def boxes_to_original(boxes: np.ndarray, meta: dict) -> np.ndarray:
    """Map xyxy boxes from network-input pixels back to original image pixels (clipped to it)."""
    sy, sx = meta["scale"]
    top, left = meta["pad"]
    h, w = meta["orig"]
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip((out[:, [0, 2]] - left) / sx, 0, w)
    out[:, [1, 3]] = np.clip((out[:, [1, 3]] - top) / sy, 0, h)
    return out


def map_to_original(plane: np.ndarray, meta: dict, nearest: bool) -> np.ndarray:
    """Resize an HxW(xC) map over the network input back to the original image (padding removed)."""
    top, left = meta["pad"]
    ih, iw = meta["input"]
    scale_h, scale_w = plane.shape[0] / ih, plane.shape[1] / iw  # the map may be at a stride of the input
    sy, sx = meta["scale"]
    h, w = meta["orig"]
    y0, x0 = int(round(top * scale_h)), int(round(left * scale_w))
    y1, x1 = y0 + int(round(h * sy * scale_h)), x0 + int(round(w * sx * scale_w))
    crop = plane[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if crop.ndim == 3 and crop.shape[2] > 512:  # OpenCV resizes at most 512 channels at once
        return np.concatenate([cv2.resize(crop[..., i:i + 512], (w, h), interpolation=interp) for i in range(0, crop.shape[2], 512)], axis=2)
    out = cv2.resize(crop, (w, h), interpolation=interp)
    return out[..., None] if crop.ndim == 3 and out.ndim == 2 else out
