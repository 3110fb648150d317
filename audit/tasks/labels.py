"""Label spaces: how a model's label k maps to the dataset's categories, resolved explicitly.

A detector's label 5 may be the 5th class of its list (`index`), the 4th after a background slot
(`index+background`, torchvision-style fine-tuned models), COCO category 5 (`category-id`,
torchvision's COCO-trained models) or whatever class the model calls "bus" (`names`). Reading it
the wrong way gives a plausible, silently wrong AP. So the mapping comes from what the model or the
user says (a table, a label space), from evidence (class names on both sides, class counts, labels
that only one space allows), or the audit stops with an error naming `--label-space`. The resolved
mapping, with where it came from, is written into results.json and shown in the report.

A dataset may hold a subset of the model's classes (a COCO-80 detector on person / car / bicycle
data): the model classes it lacks are left out and listed, their detections counted (pycocotools
likewise evaluates the ground truth's categories only). Dataset categories the model cannot predict
stay an error unless `--ignore-unmatched-labels`, since their AP would be a silent 0. Every
detection left out is counted by reason (`LabelMapping.tally`), so none leaves the evaluation
unaccounted for.

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
# why a prediction is left out (`LabelMapping.reasons` codes 1, 2, 3; 0 is kept)
DROP_REASONS = ("background", "unmatched_class", "out_of_range")
# a detection at least this confident is label evidence: its label must exist in the model's label space
EVIDENCE_SCORE = 0.05
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
    background: frozenset[int] = frozenset()  # labels that are background slots (no class), not unmatched ones
    _id_array: np.ndarray | None = field(default=None, repr=False, compare=False)
    _lut_array: np.ndarray | None = field(default=None, repr=False, compare=False)
    _why_array: np.ndarray | None = field(default=None, repr=False, compare=False)

    def categories(self, labels: np.ndarray) -> np.ndarray:
        """Dataset categories of `labels`; -1 where a label has none (left out by the metric, counted by
        `tally`). Vectorised: it runs on every image of every cell."""
        labels = np.asarray(labels, np.int64)
        if self.identity is not None:
            return np.where(np.isin(labels, self._ids()), labels, -1)
        lut = self._lut()
        inside = (labels >= 0) & (labels < lut.size)
        return np.where(inside, lut[np.where(inside, labels, 0)] if lut.size else -1, -1)

    def reasons(self, labels: np.ndarray) -> np.ndarray:
        """Per label: 0 kept, else 1 + the index of its reason in `DROP_REASONS` (background, a model
        class the dataset lacks, a label outside the label space).

        Example:
            >>> m = LabelMapping("index+background", "flag", "", table=[None, 1, None], background=frozenset({0}))
            >>> m.reasons(np.array([0, 1, 2, 3])).tolist()
            [1, 0, 2, 3]
        """
        labels = np.asarray(labels, np.int64)
        if self.identity is not None:
            back = np.isin(labels, np.fromiter(self.background, np.int64, len(self.background)))
            return np.where(np.isin(labels, self._ids()), 0, np.where(back, 1, np.where(labels < 0, 3, 2))).astype(np.int8)
        why = self._why()
        inside = (labels >= 0) & (labels < why.size)
        return np.where(inside, why[np.where(inside, labels, 0)] if why.size else 3, 3).astype(np.int8)

    def tally(self, labels: np.ndarray) -> dict[str, int]:
        """How many of `labels` are kept and how many are left out, by reason (they sum to the total).

        Example:
            >>> LabelMapping("index", "flag", "", table=[1, 3]).tally(np.array([0, 1, 1, 5]))
            {'total': 4, 'kept': 3, 'background': 0, 'unmatched_class': 0, 'out_of_range': 1}
        """
        counts = np.bincount(self.reasons(labels), minlength=1 + len(DROP_REASONS))
        return {"total": int(counts.sum()), "kept": int(counts[0]),
                **{reason: int(n) for reason, n in zip(DROP_REASONS, counts[1:])}}

    def _ids(self) -> np.ndarray:
        if self._id_array is None:
            self._id_array = np.fromiter(self.identity or (), np.int64)
        return self._id_array

    def _lut(self) -> np.ndarray:
        if self._lut_array is None:
            self._lut_array = np.array([-1 if c is None else c for c in self.table or []], np.int64)
        return self._lut_array

    def _why(self) -> np.ndarray:
        if self._why_array is None:
            self._why_array = np.array([0 if c is not None else 1 if k in self.background else 2
                                        for k, c in enumerate(self.table or [])], np.int8)
        return self._why_array

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
        """The results document's `model.label_mapping`: space, source, reason and the table itself, each
        label with the model's own name for it (see `label_names`).

        Example:
            >>> m = LabelMapping("table", "metadata", "", table=[None, 1, 3], background=frozenset({0}))
            >>> [r["model_name"] for r in m.describe(["circle", "square"], DatasetLabels("detection", [1, 3], ["circle", "square"]))["table"]]
            [None, 'circle', 'square']
        """
        if self.identity is not None:
            labels = sorted(self.identity)
            names = self.label_names(model_names, max(labels, default=-1) + 1)
            rows = [{"label": c, "model_name": names[c], "category_id": c, "category": data.name_of(c)} for c in labels]
        else:
            names = self.label_names(model_names, len(self.table or []))
            rows = [{"label": label, "model_name": names[label], "category_id": cat,
                     "category": None if cat is None else data.name_of(cat)} for label, cat in enumerate(self.table or [])]
        return {"space": self.space, "source": self.source, "reason": self.reason, "table": rows[:limit],
                "unmatched_model": self.unmatched_model, "unmatched_dataset": self.unmatched_dataset}

    def label_names(self, model_names: Sequence[str], n_labels: int) -> list[str | None]:
        """The model's name of each label 0..n_labels-1 (None where it has none or it cannot be told).

        A list with one name per label is read as is (names spaces, torchvision's lists with their
        '__background__' slot); a list one shorter, where label 0 is background, names labels 1..n-1
        (class names given without the background slot, as beside a label_to_category [null, ...]).
        Any other length names no label rather than the wrong one.

        Example:
            >>> m = LabelMapping("index+background", "flag", "", table=[None, 1, 3], background=frozenset({0}))
            >>> m.label_names(["circle", "square"], 3)
            [None, 'circle', 'square']
        """
        names = [str(n) for n in model_names or []]
        if len(names) == n_labels or (self.identity is not None and len(names) > n_labels):
            return names[:n_labels]
        if len(names) == n_labels - 1 and 0 in self.background:
            return [None, *names]
        return [None] * n_labels


def add_counts(total: dict[str, int], counts: dict[str, int] | None) -> dict[str, int]:
    """Add `counts` (a `LabelMapping.tally`) into `total`, in place; returns `total`.

    Example:
        >>> add_counts({"total": 2, "kept": 2}, {"total": 3, "kept": 1, "background": 2})
        {'total': 5, 'kept': 3, 'background': 2}
    """
    for key, n in (counts or {}).items():
        total[key] = total.get(key, 0) + int(n)
    return total


def resolve_labels(spec, data: DatasetLabels, num_model_classes: int | None = None,
                   probe_labels: Sequence[int] | None = None, origin: str = "metadata",
                   ignore_unmatched: bool = False) -> LabelMapping:
    """The label mapping of `spec` on `data`, or a one-line error naming the flag that decides.

    `num_model_classes` is the class count read from the output shape (score conventions);
    `probe_labels` the raw labels the model predicted on a few images (detectors that output labels);
    `origin` says where `spec.label_space` / `label_to_category` came from.

    Example:
        >>> from audit.spec.model import ModelSpec
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
    """Whether only the labels a detector predicts can tell its label space (see `_infer_from_labels`):
    even where the dataset's ids are 1..k, so that background+index and category ids agree, a label 0
    would show 0-based indices."""
    return (data.task_type == "detection" and spec.label_to_category is None and spec.label_space is None
            and not spec.class_names and spec.output_convention in _LABEL_OUTPUT_CONVENTIONS)


