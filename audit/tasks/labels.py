"""Label spaces: how a model's label k maps to the dataset's categories, resolved explicitly.

A detector's label 5 may be the 5th class of its list (`index`), the 4th after a background slot
(`index+background`, torchvision-style fine-tuned models), COCO category 5 (`category-id`,
torchvision's COCO-trained models) or whatever class the model calls "bus" (`names`). Reading it
the wrong way gives a plausible, silently wrong AP. So the mapping comes from what the model or the
user says (a table, a label space), from evidence (class names on both sides, class counts, labels
that only one space allows), or the audit stops with an error naming `--label-space`. The resolved
mapping, with where it came from, is written into results.json and shown in the report.

For classification and segmentation the "category" of a label is the dataset's class index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from audit.errors import ConfigError, ModelError

# detectors that output labels and may use a background slot or category ids (torchvision's layout)
_LABEL_OUTPUT_CONVENTIONS = {"torchvision_detection"}
# class-list slots that name no class (torchvision's COCO list: '__background__', 'N/A')
PLACEHOLDERS = {"", "background", "na", "n/a", "none"}
FLAG_HINT = "pass --label-space index|index+background|category-id|names (or label_space / label_to_category in --model-config)"


def normalise_name(name: str) -> str:
    """Case, spaces, underscores and hyphens do not distinguish class names ("dining table" is VOC's
    "diningtable").

    Example:
        >>> normalise_name("Traffic_Light "), normalise_name("traffic-light"), normalise_name("diningtable")
        ('trafficlight', 'trafficlight', 'diningtable')
    """
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


@dataclass
class DatasetLabels:
    """The dataset side: category ids (detection) or class indices (classification, segmentation)."""

    task_type: str
    ids: list[int]
    names: list[str]

    @classmethod
    def of(cls, dataset: Any) -> "DatasetLabels":
        ids = getattr(dataset, "category_ids", None)
        names = list(dataset.class_names)
        return cls(dataset.task_type, list(ids) if ids is not None else list(range(len(names))), names)

    def __post_init__(self) -> None:
        self._by_id = dict(zip(self.ids, self.names))

    def name_of(self, category: int) -> str:
        return self._by_id.get(category, str(category))


@dataclass
class LabelMapping:
    """Model label -> dataset category (None: background or no counterpart), and why.

    `identity` (the `category-id` space) maps a label to itself when the dataset has that category,
    else drops it; `table` is used otherwise.

    Example:
        >>> m = LabelMapping("index+background", "flag", "given with --label-space", table=[None, 1, 3])
        >>> m.categories(np.array([1, 2])).tolist()
        [1, 3]
    """

    space: str
    source: str  # metadata, model-config, flag, inferred, convention
    reason: str
    table: list[int | None] | None = None
    identity: set[int] | None = None
    unmatched_model: list[str] = field(default_factory=list)
    unmatched_dataset: list[str] = field(default_factory=list)
    num_targets: int = 0  # the dataset's class count (classification scores are reordered to it)
    _id_array: np.ndarray | None = field(default=None, repr=False, compare=False)
    _lut_array: np.ndarray | None = field(default=None, repr=False, compare=False)

    def categories(self, labels: np.ndarray) -> np.ndarray:
        """Dataset categories of `labels`; -1 where a label has none (ignored by the metric). Vectorised:
        it runs on every image of every cell."""
        labels = np.asarray(labels, np.int64)
        if self.identity is not None:
            return np.where(np.isin(labels, self._ids()), labels, -1)
        lut = self._lut()
        bad = labels[(labels < 0) | (labels >= lut.size)]
        if bad.size:
            raise ModelError(f"the model predicted label {int(bad[0])}, outside its {lut.size} classes under the "
                             f"'{self.space}' label space ({self.source}); {FLAG_HINT}")
        return lut[labels]

    def _ids(self) -> np.ndarray:
        if self._id_array is None:
            self._id_array = np.fromiter(self.identity or (), np.int64)
        return self._id_array

    def _lut(self) -> np.ndarray:
        if self._lut_array is None:
            self._lut_array = np.array([-1 if c is None else c for c in self.table or []], np.int64)
        return self._lut_array

    def reorder_scores(self, scores: np.ndarray, num_classes: int) -> np.ndarray:
        """Classification: model scores [C] -> scores over the dataset's classes [K] (-inf: no counterpart)."""
        if self.space == "index" and self.table is not None and len(self.table) == num_classes == scores.shape[0]:
            return scores
        out = np.full(num_classes, -np.inf, np.float32)
        for label, cls in enumerate(self.table or []):
            if cls is not None and label < scores.shape[0]:
                out[cls] = scores[label]
        return out

    def relabel_map(self, labels: np.ndarray) -> np.ndarray:
        """Segmentation: a model label map -> the dataset's class indices (-1: no counterpart, counted wrong)."""
        if self.space == "index":
            return labels
        lut = self._lut()
        return np.where((labels >= 0) & (labels < lut.size), lut[np.clip(labels, 0, max(lut.size - 1, 0))], -1)

    def describe(self, model_names: Sequence[str], data: DatasetLabels, limit: int = 1000) -> dict[str, Any]:
        """The results document's `model.label_mapping`: space, source, reason and the table itself."""
        rows = []
        if self.identity is not None:
            rows = [{"label": c, "category_id": c, "category": data.name_of(c)} for c in sorted(self.identity)]
        else:
            for label, cat in enumerate(self.table or []):
                rows.append({"label": label, "model_name": model_names[label] if label < len(model_names) else None,
                             "category_id": cat, "category": None if cat is None else data.name_of(cat)})
        return {"space": self.space, "source": self.source, "reason": self.reason, "table": rows[:limit],
                "unmatched_model": self.unmatched_model, "unmatched_dataset": self.unmatched_dataset}


