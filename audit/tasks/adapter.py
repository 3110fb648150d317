"""Run a model on preprocessed images: batch when the model allows it, call the engine, decode."""

from __future__ import annotations

import numpy as np

from audit.engines.base import Engine
from audit.errors import ModelError
from audit.modelspec import ModelSpec
from audit.tasks.conventions import CONVENTIONS, DecodeContext
from audit.tasks.preprocess import preprocess


class TaskAdapter:
    """Feeds batches to an engine and decodes its outputs per the spec's output convention.

    Example:
        >>> adapter = TaskAdapter(spec, engine)  # doctest: +SKIP
        >>> preds = adapter.infer([x], [meta])  # doctest: +SKIP
    """

    def __init__(self, spec: ModelSpec, engine: Engine, category_ids: list[int] | None = None):
        self.spec, self.engine = spec, engine
        first = engine.inputs[0]
        self.input_name, self.input_dtype = first.name, first.dtype
        batch_dim = first.shape[0] if first.shape else None
        self.image_only = len(first.shape) == 3  # torchvision detectors take one [3, H, W] image
        self.batchable = (not self.image_only and spec.resize in ("fixed", "letterbox")
                          and not (isinstance(batch_dim, int) and batch_dim == 1))
        self.decode = CONVENTIONS.get(spec.output_convention)
        self.output_names = [o.name for o in engine.outputs]
        self.context = DecodeContext(label_to_category=self._label_table(spec, category_ids))

    @staticmethod
    def _label_table(spec: ModelSpec, category_ids: list[int] | None) -> list[int | None] | None:
        if spec.label_to_category is not None or category_ids is None:
            return spec.label_to_category
        if spec.output_convention == "torchvision_detection":
            return [None, *category_ids]  # torchvision: label 0 is the background
        return list(category_ids)

    def infer(self, arrays: list[np.ndarray], metas: list[dict]) -> list:
        """Predictions for preprocessed images (one engine call per batch when batchable)."""
        if self.batchable:
            return self._run(np.stack(arrays), metas)
        preds = []
        for x, meta in zip(arrays, metas):
            preds.extend(self._run(x if self.image_only else x[None], [meta]))
        return preds

    def _run(self, batch: np.ndarray, metas: list[dict]) -> list:
        outputs = self.engine.run({self.input_name: batch.astype(self.input_dtype, copy=False)})
        return self.decode(outputs, metas, self.context, self.output_names)


def check_model(adapter: TaskAdapter, image: np.ndarray, num_classes: int | None) -> None:
    """Run one image end to end before the long run; a misfit model stops with one line."""
    first = adapter.engine.inputs[0]
    channel_axis = 0 if adapter.image_only else 1
    if len(first.shape) not in (3, 4):
        raise ModelError(f"model input '{first.name}' has shape {list(first.shape)}; expected [N, 3, H, W] or [3, H, W]")
    channels = first.shape[channel_axis]
    if isinstance(channels, int) and channels != 3:
        raise ModelError(f"model input '{first.name}' takes {channels} channels; robustaudit feeds RGB (3)")
    x, meta = preprocess(image, adapter.spec)
    pred = adapter.infer([x], [meta])[0]
    if adapter.spec.task == "classification" and num_classes and pred.shape[0] != num_classes:
        raise ModelError(f"the model scores {pred.shape[0]} classes but the dataset has {num_classes}; check the model or the data")
    if adapter.spec.task == "segmentation" and pred.shape != image.shape[:2]:
        raise ModelError(f"the decoded label map has shape {pred.shape}, the image {image.shape[:2]}")
    if adapter.spec.task == "segmentation" and num_classes:
        top = int(pred.max()) if pred.size else 0
        if top >= num_classes:
            raise ModelError(f"the model predicts class {top} but the dataset has {num_classes} classes; check --num-classes")