def candidates(labels: Sequence[int], data: DatasetLabels) -> set[str]:
    """The label spaces that every one of `labels` (confident predictions) fits.

    A torchvision-format detector's labels are background+index or category ids (its contract); a
    label 0 rules out both (0 is background there, and no COCO id) and admits 0-based indices. A label
    above the category count rules out background+index, one at or above it indices, one that is not
    a category id of the dataset category ids.

    Example:
        >>> voc = DatasetLabels("detection", list(range(1, 21)), [str(i) for i in range(20)])
        >>> sorted(candidates([0, 5], voc)), sorted(candidates([3, 20], voc))
        (['index'], ['category-id', 'index+background'])
    """
    k, ids = len(data.ids), set(data.ids)
    left = {"index+background", "category-id"} | ({"index"} if 0 in labels else set())
    for label in labels:
        if label <= 0 or label > k:
            left.discard("index+background")
        if label not in ids:
            left.discard("category-id")
        if label < 0 or label >= k:
            left.discard("index")
    return left


def decisive(labels: Sequence[int], data: DatasetLabels) -> bool:
    """Whether probe labels already leave at most one label space (more probing cannot change it)."""
    return len(candidates(sorted(set(labels)), data)) <= 1


def _from_table(table: list, data: DatasetLabels, origin: str, ignore_unmatched: bool) -> LabelMapping:
    try:
        table = [None if c is None else int(c) for c in table]
    except (TypeError, ValueError):
        raise ConfigError(f"label_to_category must list integers or null, got {str(table)[:80]}") from None
    known = set(data.ids)
    # categories the dataset lacks: the model's classes beyond a subset dataset, left out and listed
    foreign = sorted({c for c in table if c is not None and c not in known})
    mapped = {c for c in table if c is not None}
    unmatched_data = [n for i, n in zip(data.ids, data.names) if i not in mapped]
    if unmatched_data and not ignore_unmatched:
        raise ConfigError(f"label_to_category ({origin}) maps no label to the dataset categories {_show(unmatched_data)}, "
                          "so their AP would be 0; fix the table, or pass --ignore-unmatched-labels to leave them out")
    kept = [None if c in foreign else c for c in table]
    return LabelMapping("table", origin, f"label_to_category table ({origin})", table=kept,
                        unmatched_model=[str(c) for c in foreign], unmatched_dataset=unmatched_data,
                        background=frozenset(k for k, c in enumerate(table) if c is None))


