"""Ultralytics decoders and metadata on hand-made outputs (no ultralytics needed; the conformance
suite in tests/conformance compares them with Ultralytics itself)."""

import numpy as np
import pytest

from audit.engines.base import TensorInfo
from audit.errors import ModelError
from audit.spec.model import ModelSpec
from audit.tasks.conventions import CONVENTIONS, DecodeContext
from audit.tasks.preprocess import preprocess
from audit.spec.ultralytics import class_names, input_size, is_ultralytics, ultralytics_spec_fields

META = {"author": "Ultralytics", "task": "detect", "names": "{0: 'a', 1: 'b', 2: 'c'}", "imgsz": "[64, 64]",
        "stride": "32", "head": "Detect", "end2end": "False", "args": "{'nms': None, 'dynamic': False}"}


def _meta(shape=(32, 64), resize="letterbox"):
    spec = ModelSpec(task="detection", output_convention="yolov8", input_size=(64, 64), resize=resize,
                     mean=(0, 0, 0), std=(1, 1, 1))
    return preprocess(np.zeros((*shape, 3), np.uint8), spec)[1]


def test_end2end_rows_keep_scores_above_the_threshold_in_order():
    rows = np.array([[[10, 20, 30, 40, 0.9, 2], [0, 16, 8, 24, 0.5, 0], [1, 1, 2, 2, 0.05, 1]]], np.float32)
    (det,) = CONVENTIONS.get("yolo_end2end")([rows], [_meta()], DecodeContext(score_threshold=0.1), ["output0"])
    assert det.labels.tolist() == [2, 0] and det.masks is None
    np.testing.assert_allclose(det.boxes, [[10, 4, 30, 24], [0, 0, 8, 8]])  # 16 rows of padding removed


def test_rtdetr_boxes_are_normalised_to_the_input():
    meta = _meta((32, 64), resize="fixed")  # stretched: x scale 1, y scale 2
    rows = np.array([[[0.5, 0.5, 0.5, 0.25, 0.8, 1], [0.1, 0.1, 0.1, 0.1, 0.0005, 0]]], np.float32)
    (det,) = CONVENTIONS.get("rtdetr")([rows], [meta], DecodeContext(), ["output0"])
    assert len(det) == 1 and det.labels.tolist() == [1]
    np.testing.assert_allclose(det.boxes, [[16, 12, 48, 20]])
    scores = np.zeros((1, 3, 4 + 3), np.float32)
    scores[0, 0] = [0.5, 0.5, 0.5, 0.25, 0.1, 0.7, 0.2]
    (old,) = CONVENTIONS.get("rtdetr_scores")([scores], [meta], DecodeContext(), ["output0"])
    assert old.labels.tolist() == [1] and np.isclose(old.scores[0], 0.7)
    with pytest.raises(ModelError, match="rtdetr_scores"):
        CONVENTIONS.get("rtdetr")([scores], [meta], DecodeContext(), ["output0"])


def test_segment_masks_come_from_prototypes_cropped_to_the_box():
    meta = _meta((64, 64))
    raw = np.zeros((1, 4 + 2 + 1, 3), np.float32)
    raw[0, :, 0] = [20, 20, 16, 16, 0.9, 0.1, 1.0]  # coefficient 1 on an all-positive prototype
    protos = np.ones((1, 1, 16, 16), np.float32)
    (det,) = CONVENTIONS.get("yolov8_seg")([raw, protos], [meta], DecodeContext(), ["output0", "output1"])
    assert det.masks.shape == (1, 64, 64) and det.masks.dtype == bool
    ys, xs = np.nonzero(det.masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (12, 27, 12, 27)  # exactly the box 12 <= x < 28
    with pytest.raises(ModelError, match="prototypes"):
        CONVENTIONS.get("yolov8_seg")([raw], [meta], DecodeContext(), ["output0"])


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    raw = np.zeros((1, 4 + 2, 3), np.float32)
    raw[0, :, 0] = [20, 20, 10, 10, 0.9, 0]
    raw[0, :, 1] = [20, 20, 10, 10, 0.0, 0.8]  # same box, other class: kept
    raw[0, :, 2] = [21, 20, 10, 10, 0.7, 0]  # same class, overlapping: suppressed
    (det,) = CONVENTIONS.get("yolov8")([raw], [_meta((64, 64))], DecodeContext(), ["output0"])
    assert det.labels.tolist() == [0, 1]


def test_ultralytics_metadata_gives_the_spec():
    fields = ultralytics_spec_fields(META, [TensorInfo("output0", (1, 7, 84), np.dtype(np.float32))], "detection")
    spec = ModelSpec(**fields)
    assert (spec.output_convention, spec.resize, spec.input_size, spec.class_names, spec.label_space) == \
        ("yolov8", "letterbox", (64, 64), ["a", "b", "c"], "names")
    seg = ultralytics_spec_fields({**META, "task": "segment"}, [], "detection")
    assert seg["output_convention"] == "yolov8_seg"
    detr = ultralytics_spec_fields({**META, "head": "RTDETRDecoder"}, [TensorInfo("output0", (1, 300, 6), np.dtype(np.float32))], "detection")
    assert (detr["output_convention"], detr["resize"]) == ("rtdetr", "fixed")
    old = ultralytics_spec_fields({**META, "head": "RTDETRDecoder"}, [TensorInfo("output0", (1, 300, 7), np.dtype(np.float32))], "detection")
    assert old["output_convention"] == "rtdetr_scores"
    e2e = ultralytics_spec_fields({**META, "end2end": "True"}, [], "detection")
    assert e2e["output_convention"] == "yolo_end2end"
    assert is_ultralytics(META) and not is_ultralytics({"robustaudit": "1"})
    assert input_size({"imgsz": "320"}) == (320, 320) and class_names({"names": "['x', 'y']"}) == ["x", "y"]


@pytest.mark.parametrize("key, value", [("names", "{0: 'a',"), ("names", "open('/etc/passwd')"), ("names", "{}"),
                                        ("imgsz", "[64]"), ("imgsz", "[-1, 64]")])
def test_malformed_metadata_is_a_one_line_model_error(key, value):
    with pytest.raises(ModelError, match=f"Ultralytics metadata '{key}'") as info:
        ultralytics_spec_fields({**META, key: value}, [], "detection")
    assert "\n" not in str(info.value)
