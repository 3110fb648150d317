"""INT8 QDQ graphs as differentiable PyTorch: onnx2torch converters for QuantizeLinear / DequantizeLinear.

ONNX Runtime's static quantisation in QDQ format (exporters/precision.py `to_int8`) writes an FP32 graph
with QuantizeLinear -> DequantizeLinear pairs on every activation and DequantizeLinear on the int8 / int32
weights and biases. onnx2torch 1.5 has no converter for either, so `onnx_target` could not attack it.

What the converted module computes: a float simulation of the INT8 graph. The forward is ONNX's
definition, op by op: QuantizeLinear is saturate(round_half_to_even(x / scale) + zero_point) to the
integer type of its zero point (kept as a float tensor holding those integers, so it stays in the autograd
graph), DequantizeLinear is (q - zero_point) * scale; per-tensor and per-axis scales; int8, uint8, int16,
uint16 (and int32, dequantised only) zero points. ONNX Runtime runs the same graph with integer kernels
(QLinearConv, requantisation by a fixed multiplier), so logits agree closely but not bit for bit
(tests/attacks/test_qdq.py measures it).

The gradient: rounding has zero gradient almost everywhere, which masks every gradient attack (the
tests' `tiny.Quantised` shows the effect). QuantizeLinear is differentiated with the straight-through
estimator, clipped: d q / d x = 1 / scale where round(x / scale) + zero_point lies inside the integer
range, 0 where it saturates (as PyTorch's fake_quantize does), so a Q -> DQ pair passes the gradient
unchanged inside its range and stops it outside. This is BPDA (Athalye et al. 2018) with the identity as
the rounding's surrogate. The clipping matters: ORT's quantiser drops a ReLU that a QuantizeLinear with
a zero-based range follows, the saturation at the zero point being that ReLU, and its gradient is exactly
this mask.

Constant DequantizeLinear nodes (weights, biases) are folded into FP32 initializers before conversion
(`dequantised_constants`), with the same arithmetic as the node: onnx2torch's Conv / Gemm converters read
their weights from initializers.

Importing this module registers the converters once (never twice: onnx2torch refuses duplicates, and a
version onnx2torch already converts is left to it). Graphs without QDQ nodes convert as before.

Example:
    >>> from audit.attacks import qdq  # doctest: +SKIP
    >>> module = onnx2torch.convert(qdq.dequantised_constants(canonical_for_torch(onnx.load("int8.onnx"))))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from onnx2torch.node_converters.registry import add_converter, get_converter
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxMapping, OnnxToTorchModule, OperationConverterResult

# the opset versions of QuantizeLinear / DequantizeLinear in onnx 1.23 (ORT's quantiser writes 10, 13, 19 or 21)
VERSIONS = (10, 13, 19, 21, 23, 24, 25)

# ONNX TensorProto data type -> integer range; int32 is DequantizeLinear's bias type
RANGES = {2: (0, 255), 3: (-128, 127), 4: (0, 65535), 5: (-32768, 32767), 6: (-(2 ** 31), 2 ** 31 - 1)}
NAMES = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32"}
UINT8 = 2
TORCH_TYPES = {2: torch.uint8, 3: torch.int8, 4: torch.uint16, 5: torch.int16}


class _RoundSaturate(torch.autograd.Function):
    """round_half_to_even(y) + zero_point, saturated to [qmin, qmax]; backward: the clipped straight-through
    estimator (the incoming gradient where the unsaturated value lies in [qmin, qmax], 0 elsewhere)."""

    @staticmethod
    def forward(ctx, y, zero_point, qmin: float, qmax: float):
        q = torch.round(y) + zero_point  # torch.round rounds half to even, as ONNX specifies
        inside = (q >= qmin) & (q <= qmax)
        ctx.save_for_backward(inside)
        return torch.clamp(q, qmin, qmax)

    @staticmethod
    def backward(ctx, grad):
        inside, = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None, None


def _along(t: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    """A per-tensor (scalar) or per-axis (1-D) parameter shaped to broadcast against an `ndim` tensor."""
    if t.dim() == 0:
        return t
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return t.reshape(shape)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
             axis: int = 1) -> torch.Tensor:
    """ONNX QuantizeLinear as a float32 tensor holding the integers; gradient: clipped straight-through.

    Example:
        >>> quantize(torch.tensor([0.25, 0.75, 9.0]), torch.tensor(0.5), torch.tensor(0.0), -128, 127).tolist()
        [0.0, 2.0, 18.0]
    """
    scale = _along(scale, axis, x.dim())
    y = x.to(scale.dtype) / scale  # ONNX divides in the scale's type
    return _RoundSaturate.apply(y.float(), _along(zero_point, axis, x.dim()).float(), float(qmin), float(qmax))


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, axis: int = 1) -> torch.Tensor:
    """ONNX DequantizeLinear: (q - zero_point) * scale in the scale's type; `q` integer or float holding integers.

    Example:
        >>> dequantize(torch.tensor([-128, 0, 3], dtype=torch.int8), torch.tensor(0.5), torch.tensor(0)).tolist()
        [-64.0, 0.0, 1.5]
    """
    zero_point = _along(zero_point, axis, q.dim())
    if q.is_floating_point():  # from QuantizeLinear: 8 / 16-bit integers, exact in float32
        shifted = q.float() - zero_point.float()
    else:  # integer input (int32 bias values need the exact integer difference)
        shifted = (q.long() - zero_point.long()).float()
    scale = _along(scale, axis, q.dim())
    return (shifted * scale.float()).to(scale.dtype)


def dequantize_array(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int = 1) -> np.ndarray:
    """`dequantize` in NumPy, for folding constant DequantizeLinear nodes: the same arithmetic, the same bits.

    Example:
        >>> dequantize_array(np.array([-3, 5], np.int8), np.float32(0.25), np.int8(1)).tolist()
        [-1.0, 1.0]
    """
    def along(t):
        t = np.asarray(t)
        if t.ndim == 0:
            return t
        shape = [1] * q.ndim
        shape[axis % q.ndim] = -1
        return t.reshape(shape)

    zp = np.zeros((), np.int64) if zero_point is None else along(zero_point).astype(np.int64)
    shifted = (np.asarray(q).astype(np.int64) - zp).astype(np.float32)
    return (shifted * along(scale).astype(np.float32)).astype(np.asarray(scale).dtype)


class OnnxQuantizeLinear(torch.nn.Module, OnnxToTorchModule):
    """QuantizeLinear with constant scale and zero point; output: float32 tensor of the integers, or the
    integer type itself (`integer`) for a graph output, which no gradient needs to cross."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int, axis: int,
                 integer: torch.dtype | None = None):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("zero_point", zero_point)
        self.qmin, self.qmax, self.axis, self.integer = qmin, qmax, axis, integer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = quantize(x, self.scale, self.zero_point, self.qmin, self.qmax, self.axis)
        return q if self.integer is None else q.to(self.integer)


