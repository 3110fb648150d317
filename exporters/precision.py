"""Lower precision: FP16 conversion and INT8 static quantisation (QDQ) calibrated on real images.

Both stay ONNX models that ONNX Runtime runs on the CPU, so FP32 vs FP16 vs INT8 robustness can be
compared with `audit run` on any machine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from audit.errors import ConfigError, DatasetError
from audit.imageio import IMAGE_SUFFIXES, read_image
from audit.modelspec import ModelSpec
from audit.tasks.preprocess import preprocess


def to_fp16(src: Path, dst: Path) -> Path:
    """Weights and compute in FP16, inputs and outputs kept FP32 (keep_io_types)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


class _Calibration:
    """onnxruntime.quantization CalibrationDataReader over preprocessed images of a folder."""

    def __init__(self, folder: Path, spec: ModelSpec, input_name: str, limit: int):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        if not files:
            raise DatasetError(f"no calibration images under {folder}; give --calibration with a few images from the task")
        self._feeds = iter([{input_name: preprocess(read_image(f), spec)[0][None]} for f in files])

    def get_next(self):
        return next(self._feeds, None)


def to_int8(src: Path, dst: Path, spec: ModelSpec, calibration: str | Path | None, limit: int = 64) -> Path:
    """Static INT8 quantisation (QDQ, per-channel weights) calibrated on `calibration` images."""
    import onnxruntime as ort

    if calibration is None:
        raise ConfigError("--precision int8 needs --calibration DIR (a few hundred images like the audit data)")
    if spec.task == "detection":
        raise ConfigError("INT8 for torchvision detectors is not supported yet (their NMS / RoIAlign graph); export fp32 or fp16")
    input_name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    prepared = dst.with_suffix(".prep.onnx")
    # onnxruntime's quantisation tools drop temporary files into the working directory: work in dst's
    with contextlib.chdir(dst.parent):
        _quantize(src, prepared, dst, spec, calibration, input_name, limit)
    return dst


def _quantize(src: Path, prepared: Path, dst: Path, spec: ModelSpec, calibration, input_name: str, limit: int) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(dst), _Calibration(Path(calibration).resolve(), spec, input_name, limit),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
