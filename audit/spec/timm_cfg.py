"""timm's `pretrained_cfg` (or `resolve_data_config` output) as ModelSpec keys, for `--model-config`.

timm's own ONNX export writes no metadata, but every timm model carries its evaluation transform in
`model.pretrained_cfg`; dumped to JSON it can be given as `--model-config cfg.json`. Only the keys
that define the evaluation transform are read (input_size, interpolation, crop_pct, crop_mode, mean,
std; label_names as class names); timm's other keys (url, hf_hub_id, num_classes, first_conv, ...)
describe where the weights came from and are ignored. As in timm's `resolve_data_config` default,
`input_size` and `crop_pct` are used, not `test_input_size` / `test_crop_pct`.
"""

from __future__ import annotations

from typing import Any

from audit.errors import ConfigError
from audit.spec.model import DEFAULT_CROP_PCT, INTERPOLATIONS

# keys only timm writes (a ModelSpec has none of them): their presence marks a timm configuration
TIMM_MARKERS = ("crop_pct", "crop_mode", "architecture", "hf_hub_id", "first_conv", "classifier", "test_input_size",
                "fixed_input_size", "pool_size", "label_names")
TIMM_KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std", "label_names")


def is_timm_cfg(data: dict[str, Any]) -> bool:
    """True for a timm pretrained_cfg / data config: timm's keys and no `output_convention`."""
    three = isinstance(data.get("input_size"), (list, tuple)) and len(data["input_size"]) == 3
    return "output_convention" not in data and (three or any(k in data for k in TIMM_MARKERS))


def spec_keys_from_timm(data: dict[str, Any]) -> dict[str, Any]:
    """ModelSpec keys for a timm classifier evaluated as timm evaluates it.

    Example:
        >>> spec_keys_from_timm({"input_size": [3, 256, 256], "crop_pct": 0.95, "interpolation": "bicubic",
        ...                      "mean": [0.5] * 3, "std": [0.5] * 3, "num_classes": 10})["input_size"]
        (256, 256)
    """
    out: dict[str, Any] = {"task": "classification", "output_convention": "classification_logits", "resize": "center_crop",
                           "channel_order": "RGB", "crop_pct": data.get("crop_pct") or DEFAULT_CROP_PCT}
    size = data.get("input_size")
    if size is not None:
        if not isinstance(size, (list, tuple)) or len(size) not in (2, 3):
            raise ConfigError(f"timm input_size must be [C, H, W], got {size!r}")
        out["input_size"] = tuple(int(v) for v in size[-2:])
    interp = data.get("interpolation") or "bilinear"
    if interp not in INTERPOLATIONS:
        raise ConfigError(f"timm interpolation '{interp}' is not supported; valid: {', '.join(INTERPOLATIONS)}")
    out["interpolation"] = interp
    mode = data.get("crop_mode") or "center"
    if mode == "squash" and out["crop_pct"] == 1.0:
        out["resize"] = "fixed"  # squash with nothing cropped is a plain resize to the input size
    elif mode != "center":
        raise ConfigError(f"timm crop_mode '{mode}' (crop_pct {out['crop_pct']}) is not supported; valid: center "
                          "(or squash with crop_pct 1.0)")
    for key in ("mean", "std"):
        if data.get(key) is not None:
            out[key] = tuple(float(v) for v in data[key])
    if data.get("label_names"):
        out["class_names"] = [str(v) for v in data["label_names"]]
    out["provenance"] = {"spec_source": "timm pretrained_cfg",
                         **{k: data[k] for k in ("architecture", "tag", "hf_hub_id") if data.get(k)}}
    return out


def merge_timm_cfg(data: dict[str, Any], spec_fields: set[str]) -> dict[str, Any]:
    """A config mapping with timm's keys translated; ModelSpec keys given beside them win."""
    spec_keys = spec_keys_from_timm(data)
    own = {k: v for k, v in data.items() if k in spec_fields and k not in TIMM_KEYS}
    return {**spec_keys, **own}