def _from_space(space: str, spec, data: DatasetLabels, count: int | None, source: str, reason: str,
                ignore_unmatched: bool) -> LabelMapping:
    ids = data.ids
    if space == "names":
        return _by_names(spec.class_names, data, source, reason, ignore_unmatched)
    if space == "category-id":
        if data.task_type != "detection":
            raise ConfigError(f"label space 'category-id' applies to detection datasets only; {FLAG_HINT}")
        _same_ids_same_names(spec.class_names, data)
        # label 0 is torchvision's background; any other label that is no category id of the dataset
        # is a model class the dataset lacks (a subset of COCO)
        return LabelMapping(space, source, reason, identity=set(ids),
                            background=frozenset() if 0 in ids else frozenset({0}))
    table: list[int | None] = [None, *ids] if space == "index+background" else list(ids)
    expected = len(table)
    if count is not None and count != expected:
        raise ModelError(f"the model scores {count} classes but label space '{space}' needs {expected} for the dataset's "
                         f"{len(ids)} categories; {FLAG_HINT}")
    return LabelMapping(space, source, reason, table=table,
                        background=frozenset({0}) if space == "index+background" else frozenset())


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
    # a model may know more classes than the dataset holds (a COCO-80 detector on person / car data,
    # ImageNet-R style subsets): those are left out and listed. A dataset category the model cannot
    # predict would score 0 whatever the model does, so that stays an error unless asked for.
    if unmatched_data and not ignore_unmatched:
        raise ConfigError(f"class names do not match (dataset categories the model does not name: {_show(unmatched_data)}); "
                          "fix the names, or pass --ignore-unmatched-labels to leave them out (they are listed in the results)")
    return LabelMapping("names", source, reason, table=table, unmatched_model=unmatched_model,
                        unmatched_dataset=unmatched_data,
                        background=frozenset(k for k, n in enumerate(model_names) if normalise_name(n) in PLACEHOLDERS))


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
    """Detectors that output labels (torchvision): background + index, category ids, or (on a confident
    label 0) 0-based indices, as the labels they predict allow; thin evidence stops with the flag."""
    ids, k = data.ids, len(data.ids)
    seen = sorted({int(l) for l in probe})
    left = candidates(seen, data) if seen else set()
    # readings that map every label alike are one: background+index and category ids where the ids are
    # 1..k, indices and category ids where they are 0..k-1 (a YOLO-format dataset)
    for pair, start in ((("index+background", "category-id"), 1), (("index", "category-id"), 0)):
        if seen and left == set(pair) and ids == list(range(start, k + start)):
            return _from_space(pair[0], spec, data, None, "inferred",
                               f"the dataset's category ids are {start}..{k + start - 1}, where {pair[0]} and category-id "
                               f"agree, and the model predicted labels {_show(list(map(str, seen)))}", False)
    if len(left) == 1:
        space = left.pop()
        why = {"index": f"the model predicted label 0 (score >= {EVIDENCE_SCORE}), which background+index and "
                        f"category ids do not allow, and no label above {k - 1}: 0-based class indices",
               "category-id": f"the model predicted labels {[l for l in seen if l > k][:5]} above the dataset's {k} "
                              "categories, which only category ids allow",
               "index+background": f"the model predicted labels {[l for l in seen if l not in set(ids)][:5]} that are "
                                   "not dataset category ids"}[space]
        return _from_space(space, spec, data, None, "inferred", why, False)
    foreign = [l for l in seen if l > k and l not in set(ids)]
    if seen and not left:
        what = (f"labels {foreign[:5]} that are neither category ids of the dataset nor within its {k} categories"
                if foreign else f"labels {seen[:8]} that fit no label space (0 and labels at or above {k})")
        raise ModelError(f"the detector predicted {what}: its classes are another dataset's; give its class names or "
                         "label_to_category in --model-config (then --label-space names maps them by name)")
    shown = (f"labels seen on the probe images (score >= {EVIDENCE_SCORE}): {seen[:12]}" if seen
             else f"no labels were predicted on the probe images with score >= {EVIDENCE_SCORE}")
    raise ModelError(f"cannot tell whether the detector's labels are category ids, background+index or 0-based indices "
                     f"(dataset ids {_show([str(i) for i in ids])}; {shown}); pass --label-space category-id "
                     "(torchvision's COCO-trained models), --label-space index+background (fine-tuned ones) or "
                     "--label-space index (0-based labels)")


