"""Targets: the engine queried on normalised float input, the ONNX graph as torch, gradient sources."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.models import int8_engine_logits

from audit.attack_audit.sources import source_target
from audit.attacks import EngineTarget, TorchTarget, normalise_batch, onnx_target
from audit.engines.base import EngineInfo, TensorInfo
from audit.errors import ConfigError
from audit.spec.model import ModelSpec
from audit.tasks.preprocess import normalise
from tests.attacks import tiny

# float32 CPU kernels of onnxruntime and torch differ in summation order: logits of magnitude ~10 agree to ~1e-5
LOGIT_ATOL = 1e-4


class Recording:
    """An engine wrapper that keeps every feed, to see exactly what the model receives."""

    def __init__(self, engine, dtype=None, batch=None):
        self.engine, self.feeds = engine, []
        info = engine.inputs[0]
        self.info = EngineInfo("recording", "cpu")
        self._inputs = [TensorInfo(info.name, (batch or "n", *info.shape[1:]), np.dtype(dtype or info.dtype))]

    @property
    def inputs(self):
        return self._inputs

    @property
    def outputs(self):
        return self.engine.outputs

    def metadata(self):
        return {}

    def run(self, feeds):
        self.feeds.append({k: v.copy() for k, v in feeds.items()})
        return self.engine.run({k: v.astype(np.float32) for k, v in feeds.items()})


def test_normalise_batch_matches_the_audit_preprocessing():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for order in ("RGB", "BGR"):
        spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(16, 16),
                         mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), channel_order=order)
        ours = normalise_batch(img.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255), spec)[0]
        np.testing.assert_allclose(ours, normalise(img, spec), rtol=0, atol=1e-6)


def test_engine_target_equals_onnxruntime_on_the_normalised_input(engine_target, onnx_path, points, spec):
    import onnxruntime as ort

    x, _ = points
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    direct = session.run(None, {"images": (x - 0.5) / 0.25})[0]
    np.testing.assert_array_equal(engine_target.logits(x), direct)
    assert engine_target.source == "engine" and not engine_target.differentiable
    with pytest.raises(ConfigError, match="--attack square"):
        engine_target.module()


def test_a_one_over_255_step_reaches_the_engine_unquantised(engine_target, points, spec):
    x, _ = points
    rec = Recording(engine_target.engine)
    target = EngineTarget(rec, spec)
    x0 = x[:4]
    x1 = x0.copy()
    x1[:, :, 3, 5] = np.clip(x0[:, :, 3, 5] + np.float32(1 / 255), 0, 1)
    a, b = target.logits(x0), target.logits(x1)
    f0, f1 = rec.feeds[0]["images"], rec.feeds[1]["images"]
    assert f0.dtype == np.float32
    changed = np.abs(f1 - f0) > 0
    assert changed[:, :, 3, 5].all() and changed.sum() == changed[:, :, 3, 5].size  # exactly that pixel
    np.testing.assert_allclose((f1 - f0)[:, :, 3, 5], (1 / 255) / 0.25, rtol=1e-3)  # not rounded to a uint8 level
    assert not np.array_equal(a, b)
    fractional = np.float32(0.3) / 255  # a third of a grey level survives too
    target.logits(x0 + fractional)
    assert np.abs(rec.feeds[-1]["images"] - f0).max() > 0


def test_float16_and_fixed_batch_engines_are_fed_what_they_want(engine_target, points, spec):
    x, _ = points
    rec = Recording(engine_target.engine, dtype=np.float16, batch=4)
    logits = EngineTarget(rec, spec).logits(x[:10])
    assert all(f["images"].dtype == np.float16 and len(f["images"]) == 4 for f in rec.feeds)
    assert len(rec.feeds) == 3 and logits.shape == (10, tiny.CLASSES)
    np.testing.assert_allclose(logits, engine_target.logits(x[:10]), atol=0.05)  # fp16 input rounding


def test_onnx_target_equals_the_engine_and_has_gradients(onnx_path, engine_target, points, spec):
    import torch

    x, y = points
    target = onnx_target(onnx_path, spec)
    assert target.source == "onnx" and target.differentiable
    np.testing.assert_allclose(target.logits(x), engine_target.logits(x), rtol=0, atol=LOGIT_ATOL)
    xt = torch.from_numpy(x[:8]).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(target.module()(xt), torch.from_numpy(y[:8]))
    grad, = torch.autograd.grad(loss, [xt])
    assert (grad.abs().flatten(1).sum(1) > 0).all()
    assert all(not p.requires_grad for p in target.module().parameters())


def test_onnx_target_of_a_missing_file_is_a_model_error(tmp_path, spec):
    from audit.errors import ModelError

    with pytest.raises(ModelError, match="not found"):
        onnx_target(tmp_path / "nope.onnx", spec)


def test_torch_target_wraps_normalisation(net, torch_target, points):
    import torch

    x, _ = points
    with torch.no_grad():
        expected = net((torch.from_numpy(x) - 0.5) / 0.25).numpy()
    np.testing.assert_allclose(torch_target.logits(x), expected, rtol=0, atol=1e-6)


def test_source_target_from_a_finetune_checkpoint(tmp_path, points):
    import torch

    from finetune.checkpoint import save_checkpoint
    from finetune.models import build_model

    torch.manual_seed(0)
    cfg = {"backbone": "resnet18", "head": "linear", "num_classes": tiny.CLASSES, "mode": "full"}
    model = build_model(cfg).eval()
    pre = {"input_size": [16, 16], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    path = save_checkpoint({"task": "classification", "model": cfg, "state_dict": model.state_dict(),
                            "class_names": [f"c{k}" for k in range(tiny.CLASSES)], "preprocessing": pre}, tmp_path / "c.pt")
    target = source_target(f"checkpoint:{path}", tiny.spec())
    x, _ = points
    mean, std = torch.tensor(pre["mean"]).view(1, 3, 1, 1), torch.tensor(pre["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model((torch.from_numpy(x[:4]) - mean) / std).numpy()
    assert target.source == "checkpoint" and target.differentiable
    np.testing.assert_allclose(target.logits(x[:4]), expected, rtol=0, atol=1e-5)  # the checkpoint's own normalisation


def test_source_target_by_name_uses_random_weights_and_the_spec_class_count(points):
    target = source_target("timm:resnet18", tiny.spec())
    assert target.source == "timm" and target.logits(points[0][:2]).shape == (2, tiny.CLASSES)


@pytest.mark.parametrize("source, words", [("foo:bar", "unknown gradient source"), ("checkpoint:", "needs a path"),
                                           ("timm:no_such_net", "timm has no model")])
def test_source_target_bad_sources(source, words):
    with pytest.raises(ConfigError, match=words):
        source_target(source, tiny.spec())


def test_engine_target_refuses_detectors(engine_target):
    det = ModelSpec(task="detection", output_convention="torchvision_detection", resize="none")
    with pytest.raises(ConfigError, match="classification and segmentation models; this model's task is 'detection'"):
        EngineTarget(engine_target.engine, det)


def test_a_torch_target_keeps_its_module_frozen(net, spec):
    target = TorchTarget(tiny.train(steps=1), spec)
    assert all(not p.requires_grad for p in target.module().parameters())
    assert not target.module().training


def test_onnx_target_of_an_fp16_export(onnx_path, points, spec, tmp_path):
    """exporters' FP16 graph (half inside, casts appended out of order by ONNX Runtime's converter)."""
    import torch

    from audit.engines.base import open_engine
    from exporters.precision import to_fp16

    half = to_fp16(onnx_path, tmp_path / "half.onnx")
    x, _ = points
    engine = EngineTarget(open_engine(half, provider="cpu"), spec)
    target = onnx_target(half, spec)
    theirs = engine.logits(x)
    # half arithmetic on both sides: within two float16 steps at the largest logit (0.0078 per step for 8 to 16)
    np.testing.assert_allclose(target.logits(x), theirs, rtol=0, atol=2 * float(np.spacing(np.float16(np.abs(theirs).max()))))
    xt = torch.from_numpy(x[:4]).requires_grad_(True)
    grad, = torch.autograd.grad(target.module()(xt).sum(), [xt])
    assert float(grad.abs().sum()) > 0


def test_onnx_target_of_an_int8_qdq_graph_simulates_it(onnx_path, engine_target, points, tmp_path, spec):
    """ORT's quantiser with its defaults (QDQ, uint8 activations, per-channel int8 weights) converts: a float
    simulation of the INT8 graph with straight-through rounding (audit/conversion/qdq.py; more in test_qdq.py)."""
    import onnx
    import torch
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static


    x, y = points

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"images": (x[i:i + 1] - 0.5) / 0.25} for i in range(8)])

        def get_next(self):
            return next(self.feeds, None)

    int8 = tmp_path / "int8.onnx"
    quantize_static(str(onnx_path), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    step = float(numpy_helper.to_array(next(t for t in onnx.load(str(int8)).graph.initializer if t.name == "logits_scale")))
    target = onnx_target(int8, spec)
    np.testing.assert_allclose(target.logits(x), int8_engine_logits(int8, x, spec), rtol=0, atol=step + 1e-6)  # one INT8 step
    xt = torch.from_numpy(x[:8]).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(target.module()(xt), torch.from_numpy(y[:8]))
    grad, = torch.autograd.grad(loss, [xt])
    assert (grad.abs().flatten(1).sum(1) > 0).all()


def test_onnx_target_of_timms_own_export(tmp_path):
    """timm's exporter (timm.utils.onnx, PyTorch's TorchScript path) stores equal tensors once and
    aliases the copies through Identity nodes; the white-box target reads them as weights and equals
    ONNX Runtime on the deployed graph."""
    timm = pytest.importorskip("timm")
    import torch
    from timm.utils.onnx import onnx_export

    from audit.engines.base import open_engine

    model = timm.create_model("test_resnet", pretrained=False, num_classes=3).eval()
    path = tmp_path / "timm.onnx"
    onnx_export(model, str(path), input_size=(3, 64, 64), opset=17, dynamic_size=False, check=False)
    import onnx

    assert any(n.op_type == "Identity" for n in onnx.load(str(path)).graph.node)  # the case this test is for
    cfg = model.pretrained_cfg
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(64, 64),
                     mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
    x = np.random.default_rng(0).uniform(0, 1, (4, 3, 64, 64)).astype(np.float32)
    target = onnx_target(path, spec)
    np.testing.assert_allclose(target.logits(x), EngineTarget(open_engine(path), spec).logits(x), rtol=0, atol=LOGIT_ATOL)
    with torch.no_grad():
        reference = model((torch.from_numpy(x) - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1))
    np.testing.assert_allclose(target.logits(x), reference.numpy(), rtol=0, atol=LOGIT_ATOL)
