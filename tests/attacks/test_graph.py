"""ONNX graphs rewritten for onnx2torch (audit/conversion/rewrite.py, audit/conversion/opsets.py).

Each pass on a hand-built graph: ONNX Runtime gives the same output before and after. Then whole
exports: graphs from PyTorch's default (dynamo) exporter, opset 20, become a torch module whose logits
equal ONNX Runtime's on the original graph, with non-zero gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit.attacks import EngineTarget, onnx_target
from audit.conversion import rewrite as g
from audit.conversion import opsets as o
from audit.spec.model import ModelSpec
from tests.attacks import tiny

onnx = pytest.importorskip("onnx")
helper, TP = onnx.helper, onnx.TensorProto

# max |torch - ONNX Runtime| / max |ONNX Runtime| over a batch of logits. Measured on the models below
# (float32, CPU, 3 images): at most 1.4e-6 (torchvision vit_b_16), so 1e-4 leaves room for other kernels
RTOL = 1e-4


def ort_run(model, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def make(nodes, inputs, outputs, opset, inits=(), functions=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(f.domain, 1) for f in functions]
    return helper.make_model(graph, opset_imports=imports, functions=list(functions), ir_version=10)


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TP.FLOAT, shape)


def const(name, values, dtype=np.int64):
    return onnx.numpy_helper.from_array(np.asarray(values, dtype), name)


def torch_run(model, x):
    import onnx2torch
    import torch

    with torch.no_grad():
        out = onnx2torch.convert(model)(torch.from_numpy(x))
    return (out[0] if isinstance(out, (tuple, list)) else out).numpy()


def same_output(before, after, x, atol=1e-6):
    """ONNX Runtime's output on `after` equals its output on `before` (the tests hand the passes copies:
    they modify their argument); returns it."""
    a = ort_run(before, {"x": x})[0]
    b = ort_run(after, {"x": x})[0]
    np.testing.assert_allclose(b, a, rtol=0, atol=atol)
    return a


X = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)


def copy(model):
    out = type(model)()
    out.CopyFrom(model)
    return out


# ---- each pass on a hand-built graph ----

def test_local_functions_are_inlined():
    body = [helper.make_node("Constant", [], ["two"], value=helper.make_tensor("t", TP.FLOAT, [], [2.0])),
            helper.make_node("Mul", ["a", "two"], ["m"]), helper.make_node("Relu", ["m"], ["b"])]
    fn = helper.make_function("lib", "DoubleRelu", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    model = make([helper.make_node("DoubleRelu", ["x"], ["y"], domain="lib")], [tensor("x", [2, 3, 4, 4])],
                 [tensor("y", [2, 3, 4, 4])], 17, functions=[fn])
    out = g.functions_inlined(copy(model))
    assert not out.functions and [n.op_type for n in out.graph.node] == ["Constant", "Mul", "Relu"]
    expected = same_output(model, out, X)
    np.testing.assert_allclose(torch_run(g.canonical_for_torch(copy(model)), X), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_20_is_expanded_into_its_onnx_function(approximate):
    model = make([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)], [tensor("x", [2, 3, 4, 4])],
                 [tensor("y", [2, 3, 4, 4])], 20)
    assert o.unconvertible(model) == [("Gelu", 20)]
    out = o.functions_expanded(copy(model))
    ops = [n.op_type for n in out.graph.node]
    assert "Gelu" not in ops and ("Erf" in ops) == (approximate == "none") and ("Tanh" in ops) == (approximate == "tanh")
    expected = same_output(model, out, X)
    canonical = g.canonical_for_torch(copy(model))
    assert not o.unconvertible(canonical)  # Div, Erf, Sum, Mul (or Tanh, Pow): older ops, converted at opset 20 too
    np.testing.assert_allclose(torch_run(canonical, X), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("op, opset, attrs", [("ThresholdedRelu", 17, {"alpha": 0.7}), ("ThresholdedRelu", 17, {}),
                                              ("Mish", 18, {})])
def test_other_function_ops_are_expanded_with_their_attributes(op, opset, attrs):
    """Function bodies that refer to the node's attributes (alpha), or to the op's default (1.0) when absent."""
    model = make([helper.make_node(op, ["x"], ["y"], **attrs)], [tensor("x", [2, 3, 4, 4])], [tensor("y", [2, 3, 4, 4])], opset)
    assert [name for name, _ in o.unconvertible(model)] == [op]
    out = o.functions_expanded(copy(model))
    assert op not in [n.op_type for n in out.graph.node]
    expected = same_output(model, out, X)
    np.testing.assert_allclose(torch_run(g.canonical_for_torch(copy(model)), X), expected, rtol=0, atol=1e-6)


def test_cast_like_becomes_cast_to_the_inferred_type():
    nodes = [helper.make_node("CastLike", ["half", "x"], ["h"]), helper.make_node("Mul", ["x", "h"], ["y"])]
    model = make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", [2, 3, 4, 4])], 17,
                 inits=[const("half", 0.5, np.float64)])
    out = o.cast_like_resolved(copy(model))
    cast = out.graph.node[0]
    assert cast.op_type == "Cast" and helper.get_attribute_value(cast.attribute[0]) == TP.FLOAT
    same_output(model, out, X, atol=0)


def test_nodes_of_constants_are_folded_and_the_rest_is_kept():
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["ones"], value=helper.make_tensor("v", TP.FLOAT, [1], [1.5])),
             helper.make_node("Add", ["x", "ones"], ["y"])]
    model = make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", [2, 3, 4, 4])], 20, inits=[const("shape", [1, 3, 1, 1])])
    out = g.constants_folded(copy(model))
    assert [n.op_type for n in out.graph.node] == ["Add"]  # ConstantOfShape-20: no adapter to opset 19 and below
    folded = {t.name: onnx.numpy_helper.to_array(t) for t in out.graph.initializer}["ones"]
    assert folded.shape == (1, 3, 1, 1) and (folded == 1.5).all()
    same_output(model, out, X, atol=0)


def reduce_reshape(opset, shape, allowzero=1):
    """ReduceMean with axes as an input (opset 18+) then Reshape with allowzero, as dynamo writes them."""
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Reshape", ["m", "shape"], ["y"], allowzero=allowzero)]
    return make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", None)], opset,
                inits=[const("axes", [-1, -2]), const("shape", shape)])


def test_the_opset_is_lowered_to_one_onnx2torch_converts():
    model = reduce_reshape(20, [-1, 3])
    assert ("ReduceMean", 18) in o.unconvertible(model)
    out = o.opset_lowered(copy(model))
    assert o.default_opset(out) == 17 and not o.unconvertible(out)
    reduce = next(n for n in out.graph.node if n.op_type == "ReduceMean")
    assert [a.name for a in reduce.attribute if a.name == "axes"] == ["axes"]  # axes moved back to an attribute
    same_output(model, out, X)


def test_pad_19_and_split_18_that_use_nothing_new_pass_the_version_converter_as_they_are():
    """No adapter takes Pad or Split below 18; a Pad that uses neither axes (18) nor 'wrap' (19) is
    Pad-13, a Split given its sizes as an input (no num_outputs, 18) is Split-13."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
             helper.make_node("Split", ["p", "sizes"], ["a", "b"], axis=1),
             helper.make_node("ReduceMean", ["a", "axes"], ["m"], keepdims=1),
             helper.make_node("Add", ["m", "b"], ["y"])]
    model = make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", None)], 19,
                 inits=[const("pads", [0, 0, 1, 2, 0, 0, 2, 1]), const("sizes", [2, 1]), const("axes", [1])])
    assert o.same_as_older(nodes[0], 17) and o.same_as_older(nodes[1], 17) and not o.same_as_older(nodes[1], 12)
    assert not o.same_as_older(helper.make_node("Pad", ["x", "pads"], ["p"], mode="wrap"), 17)
    assert not o.same_as_older(helper.make_node("Split", ["x"], ["a", "b"], num_outputs=2), 17)
    out = o.opset_lowered(copy(model))
    assert o.default_opset(out) == 17 and not o.unconvertible(out)
    assert [(n.op_type, n.domain) for n in out.graph.node] == [("Pad", ""), ("Split", ""), ("ReduceMean", ""), ("Add", "")]
    assert [i.domain for i in out.opset_import] == [""]
    expected = same_output(model, out, X)
    np.testing.assert_allclose(torch_run(g.canonical_for_torch(copy(model)), X), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("parts", [2, 3])
def test_split_num_outputs_becomes_explicit_sizes(parts):
    """Split-18 into `parts` along a dimension of 4: ONNX gives ceil(4 / parts) each, the last smaller."""
    outs = [f"s{k}" for k in range(parts)]
    nodes = [helper.make_node("Split", ["x"], outs, axis=-1, num_outputs=parts), helper.make_node("Concat", outs[::-1], ["y"], axis=-1)]
    model = make(nodes, [tensor("x", ["n", 3, 4, 4])], [tensor("y", None)], 18)
    out = o.split_sizes_explicit(copy(model))
    split = out.graph.node[0]
    assert [a.name for a in split.attribute] == ["axis"] and len(split.input) == 2
    sizes = onnx.numpy_helper.to_array(next(t for t in out.graph.initializer if t.name == split.input[1])).tolist()
    assert sizes == {2: [2, 2], 3: [2, 2, 0]}[parts]
    expected = same_output(model, out, X, atol=0)
    np.testing.assert_allclose(torch_run(g.canonical_for_torch(copy(model)), X), expected, rtol=0, atol=0)


def test_a_graph_the_version_converter_cannot_lower_is_kept():
    """Pad-18 with an `axes` input: ONNX's version converter has no adapter below 18."""
    nodes = [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"])]
    model = make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", None)], 18,
                 inits=[const("pads", [1, 1, 1, 1]), const("axes", [2, 3])])
    out = o.opset_lowered(copy(model))
    assert o.default_opset(out) == 18 and out.SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize("mode, axes, pads, value, converts", [
    ("constant", [2, 3], [1, 0, 2, 1], None, True),  # pads begin (H, W), then end (H, W)
    ("reflect", [-1], [1, 2], None, True),  # a negative axis, W only
    ("edge", [3, 2], [1, 0, 0, 2], None, True),  # axes out of order: pads follow the axes' order
    # onnx2torch 1.5 itself cannot take a constant value as an input, nor edge padding of channels: the
    # rewrite is still the same padding (ONNX Runtime), conversion then stops on onnx2torch's own limit
    ("constant", [1, 3], [1, 0, 2, 1], [0.5], False),
    ("edge", [3, 1], [1, 0, 0, 2], None, False),
])
def test_pad_axes_become_pads_for_every_dimension(mode, axes, pads, value, converts):
    """Pad-18 naming its `axes`: the version converter has no adapter for it; written as Pad with pads for
    all four dimensions (0 elsewhere) it is the same padding, and converts where onnx2torch converts the
    padding itself."""
    ins = ["x", "pads", "value" if value else "", "axes"]
    inits = [const("pads", pads), const("axes", axes)] + ([const("value", value, np.float32)] if value else [])
    model = make([helper.make_node("Pad", ins, ["y"], mode=mode)], [tensor("x", ["n", 3, 4, 4])], [tensor("y", None)], 18,
                 inits=inits)
    out = o.pad_axes_expanded(copy(model))
    pad = out.graph.node[0]
    assert len(pad.input) == (3 if value else 2)  # no axes input left
    full = onnx.numpy_helper.to_array(next(t for t in out.graph.initializer if t.name == pad.input[1])).tolist()
    assert len(full) == 8 and sum(full) == sum(pads)
    expected = same_output(model, out, X, atol=0)
    assert expected.shape != X.shape  # it did pad
    if converts:
        np.testing.assert_allclose(torch_run(g.canonical_for_torch(copy(model)), X), expected, rtol=0, atol=0)


def test_pad_axes_stay_where_the_rank_or_the_constants_are_unknown():
    nodes = [helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"])]
    model = make(nodes, [tensor("x", None)], [tensor("y", None)], 18,  # rank unknown
                 inits=[const("pads", [1, 1, 1, 1]), const("axes", [2, 3])])
    assert o.pad_axes_expanded(copy(model)).SerializeToString() == model.SerializeToString()
    model = make(nodes, [tensor("x", [2, 3, 4, 4]), helper.make_tensor_value_info("axes", TP.INT64, [2])],
                 [tensor("y", None)], 18, inits=[const("pads", [1, 1, 1, 1])])  # axes a graph input
    assert o.pad_axes_expanded(copy(model)).SerializeToString() == model.SerializeToString()


def test_an_unconvertible_graph_is_a_one_line_error_naming_the_op(tmp_path):
    from audit.errors import ModelError

    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode="wrap")]  # 'wrap' (Pad-19): no older Pad computes it
    model = make(nodes, [tensor("x", ["n", 3, 4, 4])], [tensor("y", None)], 19,
                 inits=[const("pads", [0, 0, 1, 1, 0, 0, 1, 1])])
    onnx.save(model, str(tmp_path / "pad.onnx"))
    with pytest.raises(ModelError, match="Pad.*19") as err:
        onnx_target(tmp_path / "pad.onnx", tiny.spec(4))
    assert "\n" not in str(err.value)


