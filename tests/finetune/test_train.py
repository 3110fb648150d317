"""The training loop: loss goes down per task, the checkpoint contract, resume == uninterrupted."""

from __future__ import annotations

import json

import pytest
import torch

from finetune.checkpoint import load_checkpoint
from finetune.config import FinetuneConfig
from finetune.data import TaskData, collate, open_split
from finetune.models import build_model
from finetune.schedule import make_optimizer
from finetune.steps import training_loss
from finetune.train import run_finetune
from tests.finetune.conftest import TINY

PRE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _losses(cfg: FinetuneConfig, model_cfg: dict, steps: int, size, label_of=None) -> list[float]:
    """Train `steps` steps on one fixed batch of the training split; the loss per step."""
    reader = open_split(cfg.task, cfg.data, True)
    data = TaskData(reader, cfg.task_type, size, label_of)
    images, targets = collate([data[i] for i in range(min(4, len(data)))])
    torch.manual_seed(0)
    model = build_model(model_cfg).train()
    opt = make_optimizer(model, cfg)
    losses = []
    for step in range(steps):
        loss = training_loss(model, images, targets, cfg, PRE, torch.Generator().manual_seed(step), "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_classification_loss_goes_down(cifar):
    cfg = FinetuneConfig(task="cifar10", data=cifar, backbone=TINY, out=".", weights="none", lr=0.05).resolved()
    losses = _losses(cfg, {"backbone": TINY, "head": "linear", "num_classes": 10}, 8, (32, 32))
    assert losses[-1] < 0.7 * losses[0], losses


def test_segmentation_loss_goes_down(ade):
    cfg = FinetuneConfig(task="ade20k", data=ade, backbone=TINY, out=".", weights="none", lr=0.05).resolved()
    losses = _losses(cfg, {"backbone": TINY, "head": "upernet", "num_classes": 4, "decoder_channels": 16}, 8, (48, 64))
    assert losses[-1] < 0.7 * losses[0], losses


def test_detection_loss_goes_down(coco):
    cfg = FinetuneConfig(task="coco", data=coco, backbone=TINY, out=".", weights="none", lr=0.02).resolved()
    reader = open_split("coco", coco, True)
    label_of = {c: i + 1 for i, c in enumerate(reader.category_ids)}
    model_cfg = {"backbone": TINY, "head": "fasterrcnn", "num_classes": len(label_of) + 1, "min_size": 48,
                 "max_size": 64, "fpn_channels": 16, "rois_per_image": 32}
    losses = _losses(cfg, model_cfg, 10, None, label_of)
    assert losses[-1] < 0.8 * losses[0], losses


def _run(data, out, **kw) -> dict:
    cfg = FinetuneConfig(task="cifar10", data=data, backbone=TINY, out=out, weights="none", batch_size=4,
                         augment="prime", progress=False, **kw)
    return load_checkpoint(run_finetune(cfg))


def test_checkpoint_contract_and_rebuild(cifar, tmp_path):
    ckpt = _run(cifar, tmp_path / "run", epochs=1)
    assert ckpt["format"] == "robustaudit.checkpoint" and ckpt["version"] == 1 and ckpt["task"] == "classification"
    assert ckpt["model"] == {"backbone": TINY, "head": "linear", "mode": "full", "num_classes": len(ckpt["class_names"])}
    assert ckpt["preprocessing"]["input_size"] == [32, 32] and ckpt["preprocessing"]["resize"] == "fixed"
    assert ckpt["class_names"][0] == "circle" and ckpt["label_to_category"] is None and ckpt["ignore_index"] == 255
    prov = ckpt["provenance"]
    assert {"backbone", "weights", "mode", "augment", "lr", "epochs", "batch_size", "dataset", "final_metric",
            "torch", "timm", "created"} <= set(prov)
    assert 0.0 <= prov["final_metric"]["top1"] <= 1.0 and ckpt["epoch"] == 1
    model = build_model(ckpt["model"]).eval()
    model.load_state_dict(ckpt["state_dict"])  # strict: the architecture is rebuilt exactly
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [1, 2, 3, 4] and "final_metric" in log[-1]
    assert {"epoch", "step", "loss", "lr", "time"} <= set(log[0])


def test_resume_equals_uninterrupted(cifar, tmp_path):
    straight = _run(cifar, tmp_path / "a", epochs=2)
    _run(cifar, tmp_path / "b", epochs=1)
    resumed = _run(cifar, tmp_path / "b", epochs=2, resume=True)
    assert resumed["epoch"] == 2
    for k, v in straight["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    assert straight["provenance"]["final_metric"] == resumed["provenance"]["final_metric"]


def test_generic_image_folder_classification(tmp_path):
    from audit.datasets.synthetic import write_image_folder

    for split, seed in (("train", 0), ("val", 1)):
        write_image_folder(tmp_path / "data" / split, n_per_class=2, size=40, seed=seed)
    cfg = FinetuneConfig(task="classification", data=tmp_path / "data", backbone=TINY, out=tmp_path / "out", weights="none",
                         batch_size=4, epochs=1, input_size=(32, 32), progress=False)
    ckpt = load_checkpoint(run_finetune(cfg))
    assert ckpt["class_names"] == sorted(ckpt["class_names"]) and ckpt["provenance"]["dataset"]["val_images"] == 8


def test_augmix_with_jsd_trains(cifar, tmp_path):
    cfg = FinetuneConfig(task="cifar10", data=cifar, backbone=TINY, out=tmp_path, weights="none", batch_size=4,
                         augment="augmix", jsd=True, epochs=1, max_steps=2, progress=False)
    ckpt = load_checkpoint(run_finetune(cfg))
    losses = [json.loads(line)["loss"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()[:2]]
    assert ckpt["provenance"]["augment"] == "augmix" and all(loss > 0 for loss in losses)


@pytest.mark.parametrize("task, head", [("ade20k", "upernet"), ("coco", "fasterrcnn"), ("coco", "maskrcnn")])
def test_dense_tasks_end_to_end(task, head, ade, coco, tmp_path):
    data = {"ade20k": ade, "coco": coco}[task]
    extra = {"decoder_channels": 8} if task == "ade20k" else {"fpn_channels": 16, "rois_per_image": 32, "detections_per_image": 10}
    cfg = FinetuneConfig(task=task, data=data, backbone=TINY, out=tmp_path, weights="none", mode="fixed", epochs=1, head=head,
                         batch_size=2, augment="prime", input_size=(48, 64), max_steps=2, progress=False, extra=extra)
    ckpt = load_checkpoint(run_finetune(cfg))
    if task == "coco":
        assert ckpt["task"] == "detection" and ckpt["model"]["head"] == head
        assert ("segm_AP" in ckpt["provenance"]["final_metric"]) == (head == "maskrcnn")
        assert ckpt["label_to_category"][0] is None and len(ckpt["label_to_category"]) == ckpt["model"]["num_classes"]
        assert ckpt["preprocessing"]["resize"] == "keep_ratio" and ckpt["preprocessing"]["min_size"] == 48
        assert "bbox_AP" in ckpt["provenance"]["final_metric"]
    else:
        assert ckpt["task"] == "segmentation" and ckpt["model"]["num_classes"] == len(ckpt["class_names"])
        assert 0.0 <= ckpt["provenance"]["final_metric"]["mIoU"] <= 1.0
    build_model(ckpt["model"]).load_state_dict(ckpt["state_dict"])


@pytest.mark.slow
def test_two_process_ddp_on_cpu(cifar, tmp_path):
    """torchrun with 2 CPU processes (gloo): each trains on half the data; rank 0 alone writes."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "audit.cli.main",
           "finetune", "--task", "cifar10", "--data", str(cifar), "--backbone", TINY, "--weights", "none", "--epochs", "1",
           "--batch-size", "4", "--out", str(tmp_path), "--quiet", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines() if "step" in line]
    assert len(steps) == 16 // (2 * 4)  # 16 images, 2 ranks, batch 4 per rank; only rank 0 logs
    assert load_checkpoint(tmp_path / "checkpoint.pt")["provenance"]["world_size"] == 2
