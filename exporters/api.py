"""Everything `audit export` does: load the source, export, check parity, lower precision, build engines.

Example:
    >>> from exporters.api import export_model
    >>> result = export_model("runs/ft/checkpoint.pt", "model.onnx")  # doctest: +SKIP
    >>> result.parity.figures  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from audit.errors import ConfigError, ExportError, OutputError
from audit.safety import prepare_out
from exporters.onnx_export import export_onnx, write_metadata
from exporters.parity import Parity, compare, dataset_images, load_images
from exporters.sources import load_source


@dataclass
class ExportResult:
    """The written file and the parity figures that let it through."""

    path: Path
    parity: Parity | None


def parity_sizes(spec, dynamic: bool) -> list[tuple[int, int]]:
    """Two input sizes when axes are dynamic (the trained size and an off-size one), else one."""
    base = tuple(spec.input_size or (320, 320))
    if not dynamic and spec.task != "detection":
        return [base]
    return [base, (base[0] + 32, base[1] + 64)]


def export_model(source: str, out: str | Path, *, opset: int = 17, dynamic: bool = True, precision: str = "fp32",
                 calibration: str | None = None, check: bool = True, weights: str | None = None,
                 num_classes: int | None = None, input_size: tuple[int, int] | None = None,
                 engine: str | None = None, parity_images: str | None = None) -> ExportResult:
    """Export `source` to `out` (ONNX, or a TensorRT engine with engine="tensorrt").

    A failed parity check leaves no file at `out`: the export is written to a temporary folder and
    moved into place only when it agrees with PyTorch. The check runs on images of `parity_images`
    (default: the calibration folder, else the validation images of the dataset a checkpoint was
    fine-tuned on, when that folder is still there), else on seeded noise.
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"--precision must be fp32, fp16 or int8, got '{precision}'")
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder; give the file to write, e.g. {out / 'model.onnx'}")
    prepare_out(out.parent, "--out's folder")  # before the export's minutes of work, not after
    src = load_source(source, weights=weights, num_classes=num_classes, input_size=input_size)
    spec = replace(src.spec, precision=precision, provenance={**src.spec.provenance, "opset": opset,
                                                               "exporter": "robustaudit", "precision": precision})
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        final = _lower(src, spec, Path(tmp), precision, opset, dynamic, calibration)
        write_metadata(final, spec)
        parity = _check(src, final, spec, parity_sizes(spec, dynamic), precision, parity_images or calibration) if check else None
        if parity is not None and not parity.ok:
            raise ExportError(f"the {precision} export disagrees with PyTorch: {'; '.join(parity.failures)}; no file written")
        if engine == "tensorrt":
            from exporters.tensorrt import build_engine

            built = build_engine(final, Path(tmp) / "model.engine", spec, precision)
            shutil.move(str(built), out)
            shutil.move(f"{built}.json", f"{out}.json")
        elif engine is None:
            shutil.move(str(final), out)
        else:
            raise ConfigError(f"unknown --engine '{engine}'; valid: tensorrt")
    return ExportResult(out, parity)


def _lower(src, spec, tmp: Path, precision: str, opset: int, dynamic: bool, calibration: str | None) -> Path:
    """The ONNX file at `precision`: FP32 export, then FP16 conversion or INT8 quantisation."""
    from exporters.precision import half_backbone, to_fp16, to_int8

    fp32_spec = replace(spec, precision="fp32")
    if precision == "fp16" and spec.task == "detection":  # FP16 backbone inside the PyTorch model, then export
        return export_onnx(half_backbone(src.model), fp32_spec, tmp / "fp16.onnx", opset=opset, dynamic=dynamic)
    fp32 = export_onnx(src.model, fp32_spec, tmp / "fp32.onnx", opset=opset, dynamic=dynamic)
    if precision == "fp32":
        return fp32
    final = tmp / f"{precision}.onnx"
    return to_fp16(fp32, final) if precision == "fp16" else to_int8(fp32, final, spec, calibration)


def _check(src, onnx_path: Path, spec, sizes, precision: str, folder: str | None) -> Parity:
    """The parity check on the images of `folder`, else of the checkpoint's dataset, else on noise."""
    images, inputs = load_images(folder), f"images of {folder}"
    if not images and src.dataset:
        images, inputs = dataset_images(*src.dataset), f"validation images of {src.dataset[1]}"
    parity = compare(src.model, onnx_path, spec, sizes, precision, images)
    parity.inputs = inputs if images else "seeded noise"
    return parity