def resolve_labels(spec, data: DatasetLabels, num_model_classes: int | None = None,
                   probe_labels: Sequence[int] | None = None, origin: str = "metadata",
                   ignore_unmatched: bool = False) -> LabelMapping:
    """The label mapping of `spec` on `data`, or a one-line error naming the flag that decides.

    `num_model_classes` is the class count read from the output shape (score conventions);
    `probe_labels` the raw labels the model predicted on a few images (detectors that output labels);
    `origin` says where `spec.label_space` / `label_to_category` came from.

    Example:
        >>> from audit.modelspec import ModelSpec
        >>> spec = ModelSpec(task="detection", output_convention="torchvision_detection", resize="none",
        ...                  label_space="category-id")
        >>> resolve_labels(spec, DatasetLabels("detection", [1, 3], ["a", "b"])).categories(np.array([3, 2])).tolist()
        [3, -1]
    """
    if spec.label_to_category is not None:
        mapping = _from_table(spec.label_to_category, data, origin, ignore_unmatched)
    elif spec.label_space is not None:
        given = {"flag": "given with --label-space", "model-config": "given in --model-config",
                 "metadata": "given in the model's metadata"}.get(origin, f"given ({origin})")
        mapping = _from_space(spec.label_space, spec, data, num_model_classes, origin, given, ignore_unmatched)
    else:
        mapping = _infer(spec, data, num_model_classes, probe_labels, ignore_unmatched)
    mapping.num_targets = len(data.ids)
    return mapping


def needs_probe(spec, data: DatasetLabels) -> bool:
    """Whether only the labels a detector predicts can tell its label space (see `_infer_from_labels`)."""
    return (data.task_type == "detection" and spec.label_to_category is None and spec.label_space is None
            and not spec.class_names and spec.output_convention in _LABEL_OUTPUT_CONVENTIONS
            and data.ids != list(range(1, len(data.ids) + 1)))


def decisive(labels: Sequence[int], data: DatasetLabels) -> bool:
    """Whether probe labels already rule out one of background+index and category-id."""
    k, ids = len(data.ids), set(data.ids)
    return any(l > k or (1 <= l <= k and l not in ids) for l in labels)


