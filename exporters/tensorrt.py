"""ONNX -> TensorRT engine files (FP32 / FP16 / INT8-from-QDQ) with the tensorrt Python API.

The `tensorrt` wheel needs NVIDIA's package index and a GPU; where it is missing this stops with a
clear message. The ModelSpec travels in a JSON sidecar (model.engine.json) that
audit/engines/tensorrt.py reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.errors import ExportError, require
from audit.modelspec import ModelSpec

PURPOSE = "Building TensorRT engines (needs an NVIDIA GPU; pip install 'robustaudit[tensorrt]' on a GPU machine)"


def build_engine(onnx_path: Path, out: Path, spec: ModelSpec, precision: str = "fp32",
                 max_size: tuple[int, int] = (1344, 1344)) -> Path:
    """Parse the ONNX file, build a serialized engine with an optimisation profile, write the sidecar."""
    trt = require("tensorrt", "tensorrt", PURPOSE)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {parser.get_error(0)}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # the QDQ nodes of an INT8 ONNX export carry the scales
    tensor = network.get_input(0)
    shape = list(tensor.shape)
    if any(d < 0 for d in shape):
        profile = builder.create_optimization_profile()
        lo = [1 if d < 0 else d for d in shape]
        opt = [spec.input_size[i - len(shape) + 2] if d < 0 and spec.input_size and i >= len(shape) - 2 else (1 if d < 0 else d)
               for i, d in enumerate(shape)]
        hi = [max_size[i - len(shape) + 2] if d < 0 and i >= len(shape) - 2 else (8 if d < 0 else d) for i, d in enumerate(shape)]
        profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")
    out.write_bytes(bytes(blob))
    Path(f"{out}.json").write_text(json.dumps(spec.to_metadata(), indent=2))
    return out
