"""Preprocessing geometry, output decoding per convention, NMS, and model checks."""

import numpy as np
import pytest

from audit.errors import ModelError
from audit.spec.model import ModelSpec
from audit.tasks.conventions import CONVENTIONS, DecodeContext, nms
from audit.tasks.labels import LabelMapping
from audit.tasks.preprocess import boxes_to_original, preprocess
from audit.spec.model import OUTPUT_CONVENTIONS


def test_every_documented_convention_has_a_decoder():
    assert set(CONVENTIONS.names()) == set(OUTPUT_CONVENTIONS)


def test_nms_equals_brute_force():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 20, (60, 2))], 1)
    scores = rng.random(60)
    keep = nms(boxes, scores, 0.5)

    def iou(a, b):
        w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    expected = []
    for i in np.argsort(-scores):
        if all(iou(boxes[i], boxes[j]) <= 0.5 for j in expected):
            expected.append(i)
    assert keep.tolist() == expected


@pytest.mark.parametrize("resize", ["letterbox", "keep_ratio", "fixed"])
def test_boxes_map_back_to_the_original_image(resize):
    spec = ModelSpec(task="detection", output_convention="yolov8", input_size=(64, 64), resize=resize,
                     min_size=40, max_size=80, mean=(0, 0, 0), std=(1, 1, 1))
    image = np.zeros((30, 90, 3), np.uint8)
    x, meta = preprocess(image, spec)
    sy, sx = meta["scale"]
    top, left = meta["pad"]
    original = np.array([[10, 5, 40, 25]], np.float32)
    in_network = original * [sx, sy, sx, sy] + [left, top, left, top]
    np.testing.assert_allclose(boxes_to_original(in_network, meta), original, atol=1e-3)
    if resize == "letterbox":
        assert x.shape == (3, 64, 64) and top > 0 and left == 0
        assert np.isclose(x[0, 0, 0], 114 / 255)  # Ultralytics grey padding


def test_yolov8_decoding_recovers_known_boxes():
    spec = ModelSpec(task="detection", output_convention="yolov8", input_size=(64, 64), resize="letterbox",
                     mean=(0, 0, 0), std=(1, 1, 1))
    _, meta = preprocess(np.zeros((32, 64, 3), np.uint8), spec)  # scale 1, pad 16 rows
    raw = np.zeros((1, 4 + 3, 5), np.float32)
    raw[0, :4, 0] = [20, 30, 10, 10]  # class 2, strong
    raw[0, 4 + 2, 0] = 0.9
    raw[0, :4, 1] = [21, 30, 10, 10]  # duplicate of box 0, weaker: suppressed
    raw[0, 4 + 2, 1] = 0.8
    raw[0, :4, 2] = [40, 40, 8, 8]  # class 0
    raw[0, 4 + 0, 2] = 0.5
    ctx = DecodeContext(mapping=LabelMapping("index", "flag", "test", table=[1, 3, 7]))
    (det,) = CONVENTIONS.get("yolov8")([raw], [meta], ctx, ["output0"])
    assert det.labels.tolist() == [2, 0] and det.category_ids.tolist() == [7, 1]
    np.testing.assert_allclose(det.boxes[0], [15, 25 - 16, 25, 35 - 16], atol=1e-4)


def test_misfit_outputs_are_one_line_model_errors():
    with pytest.raises(ModelError, match="convention segmentation_logits .* expects rank 4"):
        CONVENTIONS.get("segmentation_logits")([np.zeros((1, 10), np.float32)], [{}], DecodeContext(), ["logits"])
    with pytest.raises(ModelError, match="expects outputs boxes, labels, scores"):
        CONVENTIONS.get("torchvision_detection")([np.zeros((1, 10))], [{}], DecodeContext(), ["x"])
    # a label outside the space is left out of the evaluation and counted as such, not a crash mid-run
    mapping = LabelMapping("index", "flag", "test", table=[1, 2, 3])
    assert DecodeContext(mapping=mapping).categories(np.array([5, 0])).tolist() == [-1, 1]
    assert mapping.tally(np.array([5, 0]))["out_of_range"] == 1


def test_segmentation_logits_resize_back_to_the_image():
    spec = ModelSpec(task="segmentation", output_convention="segmentation_logits", input_size=(16, 16))
    _, meta = preprocess(np.zeros((40, 20, 3), np.uint8), spec)
    logits = np.zeros((1, 3, 8, 8), np.float32)  # a stride-2 output
    logits[0, 2, :4] = 5  # top half class 2
    (labels,) = CONVENTIONS.get("segmentation_logits")([logits], [meta], DecodeContext(), ["logits"])
    assert labels.shape == (40, 20) and (labels[:15] == 2).all() and (labels[25:] == 0).all()
