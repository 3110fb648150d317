"""Preprocessing per model spec: uint8 RGB image -> float32 CHW network input, plus the geometry
needed to map predictions back to the original image. Pure and picklable: runs in worker processes.
"""

from __future__ import annotations

import cv2
import numpy as np

from audit.modelspec import ModelSpec

LETTERBOX_FILL = 114  # Ultralytics' grey


def preprocess(image: np.ndarray, spec: ModelSpec) -> tuple[np.ndarray, dict]:
    """Resize (bilinear, OpenCV) per `spec.resize`, scale to [0, 1], normalise, HWC -> CHW.

    Example:
        >>> spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32))
        >>> x, meta = preprocess(np.zeros((64, 48, 3), np.uint8), spec)
        >>> x.shape, meta["orig"]
        ((3, 32, 32), (64, 48))
    """
    h, w = image.shape[:2]
    if spec.channel_order == "BGR":
        image = image[..., ::-1]
    top = left = 0
    if spec.resize == "fixed":
        th, tw = spec.input_size
        resized = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
        scale = (th / h, tw / w)
    elif spec.resize == "keep_ratio":
        s = min(spec.min_size / min(h, w), spec.max_size / max(h, w))
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        scale = (nh / h, nw / w)
    elif spec.resize == "letterbox":
        th, tw = spec.input_size
        s = min(th / h, tw / w)
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        top, left = (th - nh) // 2, (tw - nw) // 2
        resized = np.full((th, tw, 3), LETTERBOX_FILL, np.uint8)
        resized[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        scale = (nh / h, nw / w)
    else:
        resized, scale = image, (1.0, 1.0)
    x = resized.astype(np.float32) / np.float32(255)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    meta = {"orig": (h, w), "scale": scale, "pad": (top, left), "input": tuple(resized.shape[:2])}
    return np.ascontiguousarray(x.transpose(2, 0, 1)), meta


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
