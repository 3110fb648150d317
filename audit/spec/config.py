"""`--model-config FILE`: a YAML or JSON file holding any subset of the ModelSpec keys, or a timm model's
`pretrained_cfg` dumped to JSON (translated by audit/spec/timm_cfg.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from audit.errors import ConfigError
from audit.spec.model import SPEC_KEYS, ModelSpec
from audit.spec.timm_cfg import is_timm_cfg, merge_timm_cfg


def read_config(path: str | Path) -> dict[str, Any]:
    """The ModelSpec keys a `--model-config` YAML / JSON file gives (any subset; a timm pretrained_cfg
    translated first); one-line `ConfigError` for an unreadable file or an unknown key.

    Example:
        >>> read_config("spec.yaml")  # a file holding "mean: [0.5, 0.5, 0.5]"  # doctest: +SKIP
        {'mean': [0.5, 0.5, 0.5]}
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read model config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"model config {path} is not UTF-8 text; give a YAML or JSON file") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # ValueError: a YAML timestamp out of range
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"model config {path} is not valid YAML/JSON: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"model config {path} must be a mapping of keys to values")
    if is_timm_cfg(data):  # a timm model's pretrained_cfg dumped to JSON
        data = merge_timm_cfg(data, set(SPEC_KEYS))
    unknown = set(data) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(f"model config {path} has unknown keys {sorted(map(str, unknown))}; valid: {list(SPEC_KEYS)}")
    return dict(data)




def spec_from_config(path: str | Path, **overrides: Any) -> ModelSpec:
    """A whole spec from a `--model-config` file; `overrides` (non-None) win. The file must then name the task
    and the output convention (`audit run` merges a partial file with the other sources instead).

    Example:
        >>> spec_from_config("spec.yaml", input_size=(224, 224))  # doctest: +SKIP
    """
    values = read_config(path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ModelSpec.build(values, f"model config {path}")