class OnnxDequantizeLinear(torch.nn.Module, OnnxToTorchModule):
    """DequantizeLinear with constant scale and zero point."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, axis: int):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("zero_point", zero_point)
        self.axis = axis

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return dequantize(q, self.scale, self.zero_point, self.axis)


def _constants(node: OnnxNode, graph: OnnxGraph) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
    """The node's scale, zero point (None if absent) and the zero point's ONNX data type."""
    names = list(node.input_values) + [""] * (3 - len(node.input_values))
    for name in names[1:]:
        if name and name not in graph.initializers:
            raise NotImplementedError(f"{node.operation_type} '{node.name}' has a scale or zero point computed in the graph "
                                      f"('{name}'); only constant ones convert")
    attrs = node.attributes
    if attrs.get("block_size", 0):
        raise NotImplementedError(f"{node.operation_type} '{node.name}' uses blocked quantisation (block_size), "
                                  "which does not convert")
    scale = graph.initializers[names[1]].to_torch()
    if scale.dim() > 1:
        raise NotImplementedError(f"{node.operation_type} '{node.name}' has a {scale.dim()}-D scale; per-tensor and "
                                  "per-axis scales convert")
    if not names[2]:
        return scale, None, None
    proto = graph.initializers[names[2]].proto
    return scale, torch.from_numpy(graph.initializers[names[2]].to_numpy().astype(np.int64)), proto.data_type


def _integer_range(node: OnnxNode, dtype: int | None) -> tuple[int, int]:
    if dtype is None:  # no zero point: output_dtype (opset 21), else uint8
        dtype = node.attributes.get("output_dtype", 0) or UINT8
    if dtype not in RANGES or dtype == 6:
        raise NotImplementedError(f"QuantizeLinear '{node.name}' quantises to ONNX data type {dtype}; "
                                  f"{', '.join(NAMES[t] for t in (2, 3, 4, 5))} convert")
    return RANGES[dtype]


def _only_dequantized(node: OnnxNode, graph: OnnxGraph) -> None:
    """The float tensor standing for QuantizeLinear's integers may only reach DequantizeLinear nodes."""
    out = node.output_values[0]
    for other in graph.nodes.values():
        if out in other.input_values and other.operation_type != "DequantizeLinear":
            raise NotImplementedError(f"QuantizeLinear '{node.name}' feeds {other.operation_type} '{other.name}' its "
                                      "integers; only QuantizeLinear -> DequantizeLinear pairs (QDQ format) convert")


