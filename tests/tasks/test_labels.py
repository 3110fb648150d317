"""resolve_labels: every label space, the evidence rules, and the errors that name the flag."""

import numpy as np
import pytest

from audit.errors import ConfigError, ModelError
from audit.modelspec import ModelSpec
from audit.tasks.labels import DatasetLabels, needs_probe, normalise_name, resolve_labels

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


def test_labels_outside_the_space_are_an_error_naming_the_flag():
    with pytest.raises(ModelError, match="label 5, .*--label-space"):
        resolve_labels(spec(label_space="index+background"), COCOISH).categories(np.array([5]))


def test_score_outputs_decide_by_class_count_or_stop():
    yolo = spec(output_convention="yolov8", resize="letterbox", input_size=(64, 64))
    assert resolve_labels(yolo, COCOISH, num_model_classes=4).space == "index"
    with pytest.raises(ModelError, match="scores 80 classes .* 4 categories.*--label-space"):
        resolve_labels(yolo, COCOISH, num_model_classes=80)


def test_torchvision_labels_are_probed_only_when_the_ids_leave_both_readings_open():
    assert needs_probe(spec(), COCOISH)
    contiguous = DatasetLabels("detection", [1, 2, 3], ["a", "b", "c"])
    assert not needs_probe(spec(), contiguous)
    assert resolve_labels(spec(), contiguous).space == "index+background"
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


def test_a_table_naming_unknown_categories_is_an_error_unless_ignored():
    with pytest.raises(ConfigError, match=r"categories \[99\]"):
        resolve_labels(spec(label_to_category=[None, 1, 99]), COCOISH)
    mapping = resolve_labels(spec(label_to_category=[None, 1, 99]), COCOISH, ignore_unmatched=True)
    assert mapping.categories(np.array([1, 2])).tolist() == [1, -1] and mapping.unmatched_model == ["99"]


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