def _from_table(table: list, data: DatasetLabels, origin: str, ignore_unmatched: bool) -> LabelMapping:
    try:
        table = [None if c is None else int(c) for c in table]
    except (TypeError, ValueError):
        raise ConfigError(f"label_to_category must list integers or null, got {str(table)[:80]}") from None
    known = set(data.ids)
    foreign = sorted({c for c in table if c is not None and c not in known})
    if foreign and not ignore_unmatched:
        raise ConfigError(f"label_to_category ({origin}) names categories {foreign[:10]} that the dataset does not have; "
                          "fix the table, or pass --ignore-unmatched-labels to leave those labels out")
    mapped = {c for c in table if c is not None}
    kept = [None if c in foreign else c for c in table]
    return LabelMapping("table", origin, f"label_to_category table ({origin})", table=kept,
                        unmatched_model=[str(c) for c in foreign],
                        unmatched_dataset=[n for i, n in zip(data.ids, data.names) if i not in mapped])


def _from_space(space: str, spec, data: DatasetLabels, count: int | None, source: str, reason: str,
                ignore_unmatched: bool) -> LabelMapping:
    ids = data.ids
    if space == "names":
        return _by_names(spec.class_names, data, source, reason, ignore_unmatched)
    if space == "category-id":
        if data.task_type != "detection":
            raise ConfigError(f"label space 'category-id' applies to detection datasets only; {FLAG_HINT}")
        _same_ids_same_names(spec.class_names, data)
        return LabelMapping(space, source, reason, identity=set(ids))
    table: list[int | None] = [None, *ids] if space == "index+background" else list(ids)
    expected = len(table)
    if count is not None and count != expected:
        raise ModelError(f"the model scores {count} classes but label space '{space}' needs {expected} for the dataset's "
                         f"{len(ids)} categories; {FLAG_HINT}")
    return LabelMapping(space, source, reason, table=table)


def _by_names(model_names: Sequence[str], data: DatasetLabels, source: str, reason: str,
              ignore_unmatched: bool) -> LabelMapping:
    if not model_names:
        raise ConfigError(f"label space 'names' needs the model's class names (class_names in --model-config); {FLAG_HINT}")
    _no_duplicates(model_names, "the model's class names")
    _no_duplicates(data.names, "the dataset's category names")
    by_name = {normalise_name(n): i for n, i in zip(data.names, data.ids)}
    table = [by_name.get(normalise_name(n)) for n in model_names]
    # torchvision's COCO list keeps '__background__' and 'N/A' slots: no class, nothing to match
    unmatched_model = [n for n, c in zip(model_names, table) if c is None and normalise_name(n) not in PLACEHOLDERS]
    mapped = {c for c in table if c is not None}
    unmatched_data = [n for n, i in zip(data.names, data.ids) if i not in mapped]
    if not mapped:
        raise ConfigError(f"none of the model's {len(model_names)} class names ({_show(model_names)}) matches a dataset "
                          f"category ({_show(data.names)}); {FLAG_HINT}")
    # classification: a model may know more classes than the dataset holds (ImageNet-R style subsets)
    strict_model = data.task_type != "classification"
    if ((unmatched_model and strict_model) or unmatched_data) and not ignore_unmatched:
        parts = []
        if unmatched_model and strict_model:
            parts.append(f"model classes without a dataset category: {_show(unmatched_model)}")
        if unmatched_data:
            parts.append(f"dataset categories the model does not name: {_show(unmatched_data)}")
        raise ConfigError(f"class names do not match ({'; '.join(parts)}); fix the names, or pass "
                          "--ignore-unmatched-labels to leave them out (they are listed in the results)")
    return LabelMapping("names", source, reason, table=table, unmatched_model=unmatched_model,
                        unmatched_dataset=unmatched_data)


