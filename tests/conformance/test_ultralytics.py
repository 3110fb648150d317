"""Conformance with Ultralytics: models built offline from Ultralytics' yamls, exported with its own
exporter, decoded by robustaudit with no model flags, and compared with Ultralytics' own predict on
the same exported ONNX file and the same images.

Tolerances (same ONNX graph, same ONNX Runtime; what differs is preprocessing and postprocessing):
- network input: identical to Ultralytics' letterbox / stretch (max abs diff 0);
- detections: the same number, labels equal, scores within SCORE_TOL, boxes within BOX_TOL pixels
  (Ultralytics' boxes clipped to the image, as robustaudit's are);
- masks (retina_masks=True, Ultralytics' own mapping to the original image): IoU >= MASK_IOU per
  detection (bilinear resizes of OpenCV and PyTorch may flip a pixel on the 0.5 boundary).
Random-init models score every class alike, so the class-score biases are spread (seeded) to give
varied scores, labels and real NMS work; the tests assert that the predictions are varied.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# Never download (weights, fonts) nor pip-install at test time; no settings in the user's home.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")
if "YOLO_CONFIG_DIR" not in os.environ:  # a scratch settings folder, removed when the test process ends
    os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="yolo-config-")
    atexit.register(shutil.rmtree, os.environ["YOLO_CONFIG_DIR"], ignore_errors=True)

from audit.datasets import synthetic  # noqa: E402
from audit.api import run_audit  # noqa: E402
from audit.engines.onnxruntime import OrtEngine  # noqa: E402
from audit.errors import ModelError  # noqa: E402
from audit.tasks import TaskAdapter, preprocess, resolve_spec  # noqa: E402
from tests.test_api import config  # noqa: E402

IMGSZ = 128
CONF, IOU, MAX_DET = 0.05, 0.7, 100
BOX_TOL, SCORE_TOL, MASK_IOU = 1e-3, 1e-5, 0.98  # measured: 1.5e-5 px (RT-DETR), 0, 0.996
# family -> (Ultralytics yaml, expected output convention)
FAMILIES = {
    "yolov8": ("yolov8n.yaml", "yolov8"),
    "yolo11": ("yolo11n.yaml", "yolov8"),
    "yolov8-seg": ("yolov8n-seg.yaml", "yolov8_seg"),
    "yolo11-seg": ("yolo11n-seg.yaml", "yolov8_seg"),
    "rtdetr": ("rtdetr-l.yaml", "rtdetr"),
}
IMAGE_SIZES = ((96, 128), (150, 110), (77, 141))  # padding on either axis, odd paddings


@pytest.fixture(scope="module", autouse=True)
def ultralytics():
    """Import ultralytics for this module only. Importing it patches PIL.Image.open (it then tries to
    pip-install a HEIF plugin on an unreadable image), cv2.imread / imwrite / imshow and torch.save
    process-wide and sets OpenCV's thread count: all put back afterwards, so that the other tests see
    the libraries as they are."""
    import cv2
    import torch
    from PIL import Image

    saved = [(Image, "open"), (cv2, "imread"), (cv2, "imwrite"), (cv2, "imshow"), (torch, "save")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in saved]
    cv2_threads = cv2.getNumThreads()  # it also turns OpenCV's threads off
    try:
        yield pytest.importorskip("ultralytics", reason="the conformance suite needs ultralytics (the test extra)")
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)
        cv2.setNumThreads(cv2_threads)


def _build(yaml_name: str, folder):
    """An Ultralytics model from its own yaml with the 4 synthetic classes, class biases spread."""
    import torch
    import yaml
    from ultralytics import RTDETR, YOLO
    from ultralytics.nn.tasks import yaml_model_load

    cfg = {k: v for k, v in yaml_model_load(yaml_name).items() if k not in ("yaml_file", "scale")}
    cfg["nc"] = len(synthetic.SHAPES)
    path = folder / yaml_name  # keeps the scale letter (n / l) in the file name, where Ultralytics reads it
    path.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    model = (RTDETR if yaml_name.startswith("rtdetr") else YOLO)(str(path))
    model.model.names = dict(enumerate(synthetic.SHAPES))
    head = model.model.model[-1]
    last = [seq[-1] for seq in head.cv3] if hasattr(head, "cv3") else [head.enc_score_head, *head.dec_score_head]
    with torch.no_grad():
        for layer in last:
            layer.bias.normal_(-2.0, 0.5)
            layer.weight.normal_(0.0, 0.1)
    _calibrate_batch_norm(model.model)
    return model


def _calibrate_batch_norm(net) -> None:
    """Set BatchNorm statistics from synthetic scenes, so that a random-init network's features (and
    so its scores and boxes) depend on the image instead of being nearly constant."""
    import torch

    from tests.helpers.models import calibrate_batch_norm

    rng = np.random.default_rng(7)
    scenes = np.stack([synthetic.draw_scene(rng, IMGSZ, IMGSZ, 3)[0] for _ in range(8)])
    calibrate_batch_norm(net, torch.from_numpy(scenes).permute(0, 3, 1, 2).float() / 255)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """family -> exported ONNX path (built and exported once per session, lazily)."""
    folder = tmp_path_factory.mktemp("ultralytics")
    cache: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in cache:
            sub = folder / family
            sub.mkdir()
            model = _build(FAMILIES[family][0], sub)
            cache[family] = model.export(format="onnx", imgsz=IMGSZ, dynamic=False, verbose=False)
        return cache[family]

    return get


@pytest.fixture(scope="session")
def images():
    rng = np.random.default_rng(11)
    return [synthetic.draw_scene(rng, h, w, 3)[0] for h, w in IMAGE_SIZES]


def _theirs(onnx_path: str, family: str, rgb: np.ndarray):
    from ultralytics import RTDETR, YOLO

    model = RTDETR(onnx_path) if family == "rtdetr" else YOLO(onnx_path, task="segment" if "seg" in family else "detect")
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # Ultralytics reads numpy images as BGR
    result = model.predict(bgr, imgsz=IMGSZ, conf=CONF, iou=IOU, max_det=MAX_DET, retina_masks=True, verbose=False)[0]
    h, w = rgb.shape[:2]
    boxes = result.boxes.xyxy.numpy().copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)  # RT-DETR's predictor does not clip; robustaudit does
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    masks = None if result.masks is None else result.masks.data.numpy().astype(bool)
    network_input = model.predictor.preprocess([bgr]).numpy()[0]
    return boxes, result.boxes.conf.numpy(), result.boxes.cls.numpy().astype(np.int64), masks, network_input


def _ours(onnx_path: str, rgb: np.ndarray):
    engine = OrtEngine(onnx_path)
    spec = resolve_spec(engine, "detection")  # no flags: everything from Ultralytics' metadata
    adapter = TaskAdapter(spec, engine)
    adapter.context.score_threshold, adapter.context.nms_iou, adapter.context.max_detections = CONF, IOU, MAX_DET
    x, meta = preprocess(rgb, spec)
    return adapter.infer([x], [meta])[0], x, spec


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# Slow only: YOLO11 detect has YOLOv8's output convention (covered by yolov8 here and by YOLO11-seg, which
# the CLI test below also builds); building and exporting it costs about 4 CPU s
FAST_FAMILIES = [pytest.param(f, marks=pytest.mark.slow) if f == "yolo11" else f for f in FAMILIES]


@pytest.mark.parametrize("family", FAST_FAMILIES)
def test_decoding_equals_ultralytics_predict(family, exported, images):
    path = exported(family)
    all_labels, all_scores = [], []
    for rgb in images:
        det, x, spec = _ours(path, rgb)
        boxes, scores, labels, masks, network_input = _theirs(path, family, rgb)
        assert spec.output_convention == FAMILIES[family][1]
        np.testing.assert_array_equal(x, network_input)  # same letterbox / stretch, bit for bit
        if masks is not None:  # Ultralytics drops detections whose mask is empty; robustaudit keeps them for box AP
            keep = det.masks.reshape(len(det), -1).any(1)
            det_boxes, det_scores, det_labels, det_masks = det.boxes[keep], det.scores[keep], det.labels[keep], det.masks[keep]
        else:
            det_boxes, det_scores, det_labels, det_masks = det.boxes, det.scores, det.labels, None
        assert len(det_boxes) == len(boxes) > 0
        np.testing.assert_array_equal(det_labels, labels)
        np.testing.assert_allclose(det_scores, scores, atol=SCORE_TOL, rtol=0)
        np.testing.assert_allclose(det_boxes, boxes, atol=BOX_TOL, rtol=0)
        if "seg" in family:
            assert masks.shape == det_masks.shape == (len(boxes), *rgb.shape[:2])
            ious = [_iou(a, b) for a, b in zip(det_masks, masks)]
            assert min(ious) >= MASK_IOU, f"mask IoU {min(ious):.3f} under {MASK_IOU}"
        all_labels.extend(labels.tolist())
        all_scores.extend(scores.tolist())
    assert len(set(all_labels)) >= 2 and np.ptp(all_scores) > 0.1, "the predictions are varied, not a constant"


@pytest.mark.parametrize("family", FAST_FAMILIES)
def test_audit_runs_with_no_model_flags(family, exported, coco_dir, tmp_path):
    doc = run_audit(config(exported(family), "coco", coco_dir, tmp_path / "out", corruptions="contrast",
                           severities=[3], overrides={})).document
    meta = doc["model"]["metadata"]
    assert meta["output_convention"] == FAMILIES[family][1] and meta["input_size"] == [IMGSZ, IMGSZ]
    assert meta["resize"] == ("fixed" if family == "rtdetr" else "letterbox")
    assert meta["class_names"] == list(synthetic.SHAPES) and meta["label_space"] == "names"
    assert meta["mean"] == [0, 0, 0] and meta["std"] == [1, 1, 1] and meta["channel_order"] == "RGB"
    metrics = doc["cells"][0]["metrics"]
    assert metrics["bbox_AP"] is not None
    assert ("segm_AP" in metrics and metrics["segm_AP"] is not None) == ("seg" in family)


def _rewrite_metadata(src: str, dst, **changes) -> str:
    import onnx

    model = onnx.load(src)
    props = {p.key: p.value for p in model.metadata_props}
    props.update(changes)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return str(dst)


@pytest.mark.parametrize("names", ["{0: 'circle', 1: ", "__import__('os').system('true')", "{1: 'a', 2: 'b'}"])
def test_malformed_names_are_a_one_line_model_error(names, exported, tmp_path):
    path = _rewrite_metadata(exported("yolov8"), tmp_path / "bad.onnx", names=names)
    with pytest.raises(ModelError, match="Ultralytics metadata 'names'") as info:
        resolve_spec(OrtEngine(path), "detection")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("task, task_type, message", [
    ("pose", "detection", "Ultralytics 'pose' model; robustaudit audits Ultralytics detect and segment"),
    ("obb", "detection", "Ultralytics 'obb' model"),
    ("classify", "classification", "Ultralytics 'classify' model"),
    ("detect", "segmentation", "a detection model, but --task asks for segmentation; audit it with --task coco"),
])
def test_unsupported_or_mismatched_task_is_a_one_line_model_error(task, task_type, message, exported, tmp_path):
    path = _rewrite_metadata(exported("yolov8"), tmp_path / "task.onnx", task=task)
    with pytest.raises(ModelError, match=message) as info:
        resolve_spec(OrtEngine(path), task_type)
    assert "\n" not in str(info.value)


def test_flags_override_the_metadata(exported):
    spec = resolve_spec(OrtEngine(exported("yolov8")), "detection", overrides={"resize": "fixed", "input_size": None})
    assert spec.resize == "fixed" and spec.input_size == (IMGSZ, IMGSZ) and spec.output_convention == "yolov8"


def test_cli_audit_run_needs_no_model_flags(exported, coco_dir, tmp_path):
    from click.testing import CliRunner

    from audit.cli.main import cli

    args = ["run", exported("yolo11-seg"), "--task", "coco", "--data", str(coco_dir), "--out", str(tmp_path / "cli"),
            "--corruptions", "fog", "--severities", "2", "--quiet", "--workers", "0", "--examples", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "results.json").is_file()