def test_reshape_allowzero_is_dropped_only_where_the_shape_has_no_zero():
    model = reduce_reshape(17, [-1, 3])
    model.graph.node[0].attribute.append(helper.make_attribute("axes", [-1, -2]))
    del model.graph.node[0].input[1:]
    out = g.reshape_allowzero_cleared(copy(model))
    assert [a.name for a in out.graph.node[1].attribute] == []
    same_output(model, out, X)
    with_zero = g.reshape_allowzero_cleared(reduce_reshape(20, [0, 3]))  # 0 means an empty dimension here
    assert [a.i for a in with_zero.graph.node[1].attribute if a.name == "allowzero"] == [1]


def test_layer_norm_gets_its_normalised_shape_from_the_scale():
    """Shape inference does not know the last dimension here; onnx2torch would build LayerNorm over 0."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("LayerNormalization", ["r", "scale", "bias"], ["y"])]
    scale = onnx.numpy_helper.from_array(np.linspace(0.5, 2, 4, dtype=np.float32), "scale")
    bias = onnx.numpy_helper.from_array(np.linspace(-1, 1, 4, dtype=np.float32), "bias")
    model = make(nodes, [tensor("x", ["n", 3, 4, "c"])], [tensor("y", None)], 17, inits=[scale, bias])
    with pytest.raises(RuntimeError, match="normalized_shape"):
        torch_run(copy(model), X)
    out = g.layer_norm_shapes_known(copy(model))
    info = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in out.graph.value_info}
    assert info["r"][2:] == [4, 4] and [n.op_type for n in out.graph.node] == ["Relu", "LayerNormalization"]
    expected = same_output(model, out, X, atol=0)
    np.testing.assert_allclose(torch_run(out, X), expected, rtol=0, atol=1e-5)


def test_toposort_and_constant_nodes_as_initializers():
    nodes = [helper.make_node("Add", ["x", "c"], ["y"]),
             helper.make_node("Constant", [], ["c"], value=helper.make_tensor("t", TP.FLOAT, [1], [3.0]))]
    model = make(nodes, [tensor("x", [2, 3, 4, 4])], [tensor("y", [2, 3, 4, 4])], 17)
    out = g.constants_as_initializers(g.toposorted(copy(model)))
    assert [n.op_type for n in out.graph.node] == ["Add"] and [t.name for t in out.graph.initializer] == ["c"]
    same_output(model, out, X, atol=0)


# ---- whole exports ----

def lively(model, seed: int = 0):
    """Random weights where torchvision's init leaves zeros (ViT's head): logits and gradients that
    depend on the input, so the comparison and the gradient check mean something."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.eval()