def _infer(spec, data: DatasetLabels, count: int | None, probe: Sequence[int] | None,
           ignore_unmatched: bool) -> LabelMapping:
    if spec.class_names:
        if [normalise_name(n) for n in spec.class_names] == [normalise_name(n) for n in data.names]:
            return _from_space("index", spec, data, count, "inferred",
                               "the model's class names equal the dataset's, in the same order", ignore_unmatched)
        return _by_names(spec.class_names, data, "inferred", "the model's class names matched to the dataset's",
                         ignore_unmatched)
    if data.task_type in ("classification", "segmentation"):
        return _from_space("index", spec, data, count, "convention",
                           f"{data.task_type} output k is the dataset's class k (the model carries no class names)",
                           ignore_unmatched)
    if spec.output_convention == "mmdeploy":
        return _from_space("index", spec, data, count, "convention",
                           "mmdeploy (OpenMMLab) labels are 0-based indices of the dataset's classes", ignore_unmatched)
    if spec.output_convention in _LABEL_OUTPUT_CONVENTIONS:
        return _infer_from_labels(spec, data, probe or [])
    # YOLO / RT-DETR style: labels are 0-based class indices; only the class count can vouch for the order
    if count == len(data.ids):
        return _from_space("index", spec, data, count, "inferred",
                           f"the model scores {count} classes and the dataset has {count} categories", ignore_unmatched)
    shown = f"scores {count} classes" if count is not None else "does not show its class count"
    raise ModelError(f"the model {shown} and carries no class names, but the dataset has {len(data.ids)} categories: "
                     f"cannot tell which class is which; {FLAG_HINT}")


def _infer_from_labels(spec, data: DatasetLabels, probe: Sequence[int]) -> LabelMapping:
    """Detectors that output labels (torchvision): background + index, or category ids?"""
    ids, k = data.ids, len(data.ids)
    if ids == list(range(1, k + 1)):
        return _from_space("index+background", spec, data, None, "inferred",
                           f"the dataset's category ids are 1..{k}, where index+background and category-id agree", False)
    seen = sorted({int(l) for l in probe})
    beyond = [l for l in seen if l > k]
    not_ids = [l for l in seen if 1 <= l <= k and l not in set(ids)]
    foreign = [l for l in beyond if l not in set(ids)]
    if foreign:
        raise ModelError(f"the detector predicted labels {foreign[:5]} that are neither category ids of the dataset nor "
                         f"within its {k} categories: its classes are another dataset's; give its class names or "
                         "label_to_category in --model-config (then --label-space names maps them by name)")
    if beyond and not not_ids:
        return _from_space("category-id", spec, data, None, "inferred",
                           f"the model predicted labels {beyond[:5]} above the dataset's {k} categories, "
                           "which only category ids allow", False)
    if not_ids and not beyond:
        return _from_space("index+background", spec, data, None, "inferred",
                           f"the model predicted labels {not_ids[:5]} that are not dataset category ids", False)
    shown = f"labels seen on the probe images: {seen[:12]}" if seen else "no labels were predicted on the probe images"
    raise ModelError(f"cannot tell whether the detector's labels are category ids or background+index "
                     f"(dataset ids {_show([str(i) for i in ids])}; {shown}); pass --label-space category-id "
                     "(torchvision's COCO-trained models) or --label-space index+background (fine-tuned ones)")


def _same_ids_same_names(model_names: Sequence[str], data: DatasetLabels) -> None:
    """Under category-id, label k is the dataset's category k: where the model names its classes, the
    names of the shared ids must agree, else the model's ids are another dataset's (COCO's on VOC)."""
    clashes = [(k, model_names[k], data.name_of(k)) for k in data.ids
               if 0 <= k < len(model_names) and normalise_name(model_names[k]) not in PLACEHOLDERS
               and normalise_name(model_names[k]) != normalise_name(data.name_of(k))]
    if clashes:
        shown = ", ".join(f"{k}: {m!r} vs {d!r}" for k, m, d in clashes[:4])
        raise ConfigError(f"read as category ids, the model's classes are not the dataset's ({shown}"
                          f"{', ...' if len(clashes) > 4 else ''}): its ids come from another dataset; map by name with "
                          "--label-space names (add --ignore-unmatched-labels to leave out classes only one side has) "
                          "or give label_to_category in --model-config")


def _no_duplicates(names: Sequence[str], what: str) -> None:
    seen: dict[str, str] = {}
    for n in names:
        key = normalise_name(n)
        if key in PLACEHOLDERS:
            continue
        if key in seen:
            raise ConfigError(f"{what} hold '{seen[key]}' and '{n}', the same name once normalised; "
                              "rename one, or map with label_to_category in --model-config")
        seen[key] = n


def _show(names: Sequence[str], n: int = 6) -> str:
    names = list(names)
    return ", ".join(map(str, names[:n])) + (f", ... ({len(names)} in all)" if len(names) > n else "")
