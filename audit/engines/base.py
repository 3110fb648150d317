"""The `Engine` protocol every inference backend implements, and `open_engine`.

An engine runs a model on NumPy arrays. It is opened once per process (a worker of a distributed
executor opens its own) and is not shared between threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from audit.errors import ModelError
from audit.registry import Registry


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None or a string for a dynamic axis) and NumPy dtype of a model input or output."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype


@dataclass
class EngineInfo:
    """What ran the model, for the results document's `engine` section."""

    name: str  # onnxruntime, tensorrt
    provider: str  # cpu, cuda, tensorrt
    precision: str = "fp32"  # fp32, fp16, int8, mixed
    active_providers: list[str] = field(default_factory=list)
    device: str | None = None


@runtime_checkable
class Engine(Protocol):
    """A loaded model: metadata, tensor descriptions, and `run`."""

    info: EngineInfo

    @property
    def inputs(self) -> list[TensorInfo]: ...

    @property
    def outputs(self) -> list[TensorInfo]: ...

    def metadata(self) -> dict[str, str]:
        """Custom metadata stored with the model (robustaudit's ModelSpec keys), possibly empty."""
        ...

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model on named inputs; outputs in the order of `outputs`."""
        ...


# suffix -> factory(path, **options) -> Engine; engines register themselves on import.
ENGINES: Registry[Callable[..., Engine]] = Registry("engine")
_SUFFIXES = {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt", ".trt": "tensorrt"}


def open_engine(path: str | Path, **options: Any) -> Engine:
    """Open a model file with the engine its suffix calls for (.onnx -> ONNX Runtime, .engine -> TensorRT).

    Example:
        >>> engine = open_engine("model.onnx", provider="cpu")  # doctest: +SKIP
    """
    import importlib

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    name = _SUFFIXES.get(path.suffix.lower())
    if name is None:
        raise ModelError(f"cannot tell the engine for '{path.name}': expected one of {', '.join(_SUFFIXES)}")
    importlib.import_module(f"audit.engines.{name}")
    return ENGINES.get(name)(path, **options)