def _convert_quantize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    precision = node.attributes.get("precision", 0)
    if precision not in (0, 1):  # 1: float32
        raise NotImplementedError(f"QuantizeLinear '{node.name}' divides in ONNX data type {precision}; float32 converts")
    _only_dequantized(node, graph)
    scale, zero_point, dtype = _constants(node, graph)
    qmin, qmax = _integer_range(node, dtype)
    zero_point = torch.zeros((), dtype=torch.int64) if zero_point is None else zero_point
    integer = TORCH_TYPES[dtype or node.attributes.get("output_dtype", 0) or UINT8] \
        if node.output_values[0] in graph.output_values else None
    module = OnnxQuantizeLinear(scale, zero_point, qmin, qmax, node.attributes.get("axis", 1), integer)
    return OperationConverterResult(torch_module=module,
                                    onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values))


def _convert_dequantize(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    scale, zero_point, dtype = _constants(node, graph)
    if dtype is not None and dtype not in RANGES:  # float8, int4, ...
        raise NotImplementedError(f"DequantizeLinear '{node.name}' reads ONNX data type {dtype}; "
                                  f"{', '.join(NAMES.values())} convert")
    zero_point = torch.zeros((), dtype=torch.int64) if zero_point is None else zero_point
    module = OnnxDequantizeLinear(scale, zero_point, node.attributes.get("axis", 1))
    return OperationConverterResult(torch_module=module,
                                    onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values))


def _register() -> list[tuple[str, int]]:
    """Register the converters for every opset version onnx2torch does not convert already."""
    added = []
    for op, converter in (("QuantizeLinear", _convert_quantize), ("DequantizeLinear", _convert_dequantize)):
        for version in VERSIONS:
            try:
                get_converter(op, version)
            except NotImplementedError:
                add_converter(operation_type=op, version=version)(converter)
                added.append((op, version))
    return added


REGISTERED = _register()


def dequantised_constants(model: Any) -> Any:
    """`model` (topologically sorted, constants as initializers) with every DequantizeLinear whose inputs
    are all initializers replaced by an FP32 initializer holding its output, computed as the node computes
    it (`dequantize_array`). Graph outputs and blocked quantisation stay nodes. Modifies and returns `model`.

    Example:
        >>> model = dequantised_constants(canonical_for_torch(onnx.load("int8.onnx")))  # doctest: +SKIP
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        constant = (node.op_type == "DequantizeLinear" and node.domain in ("", "ai.onnx")
                    and all(i in inits for i in node.input if i) and node.output[0] not in outputs
                    and not ("block_size" in attrs and attrs["block_size"].i))
        if not constant:
            kept.append(node)
            continue
        q, scale = (numpy_helper.to_array(inits[node.input[i]]) for i in (0, 1))
        zp = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
        axis = attrs["axis"].i if "axis" in attrs else 1
        value = dequantize_array(q, scale, zp, axis)
        inits[node.output[0]] = numpy_helper.from_array(np.ascontiguousarray(value), node.output[0])
        graph.initializer.append(inits[node.output[0]])
    if len(kept) != len(graph.node):
        nodes = [type(n)() for n in kept]
        for new, old in zip(nodes, kept):
            new.CopyFrom(old)
        del graph.node[:]
        graph.node.extend(nodes)
    return model

