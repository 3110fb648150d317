"""Label spaces end to end: a torchvision-convention COCO detector (labels = COCO category ids, as
torchvision's COCO-trained detectors give them) on a real-format COCO file with all 80 categories.

The category table is torchvision's own (`FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta`): index k of
its 91 entries is COCO category id k. The detector answers every image with exactly the ground-truth
boxes, so the right reading scores AP 1.0 and any other reading less: the audit must give 1.0 or stop
with an error naming the flag, never another number.
"""

import json

import numpy as np
import pytest
from PIL import Image

from audit.api import AuditConfig, run_audit
from audit.errors import ConfigError, ModelError
from tests.helpers.models import constant_detector

H, W = 96, 128


def coco_categories():
    tv = pytest.importorskip("torchvision.models.detection")
    names = tv.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    return [{"id": k, "name": n, "supercategory": "thing"} for k, n in enumerate(names) if n not in ("__background__", "N/A")]


def write_coco80(root, objects, n_images=2):
    """COCO val layout, 80 real categories; every image holds `objects` [(category_id, xyxy)]."""
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / "val2017" / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": H, "width": W})
        for cat, (x0, y0, x1, y1) in objects:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "area": float((x1 - x0) * (y1 - y0)), "iscrowd": 0})
    doc = {"images": images, "annotations": anns, "categories": coco_categories()}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    return root


BOXES = [(4, 4, 40, 40), (50, 10, 90, 60), (20, 50, 70, 90), (80, 40, 120, 92)]


def audit(model, data, out, report=False, **overrides):
    return run_audit(AuditConfig(model=str(model), task="coco", data=str(data), out=str(out), corruptions="contrast",
                                 severities=[1], workers=0, progress=False, examples=0, report=report,
                                 overrides=overrides)).document


@pytest.mark.parametrize("ids, space", [
    ((1, 62, 84, 90), "category-id"),       # person, chair, book, toothbrush: 84 and 90 exceed the 80 categories
    ((1, 3, 12, 26), "index+background"),   # 12 and 26 are not COCO ids (gaps): only background+index allows them
])
def test_evidence_decides_the_label_space_and_the_ap_is_right(tmp_path, ids, space):
    if space == "category-id":
        truth = list(ids)
    else:  # label k >= 1 is the (k-1)-th category by id
        cat_ids = [c["id"] for c in coco_categories()]
        truth = [cat_ids[k - 1] for k in ids]
    data = write_coco80(tmp_path / "coco", list(zip(truth, BOXES)))
    model = constant_detector(tmp_path / "det.onnx", BOXES, ids, [0.9, 0.8, 0.7, 0.6])
    doc = audit(model, data, tmp_path / "out", report=True)
    mapping = doc["model"]["label_mapping"]
    assert mapping["space"] == space and mapping["source"] == "inferred" and mapping["reason"]
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"{space} (inferred: " in html.replace("&#x27;", "'")


