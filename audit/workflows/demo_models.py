"""Tiny torch-free demo models: trained in NumPy on the synthetic shapes, written as ONNX.

They let the built-in demo run the main job (`audit run`) on a machine with only the `cpu` extra:
- a classifier: 4x4 average pooling -> linear softmax regression over the pooled pixels;
- a segmenter: one 3x3 convolution trained as a per-pixel softmax regression on its neighbourhood.
Both carry robustaudit metadata (ModelSpec), so `audit run` needs no other flag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.datasets import synthetic
from audit.errors import require
from audit.spec.model import ModelSpec

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _softmax_regression(x: np.ndarray, y: np.ndarray, classes: int, steps: int, lr: float, seed: int):
    """Full-batch gradient descent on the cross-entropy of a linear model (with L2 weight decay)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, (x.shape[1], classes)).astype(np.float32)
    b = np.zeros(classes, np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    for _ in range(steps):
        logits = x @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(x)
        w -= lr * (x.T @ grad + 1e-4 * w)
        b -= lr * grad.sum(0)
    return w, b


def _normalise(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / 255 - np.float32(0.5)) / np.float32(0.25)).transpose(0, 3, 1, 2)


def _save(graph, path: Path, spec: ModelSpec) -> Path:
    onnx = require("onnx", "cpu", "Writing the demo models")
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in spec.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def train_classifier(path: Path, n: int = 800, seed: int = 0) -> Path:
    """Train the pooled-linear classifier on 32x32 shapes and write it as ONNX."""
    onnx = require("onnx", "cpu", "Writing the demo models")
    h = onnx.helper
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(synthetic.SHAPES)
    images = np.stack([synthetic.draw_scene(rng, 32, 32, 1, [k])[0] for k in labels])
    x = _normalise(images).reshape(n, 3, 8, 4, 8, 4).mean(axis=(3, 5)).reshape(n, -1)
    w, b = _softmax_regression(x, labels, len(synthetic.SHAPES), steps=400, lr=0.5, seed=seed)
    graph = h.make_graph(
        [h.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         h.make_node("Flatten", ["pooled"], ["flat"]),
         h.make_node("Gemm", ["flat", "W", "b"], ["logits"])],
        "demo_classifier",
        [h.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["n", 3, 32, 32])],
        [h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["n", len(synthetic.SHAPES)])],
        [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "b")])
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32),
                     mean=MEAN, std=STD, class_names=list(synthetic.SHAPES),
                     provenance={"trainer": "audit.workflows.demo_models", "model": "pooled linear", "train_images": n})
    return _save(graph, path, spec)


def train_segmenter(path: Path, n: int = 60, size: tuple[int, int] = (48, 64), seed: int = 1) -> Path:
    """Train a 3x3 convolution as a per-pixel classifier of the shapes (background ignored), as ONNX."""
    onnx = require("onnx", "cpu", "Writing the demo models")
    h = onnx.helper
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for _ in range(n):
        image, instances = synthetic.draw_scene(rng, size[0], size[1], 2)
        x = np.pad(_normalise(image[None])[0], ((0, 0), (1, 1), (1, 1)), mode="edge")
        patches = np.stack([x[:, dy:dy + size[0], dx:dx + size[1]] for dy in range(3) for dx in range(3)], axis=1)
        patches = patches.reshape(27, -1).T  # [pixels, c * 9], channel-major like ONNX Conv weights
        for inst in instances:
            idx = np.flatnonzero(inst.mask.ravel())
            idx = idx[rng.choice(len(idx), size=min(len(idx), 150), replace=False)]
            feats.append(patches[idx])
            labels.append(np.full(len(idx), inst.label))
    x, y = np.concatenate(feats), np.concatenate(labels)
    w, b = _softmax_regression(x, y, len(synthetic.SHAPES), steps=300, lr=0.3, seed=seed)
    kernel = w.T.reshape(len(synthetic.SHAPES), 3, 3, 3).astype(np.float32)
    graph = h.make_graph(
        [h.make_node("Conv", ["images", "K", "b"], ["logits"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "demo_segmenter",
        [h.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["n", len(synthetic.SHAPES), "h", "w"])],
        [onnx.numpy_helper.from_array(kernel, "K"), onnx.numpy_helper.from_array(b.astype(np.float32), "b")])
    spec = ModelSpec(task="segmentation", output_convention="segmentation_logits", resize="none", mean=MEAN, std=STD,
                     class_names=list(synthetic.SHAPES),
                     provenance={"trainer": "audit.workflows.demo_models", "model": "3x3 conv", "train_images": n})
    return _save(graph, path, spec)
