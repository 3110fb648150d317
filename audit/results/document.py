"""The results document: versioned JSON with a JSON Schema, the contract between `audit run` and readers.

`audit/results/schemas/results.schema.json` is the schema. Readers (reports/, other tools) check `kind` and the
major version of `schema_version`.

Changelog of `schema_version`:
- 1.0: first version.
- 1.1: `corruption.corrupt_at` (original / input) and `model.spec_source` (where the ModelSpec came
  from, which keys were assumed); both optional, so 1.0 documents stay valid.
- 1.2: `summary.suites`: a robustness block per non-benchmark suite that ran (cbar: ImageNet-C-bar),
  kept out of `summary.metrics`; optional, so 1.0 and 1.1 documents stay valid.
- 1.3: `corruption.user_defined` (the run's plug-in corruptions) and `corruption.plugins` (each
  plug-in's kind, origin, version or sha256, corruptions, load warnings); optional.
- 1.4: `adversarial` (`audit attack`: threat model, gradient source, robust accuracy per attack, norm
  and budget on each engine, attack success rate, queries, verdict, examples) and
  `thresholds.fail_under_robust_acc`; optional, so 1.0-1.3 documents stay valid. An attack-only
  document has the clean cell alone and `corruption.corruptions` empty. `adversarial.gradients.quantised`
  ("qdq-ste": white-box on an INT8 QDQ graph through a float simulation with straight-through rounding)
  is optional, added within 1.4.
  Extended within 1.4 (optional fields, so every earlier 1.4 document stays valid): segmentation
  sections, `adversarial.metric` ("accuracy" or "miou"); with "miou", `clean_miou`, `miou` per cell
  and per engine (the `accuracy` fields then hold pixel accuracy) and `verdict.robust_miou` (the gated
  figure) are required, `miou_at_budget` per engine is optional; examples may carry
  `ground_truth_mask`, `clean_mask`, `adversarial_mask` and the pixel accuracies.
- 1.5: `model.label_mapping.predictions` (detection): the detections of every cell, kept and left out
  by reason (`background`, `unmatched_class`: a model class the dataset lacks, `out_of_range`: a label
  outside the label space), which sum to `total`; optional, so 1.0-1.4 documents stay valid. The
  label table's `model_name` is the model's own name for each label in every label space.
  `model.files` (every file the model loads with its SHA-256, where it loads several: ONNX external
  data, a TensorRT engine's sidecar); `model.sha256` is then a digest over them all. Optional, so 1.0-1.4
  documents stay valid. `dataset.chosen`: which of several datasets under the data path was audited
  (a VOCdevkit's newest year); optional. `corruption.device`: where `--corrupt-device` ran the torch
  corruption kernels (null: the NumPy kernels); optional.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from audit.errors import ResultsError
from audit.io.safety import atomic_write

KIND = "robustaudit.results"
SCHEMA_VERSION = "1.5"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of the results document."""
    return json.loads(SCHEMA_PATH.read_text())


def validate(doc: dict[str, Any], source: str = "results document") -> None:
    """Raise `ResultsError` if `doc` is not a valid results document (one line: where and what).

    Example:
        >>> validate({"kind": "something else"})  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ResultsError: ...
    """
    import jsonschema

    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ResultsError(f"{source} is not a robustaudit results document (expected \"kind\": \"{KIND}\")")
    major = str(doc.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise ResultsError(
            f"{source} has schema_version {doc.get('schema_version')!r}; this robustaudit reads {SCHEMA_VERSION.split('.')[0]}.x"
        )
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResultsError(f"{source} is invalid at {where}: {error.message}")


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a results document."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"no results document at {path}; run 'audit run' first or check the path") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8, an integer of 4300+ digits
        raise ResultsError(f"{path} is not readable JSON ({type(exc).__name__}: {str(exc)[:100]}); "
                           f"give the results.json that 'audit run' wrote") from None
    try:
        validate(doc, str(path))
    except RecursionError:
        raise ResultsError(f"{path} is nested too deeply to be a results document") from None
    return doc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a temporary file in the same folder, fsync, rename), with the
    user's umask mode; a failed write (full disk, permissions) is one `OutputError`."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write(doc: dict[str, Any], path: str | Path) -> None:
    """Validate and write a results document atomically."""
    validate(doc, str(path))
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