def test_ambiguous_labels_stop_with_the_flag_and_the_flag_equals_the_right_table(tmp_path):
    ids = (1, 3, 18, 62)  # person, car, dog, chair: valid ids under 80, so both readings are possible
    data = write_coco80(tmp_path / "coco", list(zip(ids, BOXES)))
    model = constant_detector(tmp_path / "det.onnx", BOXES, ids, [0.9, 0.8, 0.7, 0.6])
    with pytest.raises(ModelError, match="--label-space category-id"):
        audit(model, data, tmp_path / "none")
    by_flag = audit(model, data, tmp_path / "flag", label_space="category-id")
    table = [None if n in ("__background__", "N/A") else k for k, n in enumerate(
        pytest.importorskip("torchvision.models.detection").FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])]
    config = tmp_path / "spec.json"
    config.write_text(json.dumps({"task": "detection", "output_convention": "torchvision_detection", "resize": "none",
                                  "mean": [0, 0, 0], "std": [1, 1, 1], "label_to_category": table}))
    by_table = run_audit(AuditConfig(model=str(model), task="coco", data=str(data), out=str(tmp_path / "table"),
                                     corruptions="contrast", severities=[1], workers=0, progress=False, examples=0,
                                     report=False, model_config=str(config))).document
    assert by_flag["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)
    assert [c["metrics"] for c in by_flag["cells"]] == [c["metrics"] for c in by_table["cells"]]
    assert by_table["model"]["label_mapping"]["source"] == "model-config"
    # the wrong space, asked for explicitly, is the user's call: it is written into the results
    wrong = audit(model, data, tmp_path / "wrong", label_space="index+background")
    assert wrong["model"]["label_mapping"]["space"] == "index+background"
    assert wrong["cells"][0]["metrics"]["bbox_AP"] <= 0.5  # the 0.50 of the bug report


def test_names_map_by_name_and_unmatched_names_are_an_error_or_listed(tmp_path):
    cats = coco_categories()
    data = write_coco80(tmp_path / "coco", [(1, BOXES[0]), (18, BOXES[1])])
    model = constant_detector(tmp_path / "det.onnx", BOXES[:2], [0, 1], [0.9, 0.8])
    # a 3-class model whose names are spelled differently (case, underscores) and one the dataset lacks
    config = tmp_path / "spec.yaml"
    config.write_text("task: detection\noutput_convention: torchvision_detection\nresize: none\nmean: [0, 0, 0]\n"
                      "std: [1, 1, 1]\nclass_names: [Person, DOG, space_ship]\nlabel_space: names\n")
    base = dict(model=str(model), task="coco", data=str(data), corruptions="contrast", severities=[1], workers=0,
                progress=False, examples=0, report=False, model_config=str(config))
    # space_ship (a model class the dataset lacks) is left out; dataset categories the model cannot
    # predict would score 0, so they stop the audit unless asked for
    with pytest.raises(ConfigError, match="dataset categories the model does not name: bicycle, .* \\(78 in all\\)"):
        run_audit(AuditConfig(out=str(tmp_path / "a"), **base))
    doc = run_audit(AuditConfig(out=str(tmp_path / "b"), ignore_unmatched_labels=True, **base)).document
    mapping = doc["model"]["label_mapping"]
    assert [r["category_id"] for r in mapping["table"]] == [1, 18, None]
    assert mapping["unmatched_model"] == ["space_ship"] and len(mapping["unmatched_dataset"]) == len(cats) - 2
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)


