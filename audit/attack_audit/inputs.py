"""What an adversarial audit attacks and how it judges: images as x01, labels in the model's label
space, and the engine's verdict on (possibly perturbed) x01 through the same path as `audit run`.

Images go through `audit run`'s preprocessing up to the network input geometry
(`audit.tasks.preprocess.to_input_geometry`), stay uint8 there, and become x01 = uint8 / 255 in NCHW
float32: the space the attack perturbs. Judging x01 on an engine mirrors `normalise` step for step
(channel order, (x - mean) / std in float32), so at eps 0 the accuracy is bit for bit `audit run`'s
clean accuracy, and a perturbation of 1/255 reaches the engine without being re-quantised.

Segmentation: the judge passes each image's geometry (`to_input_geometry`'s meta) to the decoder, so
the label map goes back to the original image exactly as in `audit run`, into the same mIoU metric;
the attack's labels are the dataset's label maps brought to the network input geometry (nearest),
in the model's label space, -1 where a pixel is ignored, has no counterpart, or is padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.attacks.targets import normalise_batch
from audit.errors import ConfigError
from audit.metrics import make_metric
from audit.tasks import TaskAdapter
from audit.tasks.preprocess import to_input_geometry


@dataclass
class Judge:
    """One engine that judges adversarial examples: its adapter (spec + label mapping) and a label.

    Example:
        >>> judge = Judge("model.onnx", adapter)  # doctest: +SKIP
        >>> judge.state(dataset, x01, batch_size=32)["correct"]  # doctest: +SKIP
    """

    name: str
    adapter: TaskAdapter
    role: str = "engine"  # engine (the audited model) or transfer (another export of it)
    label_mapping: dict[str, Any] = field(default_factory=dict)  # LabelMapping.describe(), for the document
    metas: list[dict] | None = None  # per dataset image, its geometry (segmentation decodes back to the original)

    def describe(self) -> dict[str, Any]:
        info = self.adapter.engine.info
        return {"name": self.name, "role": self.role, "engine": info.name, "provider": info.provider,
                "precision": info.precision}

    def scores(self, x01: np.ndarray, batch_size: int, positions: np.ndarray | None = None) -> list[np.ndarray]:
        """Per-image predictions for NCHW x01 (float32 in [0, 1]): scores over the dataset's classes, or
        label maps at the original geometry; `positions`: the dataset images x01 holds (default all)."""
        positions = np.arange(len(x01)) if positions is None else np.asarray(positions)
        out: list[np.ndarray] = []
        for start in range(0, len(x01), batch_size):
            # the order of `normalise`: the same float32 values for x01 = uint8 / 255
            arrays = list(normalise_batch(x01[start:start + batch_size], self.adapter.spec))
            metas = [self.metas[p] if self.metas else {} for p in positions[start:start + batch_size]]
            out.extend(self.adapter.infer(arrays, metas))
        return out

    def evaluate(self, dataset, x01: np.ndarray, batch_size: int):
        """`audit run`'s metric for the images x01 of `dataset`: top-1 / top-5 hits, or the per-image
        intersection / union counts of mIoU."""
        metric = make_metric(dataset)
        for pos, scores in enumerate(self.scores(x01, batch_size)):
            metric.update(pos, scores)
        return metric

    def state(self, dataset, x01: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        """What a cell saves per engine: the top-1 hits, or mIoU's per-image counts (its metric state)."""
        state = self.evaluate(dataset, x01, batch_size).state()
        if dataset.task_type == "segmentation":
            return {k: state[k].copy() for k in ("inter", "union", "area_gt")}
        return {"correct": state["hit1"].copy()}


def load_x01(dataset, spec) -> np.ndarray:
    """Every image of `dataset` at the network input geometry, as NCHW float32 on [0, 1].

    Example:
        >>> load_x01(dataset, spec).shape  # doctest: +SKIP
        (500, 3, 32, 32)
    """
    return load_inputs(dataset, spec)[0]


def load_inputs(dataset, spec) -> tuple[np.ndarray, list[dict]]:
    """`load_x01` and each image's geometry (`to_input_geometry`'s meta: original size, scale, padding)."""
    images, metas = [], []
    for index in range(len(dataset)):
        resized, meta = to_input_geometry(dataset.load_image(index), spec)
        images.append(resized)
        metas.append(meta)
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ConfigError(f"the images reach the network at {len(shapes)} different sizes ({sorted(shapes)[:3]}...); "
                          "an adversarial audit needs one input size: give --input-size H W")
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255), metas


def model_labels(adapter: TaskAdapter, dataset) -> np.ndarray:
    """Each image's class in the model's own label space (what the attack's loss needs); -1 where the
    dataset's class has no counterpart among the model's labels (such an image is never correct)."""
    targets = np.array([dataset.target(i) for i in range(len(dataset))], np.int64)
    return to_model_labels(adapter, dataset, targets)


def to_model_labels(adapter: TaskAdapter, dataset, targets: np.ndarray) -> np.ndarray:
    """Dataset class indices -> the model's labels (-1: no counterpart; for segmentation also the
    ignore index). A segmentation model in the `index` space is read as identity, as `relabel_map` reads it."""
    mapping = adapter.mapping
    if dataset.task_type == "segmentation" and (mapping is None or mapping.table is None or mapping.space == "index"):
        return np.where((targets >= 0) & (targets < max(dataset.num_classes, 1)), targets, -1)
    if mapping is None or mapping.table is None:
        return targets
    inverse = np.full(max(dataset.num_classes, 1), -1, np.int64)
    for label, category in reversed(list(enumerate(mapping.table))):
        if category is not None and 0 <= category < len(inverse):
            inverse[category] = label  # the first model label of a category wins, as argmax ties do
    return np.where((targets >= 0) & (targets < len(inverse)), inverse[np.clip(targets, 0, len(inverse) - 1)], -1)


def model_label_maps(adapter: TaskAdapter, dataset, metas: list[dict]) -> np.ndarray:
    """Segmentation: each image's label map at the network input geometry ([N, H, W], nearest), in the
    model's labels; -1 where the dataset ignores the pixel, the class has no counterpart, or padding.
    int16 (int32 past 32,767 classes): 500 maps of 512 x 512 take 262 MB, not the 1 GB of int64."""
    dtype = np.int16 if dataset.num_classes < 2 ** 15 else np.int32
    return np.stack([to_model_labels(adapter, dataset, labels_at_input(dataset.target(i), meta)).astype(dtype)
                     for i, meta in enumerate(metas)])


def labels_at_input(labels: np.ndarray, meta: dict) -> np.ndarray:
    """A label map of the original image brought to the network input geometry of `meta`, nearest
    neighbour as OpenCV's INTER_NEAREST picks (source = floor(target / scale)); -1 where an input
    pixel lies outside the image (letterbox padding).

    Example:
        >>> labels_at_input(np.array([[1, 2], [3, 4]]), {"orig": (2, 2), "scale": (1.5, 1.5), "pad": (0, 1), "input": (3, 4)})
        array([[-1,  1,  1,  2],
               [-1,  1,  1,  2],
               [-1,  3,  3,  4]])
    """
    h, w = meta["orig"]
    (sy, sx), (top, left), (ih, iw) = meta["scale"], meta["pad"], meta["input"]
    rows = np.floor((np.arange(ih) - top) * (1.0 / sy)).astype(np.int64)
    cols = np.floor((np.arange(iw) - left) * (1.0 / sx)).astype(np.int64)
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    picked = np.asarray(labels, np.int64)[np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]]
    return np.where(inside, picked, -1)
