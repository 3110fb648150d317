"""Native TensorRT engines (.engine / .plan files built by `audit export --engine tensorrt`).

Needs the tensorrt package and an NVIDIA GPU; device buffers are torch CUDA tensors. Where either is
missing, opening an engine stops with a one-line error. The ModelSpec comes from the JSON sidecar
(model.engine.json) that the exporter writes. Outputs whose size is known only after execution (a
detector's boxes after NMS) are allocated by TensorRT's callback, `IOutputAllocator`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audit.engines.base import ENGINES, EngineInfo, TensorInfo
from audit.errors import EngineError, ModelError, require

PURPOSE = "Running TensorRT engines (needs an NVIDIA GPU; pip install 'robustaudit[tensorrt]')"


@ENGINES.register("tensorrt")
class TrtEngine:
    """A deserialized TensorRT engine with dynamic shapes set per call.

    Example:
        >>> engine = TrtEngine("model.engine")  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, provider: str = "tensorrt", **_: object):
        trt = require("tensorrt", "tensorrt", PURPOSE)
        self.torch = require("torch", "train", PURPOSE)
        if not self.torch.cuda.is_available():
            raise EngineError("TensorRT engines need a CUDA GPU, and none is visible (torch.cuda.is_available() is False)")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise EngineError(f"{path} is not a TensorRT engine for this TensorRT version / GPU; rebuild it here")
        self.context = self.engine.create_execution_context()
        self.trt = trt
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = lambda n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT  # noqa: E731
        self._inputs = [n for n in names if is_input(n)]
        self._outputs = [n for n in names if not is_input(n)]
        sidecar = Path(f"{path}.json")
        try:
            self._meta = json.loads(sidecar.read_bytes()) if sidecar.is_file() else {}
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelError(f"the engine's metadata {sidecar} is not readable JSON ({type(exc).__name__}); "
                             f"rebuild the engine with 'audit export'") from None
        if not isinstance(self._meta, dict):
            raise ModelError(f"the engine's metadata {sidecar} is not a JSON object; rebuild the engine with 'audit export'")
        self.info = EngineInfo("tensorrt", "tensorrt", self._meta.get("precision", "fp32"), ["TensorRT"], "cuda:0")

    def _info(self, name: str) -> TensorInfo:
        dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
        return TensorInfo(name, tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(name)), dtype)

    @property
    def inputs(self) -> list[TensorInfo]:
        return [self._info(n) for n in self._inputs]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [self._info(n) for n in self._outputs]

    def metadata(self) -> dict[str, str]:
        return dict(self._meta)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        keep = []
        for name, array in feeds.items():
            tensor = torch.from_numpy(np.ascontiguousarray(array)).cuda()
            if not self.context.set_input_shape(name, tuple(array.shape)):
                lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                raise EngineError(f"input {name} of shape {list(array.shape)} is outside this engine's profile "
                                  f"({list(lo)} .. {list(hi)}); use a smaller --batch-size or rebuild the engine")
            self.context.set_tensor_address(name, tensor.data_ptr())
            keep.append(tensor)
        fixed, allocator = {}, None
        for name in self._outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):  # data-dependent: TensorRT asks for memory once it knows the size
                allocator = allocator or _output_allocator(self.trt, torch)
                self.context.set_output_allocator(name, allocator)
            else:
                fixed[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
                self.context.set_tensor_address(name, fixed[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineError("TensorRT execution failed (see the TensorRT log)")
        stream.synchronize()
        return [(fixed[n] if n in fixed else allocator.tensor(n, self._torch_dtype(n))).cpu().numpy() for n in self._outputs]

    def _torch_dtype(self, name: str):
        return getattr(self.torch, np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name))).name)


def _output_allocator(trt, torch):
    """An `IOutputAllocator` handing TensorRT torch CUDA buffers (made per call: tensorrt is imported lazily)."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self):
            trt.IOutputAllocator.__init__(self)  # pybind11: the base class must be initialised explicitly
            self.buffers: dict[str, object] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name, memory, size, alignment):
            buffer = self.buffers.get(tensor_name)
            if buffer is None or buffer.numel() < size:
                buffer = self.buffers[tensor_name] = torch.empty(max(int(size), 1), dtype=torch.uint8, device="cuda")
            return buffer.data_ptr()

        def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
            return self.reallocate_output(tensor_name, memory, size, alignment)

        def notify_shape(self, tensor_name, shape):
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

        def tensor(self, name: str, dtype):
            shape = self.shapes[name]
            count = int(np.prod(shape)) if shape else 1
            itemsize = torch.empty(0, dtype=dtype).element_size()
            return self.buffers[name][: count * itemsize].view(dtype).reshape(shape)

    return OutputAllocator()
