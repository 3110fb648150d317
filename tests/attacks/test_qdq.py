"""INT8 QDQ graphs as white-box targets (audit/conversion/qdq.py): the QuantizeLinear / DequantizeLinear
converters against ONNX Runtime node by node (bit for bit), their straight-through gradient, the
exporter's INT8 classifier converted and compared with ONNX Runtime's integer engine, and `audit attack`
white-box on the INT8 graph against transfer from FP32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.models import int8_engine_logits, int8_kernels_follow_qdq
from click.testing import CliRunner

from tests.conftest import NORM

pytest.importorskip("onnx2torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

NP_OF = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.INT16: np.int16,
         TensorProto.INT32: np.int32}
NORM_FLAGS = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]


def _model(node, inputs, outputs, inits, opset):
    graph = helper.make_graph([node], "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _ort(model, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _torch(model):
    import onnx2torch

    from audit.conversion import qdq

    return onnx2torch.convert(qdq.dequantised_constants(model))


def _params(dtype, per_axis, rng):
    """scale (powers of two: x / scale is exact, so .5 ties reach the rounding) and zero point."""
    lo, hi = {TensorProto.INT8: (-5, 5), TensorProto.UINT8: (120, 136), TensorProto.INT16: (-300, 300)}[dtype]
    shape = (3,) if per_axis else ()
    scale = np.asarray(2.0 ** rng.integers(-4, 1, size=shape), np.float32)
    return scale, np.asarray(rng.integers(lo, hi, size=shape), NP_OF[dtype])


def _values(rng, scale, per_axis):
    """[4, 3, 50]: exact .5 ties of x / scale, values far outside the integer range, random reals."""
    s = scale.reshape(1, 3, 1) if per_axis else scale
    ties = (rng.integers(-300, 300, size=(4, 3, 20)) + 0.5) * s
    huge = rng.choice([-1, 1], size=(4, 3, 10)) * rng.uniform(1e3, 1e5, size=(4, 3, 10))
    real = rng.normal(0, 40, size=(4, 3, 20)) * s
    return np.concatenate([ties, huge, real], axis=2).astype(np.float32)


def test_the_converters_register_once_for_the_opsets_quantisers_write():
    from audit.conversion import qdq
    from onnx2torch.node_converters.registry import get_converter

    for op in ("QuantizeLinear", "DequantizeLinear"):
        for opset in (10, 13, 17, 19, 21):
            get_converter(op, opset)  # raises NotImplementedError where no converter exists
    assert ("QuantizeLinear", 13) in qdq.REGISTERED and ("DequantizeLinear", 21) in qdq.REGISTERED
    assert qdq._register() == []  # a second registration adds nothing and raises nothing


@pytest.mark.parametrize("opset, dtype", [(13, TensorProto.INT8), (13, TensorProto.UINT8), (19, TensorProto.INT8),
                                          (21, TensorProto.INT16)])
@pytest.mark.parametrize("per_axis", [False, True])
def test_quantize_linear_equals_onnxruntime_bit_for_bit(opset, dtype, per_axis):
    import torch

    rng = np.random.default_rng(opset + dtype)
    scale, zp = _params(dtype, per_axis, rng)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **({"axis": 1} if per_axis else {}))
    model = _model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3, 50])],
                   [helper.make_tensor_value_info("y", dtype, [4, 3, 50])],
                   [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")], opset)
    x = _values(rng, scale, per_axis)
    expected = _ort(model, {"x": x})
    with torch.no_grad():
        ours = _torch(model)(torch.from_numpy(x)).numpy()
    assert ours.dtype == expected.dtype  # a graph output keeps the integer type
    np.testing.assert_array_equal(ours, expected)
    info = np.iinfo(expected.dtype)
    assert (expected == info.min).any() and (expected == info.max).any()  # saturation was exercised
    ratio = x / (scale.reshape(1, 3, 1) if per_axis else scale)
    ties = ratio == np.floor(ratio) + 0.5
    assert ties.sum() >= 200
    inside = ties & (expected > info.min) & (expected < info.max)
    shifted = expected.astype(np.int64) - (zp.reshape(1, 3, 1) if per_axis else zp)
    assert (shifted[inside] % 2 == 0).all()  # half to even: every tie went to the even neighbour


@pytest.mark.parametrize("opset, dtype", [(13, TensorProto.INT8), (13, TensorProto.UINT8), (13, TensorProto.INT32),
                                          (21, TensorProto.INT16)])
@pytest.mark.parametrize("per_axis", [False, True])
def test_dequantize_linear_and_its_folding_equal_onnxruntime_bit_for_bit(opset, dtype, per_axis):
    import torch

    from audit.conversion.qdq import dequantize_array

    rng = np.random.default_rng(opset * 7 + dtype)
    shape = (3,) if per_axis else ()
    scale = np.asarray(rng.uniform(1e-4, 0.3, size=shape), np.float32)
    info = np.iinfo(NP_OF[dtype])
    big = dtype == TensorProto.INT32  # ORT's biases: int32, zero point 0, values past float32's 2^24
    zp = (np.zeros(shape, np.int32) if big
          else np.asarray(rng.integers(info.min // 2, info.max // 2, size=shape), NP_OF[dtype]))
    q = rng.integers(info.min, info.max, size=(4, 3, 16), endpoint=True, dtype=np.int64).astype(NP_OF[dtype])
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **({"axis": 1} if per_axis else {}))
    model = _model(node, [helper.make_tensor_value_info("q", dtype, [4, 3, 16])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3, 16])],
                   [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")], opset)
    expected = _ort(model, {"q": q})
    with torch.no_grad():
        ours = _torch(model)(torch.from_numpy(q)).numpy()
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(dequantize_array(q, scale, zp, axis=1), expected)  # the folding of constant weights


def test_a_constant_dequantize_linear_is_folded_into_an_initializer():
    """A Conv whose weights come out of DequantizeLinear converts (onnx2torch reads weights from initializers)."""
    import torch

    rng = np.random.default_rng(0)
    wq = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    ws = np.asarray(rng.uniform(1e-3, 1e-2, size=4), np.float32)
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8, 8])],
                              [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(ws, "ws"),
                               numpy_helper.from_array(np.zeros(4, np.int8), "wz")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    expected = _ort(model, {"x": x})
    module = _torch(model)
    assert not any(n.op_type == "DequantizeLinear" for n in model.graph.node)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("zero_point", [0, -128])  # symmetric, and a ReLU's range [0, 255 * scale]
def test_the_gradient_is_straight_through_inside_the_range_and_zero_outside(zero_point):
    import torch

    scale = 0.1
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [400])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [400])],
                              [numpy_helper.from_array(np.float32(scale), "s"),
                               numpy_helper.from_array(np.int8(zero_point), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)
    x = torch.linspace(-40, 40, 400, requires_grad=True)
    y = _torch(model)(x)
    np.testing.assert_array_equal(y.detach().numpy(), _ort(model, {"x": x.detach().numpy()}))
    grad, = torch.autograd.grad(y.sum(), [x])
    q = np.round(x.detach().numpy() / np.float32(scale)) + zero_point
    inside = (q >= -128) & (q <= 127)
    assert inside.any() and (~inside).any() and ((x.detach().numpy() < 0) & inside).any() == (zero_point == 0)
    np.testing.assert_array_equal(grad.numpy(), inside.astype(np.float32))  # 1 inside, 0 where it saturates


def test_a_quantize_linear_feeding_another_op_is_refused_in_one_line(tmp_path):
    from audit.attacks import onnx_target
    from audit.errors import ModelError
    from tests.attacks import tiny

    nodes = [helper.make_node("QuantizeLinear", ["images", "s", "z"], ["q"]), helper.make_node("Cast", ["q"], ["c"], to=1),
             helper.make_node("ReduceMean", ["c"], ["logits"], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z")])
    path = tmp_path / "q-cast.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10), str(path))
    with pytest.raises(ModelError, match="QuantizeLinear -> DequantizeLinear pairs") as err:
        onnx_target(path, tiny.spec())
    assert "\n" not in str(err.value)


def test_a_qoperator_int8_graph_still_gets_the_one_line_error(onnx_path, points, tmp_path, spec):
    """ORT's other INT8 format (QLinearConv, QGemm: integer ops onnx2torch lacks) is refused as before."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from audit.attacks import onnx_target
    from audit.errors import ModelError

    x, _ = points

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"images": (x[i:i + 1] - 0.5) / 0.25} for i in range(8)])

        def get_next(self):
            return next(self.feeds, None)

    qop = tmp_path / "qop.onnx"
    quantize_static(str(onnx_path), str(qop), Reader(), quant_format=QuantFormat.QOperator, per_channel=True)
    with pytest.raises(ModelError, match="onnx2torch cannot turn this graph into torch .*QLinearConv") as err:
        onnx_target(qop, spec)
    assert "\n" not in str(err.value) and "--gradients none --attack square" in str(err.value)


