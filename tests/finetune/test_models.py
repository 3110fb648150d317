"""Backbones and heads: output contracts, fixed-mode freezing, names, offline ImageNet weights, ONNX UperNet."""

from __future__ import annotations

import pytest
import torch

from audit.errors import CheckpointError, ConfigError
from finetune.config import FinetuneConfig
from finetune.models import backbone_of, build_model, resolve_backbone
from finetune.schedule import make_optimizer
from finetune.steps import training_loss
from tests.finetune.conftest import TINY

PRE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def test_output_contracts_per_head():
    cls = build_model({"backbone": TINY, "head": "linear", "num_classes": 7}).eval()
    assert cls(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    seg = build_model({"backbone": TINY, "head": "upernet", "num_classes": 5, "decoder_channels": 8}).eval()
    assert seg(torch.rand(1, 3, 50, 70)).shape == (1, 5, 50, 70)  # upsampled to the input, odd sizes too
    det = build_model({"backbone": TINY, "head": "maskrcnn", "num_classes": 4, "min_size": 48, "max_size": 64,
                       "fpn_channels": 16, "detections_per_image": 5}).eval()
    with torch.no_grad():
        out = det([torch.rand(3, 48, 64)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"} and out["boxes"].shape[1] == 4


def test_swin_tiny_accepts_other_input_sizes():
    model = build_model({"backbone": "swin_t", "head": "linear", "num_classes": 3}).eval()
    with torch.no_grad():
        for hw in ((224, 224), (160, 192)):
            assert model(torch.rand(1, 3, *hw)).shape == (1, 3)


def test_fixed_mode_freezes_parameters_and_batchnorm_statistics():
    torch.manual_seed(0)
    model = build_model({"backbone": TINY, "head": "linear", "num_classes": 4, "mode": "fixed"})
    body = backbone_of(model).body
    before = {k: v.clone() for k, v in body.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    cfg = FinetuneConfig(task="cifar10", data=".", backbone=TINY, out=".", weights="none", mode="fixed").resolved()
    opt = make_optimizer(model, cfg)
    model.train()
    assert not body.training and model.head.training, "fixed mode keeps the backbone in eval mode"
    x, y = torch.rand(8, 3, 32, 32) * 3, torch.randint(0, 4, (8,))  # far from ImageNet statistics on purpose
    for _ in range(3):
        loss = training_loss(model, x, y, cfg, PRE, torch.Generator().manual_seed(0), "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = body.state_dict()
    assert any("running_mean" in k for k in after)
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"backbone tensor {k} changed in fixed mode"
    assert not torch.equal(head_before, model.head.weight), "the head must train"
    assert all(not p.requires_grad for p in body.parameters())


def test_full_mode_trains_the_backbone():
    model = build_model({"backbone": TINY, "head": "linear", "num_classes": 4, "mode": "full"}).train()
    body = backbone_of(model).body
    assert body.training
    mean = next(v.clone() for k, v in body.state_dict().items() if k.endswith("running_mean"))
    model(torch.rand(4, 3, 32, 32) * 3)
    assert not torch.equal(mean, next(v for k, v in body.state_dict().items() if k.endswith("running_mean")))


def test_unknown_backbone_lists_close_names():
    with pytest.raises(ConfigError, match=r"unknown backbone 'resnet5O'.*close names: .*resnet50"):
        resolve_backbone("resnet5O")


def test_imagenet_weights_offline_give_one_line_error(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError) as err:
        build_model({"backbone": "resnet18", "head": "linear", "num_classes": 3}, pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("could not download ImageNet weights for resnet18 (offline?") and "--weights PATH" in msg


def test_upernet_exports_to_onnx_with_dynamic_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model({"backbone": TINY, "head": "upernet", "num_classes": 4, "decoder_channels": 8}).eval()
    path = tmp_path / "upernet.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                      input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for hw in ((64, 64), (72, 100)):  # 72x100 gives feature maps that the pyramid bins do not divide
        x = torch.rand(1, 3, *hw)
        with torch.no_grad():
            ref = model(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == ref.shape == (1, 4, *hw)
        assert abs(got - ref).max() < 1e-4


def test_swin_feature_maps_feed_upernet_channels_first():
    model = build_model({"backbone": "swin_t", "head": "upernet", "num_classes": 3, "decoder_channels": 8}).eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 96, 128))
        assert [f.shape[1] for f in feats] == [96, 192, 384, 768]  # NCHW, although timm's Swin gives NHWC
        assert model(torch.rand(1, 3, 96, 128)).shape == (1, 3, 96, 128)


def test_rcnn_full_mode_trains_weights_but_keeps_batchnorm_statistics():
    model = build_model({"backbone": TINY, "head": "fasterrcnn", "num_classes": 3, "mode": "full", "min_size": 48,
                         "max_size": 64, "fpn_channels": 16}).train()
    body = backbone_of(model).body
    bns = [m for m in body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns) and body.training
    assert all(p.requires_grad for p in body.parameters())
