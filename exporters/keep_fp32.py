"""INT8 with some layers kept in FP32: `--keep-fp32 NODE[,NODE...]` or `--keep-fp32 auto[:K]`.

`auto[:K]` quantises once, runs the forensics (audit.analysis.forensics) on the calibration images and
quantises again with the K layers that lose the most accumulated SQNR kept in FP32 (the first K of
`audit precision`'s list of layers to keep; tensors quantised exactly are never chosen). Default K = 1:
every kept layer costs size and speed, and one layer at a time is what tells whether a single layer is
responsible (the forensics table shows whether the next ones are close; rerun with a larger K if they are).

A layer is kept with what shares its input's quantisation: ONNX Runtime gives the tensors that
pass-through ops make (MaxPool, Reshape, a folded Relu) the scale of their input, so keeping only the
consumer leaves the damaging QuantizeLinear in place. The nodes kept are the layer, and the nodes that
produce any tensor quantised with the same scale as one of its inputs (in both graphs).

Example:
    >>> result = quantize_keeping("fp32.onnx", "int8.onnx", spec, "calib/", "auto")  # doctest: +SKIP
    >>> result.kept  # doctest: +SKIP
    ['/3/Conv', '/4/Relu', '/5/MaxPool', '/6/Conv']
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import ConfigError
from audit.spec.model import ModelSpec
from audit.tasks.preprocess import preprocess

DEFAULT_K = 1


@dataclass
class KeepResult:
    """The written INT8 file, the nodes kept in FP32, and the forensics that chose them (auto only)."""

    path: Path
    request: str
    kept: list[str]
    layers: list[str]  # the layers asked for or chosen, before their quantisation groups were added
    forensics: dict[str, Any] | None = None
    costs: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> {"bytes", "latency_ms"}


def parse_keep(value: str) -> tuple[list[str], int | None]:
    """`NODE[,NODE...]` -> (nodes, None); `auto` / `auto:K` -> ([], K)."""
    value = value.strip()
    if value == "auto" or value.startswith("auto:"):
        k = value.partition(":")[2] or str(DEFAULT_K)
        if not k.isdigit() or int(k) < 1:
            raise ConfigError(f"--keep-fp32 {value}: K must be a whole number >= 1, e.g. auto:2")
        return [], int(k)
    nodes = [v.strip() for v in value.split(",") if v.strip()]
    if not nodes:
        raise ConfigError(f"--keep-fp32 '{value}' names no node; give NODE[,NODE...] or auto[:K]")
    return nodes, None


def quantize_keeping(src: str | Path, dst: str | Path, spec: ModelSpec, calibration, keep: str) -> KeepResult:
    """INT8 of the FP32 ONNX file `src` at `dst` with the layers of `keep` (see `parse_keep`) left in FP32;
    `calibration` is an ImageSample (audit.datasets.sample) or a dataset root / image folder."""
    from exporters.precision import as_sample, to_int8

    if calibration is None:
        raise ConfigError("--keep-fp32 needs calibration images (--calibration, or a checkpoint's own training data)")
    calibration = as_sample(calibration)
    src, dst = Path(src), Path(dst)
    layers, k = parse_keep(keep)
    _check_nodes(src, layers)
    forensics = None
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        plain = to_int8(src, Path(tmp) / "int8.onnx", spec, calibration)
        if k is not None:
            from audit.analysis.forensics import layer_errors, worst_nodes

            forensics = layer_errors(src, plain, {"calibration": calibration_arrays(calibration, spec)})
            layers = worst_nodes(forensics, k, by="added")
        kept = expand(src, plain, layers)
        to_int8(src, dst, spec, calibration, exclude=tuple(kept))
        costs = {"fp32": cost(src, spec), "int8": cost(plain, spec), "int8_keep_fp32": cost(dst, spec)}
    return KeepResult(dst, keep, kept, layers, forensics, costs)


def _check_nodes(src: Path, nodes: list[str]) -> None:
    import onnx

    known = {n.name for n in onnx.load(str(src), load_external_data=False).graph.node}
    missing = [n for n in nodes if n not in known]
    if missing:
        raise ConfigError(f"--keep-fp32: no node named {', '.join(missing)} in the model; "
                          f"valid names include {', '.join(sorted(known)[:8])} (see `audit precision`)")


def calibration_arrays(sample, spec: ModelSpec) -> list[np.ndarray]:
    """The preprocessed calibration images (CHW float32), as the quantiser sees them."""
    return [preprocess(image, spec)[0] for image in sample]


def expand(fp32: Path, int8: Path, layers: list[str]) -> list[str]:
    """`layers` plus the producers (in either graph) of every tensor quantised with the scale of one of their inputs."""
    import onnx

    q_nodes = onnx.load(str(int8), load_external_data=False).graph.node
    f_nodes = onnx.load(str(fp32), load_external_data=False).graph.node
    scale_of = {n.input[0]: n.input[1] for n in q_nodes if n.op_type == "QuantizeLinear"}
    dq_source = {n.output[0]: n.input[0] for n in q_nodes if n.op_type == "DequantizeLinear"}
    q_source = {n.output[0]: n.input[0] for n in q_nodes if n.op_type == "QuantizeLinear"}
    scales = set()
    for node in (n for n in q_nodes if n.name in layers):
        for name in node.input:  # input <- DequantizeLinear <- QuantizeLinear <- tensor
            tensor = q_source.get(dq_source.get(name, ""), None)
            if tensor in scale_of:
                scales.add(scale_of[tensor])
    group = {t for t, s in scale_of.items() if s in scales}
    producers = [n.name for nodes in (q_nodes, f_nodes) for n in nodes
                 if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and set(n.output) & group]
    return list(dict.fromkeys([*layers, *producers]))


def cost(path: Path, spec: ModelSpec, runs: int = 20) -> dict[str, float]:
    """File size and median ONNX Runtime CPU latency (one image, one thread, after a warm-up run)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    h, w = spec.input_size or (224, 224)
    x = np.zeros((1, 3, h, w) if len(first.shape) == 4 else (3, h, w), np.float32)
    session.run(None, {first.name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {first.name: x})
        times.append(time.perf_counter() - start)
    return {"bytes": Path(path).stat().st_size, "latency_ms": round(1000 * statistics.median(times), 3)}
