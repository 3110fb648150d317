"""Tests of the synthetic dataset writers: real formats, determinism, consistent annotations."""

import hashlib
import json
import pickle

import numpy as np
from PIL import Image

from audit.datasets import synthetic


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = synthetic.write_coco(tmp_path / "a", n_train=3, n_val=2, seed=1)
    b = synthetic.write_coco(tmp_path / "b", n_train=3, n_val=2, seed=1)
    c = synthetic.write_coco(tmp_path / "c", n_train=3, n_val=2, seed=2)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_coco_annotations_fit_their_images(tmp_path):
    root = synthetic.write_coco(tmp_path, n_train=2, n_val=6, size=(64, 80))
    doc = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    images = {im["id"]: im for im in doc["images"]}
    assert {c["id"] for c in doc["categories"]} == set(synthetic.CATEGORY_IDS)
    assert doc["annotations"], "every image has at least one object"
    for ann in doc["annotations"]:
        im = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= im["width"] and y + h <= im["height"] and w > 0 and h > 0
        assert ann["area"] <= w * h + 1e-6
        assert ann["segmentation"] and all(len(poly) >= 6 for poly in ann["segmentation"])
        assert Image.open(root / "val2017" / im["file_name"]).size == (im["width"], im["height"])


def test_cifar_batches_have_the_real_layout(tmp_path):
    out = synthetic.write_cifar10(tmp_path, n_train=10, n_test=8)
    with open(out / "test_batch", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    assert batch[b"data"].shape == (8, 3072) and batch[b"data"].dtype == np.uint8
    assert sorted(set(batch[b"labels"])) == [0, 1, 2, 3]
    with open(out / "batches.meta", "rb") as fh:
        assert pickle.load(fh, encoding="bytes")[b"label_names"] == [s.encode() for s in synthetic.SHAPES]
    sizes = [len(pickle.load(open(out / f"data_batch_{i}", "rb"), encoding="bytes")[b"labels"]) for i in (1, 2)]
    assert sum(sizes) == 10


def test_ade20k_labels_match_drawn_shapes(tmp_path):
    root = synthetic.write_ade20k(tmp_path, n_train=2, n_val=3, size=(48, 64))
    masks = sorted((root / "annotations" / "validation").glob("*.png"))
    assert len(masks) == 3
    for m in masks:
        labels = np.array(Image.open(m))
        assert labels.shape == (48, 64) and labels.max() <= len(synthetic.SHAPES)
        assert (labels > 0).any() and (labels == 0).any()
        assert (root / "images" / "validation" / (m.stem + ".jpg")).is_file()


def test_classes_are_visually_separable():
    # The mean image of each class must differ: a tiny model can only learn what is there.
    rng = np.random.default_rng(0)
    means = [np.mean([synthetic.draw_scene(rng, 32, 32, 1, [k])[1][0].mask for _ in range(30)], axis=0)
             for k in range(len(synthetic.SHAPES))]
    for i in range(len(means)):
        for j in range(i + 1, len(means)):
            assert np.abs(means[i] - means[j]).mean() > 0.02