# --- the exporter's INT8 classifier -----------------------------------------------------------------

# Measured on the tests' 32x32 shapes classifier (tests/helpers/models.py), INT8 from exporters/precision.py
# `to_int8` calibrated on the synthetic CIFAR-10 test batch (onnxruntime 1.32, x86-64 CPU): on 64 test
# images and the same images with +-8/255 random-sign noise, the converted module and ONNX Runtime's
# integer engine (QLinearConv, QGemm) gave identical logits (max abs diff 0 of a 17.65 logit range,
# top-1 agreement 128 / 128); 0 as well on 2048 N(0, 2) inputs. The engine requantises with integer
# kernels that differ per CPU, so a value can land on the other side of a rounding step: the bounds allow
# one quantisation step of the logits' own scale (0.069 here, 0.4% of the range) and one top-1 flip in
# 128. The FP32 graph is 3 steps (0.21) away from the INT8 engine on the same images, outside the bound.
MAX_STEPS = 1
MAX_RELATIVE = 0.005
MIN_TOP1_AGREEMENT = 127 / 128


@pytest.fixture(scope="module")
def int8_classifier(classifier_onnx, cifar_dir, tmp_path_factory):
    from audit.spec.model import ModelSpec
    from exporters.precision import to_int8

    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32), **NORM)
    return to_int8(classifier_onnx, tmp_path_factory.mktemp("qdq") / "int8.onnx", spec, cifar_dir), spec


