"""Lower precision: FP16 conversion and INT8 static quantisation (QDQ) calibrated on real images.

Both stay ONNX models that ONNX Runtime runs on the CPU, so FP32 vs FP16 vs INT8 robustness can be
compared with `audit run` on any machine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from audit.datasets.sample import ImageSample
from audit.errors import ConfigError
from audit.spec.model import ModelSpec
from audit.tasks.preprocess import preprocess


def half_backbone(model):
    """A copy of a torchvision-style detector whose backbone (body and FPN, where the compute is)
    runs in FP16, with casts at its borders; the RPN, RoIAlign, heads and NMS stay FP32.

    Detectors are not converted after export: onnxruntime's FP16 converter breaks the `If`
    subgraphs of torchvision's exported postprocessing (a model that no longer loads).
    """
    import copy
    from collections import OrderedDict

    import torch

    if not isinstance(getattr(model, "backbone", None), torch.nn.Module):
        raise ConfigError("FP16 for detectors converts the backbone, and this detector has no .backbone module; "
                          "use --precision fp32 or int8")

    class HalfBackbone(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner.half()
            self.out_channels = getattr(inner, "out_channels", None)

        def forward(self, x):
            return OrderedDict((k, v.float()) for k, v in self.inner(x.half()).items())

    twin = copy.deepcopy(model)
    twin.backbone = HalfBackbone(twin.backbone)
    return twin.eval()


def to_fp16(src: Path, dst: Path) -> Path:
    """Weights and compute in FP16, inputs and outputs kept FP32 (keep_io_types); for classifiers and
    segmenters (detectors: `half_backbone` before export)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


class _Calibration:
    """onnxruntime.quantization CalibrationDataReader over a seeded sample of images (`ImageSample`),
    read and preprocessed one at a time."""

    def __init__(self, sample: ImageSample, spec: ModelSpec, input_name: str, batched: bool = True):
        # torchvision detectors take one CHW image; the others an NCHW batch
        self._feeds = ({input_name: (lambda x: x[None] if batched else x)(preprocess(image, spec)[0])} for image in sample)

    def get_next(self):
        return next(self._feeds, None)


def to_int8(src: Path, dst: Path, spec: ModelSpec, calibration: ImageSample | str | Path | None,
            exclude: tuple[str, ...] = ()) -> Path:
    """Static INT8 quantisation (QDQ, per-channel weights) calibrated on the images of `calibration`; the
    nodes named in `exclude` stay FP32 (see exporters/keep_fp32.py).

    ONNX Runtime's MinMax calibrator keeps every image's activations until the end, so memory grows
    with the sample size (`--calibration-size`). Its `CalibMaxIntermediateOutputs` option would bound
    that, but in onnxruntime 1.32 it discards the collected chunks instead of folding them into the
    ranges, so it is not used.

    Detectors: only the backbone's convolutions (body and FPN, where the compute is) are quantised;
    the RPN, RoIAlign, box / mask heads and NMS stay FP32, as TensorRT's and ONNX Runtime's detector
    recipes do, since proposal ranking and box regression are sensitive to INT8 rounding.
    """
    import onnxruntime as ort

    if calibration is None:
        raise ConfigError("--precision int8 needs --calibration (a dataset root or a folder of images like the audit data); "
                          "a checkpoint of audit finetune calibrates on its own training data by default")
    calibration = as_sample(calibration)
    # absolute paths: the quantisation below runs inside dst's folder
    src, dst = Path(src).resolve(), Path(dst).resolve()
    first = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0]
    input_name = first.name
    prepared = dst.with_suffix(".prep.onnx")
    # onnxruntime's quantisation tools drop temporary files into the working directory: work in dst's
    with contextlib.chdir(dst.parent):
        _quantize(src, prepared, dst, spec, calibration, input_name, batched=len(first.shape) == 4, exclude=exclude)
    return dst


def as_sample(calibration: ImageSample | str | Path) -> ImageSample:
    """An ImageSample as is; a dataset root or image folder as its seeded sample of the default size (seed 0)."""
    if isinstance(calibration, ImageSample):
        return calibration
    from audit.datasets.sample import open_images

    return open_images(calibration)


def backbone_convolutions(path: Path) -> list[str]:
    """Names of the Conv nodes of a torchvision-style detector's backbone (body and FPN)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv" and n.name.startswith("/backbone/")]


def _quantize(src: Path, prepared: Path, dst: Path, spec: ModelSpec, calibration: ImageSample, input_name: str,
              batched: bool = True, exclude: tuple[str, ...] = ()) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        only = {}
        if spec.task == "detection":
            nodes = backbone_convolutions(prepared)
            if not nodes:
                raise ConfigError("found no backbone convolutions (nodes under /backbone/) to quantise in this detector; "
                                  "export it with robustaudit's exporter, or use --precision fp16")
            only = {"nodes_to_quantize": nodes, "op_types_to_quantize": ["Conv"]}
        quantize_static(str(prepared), str(dst), _Calibration(calibration, spec, input_name, batched),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude), **only)
    finally:
        prepared.unlink(missing_ok=True)
