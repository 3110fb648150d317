"""What an adversarial audit attacks and how it judges: images as x01, labels in the model's label
space, and the engine's verdict on (possibly perturbed) x01 through the same path as `audit run`.

Images go through `audit run`'s preprocessing up to the network input geometry
(`audit.tasks.preprocess.to_input_geometry`), stay uint8 there, and become x01 = uint8 / 255 in NCHW
float32: the space the attack perturbs. Judging x01 on an engine mirrors `normalise` step for step
(channel order, (x - mean) / std in float32), so at eps 0 the accuracy is bit for bit `audit run`'s
clean accuracy, and a perturbation of 1/255 reaches the engine without being re-quantised.
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
        >>> judge.correct(dataset, x01, np.arange(len(x01)))  # doctest: +SKIP
    """

    name: str
    adapter: TaskAdapter
    role: str = "engine"  # engine (the audited model) or transfer (another export of it)
    label_mapping: dict[str, Any] = field(default_factory=dict)  # LabelMapping.describe(), for the document

    def describe(self) -> dict[str, Any]:
        info = self.adapter.engine.info
        return {"name": self.name, "role": self.role, "engine": info.name, "provider": info.provider,
                "precision": info.precision}

    def scores(self, x01: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Per-image scores over the dataset's classes for NCHW x01 (float32 in [0, 1])."""
        out: list[np.ndarray] = []
        for start in range(0, len(x01), batch_size):
            # the order of `normalise`: the same float32 values for x01 = uint8 / 255
            arrays = list(normalise_batch(x01[start:start + batch_size], self.adapter.spec))
            out.extend(self.adapter.infer(arrays, [{} for _ in arrays]))
        return out

    def evaluate(self, dataset, x01: np.ndarray, batch_size: int):
        """`audit run`'s accuracy metric (top-1 / top-5 hits per image) for the images x01 of `dataset`."""
        metric = make_metric(dataset)
        for pos, scores in enumerate(self.scores(x01, batch_size)):
            metric.update(pos, scores)
        return metric

    def correct(self, dataset, x01: np.ndarray, batch_size: int) -> np.ndarray:
        """Top-1 hit per image, counted exactly as `audit run`'s accuracy counts it."""
        return self.evaluate(dataset, x01, batch_size).state()["hit1"].copy()


def load_x01(dataset, spec) -> np.ndarray:
    """Every image of `dataset` at the network input geometry, as NCHW float32 on [0, 1].

    Example:
        >>> load_x01(dataset, spec).shape  # doctest: +SKIP
        (500, 3, 32, 32)
    """
    images = []
    for index in range(len(dataset)):
        resized, _ = to_input_geometry(dataset.load_image(index), spec)
        images.append(resized)
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ConfigError(f"the images reach the network at {len(shapes)} different sizes ({sorted(shapes)[:3]}...); "
                          "an adversarial audit needs one input size: give --input-size H W")
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)


def model_labels(adapter: TaskAdapter, dataset) -> np.ndarray:
    """Each image's class in the model's own label space (what the attack's loss needs); -1 where the
    dataset's class has no counterpart among the model's labels (such an image is never correct)."""
    mapping = adapter.mapping
    targets = np.array([dataset.target(i) for i in range(len(dataset))], np.int64)
    if mapping is None or mapping.table is None:
        return targets
    inverse = np.full(max(dataset.num_classes, 1), -1, np.int64)
    for label, category in reversed(list(enumerate(mapping.table))):
        if category is not None and 0 <= category < len(inverse):
            inverse[category] = label  # the first model label of a category wins, as argmax ties do
    return np.where((targets >= 0) & (targets < len(inverse)), inverse[np.clip(targets, 0, len(inverse) - 1)], -1)
