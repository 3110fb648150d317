"""What a model means: task, preprocessing and output convention, as a typed `ModelSpec`.

robustaudit's exporter writes these fields into the ONNX file's `metadata_props` (strings; lists and
dicts JSON-encoded). Foreign models have none: the same fields come from CLI flags or a
`--model-config FILE` (YAML or JSON with the same keys, or a timm model's `pretrained_cfg` dumped to
JSON: see audit/spec/timm_cfg.py). Each source may hold any subset of the keys (audit.spec.config.read_config,
`metadata_values`): audit.spec.resolve.resolve_spec merges them by precedence and builds the spec once
(`ModelSpec.build`). Keys:

| key                | value                                                                        |
|--------------------|------------------------------------------------------------------------------|
| robustaudit        | metadata format version, "1"                                                 |
| task               | classification, detection, segmentation                                      |
| output_convention  | see OUTPUT_CONVENTIONS                                                       |
| input_size         | [H, W] the network input (fixed resize) or the resize target                 |
| resize             | fixed (to input_size), keep_ratio (shorter side to min_size, longer <= max_size), letterbox (YOLO), center_crop (timm / torchvision eval: shorter side to floor(input / crop_pct), then the centre input_size), none |
| crop_pct           | center_crop: the fraction of the resized image kept (timm default 0.875 = 224 / 256)  |
| interpolation      | bilinear, bicubic or nearest (every resize policy; default bilinear)         |
| min_size, max_size | for keep_ratio                                                               |
| mean, std          | per channel, on [0, 1] pixels (torchvision detectors normalise inside: 0 / 1)|
| channel_order      | RGB or BGR                                                                   |
| class_names        | ["cat", ...] one per model class index                                       |
| label_to_category  | dataset category id per model label index (null for background), detection  |
| label_space        | how labels map to the dataset: index, index+background, category-id, names   |
| ignore_index       | segmentation label to ignore (default 255)                                   |
| precision          | fp32, fp16, int8                                                             |
| provenance         | {"source_sha256", "backbone", "mode", "augment", "lr", ...}                  |
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from audit.errors import ConfigError
from audit.registry import unknown_name

METADATA_VERSION = "1"
TASK_TYPES = ("classification", "detection", "segmentation")
OUTPUT_CONVENTIONS = {
    "classification_logits": "classification: [N, C] logits (or probabilities)",
    "torchvision_detection": "detection: boxes [K,4] xyxy, labels [K], scores [K], optional masks [K,1,H,W]",
    "yolov8": "detection: Ultralytics YOLOv8/11/26 raw [N, 4+C, A] (cx, cy, w, h in input pixels, class scores), NMS in NumPy",
    "yolov8_seg": "detection + masks: Ultralytics -seg raw [N, 4+C+M, A] and prototypes [N, M, H/4, W/4]",
    "yolo_end2end": "detection: Ultralytics NMS-free / nms=True rows [N, K, 6(+M)] (x1, y1, x2, y2, score, class), optional prototypes",
    "rtdetr": "detection: Ultralytics RT-DETR [N, K, 6] (cx, cy, w, h normalised to the input, score, class), no NMS",
    "rtdetr_scores": "detection: RT-DETR of Ultralytics < 8.4, [N, Q, 4+C] (normalised cx, cy, w, h, sigmoid class scores)",
    "mmdeploy": "detection: dets [1,K,5] (x1,y1,x2,y2,score) + labels [1,K], optional masks [1,K,H,W]",
    "segmentation_logits": "segmentation: [N, C, H, W] logits",
    "segmentation_labels": "segmentation: [N, H, W] (or [N,1,H,W]) label map",
}
RESIZE_POLICIES = ("fixed", "keep_ratio", "letterbox", "center_crop", "none")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
DEFAULT_CROP_PCT = 0.875  # timm and torchvision ImageNet evaluation: resize to 256, crop 224
# How a model's label k maps to the dataset's categories (audit/tasks/labels.py resolves it):
LABEL_SPACES = {
    "index": "label k is the k-th class of the model's class list (the dataset's k-th category by id)",
    "index+background": "label 0 is the background, label k >= 1 the (k-1)-th category (torchvision-style fine-tuned)",
    "category-id": "the label is the dataset's category id (torchvision's COCO-trained detectors)",
    "names": "the model's class names matched to the dataset's category names (case and spaces normalised)",
}
_NOT_STORED = ("origins",)
_JSON_KEYS = ("input_size", "mean", "std", "class_names", "label_to_category", "provenance")


@dataclass
class ModelSpec:
    """How to feed a model and read its outputs.

    Example:
        >>> spec = ModelSpec(task="classification", output_convention="classification_logits",
        ...                  input_size=(32, 32), class_names=["a", "b"])
        >>> ModelSpec.from_metadata(spec.to_metadata()) == spec
        True
    """

    task: str
    output_convention: str
    input_size: tuple[int, int] | None = None
    resize: str = "fixed"
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bilinear"
    min_size: int | None = None
    max_size: int | None = None
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"
    class_names: list[str] = field(default_factory=list)
    label_to_category: list[int | None] | None = None
    label_space: str | None = None
    ignore_index: int = 255
    precision: str = "fp32"
    provenance: dict[str, Any] = field(default_factory=dict)
    # where each value came from (flag, model-config, metadata, inferred, convention, default, assumed,
    # unset): set by audit.spec.resolve.resolve_spec, written to results.json, never to the model's metadata
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first field that is out of its domain."""
        self._check_types()
        if self.task not in TASK_TYPES:
            raise ConfigError(f"model task '{self.task}' is not one of {', '.join(TASK_TYPES)}")
        if self.output_convention not in OUTPUT_CONVENTIONS:
            raise ConfigError(unknown_name("output convention", self.output_convention, OUTPUT_CONVENTIONS,
                                           "audit list conventions"))
        if self.resize not in RESIZE_POLICIES:
            raise ConfigError(f"unknown resize policy '{self.resize}'; valid: {', '.join(RESIZE_POLICIES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"unknown interpolation '{self.interpolation}'; valid: {', '.join(INTERPOLATIONS)}")
        if not 0 < float(self.crop_pct) <= 1:
            raise ConfigError(f"crop_pct must be in (0, 1], got {self.crop_pct}")
        self.crop_pct = float(self.crop_pct)
        if self.resize == "center_crop" and self.task != "classification":
            raise ConfigError("resize policy 'center_crop' crops the image border away: classification models only")
        if self.resize in ("fixed", "letterbox", "center_crop") and self.input_size is None:
            raise ConfigError(f"resize policy '{self.resize}' needs an input size (--input-size H W)")
        if self.resize == "keep_ratio" and (self.min_size is None or self.max_size is None):
            raise ConfigError("resize policy 'keep_ratio' needs min_size and max_size")
        if self.label_space is not None and self.label_space not in LABEL_SPACES:
            raise ConfigError(f"unknown label space '{self.label_space}'; valid: {', '.join(LABEL_SPACES)}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(f"channel order must be RGB or BGR, got '{self.channel_order}'")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"mean and std need 3 values each, std > 0; got mean={self.mean} std={self.std}")
        if self.input_size is not None:
            self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]
        self.mean = tuple(float(v) for v in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(v) for v in self.std)  # type: ignore[assignment]

    def _check_types(self) -> None:
        """Types first (a model config or ONNX metadata can hold anything), so the checks below can compare."""
        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"model spec field '{name}' must be {expected}, got {str(getattr(self, name))[:80]!r}")

        for name in ("task", "output_convention", "resize", "channel_order", "precision", "interpolation"):
            if not isinstance(getattr(self, name), str):
                raise bad(name, "text")
        if self.label_space is not None and not isinstance(self.label_space, str):
            raise bad("label_space", "text")
        if not _is_number(self.crop_pct):
            raise bad("crop_pct", "a number in (0, 1]")
        for name in ("min_size", "max_size"):
            if getattr(self, name) is not None and not _is_int(getattr(self, name), 1):
                raise bad(name, "a positive integer")
        if self.input_size is not None and not (isinstance(self.input_size, (list, tuple)) and len(self.input_size) == 2
                                                and all(_is_int(v, 1) for v in self.input_size)):
            raise bad("input_size", "two positive integers [H, W]")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not (isinstance(value, (list, tuple)) and all(_is_number(v) for v in value)):
                raise bad(name, "a list of 3 finite numbers")
        if not isinstance(self.class_names, list) or not all(isinstance(c, str) for c in self.class_names):
            raise bad("class_names", "a list of names")
        if self.label_to_category is not None and not (isinstance(self.label_to_category, list) and all(
                v is None or _is_int(v, 0) for v in self.label_to_category)):
            raise bad("label_to_category", "a list of category ids (or null)")
        if not _is_int(self.ignore_index, -(2**31)):
            raise bad("ignore_index", "an integer")
        if not isinstance(self.provenance, dict):
            raise bad("provenance", "a mapping")

    def to_metadata(self) -> dict[str, str]:
        """The spec as ONNX `metadata_props` (all values strings)."""
        out = {"robustaudit": METADATA_VERSION}
        for key, value in asdict(self).items():
            if value is None or key in _NOT_STORED:
                continue
            out[key] = json.dumps(list(value) if isinstance(value, tuple) else value) if (
                key in _JSON_KEYS or not isinstance(value, str)
            ) else value
        return out

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> "ModelSpec":
        """Read a spec from ONNX `metadata_props`; raises `ConfigError` if it is not ours."""
        return cls.build(metadata_values(meta), "model metadata")

    @classmethod
    def build(cls, values: dict[str, Any], where: str = "model spec") -> "ModelSpec":
        """A validated spec from a complete mapping of keys; a one-line `ConfigError` naming `where`
        when `task` or `output_convention` is missing.

        Example:
            >>> ModelSpec.build({"task": "detection", "output_convention": "torchvision_detection", "resize": "none"}).resize
            'none'
        """
        missing = [k for k in ("task", "output_convention") if values.get(k) is None]
        if missing:
            raise ConfigError(f"{where} does not say the model's {' or '.join(missing)}; give --task / "
                              "--output-convention (see 'audit list conventions') or add them to --model-config")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None


SPEC_KEYS = tuple(f.name for f in fields(ModelSpec) if f.name not in _NOT_STORED)


def metadata_values(meta: dict[str, str]) -> dict[str, Any]:
    """The ModelSpec keys robustaudit metadata holds (any subset), decoded; `ConfigError` if it is not ours.

    Example:
        >>> metadata_values({"robustaudit": "1", "mean": "[0, 0, 0]", "other": "x"})
        {'mean': [0, 0, 0]}
    """
    if "robustaudit" not in meta:
        raise ConfigError("the model carries no robustaudit metadata; give --task and --model-config")
    values: dict[str, Any] = {}
    for key, raw in meta.items():
        if key not in SPEC_KEYS:
            continue
        try:
            values[key] = json.loads(raw) if key in _JSON_KEYS or key in ("min_size", "max_size", "ignore_index", "crop_pct") else raw
        except (ValueError, RecursionError):  # not JSON, an integer of 4300+ digits, nested too deep
            raise ConfigError(f"model metadata '{key}' is not valid JSON: {raw[:80]!r}") from None
    return values


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < 2**31


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False