def label_notes(mapping: dict[str, Any], task_type: str) -> list[str]:
    """One line per thing the label mapping left out (`LabelMapping.describe()`, with `predictions`),
    for the console: which classes, how many detections, and why.

    Example:
        >>> label_notes({"space": "index", "unmatched_model": ["car"], "predictions": {"total": 5, "kept": 4,
        ...              "background": 0, "unmatched_class": 1, "out_of_range": 0}}, "detection")
        ['1 model class the dataset lacks left out: car', '1 of 5 detections (all cells) left out: 1 of model classes the dataset lacks']
    """
    notes, model, data = [], mapping.get("unmatched_model") or [], mapping.get("unmatched_dataset") or []
    if model:
        effect = "; their pixels count as wrong" if task_type == "segmentation" else ""
        notes.append(f"{_count(len(model), 'model class', 'model classes')} the dataset lacks left out: {_show(model)}{effect}")
    if data:
        notes.append(f"{_count(len(data), 'dataset category', 'dataset categories')} the model does not name left out "
                     f"(--ignore-unmatched-labels): {_show(data)}")
    counts = mapping.get("predictions") or {}
    dropped = {r: int(counts.get(r) or 0) for r in DROP_REASONS}
    if sum(dropped.values()):
        space = mapping.get("space")
        why = {"background": "background (a background label)", "unmatched_class": "of model classes the dataset lacks",
               "out_of_range": f"with labels outside the '{space}' label space"}
        counted, cells = counts.get("cells_counted"), counts.get("cells")
        scope = "all cells" if counted == cells else f"the {counted} of {cells} cells this run counted"
        line = (f"{sum(dropped.values())} of {counts.get('total', 0)} detections ({scope}) left out: "
                + ", ".join(f"{n} {why[r]}" for r, n in dropped.items() if n))
        if dropped["out_of_range"] or (dropped["background"] and space == "index+background"
                                       and mapping.get("source") == "inferred"):
            line += f"; if the model's labels are read the wrong way, {FLAG_HINT}"
        notes.append(line)
    return notes


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


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
