"""Loading published backbone checkpoints (wrappers, "module." prefixes) and robustaudit checkpoints."""

from __future__ import annotations

import pytest
import torch

from audit.errors import CheckpointError
from finetune.checkpoint import load_checkpoint, save_checkpoint
from finetune.models import backbone_of, build_model
from finetune.weights import load_backbone_weights, read_state_dict
from tests.finetune.conftest import TINY


def _classifier(seed: int):
    torch.manual_seed(seed)
    return build_model({"backbone": TINY, "head": "linear", "num_classes": 3})


def test_state_dict_wrapper_and_module_prefix_load_with_report(tmp_path):
    source = backbone_of(_classifier(1)).body.state_dict()
    dropped = next(k for k in source if k.endswith("weight"))
    published = {f"module.{k}": v for k, v in source.items() if k != dropped}
    published["module.fc.weight"] = torch.zeros(1000, 8)  # an ImageNet classifier the backbone has no use for
    torch.save({"state_dict": published, "epoch": 90, "arch": "resnet"}, tmp_path / "robust.pth")
    body = backbone_of(_classifier(2)).body
    with pytest.warns(UserWarning, match=r"1 missing .*1 unexpected \(e\.g\. fc\.weight"):
        report = load_backbone_weights(body, tmp_path / "robust.pth")
    assert report["missing"] == [dropped] and report["unexpected"] == ["fc.weight"]  # "module." is stripped on reading
    loaded = body.state_dict()
    for k, v in source.items():
        assert torch.equal(loaded[k], v) != (k == dropped), k


def test_model_wrapper_and_prefixed_backbone_keys(tmp_path):
    source = backbone_of(_classifier(1)).body.state_dict()
    torch.save({"model": {f"backbone.{k}": v for k, v in source.items()}}, tmp_path / "ckpt.pt")
    body = backbone_of(_classifier(3)).body
    report = load_backbone_weights(body, tmp_path / "ckpt.pt")
    assert not report["missing"] and not report["unexpected"]
    assert all(torch.equal(body.state_dict()[k], v) for k, v in source.items())


def test_nothing_matching_is_an_error(tmp_path):
    torch.save({"state_dict": {"encoder.layer.weight": torch.zeros(2, 2)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no parameter of .* fits the backbone"):
        load_backbone_weights(backbone_of(_classifier(0)).body, tmp_path / "other.pt")


def test_unreadable_and_missing_weight_files(tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read .*bad.pth as a PyTorch checkpoint"):
        read_state_dict(tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="weights file not found"):
        read_state_dict(tmp_path / "absent.pth")


def test_load_checkpoint_rejects_foreign_corrupt_and_missing_files(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a robustaudit checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "corrupt.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint({"task": "classification"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks model, state_dict"):
        load_checkpoint(tmp_path / "partial.pt")


def test_torchvision_resnet_state_dict_loads_into_timm_backbone(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.resnet18()  # random init: only the key names and shapes matter here
    torch.save({f"module.{k}": v for k, v in tv.state_dict().items()}, tmp_path / "tv.pth")
    model = build_model({"backbone": "resnet18", "head": "upernet", "num_classes": 3, "decoder_channels": 8})
    with pytest.warns(UserWarning, match="0 missing"):
        report = load_backbone_weights(backbone_of(model).body, tmp_path / "tv.pth")
    assert report["unexpected"] == ["fc.weight", "fc.bias"]  # the ImageNet classifier has no place in a dense backbone
    assert torch.equal(backbone_of(model).body.state_dict()["layer4.1.conv2.weight"], tv.state_dict()["layer4.1.conv2.weight"])
