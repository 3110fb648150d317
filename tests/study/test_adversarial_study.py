"""Seed 003's study, tiny: standard vs PGD pre-training, fixed / full fine-tuning, adversarial audits."""

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from audit.errors import ConfigError  # noqa: E402
from audit.workflows.study import load_study, run_study  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FILE = REPO / "studies" / "adversarial-tiny-cpu.yaml"


def test_the_study_file_parses_into_pretraining_x_mode(tmp_path):
    study = load_study(FILE, out=tmp_path / "s")
    combos = study.combinations()
    assert {(c.backbone.name, c.mode) for c in combos} == {(b, m) for b in ("Standard", "Robust (PGD)") for m in ("fixed", "full")}
    assert all(c.task.attack["attacks"] == ["pgd"] for c in combos)
    robust = next(b for b in study.backbones if b.pretrain and b.pretrain["adversarial"])
    assert Path(robust.weights).parent == (tmp_path / "s" / "pretrain").resolve()


def test_pretraining_settings_and_weights(tmp_path):
    from finetune.models import build_model
    from finetune.pretrain import pretrain_backbone, settings
    from finetune.weights import load_backbone_weights

    with pytest.raises(ConfigError, match="unknown pretrain key"):
        settings({"adversrial": True}, "study")
    with pytest.raises(ConfigError, match="pretrain.eps"):
        settings({"eps": 0}, "study")
    opts = settings({"adversarial": True, "epochs": 1, "n_images": 16, "batch_size": 8, "pgd_steps": 1}, "study")
    path = pretrain_backbone("test_resnet", tmp_path / "robust.pt", opts)
    stamp = path.stat().st_mtime_ns
    assert pretrain_backbone("test_resnet", tmp_path / "robust.pt", opts).stat().st_mtime_ns == stamp  # reused
    model = build_model({"backbone": "test_resnet", "head": "linear", "num_classes": 4, "mode": "fixed"})
    report = load_backbone_weights(model.backbone.body, path)
    assert report["loaded"] and not report["missing"]


@pytest.mark.slow
def test_tiny_adversarial_study_reports_adversarial_accuracy_per_pretraining_and_mode(tmp_path):
    study = load_study(FILE, out=tmp_path / "s")
    result = run_study(study, progress=False, log=lambda m: None)
    html = result.report.read_text()
    assert "Adversarial accuracy after fine-tuning (seed 003)" in html
    import json

    manifest = json.loads(result.manifest.read_text())
    for combo in manifest["combinations"]:
        assert combo["stages"]["attack"]["status"] == "done", combo["id"]
        assert 0 <= combo["stages"]["attack"]["robust_accuracy"] <= combo["stages"]["attack"]["clean_accuracy"]
        assert f'data-combination="{combo["id"]}"' in html
    again = run_study(load_study(FILE, out=tmp_path / "s"), progress=False, log=lambda m: None)
    assert all(stages == [] for stages in again.ran.values())  # every stage, the attack included, reused
