"""resolve_labels: every label space, the evidence rules, and the errors that name the flag."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import ConfigError, ModelError
from audit.spec.model import ModelSpec
from audit.tasks.labels import DROP_REASONS, PLACEHOLDERS, DatasetLabels, needs_probe, normalise_name, resolve_labels

COCOISH = DatasetLabels("detection", [1, 3, 7, 12], ["circle", "square", "triangle", "cross"])


def spec(**kw):
    base = dict(task="detection", output_convention="torchvision_detection", resize="none")
    base.update(kw)
    return ModelSpec(**base)


def test_each_space_maps_as_documented():
    labels = np.array([0, 1, 3])
    assert resolve_labels(spec(label_space="index"), COCOISH).categories(labels).tolist() == [1, 3, 12]
    assert resolve_labels(spec(label_space="index+background"), COCOISH).categories(labels).tolist() == [-1, 1, 7]
    assert resolve_labels(spec(label_space="category-id"), COCOISH).categories(np.array([3, 4, 12])).tolist() == [3, -1, 12]
    named = resolve_labels(spec(label_space="names", class_names=["Cross", "circle"]), COCOISH, ignore_unmatched=True)
    assert named.categories(np.array([0, 1])).tolist() == [12, 1]
    assert named.unmatched_dataset == ["square", "triangle"]


def test_labels_outside_the_space_are_left_out_and_counted_by_reason():
    mapping = resolve_labels(spec(label_space="index+background"), COCOISH)
    labels = np.array([5, 0, 1, -2, 4])
    assert mapping.categories(labels).tolist() == [-1, -1, 1, -1, 12]
    assert mapping.tally(labels) == {"total": 5, "kept": 2, "background": 1, "unmatched_class": 0, "out_of_range": 2}
    ids = resolve_labels(spec(label_space="category-id"), COCOISH)  # a COCO model on a subset: 5 is another class
    assert ids.tally(np.array([0, 3, 5])) == {"total": 3, "kept": 1, "background": 1, "unmatched_class": 1,
                                              "out_of_range": 0}


def test_score_outputs_decide_by_class_count_or_stop():
    yolo = spec(output_convention="yolov8", resize="letterbox", input_size=(64, 64))
    assert resolve_labels(yolo, COCOISH, num_model_classes=4).space == "index"
    with pytest.raises(ModelError, match="scores 80 classes .* 4 categories.*--label-space"):
        resolve_labels(yolo, COCOISH, num_model_classes=80)


def test_torchvision_labels_are_read_from_confident_evidence_or_stop():
    assert needs_probe(spec(), COCOISH)
    contiguous = DatasetLabels("detection", [1, 2, 3], ["a", "b", "c"])
    assert needs_probe(spec(), contiguous)  # ids 1..k: only a label 0 tells 0-based labels apart
    assert not needs_probe(spec(label_space="index"), contiguous)
    assert resolve_labels(spec(), contiguous, probe_labels=[1, 3]).space == "index+background"
    zero_based = resolve_labels(spec(), contiguous, probe_labels=[0, 2])
    assert (zero_based.space, zero_based.source) == ("index", "inferred") and "label 0" in zero_based.reason
    assert zero_based.categories(np.array([0, 2])).tolist() == [1, 3]
    with pytest.raises(ModelError, match="fit no label space"):
        resolve_labels(spec(), contiguous, probe_labels=[0, 3])  # 0 rules out both torchvision readings, 3 indices
    yolo_ids = DatasetLabels("detection", [0, 1, 2], ["a", "b", "c"])  # a YOLO-format dataset: 0-based ids
    assert resolve_labels(spec(), yolo_ids, probe_labels=[0, 2]).space == "index"  # index and category-id agree
    with pytest.raises(ModelError, match="cannot tell"):
        resolve_labels(spec(), yolo_ids, probe_labels=[1, 2])  # background+index or category ids: they differ
    with pytest.raises(ModelError, match="no labels were predicted.*--label-space index"):
        resolve_labels(spec(), contiguous, probe_labels=[])  # thin evidence: no guess
    assert resolve_labels(spec(), COCOISH, probe_labels=[1, 12]).space == "category-id"  # 12 > 4 categories, an id
    with pytest.raises(ModelError, match=r"labels \[9\] that are neither category ids"):
        resolve_labels(spec(), COCOISH, probe_labels=[1, 9])  # 9: above 4 categories, and no id of this dataset
    assert resolve_labels(spec(), COCOISH, probe_labels=[1, 2]).space == "index+background"  # 2 is no category id
    with pytest.raises(ModelError, match="no labels were predicted"):
        resolve_labels(spec(), COCOISH, probe_labels=[])


def test_classification_names_reorder_scores_and_may_be_a_superset():
    data = DatasetLabels("classification", [0, 1, 2], ["cat", "dog", "bird"])
    cls = ModelSpec(task="classification", output_convention="classification_logits", input_size=(8, 8),
                    class_names=["dog", "fish", "bird", "cat"])
    mapping = resolve_labels(cls, data)
    assert (mapping.space, mapping.source) == ("names", "inferred")
    assert mapping.reorder_scores(np.array([0.1, 0.2, 0.3, 0.4], np.float32), 3).tolist() == pytest.approx([0.4, 0.1, 0.3])


def test_segmentation_names_relabel_maps_and_different_names_stop():
    data = DatasetLabels("segmentation", [0, 1, 2], ["sky", "road", "car"])
    seg = ModelSpec(task="segmentation", output_convention="segmentation_logits", resize="none",
                    class_names=["road", "car", "sky"])
    mapping = resolve_labels(seg, data)
    assert mapping.relabel_map(np.array([[0, 1, 2, 7]])).tolist() == [[1, 2, 0, -1]]
    other = ModelSpec(task="segmentation", output_convention="segmentation_logits", resize="none",
                      class_names=["wall", "floor", "ceiling"])
    with pytest.raises(ConfigError, match="none of the model's 3 class names"):
        resolve_labels(other, data)


def test_names_that_collide_once_normalised_are_refused():
    assert normalise_name(" Fire_Hydrant") == normalise_name("fire  hydrant")
    with pytest.raises(ConfigError, match="same name once normalised"):
        resolve_labels(spec(label_space="names", class_names=["Dog", "dog"]), COCOISH)


def test_a_table_on_a_subset_leaves_the_models_other_classes_out_but_not_the_datasets():
    mapping = resolve_labels(spec(label_to_category=[None, 1, 99, 3, 7, 12]), COCOISH)  # 99: a class the data lacks
    assert mapping.categories(np.array([1, 2, 3])).tolist() == [1, -1, 3] and mapping.unmatched_model == ["99"]
    assert mapping.tally(np.array([0, 1, 2, 2, 9])) == {"total": 5, "kept": 1, "background": 1, "unmatched_class": 2,
                                                        "out_of_range": 1}
    with pytest.raises(ConfigError, match="maps no label to the dataset categories square, triangle, cross"):
        resolve_labels(spec(label_to_category=[None, 1, 99]), COCOISH)
    lenient = resolve_labels(spec(label_to_category=[None, 1, 99]), COCOISH, ignore_unmatched=True)
    assert lenient.unmatched_dataset == ["square", "triangle", "cross"]


def test_category_ids_of_another_dataset_are_caught_by_their_names():
    """A COCO detector (torchvision's 91 names) on a VOC-like dataset (ids 1..3): id 1 is 'person' in the
    model but 'aeroplane' in the data; reading labels as category ids would be silently wrong."""
    voc = DatasetLabels("detection", [1, 2, 3], ["aeroplane", "bicycle", "bird"])
    coco_names = ["__background__", "person", "bicycle", "car"]
    with pytest.raises(ConfigError, match="1: 'person' vs 'aeroplane'.*--label-space names"):
        resolve_labels(spec(label_space="category-id", class_names=coco_names), voc)
    same = DatasetLabels("detection", [1, 3], ["person", "car"])  # a COCO subset keeps COCO's ids
    assert resolve_labels(spec(label_space="category-id", class_names=coco_names), same).space == "category-id"
    by_name = resolve_labels(spec(label_space="names", class_names=coco_names), voc, ignore_unmatched=True)
    assert by_name.categories(np.array([2, 1])).tolist() == [2, -1]  # bicycle kept, person has no VOC twin here


# --- the label table names each label's own class, in every label space ------------------------

TV_STYLE = ["__background__", "circle", "N/A", "square", "N/A", "N/A", "N/A", "triangle", "N/A", "N/A", "N/A", "N/A", "cross"]


@pytest.mark.parametrize("case", [
    dict(label_space="index", class_names=["circle", "square", "triangle", "cross"]),
    dict(label_space="index+background", class_names=["circle", "square", "triangle", "cross"]),  # no background slot
    dict(label_space="index+background", class_names=["__background__", "circle", "square", "triangle", "cross"]),
    dict(label_space="category-id", class_names=TV_STYLE),  # torchvision's layout: name k is category id k
    dict(label_space="names", class_names=["cross", "Square", "circle", "triangle"]),
    dict(label_to_category=[None, 1, 3, 7, 12], class_names=["circle", "square", "triangle", "cross"]),  # the demo's
    dict(label_to_category=[None, 1, 3, 7, 12], class_names=["background", "circle", "square", "triangle", "cross"]),
], ids=["index", "index+background", "index+background-slot", "category-id", "names", "table", "table-slot"])
def test_the_label_table_names_each_labels_own_class(case):
    rows = resolve_labels(spec(**case), COCOISH).describe(case["class_names"], COCOISH)["table"]
    mapped = [r for r in rows if r["category_id"] is not None]
    assert len(mapped) == 4
    assert all(normalise_name(r["model_name"]) == normalise_name(r["category"]) for r in mapped), rows
    assert all(r["model_name"] is None or normalise_name(r["model_name"]) in PLACEHOLDERS
               for r in rows if r["category_id"] is None), rows


def test_a_name_list_that_fits_no_label_names_none_rather_than_the_wrong_one():
    rows = resolve_labels(spec(label_space="index"), COCOISH).describe(["circle", "square"], COCOISH)["table"]
    assert [r["model_name"] for r in rows] == [None] * 4


# --- no prediction leaves the evaluation uncounted ------------------------------------------------

@st.composite
def mappings(draw):
    """A dataset (random ids and names) and a mapping of a random label space onto it."""
    ids = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=8)))
    names = [f"class{i}" for i in ids]
    data = DatasetLabels("detection", ids, names)
    kind = draw(st.sampled_from(["index", "index+background", "category-id", "names", "table"]))
    if kind == "names":
        model = draw(st.permutations(names + ["__background__", "alien1", "alien2"]))
        return resolve_labels(spec(label_space="names", class_names=model), data, ignore_unmatched=True)
    if kind == "table":
        table = draw(st.lists(st.one_of(st.none(), st.sampled_from(ids), st.integers(41, 60)), min_size=1, max_size=12))
        return resolve_labels(spec(label_to_category=table), data, ignore_unmatched=True)
    return resolve_labels(spec(label_space=kind), data)


@settings(max_examples=300, deadline=None)
@given(mappings(), st.lists(st.integers(-3, 70), max_size=40))
def test_no_prediction_leaves_the_evaluation_uncounted(mapping, labels):
    labels = np.array(labels, np.int64)
    counts = mapping.tally(labels)
    assert counts["total"] == len(labels) == counts["kept"] + sum(counts[r] for r in DROP_REASONS)
    # kept is exactly what the metric sees: a label with a dataset category
    assert counts["kept"] == int((mapping.categories(labels) >= 0).sum())
    assert ((mapping.reasons(labels) == 0) == (mapping.categories(labels) >= 0)).all()
