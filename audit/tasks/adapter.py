"""Run a model on preprocessed images: batch when the model allows it, call the engine, decode."""

from __future__ import annotations

import numpy as np

from audit.engines.base import Engine
from audit.errors import ModelError
from audit.spec.model import ModelSpec
from audit.tasks.conventions import CONVENTIONS, DecodeContext
from audit.tasks.labels import EVIDENCE_SCORE, DatasetLabels, LabelMapping, decisive, needs_probe, resolve_labels
from audit.tasks.preprocess import preprocess


class TaskAdapter:
    """Feeds batches to an engine and decodes its outputs per the spec's output convention.

    Example:
        >>> adapter = TaskAdapter(spec, engine)  # doctest: +SKIP
        >>> preds = adapter.infer([x], [meta])  # doctest: +SKIP
    """

    def __init__(self, spec: ModelSpec, engine: Engine, mapping: LabelMapping | None = None):
        self.spec, self.engine = spec, engine
        first = engine.inputs[0]
        self.input_name, self.input_dtype = first.name, first.dtype
        batch_dim = first.shape[0] if first.shape else None
        self.image_only = len(first.shape) == 3  # torchvision detectors take one [3, H, W] image
        self.batchable = (not self.image_only and spec.resize in ("fixed", "letterbox", "center_crop")
                          and not (isinstance(batch_dim, int) and batch_dim == 1))
        self.decode = CONVENTIONS.get(spec.output_convention)
        self.output_names = [o.name for o in engine.outputs]
        self.context = DecodeContext()
        self.mapping: LabelMapping | None = None
        self.set_mapping(mapping)

    def set_mapping(self, mapping: LabelMapping | None) -> None:
        """Read labels through `mapping` from now on (None: the model's raw labels)."""
        self.mapping = self.context.mapping = mapping

    def infer(self, arrays: list[np.ndarray], metas: list[dict]) -> list:
        """Predictions for preprocessed images (one engine call per batch when batchable)."""
        if self.batchable:
            preds = self._run(np.stack(arrays), metas)
        else:
            preds = []
            for x, meta in zip(arrays, metas):
                preds.extend(self._run(x if self.image_only else x[None], [meta]))
        return self.relabel(preds)

    def relabel(self, preds: list) -> list:
        """Classification scores / label maps in the dataset's classes (detections are mapped while decoding)."""
        if self.mapping is None or self.spec.task == "detection":
            return preds
        if self.spec.task == "classification":
            return [self.mapping.reorder_scores(p, self.mapping.num_targets) for p in preds]
        return [self.mapping.relabel_map(p) for p in preds]

    def _run(self, batch: np.ndarray, metas: list[dict]) -> list:
        outputs = self.engine.run({self.input_name: batch.astype(self.input_dtype, copy=False)})
        return self.decode(outputs, metas, self.context, self.output_names)


def check_model(adapter: TaskAdapter, dataset, ignore_unmatched: bool = False) -> LabelMapping:
    """Run the first image end to end before the long run and resolve the label mapping; a misfit
    model stops with one line. Returns the mapping, installed in `adapter`."""
    first = adapter.engine.inputs[0]
    channel_axis = 0 if adapter.image_only else 1
    if len(first.shape) not in (3, 4):
        raise ModelError(f"model input '{first.name}' has shape {list(first.shape)}; expected [N, 3, H, W] or [3, H, W]")
    channels = first.shape[channel_axis]
    if isinstance(channels, int) and channels != 3:
        raise ModelError(f"model input '{first.name}' takes {channels} channels; robustaudit feeds RGB (3)")
    image = dataset.load_image(0)
    adapter.set_mapping(None)
    raw = _raw_prediction(adapter, image)
    num_classes, task = dataset.num_classes, adapter.spec.task
    if task == "classification" and raw.shape[0] < num_classes and not adapter.spec.class_names:
        raise ModelError(f"the model scores {raw.shape[0]} classes but the dataset has {num_classes}; check the model or the data")
    mapping = map_labels(adapter, dataset, ignore_unmatched, raw)
    pred = adapter.relabel([raw])[0]
    if task == "classification" and pred.shape[0] != num_classes:
        raise ModelError(f"the model scores {pred.shape[0]} classes but the dataset has {num_classes}; check the model or the data")
    if task == "segmentation" and pred.shape != image.shape[:2]:
        raise ModelError(f"the decoded label map has shape {pred.shape}, the image {image.shape[:2]}")
    if task == "segmentation" and num_classes and mapping.space == "index":
        top = int(pred.max()) if pred.size else 0
        if top >= num_classes:
            raise ModelError(f"the model predicts class {top} but the dataset has {num_classes} classes; check --num-classes")
    return mapping


PROBE_IMAGES = 8  # images a detector is run on when only its labels can tell its label space


def map_labels(adapter: TaskAdapter, dataset, ignore_unmatched: bool = False, first_pred=None) -> LabelMapping:
    """Resolve and install how the model's labels map to `dataset`'s categories (see audit.tasks.labels).

    Detectors that output labels and say nothing of their label space are run on up to
    `PROBE_IMAGES` images until their confident labels (score >= `EVIDENCE_SCORE`) leave one reading;
    if none does, the error names `--label-space`.
    """
    spec = adapter.spec
    data = DatasetLabels.of(dataset)
    origin = spec.origins.get("label_to_category" if spec.label_to_category is not None else "label_space", "default")
    probe: list[int] = []
    if needs_probe(spec, data):
        for i in range(min(PROBE_IMAGES, len(dataset))):
            pred = first_pred if i == 0 and first_pred is not None else _raw_prediction(adapter, dataset.load_image(i))
            probe.extend(int(l) for l, score in zip(pred.labels, pred.scores) if score >= EVIDENCE_SCORE)
            if decisive(probe, data):
                break
    mapping = resolve_labels(spec, data, _class_count(adapter, first_pred), probe, origin, ignore_unmatched)
    adapter.set_mapping(mapping)
    return mapping


def _raw_prediction(adapter: TaskAdapter, image: np.ndarray):
    x, meta = preprocess(image, adapter.spec)
    return adapter.infer([x], [meta])[0]


def _class_count(adapter: TaskAdapter, pred) -> int | None:
    """The model's class count where its outputs show it (one score per class), else None."""
    conv, outs = adapter.spec.output_convention, [o.shape for o in adapter.engine.outputs]
    out = outs[0]
    if conv == "classification_logits":
        return int(pred.shape[0]) if pred is not None else (out[-1] if isinstance(out[-1], int) else None)
    if conv == "segmentation_logits" and len(out) == 4 and isinstance(out[1], int):
        return out[1]
    if conv == "yolov8" and len(out) == 3 and isinstance(out[1], int):
        return out[1] - 4  # [N, 4 + C, A]
    if conv == "yolov8_seg" and len(outs) > 1 and len(out) == 3 and isinstance(out[1], int) and isinstance(outs[1][1], int):
        return out[1] - 4 - outs[1][1]  # [N, 4 + C + M, A] with M prototype masks
    if conv == "rtdetr_scores" and len(out) == 3 and isinstance(out[2], int):
        return out[2] - 4  # [N, Q, 4 + C]
    return None