def export(model, path, size: int, dynamo: bool = True):
    import torch

    if dynamo:  # the default exporter of torch 2.9+: opset 18+ (20 in torch 2.14)
        kw = {"dynamic_shapes": ({0: torch.export.Dim("n")},)}
    else:
        kw = {"opset_version": 17, "dynamic_axes": {"images": {0: "n"}, "logits": {0: "n"}}}
    torch.onnx.export(model, (torch.zeros(2, 3, size, size),), str(path), input_names=["images"], output_names=["logits"],
                      dynamo=dynamo, verbose=False, **kw)
    return path


def spec(size: int, classes: int = 10, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> ModelSpec:
    return ModelSpec(task="classification", output_convention="classification_logits", input_size=(size, size),
                     mean=tuple(mean), std=tuple(std), class_names=[f"c{k}" for k in range(classes)])


def check_white_box(path, spec_, n: int = 3) -> float:
    """onnx_target on the graph equals ONNX Runtime on it (RTOL) and has non-zero input gradients per
    image; returns the measured relative error."""
    import torch

    from audit.engines.base import open_engine

    size = spec_.input_size[0]
    x = np.random.default_rng(1).uniform(0, 1, (n, 3, size, size)).astype(np.float32)
    target = onnx_target(path, spec_)
    ours, theirs = target.logits(x), EngineTarget(open_engine(path, provider="cpu"), spec_).logits(x)
    scale = float(np.abs(theirs).max())
    assert scale > 0
    err = float(np.abs(ours - theirs).max()) / scale
    assert err <= RTOL, f"relative error {err:.2e} over logits of scale {scale:.3g}"
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = target.module()(xt)
    loss = torch.nn.functional.cross_entropy(logits, logits.argmax(1).roll(1))
    grad, = torch.autograd.grad(loss, [xt])
    assert (grad.abs().flatten(1).sum(1) > 0).all()
    return err


@pytest.fixture(scope="module")
def dynamo_tiny(net, tmp_path_factory):
    return export(net, tmp_path_factory.mktemp("dynamo") / "tiny.onnx", tiny.SIZE)


@pytest.fixture(scope="module")
def dynamo_resnet18(tmp_path_factory):
    import torch
    import torchvision

    torch.manual_seed(0)
    return export(torchvision.models.resnet18(num_classes=10).eval(), tmp_path_factory.mktemp("dynamo") / "r18.onnx", 32)


def test_a_dynamo_export_is_the_case_under_test(dynamo_tiny):
    model = onnx.load(str(dynamo_tiny))
    assert o.default_opset(model) >= 18 and o.unconvertible(model)  # onnx2torch alone would refuse it


def test_tiny_cnn_from_the_dynamo_exporter(dynamo_tiny, spec):
    check_white_box(dynamo_tiny, spec)


def test_resnet18_from_the_dynamo_exporter(dynamo_resnet18):
    check_white_box(dynamo_resnet18, spec(32))


def test_fp16_graph_from_a_dynamo_export(dynamo_tiny, spec, tmp_path):
    """exporters' FP16 conversion of the dynamo graph: half inside, casts appended, opset 20."""
    import torch

    from audit.engines.base import open_engine
    from exporters.precision import to_fp16

    half = to_fp16(dynamo_tiny, tmp_path / "half.onnx")
    x, _ = tiny.make_data(8, seed=3)
    target = onnx_target(half, spec)
    theirs = EngineTarget(open_engine(half, provider="cpu"), spec).logits(x)
    # half arithmetic on both sides: within two float16 steps at the largest logit (0.0078 per step for 8 to 16)
    np.testing.assert_allclose(target.logits(x), theirs, rtol=0, atol=2 * float(np.spacing(np.float16(np.abs(theirs).max()))))
    xt = torch.from_numpy(x).requires_grad_(True)
    grad, = torch.autograd.grad(target.module()(xt).sum(), [xt])
    assert (grad.abs().flatten(1).sum(1) > 0).all()


def _torchvision(name, size):
    import torchvision

    kw = {"image_size": size} if name.startswith("vit") else {}
    return getattr(torchvision.models, name)(num_classes=10, **kw)


def _timm(name, size):
    import timm

    kw = {"img_size": size} if "vit" in name else {}
    return timm.create_model(name, pretrained=False, num_classes=10, **kw)


HEAVY = [  # (library, model, input size, exporter)
    ("torchvision", "mobilenet_v3_small", 32, "dynamo"), ("torchvision", "efficientnet_b0", 32, "dynamo"),
    ("torchvision", "convnext_tiny", 32, "dynamo"), ("torchvision", "vit_b_16", 32, "dynamo"),
    ("torchvision", "swin_t", 64, "dynamo"),  # Pad-19 kept through the version converter (same_as_older)
    ("timm", "resnet18", 32, "dynamo"), ("timm", "vit_tiny_patch16_224", 32, "dynamo"),
    ("timm", "convnextv2_atto", 32, "dynamo"), ("timm", "mobilevit_xxs", 64, "dynamo"),
    ("timm", "edgenext_xx_small", 64, "dynamo"),  # Split-18 with num_outputs: split_sizes_explicit
    ("torchvision", "resnet18", 32, "torchscript"), ("torchvision", "mobilenet_v3_small", 32, "torchscript"),
    ("torchvision", "convnext_tiny", 32, "torchscript"), ("torchvision", "vit_b_16", 32, "torchscript"),
    ("torchvision", "swin_t", 64, "torchscript"),  # LayerNorm after patch merging: layer_norm_shapes_known
]


@pytest.mark.slow
@pytest.mark.parametrize("library, name, size, exporter", HEAVY, ids=["-".join(map(str, h)) for h in HEAVY])
def test_models_from_both_exporters(library, name, size, exporter, tmp_path):
    import torch

    pytest.importorskip(library)
    torch.manual_seed(0)
    model = lively((_torchvision if library == "torchvision" else _timm)(name, size))
    path = export(model, tmp_path / f"{name}.onnx", size, dynamo=exporter == "dynamo")
    check_white_box(path, spec(size))
