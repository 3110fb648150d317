"""Conformance against torchvision: its detectors and segmenters, built offline (random init, small
sizes), exported with torch.onnx.export as torchvision's own tests do, decoded by robustaudit with no
model flags, equal the eager PyTorch model's predictions on the same images.

Tolerances (stated, with the measured values in the comments):
- detection: every PyTorch detection has an ONNX one with the same label, box corners within
  BOX_ATOL pixels and score within SCORE_ATOL (measured: boxes <= 4.9e-3 px, scores <= 1.4e-4,
  both from Mask R-CNN; the other families <= 2.6e-3 px and 3.3e-5);
- Mask R-CNN: the decoded binary masks agree with PyTorch's (probability >= 0.5) on >= MASK_AGREE of pixels
  (pairs from the box match; measured 0.999994);
- segmentation: the decoded label map equals the argmax of PyTorch's logits on >= SEG_AGREE of pixels
  (measured 1.0 for FCN and DeepLabV3).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audit.datasets import synthetic
from audit.api import AuditConfig, run_audit
from audit.engines.base import open_engine
from audit.tasks import TaskAdapter, preprocess, resolve_spec

torch = pytest.importorskip("torch")
detection = pytest.importorskip("torchvision.models.detection")
segmentation = pytest.importorskip("torchvision.models.segmentation")

BOX_ATOL, SCORE_ATOL, MASK_AGREE, SEG_AGREE = 0.05, 1e-3, 0.999, 0.999
SIZES = [(120, 160), (150, 110)]  # non-square, both orientations
SMALL = dict(weights=None, weights_backbone=None, num_classes=len(synthetic.SHAPES) + 1)
RCNN = dict(min_size=128, max_size=160, box_score_thresh=0.0, box_detections_per_img=20)
DETECTORS = {  # family: (builder, output names given to the exporter or None (unnamed, as users often export))
    "fasterrcnn": (lambda: detection.fasterrcnn_mobilenet_v3_large_fpn(**SMALL, **RCNN), ["boxes", "labels", "scores"]),
    "maskrcnn": (lambda: detection.maskrcnn_resnet50_fpn(**SMALL, **RCNN), None),
    "retinanet": (lambda: detection.retinanet_resnet50_fpn(**SMALL, min_size=128, max_size=160, score_thresh=0.0,
                                                           detections_per_img=20), None),
    # FCOS returns boxes, scores, labels: exported with Faster R-CNN's names, two outputs are misnamed
    "fcos": (lambda: detection.fcos_resnet50_fpn(**SMALL, min_size=128, max_size=160, score_thresh=0.0,
                                                 detections_per_img=20), ["boxes", "labels", "scores"]),
    "ssd300": (lambda: detection.ssd300_vgg16(**SMALL, score_thresh=0.0, detections_per_img=20), None),
    "ssdlite320": (lambda: detection.ssdlite320_mobilenet_v3_large(**SMALL, score_thresh=0.0, detections_per_img=20), None),
}
SEGMENTERS = {
    "fcn_resnet50": lambda: segmentation.fcn_resnet50(**SMALL, aux_loss=False),
    "deeplabv3_mobilenet_v3_large": lambda: segmentation.deeplabv3_mobilenet_v3_large(**SMALL, aux_loss=False),
}


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [synthetic.draw_scene(rng, h, w, 3)[0] for h, w in SIZES]


CLS_LAYERS = ("cls_score", "cls_logits", "classification_head.module_list")


def _calibrate(model) -> None:
    """Make a random-init detector predict like a trained one: varied scores instead of a constant.

    Random init makes MobileNet features vanish and ResNet/VGG scores saturate, so every box scores
    alike. Two passes over calibration images: BatchNorm statistics from the data (activations at
    unit scale), then each classification layer rescaled to logits of std 1 with random biases.
    """
    from tests.helpers.models import calibrate_batch_norm

    calib = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in images()]
    calibrate_batch_norm(model, calib)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
              and m.bias is not None and any(k in n for k in CLS_LAYERS)}
    stds: dict[str, list[float]] = {n: [] for n in layers}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: stds[n].append(float((o - mod.bias.view(-1, *[1] * (o.ndim - 2))
                                                                                  ).std())))
             for n, m in layers.items()]
    with torch.no_grad():
        model(calib)
    for h in hooks:
        h.remove()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, m in layers.items():
            m.weight.mul_(1.0 / max(np.mean(stds[n]), 1e-12))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5 - 1.0)


def _export(model, path, example, output_names, dynamic) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(path), input_names=["images"], output_names=output_names,
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)


class _Detectors(dict):
    """family -> (eager model, exported ONNX path), each built and exported once, on first use: the
    default run skips the families marked slow, so it does not pay for building them."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def __missing__(self, family):
        build, names = DETECTORS[family]
        torch.manual_seed(0)
        model = build().eval()
        _calibrate(model)
        path = self.folder / f"{family}.onnx"
        _export(model, path, ([torch.rand(3, 120, 160)],), names, {"images": {1: "h", 2: "w"}})
        self[family] = (model, path)
        return self[family]


@pytest.fixture(scope="session")
def tv_detectors(tmp_path_factory):
    return _Detectors(tmp_path_factory.mktemp("tv_det"))


