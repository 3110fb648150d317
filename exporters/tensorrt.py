"""ONNX -> TensorRT engine files (FP32 / FP16 / INT8-from-QDQ) with the tensorrt Python API.

The `tensorrt` wheel needs NVIDIA's package index and a GPU; where it is missing this stops with a
clear message. The ModelSpec travels in a JSON sidecar (model.engine.json) that
audit/engines/tensorrt.py reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.io.hashing import model_sha256
from audit.errors import ExportError, require
from audit.spec.model import ModelSpec

PURPOSE = "Building TensorRT engines (needs an NVIDIA GPU; pip install 'robustaudit[tensorrt]' on a GPU machine)"


MAX_BATCH = 32  # `audit run --batch-size` up to this; the engine is tuned for the default 8
TYPICAL_IMAGE = (480, 640)  # detectors take images at their own size: tune for COCO's usual one


def profile_shapes(shape: list[int], spec: ModelSpec, max_size: tuple[int, int] = (1344, 1344),
                   max_batch: int = MAX_BATCH) -> tuple[list[int], list[int], list[int]]:
    """(min, opt, max) of a dynamic input for TensorRT's optimisation profile.

    Models that `audit run` resizes to a fixed size (fixed, letterbox) get exactly that height and
    width, so TensorRT does not plan memory for inputs that never come; detectors that take images
    at their own size get 32 .. `max_size`, tuned for a typical image. A leading batch axis spans
    1 .. `max_batch`, tuned for 8.

    Example:
        >>> spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(224, 224))
        >>> profile_shapes([-1, 3, -1, -1], spec)
        ([1, 3, 224, 224], [8, 3, 224, 224], [32, 3, 224, 224])
    """
    fixed = spec.input_size if spec.resize in ("fixed", "letterbox") and spec.input_size else None
    spatial = len(shape) - 2  # the last two axes are height and width
    lo, opt, hi = [], [], []
    for axis, dim in enumerate(shape):
        if dim >= 0:
            bounds = (dim, dim, dim)
        elif axis >= spatial:
            k = axis - spatial
            if fixed:
                bounds = (fixed[k], fixed[k], fixed[k])
            else:
                top = spec.max_size if spec.resize == "keep_ratio" and spec.max_size else max_size[k]
                bounds = (32, min(TYPICAL_IMAGE[k], top), top)
        else:
            bounds = (1, min(8, max_batch), max_batch)
        for values, v in zip((lo, opt, hi), bounds):
            values.append(int(v))
    return lo, opt, hi


def build_engine(onnx_path: Path, out: Path, spec: ModelSpec, precision: str = "fp32",
                 max_size: tuple[int, int] = (1344, 1344)) -> Path:
    """Parse the ONNX file, build a serialized engine with an optimisation profile, write the sidecar."""
    trt = require("tensorrt", "tensorrt", PURPOSE)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # the QDQ nodes of an INT8 ONNX export carry the scales
    tensor = network.get_input(0)
    shape = list(tensor.shape)
    if any(d < 0 for d in shape):
        profile = builder.create_optimization_profile()
        profile.set_shape(tensor.name, *profile_shapes(shape, spec, max_size))
        config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")
    out.write_bytes(bytes(blob))
    # the source's identity (graph and weights files) travels in the sidecar, which is part of the engine's identity
    sidecar = {**spec.to_metadata(), "source_onnx": Path(onnx_path).name, "source_sha256": model_sha256(onnx_path)}
    Path(f"{out}.json").write_text(json.dumps(sidecar, indent=2))
    return out
