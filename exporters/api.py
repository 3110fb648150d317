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

from audit.errors import ConfigError, ExportError, OutputError, RobustAuditError
from audit.io.safety import prepare_out
from exporters.keep_fp32 import parse_keep
from exporters.onnx_export import export_onnx, write_metadata
from exporters.parity import Parity, compare, dataset_images, load_images
from exporters.sources import load_source


# INT8 calibration sample size: MinMax ranges are set by the largest activations, which a hundred or so
# varied images reach (ONNX Runtime's and TensorRT's examples calibrate on 100-500); each image costs one
# forward pass on the export machine, so 128 stays cheap on a CPU and covers every class of a small task.
CALIBRATION_SIZE = 128


@dataclass
class ExportResult:
    """The written file, the parity figures that let it through, and what calibrated an INT8 export."""

    path: Path
    parity: Parity | None
    keep: Any = None  # exporters.keep_fp32.KeepResult with --keep-fp32
    calibration: dict | None = None  # {source, format, images, available, seed}


def parity_sizes(spec, dynamic: bool) -> list[tuple[int, int]]:
    """Two input sizes when axes are dynamic (the trained size and an off-size one), else one."""
    base = tuple(spec.input_size or (320, 320))
    if not dynamic and spec.task != "detection":
        return [base]
    return [base, (base[0] + 32, base[1] + 64)]


def export_model(source: str, out: str | Path, *, opset: int = 17, dynamic: bool = True, precision: str = "fp32",
                 calibration: str | None = None, check: bool = True, weights: str | None = None,
                 num_classes: int | None = None, input_size: tuple[int, int] | None = None,
                 engine: str | None = None, parity_images: str | None = None, calibration_size: int = CALIBRATION_SIZE,
                 seed: int = 0, keep_fp32: str | None = None) -> ExportResult:
    """Export `source` to `out` (ONNX, or a TensorRT engine with engine="tensorrt").

    A failed parity check leaves no file at `out`: the export is written to a temporary folder and
    moved into place only when it agrees with PyTorch. The check runs on images of `parity_images`
    (default: the calibration folder, else the validation images of the dataset a checkpoint was
    fine-tuned on, when that folder is still there), else on seeded noise. `keep_fp32` (INT8 only):
    NODE[,NODE...] or auto[:K], see exporters/keep_fp32.py; what was kept is in the metadata provenance.

    INT8 calibrates on a seeded sample (`seed`) of `calibration_size` images of `calibration` (any
    dataset root robustaudit reads, or a folder of images), by default of the training data a
    checkpoint was fine-tuned on; what calibrated it goes into the metadata's provenance.
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
    sample = calibration_sample(src, calibration, calibration_size, seed) if precision == "int8" else None
    described = sample.describe() if sample is not None else None
    spec = replace(src.spec, precision=precision, provenance={**src.spec.provenance, "opset": opset, "exporter": "robustaudit",
                                                               "precision": precision,
                                                               **({"calibration": described} if described else {})})
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        final, keep = _lower(src, spec, Path(tmp), precision, opset, dynamic, sample, keep_fp32)
        if keep is not None:
            spec = replace(spec, provenance={**spec.provenance, "keep_fp32": keep.kept, "keep_fp32_request": keep.request})
        write_metadata(final, spec)
        parity = _check(src, final, spec, parity_sizes(spec, dynamic), precision, parity_images or calibration) if check else None
        if parity is not None and not parity.ok:
            raise ExportError(f"the {precision} export disagrees with PyTorch: {'; '.join(parity.failures)}; no file written"
                              + _next_step(precision, keep_fp32))
        if engine == "tensorrt":
            from exporters.tensorrt import build_engine

            built = build_engine(final, Path(tmp) / "model.engine", spec, precision)
            shutil.move(str(built), out)
            shutil.move(f"{built}.json", f"{out}.json")
        elif engine is None:
            shutil.move(str(final), out)
        else:
            raise ConfigError(f"unknown --engine '{engine}'; valid: tensorrt")
    return ExportResult(out, parity, keep, described)


def _next_step(precision: str, keep_fp32: str | None) -> str:
    """What to do after a refused INT8 export: keep the damaged layers in FP32, or write it to find them."""
    if precision != "int8":
        return ""
    k = parse_keep(keep_fp32)[1] if keep_fp32 else None
    repair = (f"keep more layers in FP32 with --keep-fp32 auto:{k + 1}" if k is not None
              else "repair it with --keep-fp32 auto (keeps the layer that loses the most SQNR in FP32)")
    return (f"; {repair}, or write it anyway with --no-check and run `audit precision FP32.onnx INT8.onnx` "
            "to see which layers to keep in FP32")


def calibration_sample(src, calibration: str | None, size: int, seed: int):
    """The INT8 calibration images: a seeded sample of `calibration`, else of the checkpoint's training data."""
    from audit.datasets.sample import from_reader, open_images

    if size < 1:
        raise ConfigError(f"--calibration-size must be at least 1, got {size}")
    if calibration is not None:
        return open_images(calibration, n=size, seed=seed)
    if src.dataset is None:
        raise ConfigError("--precision int8 needs --calibration (a dataset root or a folder of images like the audit data); "
                          "only audit finetune checkpoints know their own data")
    from finetune.data import open_split

    task, folder = src.dataset
    try:
        reader = open_split(task, Path(folder).absolute(), train=True)  # read later inside the quantiser's folder
    except (RobustAuditError, OSError) as exc:
        raise ConfigError(f"cannot calibrate on the checkpoint's training data at {folder} ({exc}); "
                          f"give --calibration") from None
    return from_reader(reader, folder, f"{task} training split", size, seed)


def _lower(src, spec, tmp: Path, precision: str, opset: int, dynamic: bool, calibration, keep_fp32: str | None = None):
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