def test_the_int8_graph_converts_and_agrees_with_onnxruntimes_integer_engine(int8_classifier, classifier_onnx, cifar_dir):
    import torch

    from audit.attack_audit.inputs import load_x01
    from audit.attacks import EngineTarget, onnx_target
    from audit.datasets import open_dataset
    from audit.engines.base import open_engine

    path, spec = int8_classifier
    graph = onnx.load(str(path)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}  # the case this test is for
    step = float(numpy_helper.to_array(next(t for t in graph.initializer if t.name == "logits_scale")))
    x = load_x01(open_dataset("cifar10", str(cifar_dir)).subset(64, 0), spec)
    noisy = np.clip(x + np.random.default_rng(0).choice([-8 / 255, 8 / 255], size=x.shape), 0, 1).astype(np.float32)
    x = np.concatenate([x, noisy])
    target = onnx_target(path, spec)
    ours, theirs = target.logits(x), int8_engine_logits(path, x, spec)
    fp32 = EngineTarget(open_engine(classifier_onnx, provider="cpu"), spec).logits(x)
    assert np.abs(ours - theirs).max() <= MAX_STEPS * step + 1e-6
    assert np.abs(ours - theirs).max() / (theirs.max() - theirs.min()) <= MAX_RELATIVE
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= MIN_TOP1_AGREEMENT
    assert np.abs(fp32 - theirs).max() > MAX_STEPS * step  # the bound tells the INT8 graph from the FP32 one
    xt = torch.from_numpy(x[:16]).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(target.module()(xt), torch.from_numpy(theirs[:16].argmax(1)))
    grad, = torch.autograd.grad(loss, [xt])
    assert (grad.abs().flatten(1).sum(1) > 0).all()  # straight-through: no masked image


