"""Tiny ONNX models in every built-in output convention, whose outputs depend on the input they are fed.

Each detector answers every image with fixed detections (the ground-truth boxes of one image, mapped
to its input geometry) whose x coordinates move with the mean of the network input: feed it other
pixels (another mean / std, another resize) and its boxes, so its AP, change. That makes them fit to
show that a model spec resolved from different sources feeds the model the same input: the cells
are bit-identical exactly when the inputs are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audit.datasets import synthetic

SHIFT = 4.0  # input pixels of box shift per unit of the input's mean: a few pixels on [0, 1] pixels
SIZE = 64  # fixed input side of the YOLO / RT-DETR / mmdeploy style graphs


def shifting_model(path: Path, input_shape: list, outputs: list[tuple[str, np.ndarray, np.ndarray | None]],
                   metadata: dict[str, str] | None = None) -> Path:
    """An ONNX graph: input `image` of `input_shape`; each output `name` = base + delta * mean(image)
    (delta None: base as it is, e.g. integer labels)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0)]
    outs = []
    for name, base, delta in outputs:
        nodes.append(helper.make_node("Constant", [], [f"{name}_base"], value=numpy_helper.from_array(base, f"{name}_b")))
        if delta is None:
            nodes.append(helper.make_node("Identity", [f"{name}_base"], [name]))
        else:
            nodes.append(helper.make_node("Constant", [], [f"{name}_delta"],
                                          value=numpy_helper.from_array(delta.astype(np.float32), f"{name}_d")))
            nodes.append(helper.make_node("Mul", [f"{name}_delta", "m"], [f"{name}_shift"]))
            nodes.append(helper.make_node("Add", [f"{name}_base", f"{name}_shift"], [name]))
        elem = TensorProto.INT64 if base.dtype == np.int64 else TensorProto.FLOAT
        outs.append(helper.make_tensor_value_info(name, elem, list(base.shape)))
    graph = helper.make_graph(nodes, "shifting", [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def ground_truth(coco_root: Path) -> tuple[list[list[float]], list[int], tuple[int, int]]:
    """The first image's boxes (xyxy), their class indices (order of the category ids) and its (H, W)."""
    doc = json.loads((Path(coco_root) / "annotations" / "instances_val2017.json").read_text())
    image = doc["images"][0]
    ids = sorted(c["id"] for c in doc["categories"])
    anns = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
    boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
    return boxes, [ids.index(a["category_id"]) for a in anns], (image["height"], image["width"])


def _to_input(boxes: np.ndarray, hw: tuple[int, int], letterbox: bool) -> np.ndarray:
    """Original-image xyxy -> SIZE x SIZE input pixels (stretched, or letterboxed and centred)."""
    h, w = hw
    sy, sx = SIZE / h, SIZE / w
    if not letterbox:
        return boxes * [sx, sy, sx, sy]
    s = min(sx, sy)
    px, py = (SIZE - w * s) / 2, (SIZE - h * s) / 2
    return boxes * s + [px, py, px, py]


def _cxcywh(xyxy: np.ndarray) -> np.ndarray:
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                     xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], axis=1)


def detector(path: Path, convention: str, coco_root: Path, metadata: dict[str, str] | None = None) -> Path:
    """A detector in `convention` answering every image with the first image's ground truth (moved by
    the input's mean), 4 classes."""
    gt, classes, hw = ground_truth(coco_root)
    boxes, labels = np.asarray(gt, np.float32), np.asarray(classes, np.int64)
    k, c = len(boxes), len(synthetic.SHAPES)
    scores = np.linspace(0.9, 0.6, k, dtype=np.float32)
    if convention == "torchvision_detection":  # original pixels, [3, H, W] in
        shift = np.zeros_like(boxes)
        shift[:, [0, 2]] = SHIFT
        return shifting_model(path, [3, "h", "w"], [("boxes", boxes, shift), ("labels", labels, None),
                                                    ("scores", scores, None)], metadata)
    letterbox = convention.startswith("yolo")
    box = _to_input(boxes, hw, letterbox).astype(np.float32)
    move = np.zeros_like(box)
    move[:, [0, 2]] = SHIFT
    onehot = np.eye(c, dtype=np.float32)[labels] * scores[:, None]
    image = [1, 3, SIZE, SIZE]
    if convention == "mmdeploy":
        dets = np.concatenate([box, scores[:, None]], 1)[None]
        return shifting_model(path, image, [("dets", dets, np.concatenate([move, np.zeros((k, 1))], 1)[None]),
                                            ("labels", labels[None], None)], metadata)
    if convention in ("yolov8", "yolov8_seg"):
        raw = np.concatenate([_cxcywh(box), onehot] + ([np.ones((k, 1), np.float32)] if convention == "yolov8_seg" else []), 1)
        delta = np.zeros_like(raw)
        delta[:, 0] = SHIFT
        outs = [("output0", raw.T[None].copy(), delta.T[None].copy())]
        if convention == "yolov8_seg":  # one all-ones prototype, coefficient 1: the mask is the box
            outs.append(("output1", np.ones((1, 1, SIZE // 4, SIZE // 4), np.float32), None))
        return shifting_model(path, image, outs, metadata)
    if convention == "yolo_end2end":
        rows = np.concatenate([box, scores[:, None], labels[:, None].astype(np.float32)], 1)[None]
        return shifting_model(path, image, [("output0", rows, np.concatenate([move, np.zeros((k, 2))], 1)[None])], metadata)
    norm = _cxcywh(box) / SIZE
    shift = np.zeros_like(norm)
    shift[:, 0] = SHIFT / SIZE
    if convention == "rtdetr":
        rows = np.concatenate([norm, scores[:, None], labels[:, None].astype(np.float32)], 1)[None]
        return shifting_model(path, image, [("output0", rows, np.concatenate([shift, np.zeros((k, 2))], 1)[None])], metadata)
    if convention == "rtdetr_scores":
        rows = np.concatenate([norm, onehot], 1)[None]
        return shifting_model(path, image, [("output0", rows, np.concatenate([shift, np.zeros((k, c))], 1)[None])], metadata)
    raise ValueError(f"no test detector for convention {convention}")


def with_argmax(src: Path, dst: Path) -> Path:
    """A copy of a [N, C, H, W] segmentation-logits graph that outputs the label map [N, H, W] (int64)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    logits = model.graph.output[0].name
    model.graph.node.append(helper.make_node("ArgMax", [logits], ["labels"], axis=1, keepdims=0))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("labels", TensorProto.INT64, ["n", "h", "w"]))
    onnx.save(model, str(dst))
    return dst


def with_metadata(src: Path, dst: Path, metadata: dict[str, str]) -> Path:
    """A copy of an ONNX model carrying `metadata` in its metadata_props."""
    import onnx

    model = onnx.load(str(src))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return dst