@pytest.fixture(scope="session")
def tv_segmenters(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("tv_seg"), {}
    for family, build in SEGMENTERS.items():
        torch.manual_seed(0)
        model = build().eval()
        path = folder / f"{family}.onnx"
        _export(model, path, (torch.rand(1, 3, 120, 160),), None, {"images": {0: "n", 2: "h", 3: "w"}})
        out[family] = (model, path)
    return out


def _torch_detect(model, image: np.ndarray) -> dict:
    with torch.no_grad():
        out = model([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]
    return {k: v.numpy() for k, v in out.items()}


def _zero_flag_adapter(path, task: str) -> TaskAdapter:
    engine = open_engine(str(path))
    return TaskAdapter(resolve_spec(engine, task, overrides={}), engine)


def _match(ref: dict, got) -> tuple[float, float, list[tuple[int, int]]]:
    """For every PyTorch detection the closest ONNX one of the same label: max box and score gaps, pairs."""
    assert len(got.boxes) == len(ref["boxes"]), (len(got.boxes), len(ref["boxes"]))
    box_gap = score_gap = 0.0
    pairs = []
    for i, (box, label, score) in enumerate(zip(ref["boxes"], ref["labels"], ref["scores"])):
        same = np.flatnonzero(got.labels == label)
        assert same.size, f"no decoded detection with label {label}"
        gaps = np.abs(got.boxes[same] - box).max(axis=1) + np.abs(got.scores[same] - score)
        j = int(same[int(gaps.argmin())])
        pairs.append((i, j))
        box_gap = max(box_gap, float(np.abs(got.boxes[j] - box).max()))
        score_gap = max(score_gap, float(abs(got.scores[j] - score)))
    return box_gap, score_gap, pairs


# Slow only: RetinaNet's unnamed outputs behind the R-CNN transform are covered by Mask R-CNN and FCOS,
# SSD300's SSD transform by SSDlite; building their ResNet-50 / VGG-16 costs about 15 CPU s
SLOW_DETECTORS = {"retinanet", "ssd300"}


@pytest.mark.parametrize("family", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_DETECTORS else f
                                    for f in DETECTORS])
def test_detector_decodes_as_torchvision_predicts(tv_detectors, family):
    model, path = tv_detectors[family]
    adapter = _zero_flag_adapter(path, "detection")
    assert adapter.spec.output_convention == "torchvision_detection" and adapter.spec.resize == "none"
    adapter.context.score_threshold = 0.0  # compare everything the model returns
    for image in images():
        ref = _torch_detect(model, image)
        assert len(ref["boxes"]) > 0 and len(np.unique(ref["scores"])) > 1, "predictions must be non-empty and varied"
        x, meta = preprocess(image, adapter.spec)
        got = adapter.infer([x], [meta])[0]
        box_gap, score_gap, pairs = _match(ref, got)
        assert box_gap <= BOX_ATOL and score_gap <= SCORE_ATOL, (family, box_gap, score_gap)
        if family == "maskrcnn":
            assert got.masks is not None and got.masks.shape == (len(ref["boxes"]), *image.shape[:2])
            agree = np.mean([(got.masks[j] == (ref["masks"][i, 0] >= 0.5)).mean() for i, j in pairs])
            assert agree >= MASK_AGREE, agree


@pytest.mark.parametrize("family", list(SEGMENTERS))
def test_segmenter_decodes_as_torchvision_predicts(tv_segmenters, family):
    model, path = tv_segmenters[family]
    adapter = _zero_flag_adapter(path, "segmentation")
    spec = adapter.spec
    assert spec.output_convention == "segmentation_logits" and spec.resize == "none"  # dynamic H, W: original size
    assert spec.provenance["defaulted"] == ["channel_order", "mean", "std"]  # ImageNet statistics on RGB, assumed and recorded
    for image in images():
        x_ref = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - torch.tensor(spec.mean)[:, None, None]) \
            / torch.tensor(spec.std)[:, None, None]
        with torch.no_grad():
            ref = model(x_ref[None])["out"][0].argmax(0).numpy()
        x, meta = preprocess(image, spec)
        got = adapter.infer([x], [meta])[0]
        assert got.shape == image.shape[:2] and (got == ref).mean() >= SEG_AGREE


@pytest.mark.parametrize("family", ["maskrcnn"])
def test_detector_audits_with_no_model_flags(tv_detectors, family, tmp_path):
    root = synthetic.write_coco(tmp_path / "coco", n_train=1, n_val=2, size=(96, 128), seed=2)
    doc = run_audit(AuditConfig(model=str(tv_detectors[family][1]), task="coco", data=str(root), out=str(tmp_path / "o"),
                                corruptions="contrast", severities=[3], workers=0, progress=False, examples=0,
                                report=False, overrides={})).document
    # 5 classes = 4 shapes + background: the labels it predicts (2 or 4: no category id of the synthetic set
    # 1, 3, 7, 12) show the index+background label space; without such evidence the audit would stop
    mapping = doc["model"]["label_mapping"]
    assert (mapping["space"], mapping["source"]) == ("index+background", "inferred"), mapping["reason"]
    assert doc["model"]["metadata"]["output_convention"] == "torchvision_detection"
    assert doc["corruption"]["corrupt_at"] == "original"
    assert doc["cells"][0]["metrics"]["bbox_AP"] is not None
    assert ("segm_AP" in doc["cells"][0]["metrics"]) == (family == "maskrcnn")


def test_segmenter_audits_with_no_model_flags(tv_segmenters, tmp_path):
    root = synthetic.write_ade20k(tmp_path / "ade", n_train=1, n_val=2, size=(64, 80), seed=2)
    doc = run_audit(AuditConfig(model=str(tv_segmenters["deeplabv3_mobilenet_v3_large"][1]), task="ade20k", data=str(root),
                                out=str(tmp_path / "o"), corruptions="fog", severities=[2], workers=0, progress=False,
                                examples=0, report=False, overrides={})).document
    assert doc["model"]["spec_source"]["defaulted"] == ["channel_order", "mean", "std"]
    assert doc["summary"]["metrics"]["mIoU"]["cells"] == 1
