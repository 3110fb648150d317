"""Tasks: preprocessing per model spec, decoding of model outputs per convention, model checks."""

# the output conventions register into audit.tasks.conventions.CONVENTIONS
from audit.tasks import decoders as _decoders, yolo as _yolo  # noqa: F401
from audit.tasks.adapter import TaskAdapter, check_model
from audit.tasks.preprocess import preprocess
from audit.spec.resolve import resolve_spec
from audit.tasks.types import Detections

__all__ = ["Detections", "TaskAdapter", "check_model", "preprocess", "resolve_spec"]