def test_a_flagged_convention_brings_its_input_contract(tmp_path):
    """--output-convention torchvision_detection on a model whose outputs did not identify it: the graph
    normalises inside, so robustaudit feeds raw [0, 1] pixels, and says the convention set them."""
    import onnx

    model = constant_detector(tmp_path / "det.onnx", BOXES[:1], [1], [0.9])
    proto = onnx.load(str(model))
    for out, name in zip(proto.graph.output, ("a", "b", "c")):  # other names ...
        for node in proto.graph.node:
            node.output[:] = [name if o == out.name else o for o in node.output]
        out.name = name
    # ... and a fourth, unrelated output: the outputs no longer identify torchvision's layout
    proto.graph.node.append(onnx.helper.make_node("Shape", ["b"], ["extra"]))
    proto.graph.output.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.INT64, [1]))
    onnx.save(proto, str(model))
    from audit.engines.base import open_engine
    from audit.spec.resolve import resolve_spec

    spec = resolve_spec(open_engine(str(model)), "detection", overrides={"output_convention": "torchvision_detection"})
    assert (spec.resize, spec.mean, spec.std) == ("none", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert spec.origins["mean"] == "convention" and spec.origins["output_convention"] == "flag"


def yolo_raw_detector(path, boxes_cxcywh, classes, num_classes, names, imgsz=128):
    """An ONNX graph with Ultralytics' raw detection layout [1, 4 + C, A] and Ultralytics' metadata keys,
    answering every image with the given boxes (input pixels) and one-hot class scores."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    raw = np.zeros((1, 4 + num_classes, len(classes)), np.float32)
    for a, (box, c) in enumerate(zip(boxes_cxcywh, classes)):
        raw[0, :4, a] = box
        raw[0, 4 + c, a] = 0.9
    const = helper.make_node("Constant", [], ["raw"], value=numpy_helper.from_array(raw, "raw_v"))
    ident = helper.make_node("Identity", ["raw"], ["output0"])
    graph = helper.make_graph([const, ident], "yolo_const",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    meta = {"author": "Ultralytics", "task": "detect", "imgsz": f"[{imgsz}, {imgsz}]", "stride": "32",
            "names": "{" + ", ".join(f"{k}: {n!r}" for k, n in enumerate(names)) + "}"}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_an_ultralytics_model_on_a_yolo_dataset_maps_its_classes_by_name(tmp_path):
    """The common deployment check: an Ultralytics export on the user's YOLO data (data.yaml), no flags.
    The model lists the classes in another order than the dataset; its names decide: AP 1.0, and read by
    index instead (what a tool without label spaces does) the same detections score less."""
    from audit.datasets import synthetic
    from tests.helpers.synthetic_formats import write_yolo

    data = write_yolo(tmp_path / "yolo", n_train=1, n_val=1, size=(128, 128), seed=4)
    rows = [list(map(float, line.split())) for line in (tmp_path / "yolo/labels/val/0000.txt").read_text().split("\n") if line]
    order = [2, 0, 3, 1]  # the model's class k is the dataset's class order[k]
    boxes = [[v * 128 for v in r[1:]] for r in rows]  # 128 x 128 image = network input: no letterbox
    model = yolo_raw_detector(tmp_path / "yolo.onnx", boxes, [order.index(int(r[0])) for r in rows], 4,
                              [synthetic.SHAPES[c] for c in order])
    doc = run_audit(AuditConfig(model=str(model), task="detection", data=str(data), out=str(tmp_path / "a"),
                                corruptions="contrast", severities=[1], workers=0, progress=False, examples=0,
                                report=False)).document
    assert doc["dataset"]["format"] == "yolo" and doc["model"]["metadata"]["output_convention"] == "yolov8"
    mapping = doc["model"]["label_mapping"]
    assert (mapping["space"], mapping["source"]) == ("names", "metadata")
    assert [r["category"] for r in mapping["table"]] == [synthetic.SHAPES[c] for c in order]
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)
    by_index = run_audit(AuditConfig(model=str(model), task="detection", data=str(data), out=str(tmp_path / "b"),
                                     corruptions="contrast", severities=[1], workers=0, progress=False, examples=0,
                                     report=False, overrides={"label_space": "index"})).document
    assert by_index["cells"][0]["metrics"]["bbox_AP"] < 1.0


def test_a_coco_detector_exported_by_name_refuses_to_read_another_datasets_ids(tmp_path):
    """`audit export torchvision:NAME` (91 COCO classes) writes category-id and torchvision's COCO names;
    on data whose ids mean other classes the audit stops and says to map by name, instead of scoring
    'person' detections as the dataset's category 1."""
    from exporters.sources import load_source

    from audit.datasets import synthetic
    from audit.tasks.labels import DatasetLabels, resolve_labels

    spec = load_source("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn").spec
    assert spec.label_space == "category-id" and spec.class_names[1] == "person" and len(spec.class_names) == 91
    shapes = DatasetLabels("detection", list(synthetic.CATEGORY_IDS), list(synthetic.SHAPES))
    with pytest.raises(ConfigError, match="1: 'person' vs 'circle'.*--label-space names"):
        resolve_labels(spec, shapes)
    coco = DatasetLabels("detection", [c["id"] for c in coco_categories()], [c["name"] for c in coco_categories()])
    assert resolve_labels(spec, coco).space == "category-id"
