"""Readers of the real formats, their subsets, and their one-line errors."""

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from audit.datasets import synthetic
from audit.datasets import open_dataset
from audit.errors import ConfigError, DatasetError


def test_coco_reader(tmp_path):
    root = synthetic.write_coco(tmp_path, n_train=1, n_val=4, size=(40, 48))
    ds = open_dataset("coco", root)
    assert len(ds) == 4 and ds.task_type == "detection" and ds.category_ids == list(synthetic.CATEGORY_IDS)
    assert ds.load_image(0).shape == (40, 48, 3) and ds.image_id(0).endswith(".png")
    assert ds.has_masks and ds.target(0) == 1000
    sub = ds.subset(2, seed=0)
    assert len(sub) == 2 and {im["id"] for im in sub.coco_gt["images"]} == {sub.target(0), sub.target(1)}
    assert [sub.image_id(i) for i in range(2)] == [ds.subset(2, seed=0).image_id(i) for i in range(2)]


def test_coco_errors_and_skip_bad(tmp_path):
    root = synthetic.write_coco(tmp_path, n_train=1, n_val=3, size=(40, 48))
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    (root / "val2017" / doc["images"][1]["file_name"]).unlink()
    with pytest.raises(DatasetError, match="names 000000001001.png, which is missing.*--skip-bad"):
        open_dataset("coco", root)
    ds = open_dataset("coco", root, skip_bad=True)
    assert len(ds) == 2 and ds.skipped == [(doc["images"][1]["file_name"], "missing")]
    ann.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="lacks the 'annotations' list"):
        open_dataset("coco", root)
    ann.write_text("{not json")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        open_dataset("coco", root)


def test_ade20k_reduces_zero_label(tmp_path):
    root = synthetic.write_ade20k(tmp_path, n_train=1, n_val=2, size=(32, 40))
    ds = open_dataset("ade20k", root)
    raw = np.array(Image.open(sorted((root / "annotations" / "validation").glob("*.png"))[0]))
    target = ds.target(0)
    assert ds.class_names == list(synthetic.SHAPES)
    assert (target[raw == 0] == 255).all() and (target[raw > 0] == raw[raw > 0] - 1).all()


def test_segmentation_folder_needs_matching_masks_and_class_count(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(DatasetError, match="no label map for a.png"):
        open_dataset("segmentation", tmp_path, num_classes=2)
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(DatasetError, match="needs --num-classes"):
        open_dataset("segmentation", tmp_path)
    with pytest.raises(DatasetError, match="label 7 outside 0..1"):
        open_dataset("segmentation", tmp_path, num_classes=2).target(0)


def test_cifar_batches_and_cifar_c(tmp_path):
    synthetic.write_cifar10(tmp_path, n_train=4, n_test=6)
    ds = open_dataset("cifar10", tmp_path)
    assert len(ds) == 6 and ds.class_names == list(synthetic.SHAPES) and ds.load_image(2).shape == (32, 32, 3)
    cc = tmp_path / "CIFAR-10-C"
    cc.mkdir()
    fog = np.arange(5 * 6 * 32 * 32 * 3, dtype=np.int64).astype(np.uint8).reshape(30, 32, 32, 3)
    np.save(cc / "fog.npy", fog)
    np.save(cc / "labels.npy", np.tile(np.arange(6) % 4, 5).astype(np.uint8))
    ds = open_dataset("cifar10", tmp_path, cifar_c=cc)
    assert ("fog", 3) in ds.prerendered() and ("labels", 1) not in ds.prerendered()
    np.testing.assert_array_equal(ds.load_corrupted(4, "fog", 3), fog[2 * 6 + 4])
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2]}))
    with pytest.raises(DatasetError, match="is not a CIFAR-10 batch"):
        open_dataset("cifar10", tmp_path)


def test_image_folder_and_unknown_task(tmp_path):
    synthetic.write_image_folder(tmp_path, n_per_class=2, size=32)
    ds = open_dataset("classification", tmp_path)
    assert len(ds) == 8 and ds.target(7) == 3 and ds.image_id(0) == "circle/0000.png"
    with pytest.raises(ConfigError, match="unknown task 'kitti'"):
        open_dataset("kitti", tmp_path)
    with pytest.raises(DatasetError, match="has no images"):
        open_dataset("classification", tmp_path / "circle")


def test_segmentation_label_maps_are_read_once_and_not_sent_to_workers(tmp_path, monkeypatch):
    ds = open_dataset("ade20k", synthetic.write_ade20k(tmp_path / "ade", n_train=1, n_val=3, size=(32, 40), seed=3))
    first = [ds.target(i) for i in range(len(ds))]
    assert all(t.dtype == np.uint8 and not t.flags.writeable for t in first)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    view = ds.select([2, 0])
    again = [ds.target(i) for i in range(len(ds))] + [view.target(0), view.target(1)]
    assert not opened  # every cell after the first reads the decoded maps
    assert again[2] is first[2] and again[3] is first[2] and again[4] is first[0]  # views share by path, not index
    copy = pickle.loads(pickle.dumps(ds))  # what a corruption worker receives
    assert not copy._labels.maps
    assert np.array_equal(copy.target(1), first[1]) and opened  # a worker reads from disk
