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
from typing import Any

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
    keep: Any = None  # exporters.keep_fp32.KeepResult with --keep-fp32


def parity_sizes(spec, dynamic: bool) -> list[tuple[int, int]]:
    """Two input sizes when axes are dynamic (the trained size and an off-size one), else one."""
    base = tuple(spec.input_size or (320, 320))
    if not dynamic and spec.task != "detection":
        return [base]
    return [base, (base[0] + 32, base[1] + 64)]


def export_model(source: str, out: str | Path, *, opset: int = 17, dynamic: bool = True, precision: str = "fp32",
                 calibration: str | None = None, check: bool = True, weights: str | None = None,
                 num_classes: int | None = None, input_size: tuple[int, int] | None = None,
                 engine: str | None = None, parity_images: str | None = None, keep_fp32: str | None = None) -> ExportResult:
    """Export `source` to `out` (ONNX, or a TensorRT engine with engine="tensorrt").

    A failed parity check leaves no file at `out`: the export is written to a temporary folder and
    moved into place only when it agrees with PyTorch. The check runs on images of `parity_images`
    (default: the calibration folder, else the validation images of the dataset a checkpoint was
    fine-tuned on, when that folder is still there), else on seeded noise. `keep_fp32` (INT8 only):
    NODE[,NODE...] or auto[:K], see exporters/keep_fp32.py; what was kept is in the metadata provenance.
    """
    if keep_fp32 and precision != "int8":
        raise ConfigError(f"--keep-fp32 applies to --precision int8, got --precision {precision}")
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
        final, keep = _lower(src, spec, Path(tmp), precision, opset, dynamic, calibration, keep_fp32)
        if keep is not None:
            spec = replace(spec, provenance={**spec.provenance, "keep_fp32": keep.kept, "keep_fp32_request": keep.request})
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
    return ExportResult(out, parity, keep)


def _lower(src, spec, tmp: Path, precision: str, opset: int, dynamic: bool, calibration: str | None,
           keep_fp32: str | None = None):
    """The ONNX file at `precision` (FP32 export, then FP16 conversion or INT8 quantisation) and the
    KeepResult of --keep-fp32 (else None)."""
    from exporters.precision import half_backbone, to_fp16, to_int8

    fp32_spec = replace(spec, precision="fp32")
    if precision == "fp16" and spec.task == "detection":  # FP16 backbone inside the PyTorch model, then export
        return export_onnx(half_backbone(src.model), fp32_spec, tmp / "fp16.onnx", opset=opset, dynamic=dynamic), None
    fp32 = export_onnx(src.model, fp32_spec, tmp / "fp32.onnx", opset=opset, dynamic=dynamic)
    if precision == "fp32":
        return fp32, None
    final = tmp / f"{precision}.onnx"
    if precision == "int8" and keep_fp32:
        from exporters.keep_fp32 import quantize_keeping

        return final, quantize_keeping(fp32, final, spec, calibration, keep_fp32)
    return (to_fp16(fp32, final) if precision == "fp16" else to_int8(fp32, final, spec, calibration)), None


def _check(src, onnx_path: Path, spec, sizes, precision: str, folder: str | None) -> Parity:
    """The parity check on the images of `folder`, else of the checkpoint's dataset, else on noise."""
    images, inputs = load_images(folder), f"images of {folder}"
    if not images and src.dataset:
        images, inputs = dataset_images(*src.dataset), f"validation images of {src.dataset[1]}"
    parity = compare(src.model, onnx_path, spec, sizes, precision, images)
    parity.inputs = inputs if images else "seeded noise"
    return parity