def test_a_residual_int8_graph_converts_too(cifar_dir, tmp_path):
    """timm's test_resnet (random weights; batch norm folded, residual Add, average pools) through the
    exporter's INT8 path: the Add / pool QDQ pairs convert, logits within the same bound of ORT's engine."""
    timm = pytest.importorskip("timm")
    import torch

    from audit.attack_audit.inputs import load_x01
    from audit.attacks import onnx_target
    from audit.datasets import open_dataset
    from audit.spec.model import ModelSpec
    from exporters.precision import to_int8
    from tests.attacks import tiny

    torch.manual_seed(0)
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32), **NORM)
    fp32 = tiny.export(timm.create_model("test_resnet", pretrained=False, num_classes=4).eval(), tmp_path / "r.onnx", size=32)
    int8 = to_int8(fp32, tmp_path / "r8.onnx", spec, cifar_dir)
    graph = onnx.load(str(int8)).graph
    assert {"Add", "QuantizeLinear"} <= {n.op_type for n in graph.node}
    step = float(numpy_helper.to_array(next(t for t in graph.initializer if t.name == "logits_scale")))
    x = load_x01(open_dataset("cifar10", str(cifar_dir)).subset(64, 0), spec)
    ours, theirs = onnx_target(int8, spec).logits(x), int8_engine_logits(int8, x, spec)
    # measured: 0 steps from the integer engine (VNNI CPUs); 3 from ONNX Runtime's float Q/DQ kernels (AVX2-only
    # CPUs, int8_kernels_follow_qdq), whose float Conv rounds some values to the neighbouring step, through 8 layers
    steps = MAX_STEPS if int8_kernels_follow_qdq() else 3
    assert np.abs(ours - theirs).max() <= steps * step + 1e-6
    assert (ours.argmax(1) == theirs.argmax(1)).sum() >= 63


def _attack(*args):
    from audit.cli.main import cli

    result = CliRunner().invoke(cli, ["attack", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


# quick: 48 images, one budget, PGD 10 steps (about 3 s); slow: 96 images, 2-8/255, 20 steps (about 15 s).
# Measured (slow, 96 synthetic CIFAR-10 test images, seed 0): INT8 clean 90.6%; robust accuracy on the INT8
# engine white-box on its own graph / PGD crafted on the FP32 graph: 85.4 / 88.5% at 2/255, 80.2 / 81.2%
# at 4/255, 69.8 / 70.8% at 8/255. Quick: clean 85.4%, 77.1 / 79.2% at 4/255.
@pytest.mark.parametrize("limit, eps, steps", [
    (48, "0,4/255", "10"),
    pytest.param(96, "0,2/255,4/255,8/255", "20", marks=pytest.mark.slow),
])
def test_white_box_on_the_int8_graph_is_at_least_as_strong_as_transfer_from_fp32(int8_classifier, classifier_onnx, cifar_dir,
                                                                                 tmp_path, limit, eps, steps):
    """`audit attack int8.onnx --attack pgd` (default --gradients engine-onnx) against PGD crafted on the
    FP32 graph and judged on the same INT8 engine (--transfer-to), same images, steps and seed."""
    int8, _ = int8_classifier
    flags = ["--task", "cifar10", "--data", cifar_dir, *NORM_FLAGS, "--attack", "pgd", "--eps", eps, "--steps", steps,
             "--limit", limit, "--quiet", "--no-report"]
    _attack(int8, *flags, "--out", tmp_path / "white")
    _attack(classifier_onnx, *flags, "--transfer-to", int8, "--out", tmp_path / "transfer")
    white = json.loads((tmp_path / "white" / "results.json").read_text())["adversarial"]
    transfer = json.loads((tmp_path / "transfer" / "results.json").read_text())["adversarial"]
    assert white["gradients"]["quantised"] == "qdq-ste" and "quantised" not in transfer["gradients"]
    assert "straight-through" in white["gradients"]["description"]
    name = int8.name
    clean = white["clean"][name]
    assert clean == transfer["clean"][name]  # the same INT8 engine judging the same images
    for w, t in zip(white["cells"], transfer["cells"]):
        assert w["eps"] == t["eps"]
        ours, theirs = w["engines"][name]["accuracy"], t["engines"][name]["accuracy"]
        print(f"INT8 engine at {w['eps'] * 255:.0f}/255: clean {clean:.3f}, white-box {ours:.3f}, "
              f"transfer from FP32 {theirs:.3f}")
        assert ours <= theirs + 2 / limit  # at least as strong, within two images of noise
    assert white["cells"][-1]["accuracy"] < clean
