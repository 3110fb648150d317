"""COCO AP (boxes, and masks when the model gives them) with faster-coco-eval.

Detections are kept per image, so that the metric can be recomputed on a resampling of the images
(bootstrap) and saved as a cell's state for resume.
"""

from __future__ import annotations

import json

import numpy as np

from audit.tasks.types import Detections

_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


class CocoAP:
    """Streaming COCO evaluation against `coco_gt` (a COCO json dict); `image_ids[i]` is the COCO id
    of dataset position i.

    Example:
        >>> m = CocoAP(gt_doc, image_ids=[1])  # doctest: +SKIP
        >>> m.update(0, detections); m.compute()["bbox_AP"]  # doctest: +SKIP
    """

    def __init__(self, coco_gt: dict, image_ids, with_masks: bool = False):
        self.gt = coco_gt
        self.image_ids = [int(i) for i in image_ids]
        self.with_masks = with_masks
        self.dets: dict[int, dict] = {}

    def update(self, index: int, det: Detections) -> None:
        entry = {"boxes": np.asarray(det.boxes, np.float32).reshape(-1, 4), "scores": np.asarray(det.scores, np.float32),
                 "cats": np.asarray(det.category_ids, np.int64)}
        if self.with_masks:
            from faster_coco_eval.core import mask as mask_util

            masks = det.masks if det.masks is not None else np.zeros((0, 1, 1), bool)
            entry["rles"] = [mask_util.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode() for m in masks]
            entry["size"] = list(masks.shape[1:])
        self.dets[index] = entry

    def _results(self, positions: np.ndarray, renumber: bool) -> tuple[dict, list[dict]]:
        gt = self.gt
        if renumber:  # a resample may hold an image twice: give every draw its own image id
            by_image: dict[int, list] = {}
            for ann in gt["annotations"]:
                by_image.setdefault(ann["image_id"], []).append(ann)
            images_by_id = {im["id"]: im for im in gt["images"]}
            images, anns = [], []
            for new_id, pos in enumerate(positions, start=1):
                images.append({**images_by_id[self.image_ids[pos]], "id": new_id})
                for ann in by_image.get(self.image_ids[pos], []):
                    anns.append({**ann, "id": len(anns) + 1, "image_id": new_id})
            gt = {"images": images, "annotations": anns, "categories": gt["categories"]}
        results = []
        for new_id, pos in enumerate(positions, start=1):
            entry = self.dets.get(int(pos))
            if entry is None:
                continue
            image_id = new_id if renumber else self.image_ids[pos]
            for k, (box, score, cat) in enumerate(zip(entry["boxes"], entry["scores"], entry["cats"])):
                x0, y0, x1, y1 = (float(v) for v in box)
                res = {"image_id": image_id, "category_id": int(cat), "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)}
                if self.with_masks:
                    res["segmentation"] = {"size": entry["size"], "counts": entry["rles"][k]}
                results.append(res)
        return gt, results

    def compute_on(self, positions: np.ndarray | None = None) -> dict[str, float | None]:
        from faster_coco_eval import COCO, COCOeval_faster

        renumber = positions is not None
        positions = np.asarray(sorted(self.dets) if positions is None else positions, dtype=np.int64)
        gt_doc, results = self._results(positions, renumber)
        if not renumber:
            keep = {self.image_ids[p] for p in positions}
            gt_doc = {**gt_doc, "images": [im for im in gt_doc["images"] if im["id"] in keep],
                      "annotations": [a for a in gt_doc["annotations"] if a["image_id"] in keep]}
        out: dict[str, float | None] = {}
        gt = COCO(gt_doc)
        for iou_type in ("bbox", "segm") if self.with_masks else ("bbox",):
            if not gt_doc["annotations"]:
                out.update({f"{iou_type}_{k}": None for k in _KEYS})
                continue
            dt = gt.loadRes(results)
            ev = COCOeval_faster(gt, dt, iouType=iou_type, print_function=lambda *a, **k: None)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out.update({f"{iou_type}_{k}": (float(v) if v >= 0 else None) for k, v in zip(_KEYS, ev.stats[:9])})
        return out

    def compute(self) -> dict[str, float | None]:
        return self.compute_on(None)

    def state(self) -> dict[str, np.ndarray]:
        return {"dets_json": np.array(json.dumps({str(k): _jsonable(v) for k, v in self.dets.items()}))}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        raw = json.loads(str(state["dets_json"]))
        self.dets = {int(k): {**v, "boxes": np.asarray(v["boxes"], np.float32).reshape(-1, 4),
                              "scores": np.asarray(v["scores"], np.float32), "cats": np.asarray(v["cats"], np.int64)}
                     for k, v in raw.items()}


def _jsonable(entry: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
