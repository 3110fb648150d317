"""Task metrics against known answers and independent computations (pycocotools, direct NumPy)."""

import contextlib
import io

import numpy as np
import pytest

from audit.metrics import Accuracy, CocoAP, MeanIoU
from audit.tasks.types import Detections


def _det(boxes, scores, cats, masks=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    cats = np.asarray(cats, np.int64)
    return Detections(boxes, np.asarray(scores, np.float32), cats, cats, masks)


def test_coco_known_answer():
    gt = {"images": [{"id": 7, "width": 700, "height": 400, "file_name": "a.jpg"}],
          "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [214, 41, 348, 244], "area": 348 * 244, "iscrowd": 0}],
          "categories": [{"id": 3, "name": "x"}]}
    m = CocoAP(gt, [7])
    m.update(0, _det([[258, 41, 606, 285]], [0.536], [3]))
    out = m.compute()
    assert out["bbox_AP"] == pytest.approx(0.6) and out["bbox_AP50"] == 1 and out["bbox_AP75"] == 1


def _random_coco(rng, n_images=6, n_cats=3, size=(60, 80)):
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": 100 + i, "width": size[1], "height": size[0], "file_name": f"{i}.png"})
        for _ in range(rng.integers(1, 4)):
            x, y = rng.uniform(0, size[1] - 20), rng.uniform(0, size[0] - 20)
            w, h = rng.uniform(8, 20), rng.uniform(8, 20)
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": int(rng.integers(1, n_cats + 1)) * 2,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": [poly]})
    return {"images": images, "annotations": anns, "categories": [{"id": 2 * k, "name": str(k)} for k in range(1, n_cats + 1)]}


def test_coco_box_and_mask_ap_equal_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from pycocotools import mask as mask_util

    rng = np.random.default_rng(0)
    gt = _random_coco(rng)
    m = CocoAP(gt, [im["id"] for im in gt["images"]], with_masks=True)
    results = []
    for pos, im in enumerate(gt["images"]):
        k = int(rng.integers(0, 5))
        boxes = []
        for a in [a for a in gt["annotations"] if a["image_id"] == im["id"]]:
            x, y, w, h = a["bbox"]
            boxes.append([x + rng.normal(0, 2), y + rng.normal(0, 2), x + w + rng.normal(0, 2), y + h, a["category_id"]])
        for _ in range(k):
            x, y = rng.uniform(0, 60), rng.uniform(0, 40)
            boxes.append([x, y, x + 10, y + 10, 2 * int(rng.integers(1, 4))])
        boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
        scores = rng.uniform(0.05, 1, len(boxes)).astype(np.float32)
        masks = np.zeros((len(boxes), 60, 80), bool)
        for j, b in enumerate(boxes):
            masks[j, int(max(b[1], 0)):int(b[3]) + 1, int(max(b[0], 0)):int(b[2]) + 1] = True
        m.update(pos, _det(boxes[:, :4], scores, boxes[:, 4], masks))
        for j, b in enumerate(boxes):
            rle = mask_util.encode(np.asfortranarray(masks[j].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            results.append({"image_id": im["id"], "category_id": int(b[4]), "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                            "score": float(scores[j]), "segmentation": rle})
    ours = m.compute()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes(results)
        for iou in ("bbox", "segm"):
            ev = COCOeval(coco, dt, iou)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ours[f"{iou}_AP"] == pytest.approx(ev.stats[0], abs=1e-6)
            assert ours[f"{iou}_AP50"] == pytest.approx(ev.stats[1], abs=1e-6)
            assert ours[f"{iou}_AR100"] == pytest.approx(ev.stats[8], abs=1e-6)
    # state round trip and resampling
    again = CocoAP(gt, [im["id"] for im in gt["images"]], with_masks=True)
    again.load_state(m.state())
    assert again.compute()["bbox_AP"] == pytest.approx(ours["bbox_AP"])
    assert m.compute_on(np.arange(6))["bbox_AP"] == pytest.approx(ours["bbox_AP"])


def test_miou_known_answer_and_direct_numpy():
    m = MeanIoU([np.array([[2, 1, 0, 0]])], num_classes=3)
    m.update(0, np.array([[2, 1, 0, 1]]))
    assert m.compute()["mIoU"] == pytest.approx(2 / 3, abs=1e-4)
    rng = np.random.default_rng(1)
    gts = [rng.integers(0, 5, (20, 30)) for _ in range(4)]
    gts[0][:5] = 255
    preds = [rng.integers(0, 5, (20, 30)) for _ in range(4)]
    m = MeanIoU(gts, num_classes=5)
    for i, p in enumerate(preds):
        m.update(i, p)
    g, p = np.concatenate([x.ravel() for x in gts]), np.concatenate([x.ravel() for x in preds])
    p, g = p[g != 255], g[g != 255]
    ious = [((p == k) & (g == k)).sum() / ((p == k) | (g == k)).sum() for k in range(5)]
    assert m.compute()["mIoU"] == pytest.approx(np.mean(ious))
    assert m.compute()["aAcc"] == pytest.approx((p == g).mean())
    assert MeanIoU([gts[1]], 5).compute()["mIoU"] is None  # nothing evaluated: undefined, not 0


def test_accuracy_top1_top5_and_resampling():
    m = Accuracy([0, 1, 2, 3, 4, 5], num_classes=6)
    scores = np.eye(6)[[0, 1, 2, 0, 0, 0]] + np.linspace(0, 0.1, 6)
    for i, s in enumerate(scores):
        m.update(i, s)
    assert m.compute()["top1"] == pytest.approx(0.5)
    assert m.compute()["top5"] == pytest.approx(1.0)  # labels 3, 4, 5 rank 2nd-4th by the ramp
    assert m.compute_on(np.array([0, 0, 3]))["top1"] == pytest.approx(2 / 3)
    assert Accuracy([0], num_classes=3).compute_on(np.array([0]))["top5"] is None
