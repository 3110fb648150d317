"""Cityscapes: labelIds -> the 19 train ids, 255 ignored; mIoU against a NumPy confusion matrix."""

import numpy as np
import pytest
from PIL import Image

from audit.datasets import open_dataset
from audit.datasets.cityscapes import CITYSCAPES_CLASSES
from audit.errors import DatasetError
from audit.metrics import make_metric
from tests.helpers.synthetic_formats import write_cityscapes

# the official table, written out again here (cityscapesScripts labels.py: name, id, trainId)
OFFICIAL = [("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255), ("out of roi", 3, 255),
            ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255), ("road", 7, 0), ("sidewalk", 8, 1),
            ("parking", 9, 255), ("rail track", 10, 255), ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4),
            ("guard rail", 14, 255), ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
            ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9), ("sky", 23, 10),
            ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15),
            ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18)]


def test_label_ids_map_to_train_ids_and_miou_matches_numpy(tmp_path):
    root = write_cityscapes(tmp_path, n_train=1, n_val=3, size=(24, 40))
    rng = np.random.default_rng(0)
    raw = {}
    for path in sorted((root / "gtFine" / "val").rglob("*_labelIds.png")):  # every label id, 0..33, in every map
        ids = rng.integers(0, 34, size=(24, 40)).astype(np.uint8)
        Image.fromarray(ids).save(path)
        raw[path.name.replace("_gtFine_labelIds.png", "")] = ids
    ds = open_dataset("segmentation", root)  # recognised from gtFine/ + leftImg8bit/
    assert ds.format == "cityscapes" and ds.class_names == list(CITYSCAPES_CLASSES) and len(ds) == 3
    assert ds.class_names == [n for n, _, t in sorted(OFFICIAL, key=lambda r: r[2]) if t != 255]
    train_of = {i: t for _, i, t in OFFICIAL}
    metric = make_metric(ds)
    conf = np.zeros((19, 19), np.int64)
    for i in range(len(ds)):
        ids = raw[ds.image_id(i).split("/")[-1].replace("_leftImg8bit.png", "")]
        expected = np.vectorize(train_of.get)(ids)
        target = ds.target(i)
        assert target.dtype == np.uint8 and np.array_equal(target, expected)
        pred = np.where(rng.random(ids.shape) < 0.7, expected, rng.integers(0, 19, ids.shape))  # 70% kept, rest random
        pred = np.where(expected == 255, 0, pred)
        metric.update(i, pred)
        keep = expected != 255
        np.add.at(conf, (expected[keep], pred[keep]), 1)
    tp = np.diag(conf).astype(float)
    iou = tp / (conf.sum(0) + conf.sum(1) - tp)
    assert metric.compute()["mIoU"] == pytest.approx(iou.mean(), abs=1e-12)


def test_missing_label_map_and_split_are_one_line_errors(tmp_path):
    root = write_cityscapes(tmp_path, n_train=1, n_val=2, size=(16, 32))
    next((root / "gtFine" / "val").rglob("*_labelIds.png")).unlink()
    with pytest.raises(DatasetError, match="no label map for .*_leftImg8bit.png: expected gtFine/val/"):
        open_dataset("segmentation", root)
    with pytest.raises(DatasetError, match="leftImg8bit/val and gtFine/val"):
        open_dataset("segmentation", tmp_path / "gtFine", format="cityscapes")
