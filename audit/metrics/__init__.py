"""Task metrics (streamed: update per image, compute at the end) and robustness summaries.

Every metric object has `update(index, prediction)`, `compute()`, `compute_on(positions)` (on a
resampling of the images, for bootstrap), `state()` and `load_state(state)` (a cell's saved state).
"""

from __future__ import annotations

from audit.datasets.base import Dataset
from audit.metrics.classification import Accuracy
from audit.metrics.coco import CocoAP
from audit.metrics.segmentation import MeanIoU
from audit.metrics.voc import VocCocoAP

PRIMARY_METRIC = {"classification": "top1", "detection": "bbox_AP", "segmentation": "mIoU"}
METRICS_INFO = {
    "top1": {"label": "top-1 accuracy", "higher_is_better": True},
    "top5": {"label": "top-5 accuracy", "higher_is_better": True},
    "mIoU": {"label": "mIoU", "higher_is_better": True},
    "aAcc": {"label": "pixel accuracy", "higher_is_better": True},
    "mAcc": {"label": "mean class accuracy", "higher_is_better": True},
    **{f"{t}_{k}": {"label": f"{'box' if t == 'bbox' else 'mask'} {k}", "higher_is_better": True}
       for t in ("bbox", "segm") for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")},
    "voc_AP50": {"label": "VOC AP50 (devkit)", "higher_is_better": True},
}


class _LazyTargets:
    """targets[i] -> dataset.target(i), read on demand (label maps are large)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset.target(index)


def make_metric(dataset: Dataset, with_masks: bool = False):
    """The streaming metric for the dataset's task type.

    Example:
        >>> metric = make_metric(open_dataset("cifar10", "data"))  # doctest: +SKIP
    """
    if dataset.task_type == "classification":
        return Accuracy([dataset.target(i) for i in range(len(dataset))], dataset.num_classes)
    if dataset.task_type == "segmentation":
        return MeanIoU(_LazyTargets(dataset), dataset.num_classes, getattr(dataset, "ignore_index", 255))
    image_ids = [dataset.target(i) for i in range(len(dataset))]
    if "voc_AP50" in getattr(dataset, "extra_metrics", ()):
        return VocCocoAP(dataset.coco_gt, image_ids, with_masks=with_masks, eleven_point=dataset.eleven_point)
    return CocoAP(dataset.coco_gt, image_ids, with_masks=with_masks)


def metric_names(task_type: str, with_masks: bool = False, dataset: Dataset | None = None) -> list[str]:
    """The metric keys a task reports, primary first (then any the dataset's format adds, e.g. VOC's AP50)."""
    return _task_metric_names(task_type, with_masks) + list(getattr(dataset, "extra_metrics", ()))


def _task_metric_names(task_type: str, with_masks: bool) -> list[str]:
    if task_type == "classification":
        return ["top1", "top5"]
    if task_type == "segmentation":
        return ["mIoU", "aAcc", "mAcc"]
    keys = [f"bbox_{k}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")]
    return keys + ([k.replace("bbox", "segm") for k in keys] if with_masks else [])


__all__ = ["METRICS_INFO", "PRIMARY_METRIC", "Accuracy", "CocoAP", "MeanIoU", "VocCocoAP", "make_metric", "metric_names"]
