"""Study files: the grid they describe, exclusions, defaults, and one-line errors for bad files."""

from pathlib import Path

import pytest
import yaml

from audit.errors import ConfigError
from audit.workflows.study import load_study

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, doc) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


BASE = {"backbones": [{"name": "Regular", "arch": "resnet50", "weights": "none",
                       "imagenet_c": {"clean": 0.761, "corrupted": 0.393}},
                      {"name": "Swin-T", "arch": "swin_t", "weights": "none", "imagenet_c": {"drop": 0.3}}],
        "tasks": {"coco": {"data": "coco", "lrs": [0.01, 0.02]}, "cifar10": {"data": "cifar"}},
        "modes": ["fixed", "full"], "augment": ["none", "prime"]}


def test_grid_is_the_product_minus_exclusions(tmp_path):
    doc = {**BASE, "exclude": [{"task": "cifar10", "mode": "fixed"}, {"backbone": ["Swin-T", "Other"], "lr": 0.01}]}
    study = load_study(write(tmp_path, doc))
    ids = [c.id for c in study.combinations()]
    # coco: 2 backbones x 2 modes x 2 augment x 2 lrs = 16, minus Swin-T at lr .01 (4);
    # cifar10 (default lr .01): 2 x 1 x 2 x 1 = 4, minus Swin-T at lr .01 (2)
    assert len(ids) == 12 + 2 and len(set(ids)) == len(ids)
    assert "coco-regular-fixed-prime-lr0.01" in ids and "coco-swin_t-full-none-lr0.01" not in ids
    assert "cifar10-regular-full-none-lr0.01" in ids  # the paper's CIFAR-10 default lr when none is listed
    assert "cifar10-swin_t-full-none-lr0.01" not in ids
    assert not any(i.startswith("cifar10") and "-fixed-" in i for i in ids)
    regular = study.backbones[0]
    assert regular.imagenet_c_drop == pytest.approx(1 - 0.393 / 0.761) and study.backbones[1].imagenet_c_drop == 0.3
    assert study.tasks[0].data == tmp_path / "coco"  # relative to the study file
    assert study.out == (tmp_path / "runs" / "study-study").resolve()


def test_task_overrides_merge_over_shared_options(tmp_path):
    doc = {**BASE, "finetune": {"epochs": 3, "batch_size": 4}, "audit": {"limit": 50},
           "tasks": {"coco": {"data": "coco", "modes": ["full"], "finetune": {"epochs": 1, "head": "maskrcnn"}}}}
    study = load_study(write(tmp_path, doc))
    task = study.tasks[0]
    assert task.finetune == {"epochs": 1, "batch_size": 4, "head": "maskrcnn"} and task.audit == {"limit": 50}
    assert {c.mode for c in study.combinations()} == {"full"}


@pytest.mark.parametrize("change, message", [
    ({"tasks": {"imagenet": {"data": "x"}}}, "unknown task 'imagenet'"),
    ({"tasks": {"coco": {"data": "x", "lrs": [-1]}}}, "positive learning rates"),
    ({"tasks": {"coco": {"data": "x", "synthetic": {}}}}, "one of them"),
    ({"modes": ["frozen"]}, "choose among fixed, full"),
    ({"backbones": [{"name": "a"}]}, "needs 'name'"),
    ({"backbones": [{"name": "a", "arch": "x", "imagenet_c": {"clean": 0.7}}]}, "'clean' and 'corrupted'"),
    ({"epochs": 3}, "unknown key(s) epochs"),
    ({"exclude": [{"task": "coco"}, {"task": "cifar10"}]}, "remove every combination"),
    ({"tasks": {"coco": {"data": "x", "finetune": {"epoch": 2}}}}, "unknown key(s) epoch"),
])
def test_bad_study_files_get_one_line_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_study(write(tmp_path, {**BASE, **change}))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbones: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(bad)


@pytest.mark.parametrize("name", ["paper.yaml", "tiny-cpu.yaml", "adversarial-tiny-cpu.yaml"])
def test_shipped_study_files_parse(name):
    study = load_study(REPO / "studies" / name)
    combos = study.combinations()
    assert combos and {c.task.name for c in combos} == {t.name for t in study.tasks}
    if name == "paper.yaml":
        # the paper's views: four ImageNet-C-robust or not backbones, three tasks, both modes, PRIME, lr sweeps
        assert {b.name for b in study.backbones} >= {"Regular", "ANT", "DeepAug+", "PRIME", "Swin-T"}
        assert {c.mode for c in combos} == {"fixed", "full"} and {c.augment for c in combos} == {"none", "prime"}
        coco_lrs = {c.lr for c in combos if c.task.name == "coco"}
        assert coco_lrs == {0.01, 0.02, 0.04, 0.08}
