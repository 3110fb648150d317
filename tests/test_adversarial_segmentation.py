"""Adversarial audits of a segmentation model (mIoU under attack) on the tiny segmenter trained in the
tests (tests/helpers/models.py) and synthetic ADE20K-format data.

End to end: eps 0 equals `audit run`'s clean mIoU bit for bit, robust mIoU never rises with the
budget, PGD is at least as strong as FGSM, white-box on the ONNX graph and the black-box Square on the
engine both lower mIoU (Square on an argmax-only graph too), resume is bit-exact, one-line errors
for argmax-only graphs under white-box and for classification-only attacks, the schema, the gate.
The pieces: labels at the input geometry, the segmentation objective, the robust selection.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from audit.results import document as results
from audit.attack_audit import AttackConfig, dense, run_attack_audit
from audit.attack_audit.api import AttackCellStore
from audit.attack_audit.inputs import labels_at_input
from audit.api import AuditConfig, run_audit
from audit.errors import ConfigError, ModelError, ResultsError
from tests.conftest import NORM

EPS = [0.0, 4 / 255, 16 / 255]
LIMIT = 12


def config(model, data, out, **kw) -> AttackConfig:
    base = dict(model=str(model), task="ade20k", data=str(data), out=str(out), attacks=["pgd", "fgsm"], eps=EPS, steps=5,
                limit=LIMIT, batch_size=16, overrides=dict(NORM), progress=False, report=False)
    return AttackConfig(**{**base, **kw})


def miou(adv, attack, engine=None):
    engine = engine or adv["engines"][0]["name"]
    return [c["engines"][engine]["miou"] for c in adv["cells"] if c["attack"] == attack]


@pytest.fixture(scope="module")
def twin_onnx(segmenter_onnx, tmp_path_factory):
    """The same export in another folder: a --transfer-to engine whose figures must equal the audited one's."""
    folder = tmp_path_factory.mktemp("twin")
    return shutil.copy(segmenter_onnx, folder / "segmenter-copy.onnx")


@pytest.fixture(scope="module")
def attacked(segmenter_onnx, ade_dir, twin_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg-attack") / "run"
    return run_attack_audit(config(segmenter_onnx, ade_dir, out, transfer_to=[str(twin_onnx)], examples=2, report=True))


@pytest.fixture(scope="module")
def argmax_onnx(segmenter_onnx, tmp_path_factory):
    """The segmenter with ArgMax inside the graph: outputs an [N, H, W] label map, no usable gradients."""
    import onnx

    model = onnx.load(str(segmenter_onnx))
    graph, h = model.graph, onnx.helper
    logits = graph.output[0].name
    graph.node.append(h.make_node("ArgMax", [logits], ["labels"], axis=1, keepdims=0))
    del graph.output[:]
    graph.output.append(h.make_tensor_value_info("labels", onnx.TensorProto.INT64, ["n", "h", "w"]))
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("argmax") / "segmenter-argmax.onnx"
    onnx.save(model, str(path))
    return path


def test_document_is_a_valid_segmentation_section(attacked):
    doc = results.load(attacked.out / "results.json")  # schema-validated
    adv = doc["adversarial"]
    assert doc["task"]["type"] == "segmentation" and adv["metric"] == "miou" and adv["verdict"]["metric"] == "miou"
    assert [c["eps"] for c in adv["cells"]] == EPS * 2 and adv["verdict_attack"] == "pgd"
    assert adv["threat_model"]["requantised"] is False and adv["threat_model"]["input_size"] == [48, 64]
    top = [c for c in adv["cells"] if c["attack"] == "pgd"][-1]
    assert adv["verdict"]["robust_miou"] == top["miou"] and adv["verdict"]["robust_accuracy"] == top["accuracy"]
    assert all(c["success_rate"] is None for c in adv["cells"])
    assert top["queries_mean"] == 5 + 2  # no early stop: the clean pass, 5 steps and the final iterate, every image
    for ex in adv["examples"]:
        for key in ("clean", "adversarial", "perturbation", "ground_truth_mask", "clean_mask", "adversarial_mask"):
            assert (attacked.out / ex[key]).is_file()
        assert 0 < ex["linf"] <= 16 / 255 + 1e-6
        assert ex["adversarial_pixel_accuracy"] < ex["clean_pixel_accuracy"]  # the largest drops are shown


def test_eps_zero_equals_audit_run_clean_miou_bit_for_bit(attacked, segmenter_onnx, ade_dir, tmp_path):
    clean = run_audit(AuditConfig(model=str(segmenter_onnx), task="ade20k", data=str(ade_dir), out=str(tmp_path / "run"),
                                  corruptions="none", limit=LIMIT, overrides=dict(NORM), workers=0, examples=0,
                                  report=False, progress=False))
    figures = clean.document["cells"][0]["metrics"]
    adv = attacked.adversarial
    name = adv["engines"][0]["name"]
    assert adv["clean_miou"][name] == figures["mIoU"] == attacked.document["cells"][0]["metrics"]["mIoU"]
    assert adv["clean"][name] == figures["aAcc"]
    for c in (c for c in adv["cells"] if c["eps"] == 0):
        assert c["miou"] == c["engines"][name]["miou_at_budget"] == figures["mIoU"]
    assert 0.5 < figures["mIoU"] < 1.0  # a model that learnt something and that the attacks can still lower


def test_robust_miou_never_rises_and_pgd_beats_fgsm(attacked):
    adv = attacked.adversarial
    for attack in adv["attacks"]:
        for engine in (e["name"] for e in adv["engines"]):
            values = miou(adv, attack, engine)
            assert values == sorted(values, reverse=True), (attack, engine, values)
            assert values[-1] < values[0] - 0.05  # 16/255 costs the tiny model mIoU points, white-box on its ONNX graph
    assert miou(adv, "pgd")[-1] <= miou(adv, "fgsm")[-1]
    assert adv["gradients"]["source"] == "engine-onnx" and adv["cells"][-1]["source"] == "onnx"


def test_transfer_engine_gets_its_own_equal_figures(attacked, twin_onnx):
    adv = attacked.adversarial
    main, twin = (e["name"] for e in adv["engines"])
    assert twin == twin_onnx.name and [e["role"] for e in adv["engines"]] == ["engine", "transfer"]
    for c in adv["cells"]:
        assert c["engines"][main] == c["engines"][twin]  # the same export judges the same examples alike
    assert adv["clean_miou"][main] == adv["clean_miou"][twin]


def test_resume_is_bit_exact(segmenter_onnx, ade_dir, tmp_path):
    kw = dict(attacks=["pgd", "fgsm"], eps=[0.0, 8 / 255], limit=4, steps=2)
    first = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "a", **kw))
    store = AttackCellStore(first.out)
    cells = [(a, "linf", e) for a in kw["attacks"] for e in kw["eps"]]
    saved = {c: store.load(c)[1] for c in cells}
    assert {"inter_0", "union_0", "area_gt_0"} <= set(saved[cells[1]])  # mIoU's per-image counts
    # an interruption: the last cell never finished, the one before left only its state file
    for suffix in (".json", ".npz"):
        (store.folder / (store.key(cells[3]) + suffix)).unlink()
    (store.folder / (store.key(cells[1]) + ".json")).unlink()
    resumed = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "a", resume=True, **kw))
    strip = lambda doc: [{k: v for k, v in c.items() if k != "seconds"} for c in doc["adversarial"]["cells"]]  # noqa: E731
    assert strip(resumed.document) == strip(first.document)
    for cell, state in saved.items():
        again = store.load(cell)[1]
        # equal_nan: source_correct is nan for an image without a valid pixel (never attacked)
        assert sorted(again) == sorted(state) and all(np.array_equal(again[k], state[k], equal_nan=True) for k in state)


def test_black_box_square_on_the_engine_lowers_miou(segmenter_onnx, ade_dir, tmp_path):
    out = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "sq", gradients="none", attacks=None, queries=40,
                                  eps=[0.0, 16 / 255], limit=6))
    adv = out.adversarial
    assert adv["attacks"] == ["square"] and adv["gradients"]["white_box"] is False
    clean, top = adv["cells"]
    assert top["miou"] < clean["miou"] and top["source"] == "engine"
    assert 1 < top["queries_mean"] <= 40 + 1


def test_argmax_only_graph_white_box_is_a_one_line_error_black_box_works(argmax_onnx, ade_dir, tmp_path):
    with pytest.raises(ModelError, match="outputs a label map.*--gradients none") as err:
        run_attack_audit(config(argmax_onnx, ade_dir, tmp_path / "w", attacks=["pgd"], eps=[0.0, 8 / 255], limit=4))
    assert "\n" not in str(err.value)
    out = run_attack_audit(config(argmax_onnx, ade_dir, tmp_path / "b", gradients="none", attacks=["square"], queries=40,
                                  eps=[0.0, 16 / 255], limit=6))
    clean, top = out.adversarial["cells"]
    assert top["miou"] < clean["miou"]  # Square needs only the engine's label maps


@pytest.mark.parametrize("change, message", [
    ({"attacks": ["autoattack"]}, "--attack autoattack is a classification attack; for segmentation use fgsm, pgd, segpgd, square"),
    ({"attacks": ["pgd", "apgd-ce"]}, "--attack apgd-ce is a classification attack; for segmentation use fgsm, pgd, segpgd, square"),
    ({"task": "coco"}, "classification and segmentation only"),
    ({"gradients": "none", "attacks": ["fgsm"]}, "needs gradients.*use --attack square, or a gradient source"),
])
def test_bad_settings_are_one_line_errors(segmenter_onnx, ade_dir, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as err:
        run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "x", **change))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()


def test_default_attack_is_pgd_and_the_gate_reads_robust_miou(segmenter_onnx, ade_dir, tmp_path):
    kw = dict(attacks=None, eps=[0.0, 8 / 255], limit=4, steps=2)
    failed = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "f", fail_under_robust_acc=0.99, **kw))
    assert failed.adversarial["attacks"] == ["pgd"]
    robust = failed.adversarial["verdict"]["robust_miou"]
    assert failed.verdict["status"] == "fail" and failed.verdict["reasons"][0] == (
        f"robust mIoU {robust:.4f} under pgd at linf eps 8/255 (0.0314) is under the required 0.9900")
    passed = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "p", fail_under_robust_acc=round(robust, 4) - 1e-3, **kw))
    assert passed.verdict["status"] == "pass"


def test_schema_requires_miou_in_segmentation_sections_only(attacked):
    doc = results.load(attacked.out / "results.json")
    for broken in ("cell", "engine", "verdict", "clean"):
        copy = results.load(attacked.out / "results.json")
        adv = copy["adversarial"]
        if broken == "cell":
            del adv["cells"][1]["miou"]
        elif broken == "engine":
            del next(iter(adv["cells"][1]["engines"].values()))["miou"]
        elif broken == "verdict":
            del adv["verdict"]["robust_miou"]
        else:
            del adv["clean_miou"]
        with pytest.raises(ResultsError, match="miou"):
            results.validate(copy)
    # a section without `metric` (every 1.4 document written before segmentation) needs none of it
    for key in ("metric", "clean_miou"):
        del doc["adversarial"][key]
    del doc["adversarial"]["verdict"]["robust_miou"], doc["adversarial"]["verdict"]["metric"]
    for c in doc["adversarial"]["cells"]:
        del c["miou"]
        for figures in c["engines"].values():
            del figures["miou"], figures["miou_at_budget"]
    results.validate(doc)


def test_report_shows_robust_miou_and_the_masks(attacked):
    html = (attacked.out / "report.html").read_text(encoding="utf-8")
    adv = attacked.adversarial
    assert "robust mIoU vs budget per attack" in html and "robust mIoU per engine" in html
    for engine in adv["engines"]:
        assert f"robust mIoU · {engine['name']}" in html and f"pixel acc. · {engine['name']}" in html
    assert "predicted, adversarial" in html and "ground truth" in html
    assert html.count("data:image/png;base64,") >= 6 * len(adv["examples"]) > 0


def test_markdown_and_side_by_side_reports_read_robust_miou(attacked, tmp_path):
    import json

    from reports import write_report
    from reports.fmt import pct

    adv = attacked.adversarial
    text = write_report([attacked.out / "results.json"], tmp_path / "r.md", fmt="md").read_text()
    assert f"robust mIoU **{pct(adv['verdict']['robust_miou'])}** under pgd" in text
    rows = [line for line in text.splitlines() if line.startswith(("| pgd |", "| fgsm |"))]
    assert [row.split(" | ")[2] for row in rows] == [pct(c["miou"]) for c in adv["cells"]]
    doc = json.loads((attacked.out / "results.json").read_text())
    doc["model"]["name"] = "other.onnx"
    other = tmp_path / "other" / "results.json"
    other.parent.mkdir()
    other.write_text(json.dumps(doc))
    html = write_report([attacked.out / "results.json", other], tmp_path / "both.html").read_text(encoding="utf-8")
    assert "robust mIoU per run" in html and "pgd (mIoU)" in html


def test_a_model_with_its_own_class_order_is_attacked_in_its_label_space(segmenter_onnx, ade_dir, tmp_path):
    """The segmenter with its output channels permuted and class names saying so: the attack's labels go
    through the label mapping, so it fares as the original does (same clean mIoU, robust mIoU close)."""
    import json

    import onnx

    from audit.datasets.synthetic import SHAPES

    perm = [2, 0, 3, 1]
    model = onnx.load(str(segmenter_onnx))
    graph, h = model.graph, onnx.helper
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(perm, np.int64), "perm"))
    graph.node.append(h.make_node("Gather", [graph.output[0].name, "perm"], ["permuted"], axis=1))
    graph.output[0].name = "permuted"
    onnx.save(model, str(tmp_path / "permuted.onnx"))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"task": "segmentation", "output_convention": "segmentation_logits", "resize": "none",
                                "mean": [0.5] * 3, "std": [0.25] * 3, "label_space": "names",
                                "class_names": [SHAPES[k] for k in perm]}))
    kw = dict(attacks=["pgd"], eps=[0.0, 16 / 255], limit=4, steps=3)
    plain = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "a", **kw)).adversarial
    doc = run_attack_audit(config(tmp_path / "permuted.onnx", ade_dir, tmp_path / "b", model_config=str(spec),
                                  overrides={}, **kw)).document
    assert doc["model"]["label_mapping"]["space"] == "names"
    permuted = doc["adversarial"]
    assert permuted["cells"][0]["miou"] == plain["cells"][0]["miou"]
    assert permuted["cells"][1]["miou"] == pytest.approx(plain["cells"][1]["miou"], abs=0.02)
    assert permuted["cells"][1]["miou"] < permuted["cells"][0]["miou"] - 0.05


def test_logits_at_half_resolution_are_resized_for_the_loss_and_judged_as_audit_run(segmenter_onnx, ade_dir, tmp_path):
    """A head at stride 2 (logits [N, C, h/2, w/2]): white-box (resized inside the module) and black-box
    (resized from the engine's output) both lower mIoU; eps 0 is still `audit run`'s mIoU."""
    import onnx

    model = onnx.load(str(segmenter_onnx))
    graph, h = model.graph, onnx.helper
    graph.node.append(h.make_node("AveragePool", [graph.output[0].name], ["half"], kernel_shape=[2, 2], strides=[2, 2]))
    graph.output[0].name = "half"
    path = tmp_path / "stride2.onnx"
    onnx.save(model, str(path))
    kw = dict(eps=[0.0, 16 / 255], limit=4, steps=3, queries=30)
    white = run_attack_audit(config(path, ade_dir, tmp_path / "w", attacks=["pgd"], **kw)).adversarial["cells"]
    black = run_attack_audit(config(path, ade_dir, tmp_path / "b", attacks=["square"], gradients="none", **kw)).adversarial["cells"]
    clean = run_audit(AuditConfig(model=str(path), task="ade20k", data=str(ade_dir), out=str(tmp_path / "run"), corruptions="none",
                                  limit=4, overrides=dict(NORM), workers=0, examples=0, report=False, progress=False))
    assert white[0]["miou"] == black[0]["miou"] == clean.document["cells"][0]["metrics"]["mIoU"]
    assert white[1]["miou"] < white[0]["miou"] - 0.05 and black[1]["miou"] < black[0]["miou"]


def test_study_headline_and_report_read_robust_miou(attacked):
    from audit.workflows.pipeline import attack_headline
    from reports.fmt import pct
    from reports.study import Entry, _adversarial

    adv = attacked.adversarial
    head = attack_headline(attacked.document)
    name = adv["engines"][0]["name"]
    assert head["metric"] == "miou" and head["robust_miou"] == adv["verdict"]["robust_miou"]
    assert head["clean_miou"] == adv["clean_miou"][name] and head["robust_accuracy"] == adv["verdict"]["robust_accuracy"]
    combo = {"backbone": {"name": "tiny"}, "mode": "full", "task": "ade20k", "augment": "none", "lr": 0.01}
    html = _adversarial([Entry(combo, None, adv)])
    assert pct(adv["verdict"]["robust_miou"]) in html and pct(adv["verdict"]["robust_accuracy"]) not in html  # not pixel acc.


# the pieces


def test_labels_at_input_follow_the_image_geometry():
    from audit.spec.model import ModelSpec
    from audit.tasks.preprocess import to_input_geometry

    labels = np.arange(12 * 16).reshape(12, 16) % 7
    image = np.repeat(labels[..., None].astype(np.uint8) * 30, 3, axis=2)
    for resize, size in (("fixed", (24, 32)), ("letterbox", (20, 20)), ("none", None)):
        spec = ModelSpec(task="segmentation", output_convention="segmentation_logits", resize=resize, input_size=size,
                         interpolation="nearest")
        resized, meta = to_input_geometry(image, spec)
        mapped = labels_at_input(labels, meta)
        assert mapped.shape == resized.shape[:2]
        inside = mapped >= 0
        assert np.array_equal(resized[..., 0][inside], mapped[inside].astype(np.uint8) * 30)  # as OpenCV's nearest
        assert inside.all() if resize != "letterbox" else (~inside).sum() == 20 * 20 - 15 * 20  # padding: -1


def test_segmentation_objective_excludes_ignored_pixels():
    import torch

    from audit.attacks.objectives import SEGMENTATION

    y = torch.tensor([[[0, 1], [-1, -1]]])
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2, 1] = 50.0  # a confident wrong class on the ignored row changes nothing
    base = SEGMENTATION.loss(torch.zeros(1, 3, 2, 2), y)
    assert torch.allclose(SEGMENTATION.loss(logits, y), base) and torch.allclose(base, torch.log(torch.tensor([3.0])))
    assert not SEGMENTATION.broken(logits, y).any()  # never stops early
    with pytest.raises(ConfigError, match=r"class indices in \[0, 2\]"):
        SEGMENTATION.check(np.zeros((1, 3, 2, 2)), np.array([[[0, 3], [-1, -1]]]))


def test_robust_states_never_raise_miou_on_random_cells():
    rng = np.random.default_rng(0)
    n, k = 6, 4
    gt = rng.integers(1, 20, (n, k))

    def cell():
        inter = (gt * rng.random((n, k))).astype(np.int64)
        return {"inter": inter, "union": gt + rng.integers(0, 10, (n, k)), "area_gt": gt}

    clean = {"inter": gt, "union": gt, "area_gt": gt}
    table = dense.robust_states({0.0: clean, **{e: cell() for e in (0.1, 0.2, 0.3, 0.4)}}, clean)
    values = [dense.figures(table[e])["miou"] for e in sorted(table)]
    assert values[0] == 1.0 and values == sorted(values, reverse=True) and values[-1] < 1.0


def test_segpgd_weighting_moves_from_right_to_wrong_pixels():
    import torch

    from audit.attacks.objectives import SEGMENTATION, SEGPGD

    y = torch.tensor([[[0, 1, 1, -1]]])
    logits = torch.tensor([[[[3.0, 3.0, 0.0, 0.0]], [[0.0, 0.0, 3.0, 0.0]]]])  # pixel 0 and 2 right, 1 wrong, 3 ignored
    ce = torch.nn.functional.cross_entropy(logits, y.clamp_min(0), reduction="none")[0, 0]
    assert torch.allclose(SEGPGD.loss(logits, y, 0.0), (ce[0] + ce[2]) / 3)  # step 0: the right pixels only
    assert torch.allclose(SEGPGD.loss(logits, y, 1.0), ce[:3].sum() / 6)  # the end: half and half
    assert torch.allclose(SEGMENTATION.loss(logits, y, 0.5), ce[:3].mean())  # plain PGD ignores the progress


def test_segpgd_lowers_miou(segmenter_onnx, ade_dir, tmp_path):
    adv = run_attack_audit(config(segmenter_onnx, ade_dir, tmp_path / "s", attacks=["segpgd"], eps=[0.0, 16 / 255],
                                  limit=4, steps=3)).adversarial
    clean, top = adv["cells"]
    assert top["attack"] == "segpgd" and top["miou"] < clean["miou"] - 0.05 and top["queries_mean"] == 3 + 2


def test_square_restarts_keep_each_images_better_result(segmenter_onnx, ade_dir):
    from audit.attack_audit.inputs import load_inputs
    from audit.attacks import Budget, EngineTarget, run_attack
    from audit.datasets import open_dataset
    from audit.engines.base import open_engine
    from audit.spec.model import ModelSpec

    spec = ModelSpec(task="segmentation", output_convention="segmentation_logits", resize="none", **NORM)
    data = open_dataset("ade20k", str(ade_dir)).subset(4, 0)
    x, _ = load_inputs(data, spec)
    y = np.stack([np.where(t == 255, -1, t) for t in (data.target(i).astype(np.int64) for i in range(len(data)))])
    target = EngineTarget(open_engine(str(segmenter_onnx)), spec)
    one = run_attack("square", target, x, y, Budget("linf", 16 / 255), queries=15, seed=1)
    two = run_attack("square", target, x, y, Budget("linf", 16 / 255), queries=15, seed=1, restarts=2)
    clean = run_attack("square", target, x, y, Budget("linf", 0.0)).correct
    assert one.correct.mean() < clean.mean()  # per image the stripe start may be worse than clean: the mean drops
    assert (two.correct <= one.correct).all() and (two.queries > one.queries).all()


def test_classification_attacks_refuse_label_maps():
    from audit.attacks import Budget, run_attack

    x, y = np.zeros((1, 3, 4, 4), np.float32), np.zeros((1, 4, 4), np.int64)
    with pytest.raises(ConfigError, match="attack 'apgd-ce' is for classification only; for segmentation use fgsm, pgd, segpgd, square"):
        run_attack("apgd-ce", object(), x, y, Budget("linf", 8 / 255))


@pytest.mark.parametrize("module", ["audit.attacks.objectives", "audit.attack_audit.dense", "audit.attack_audit.inputs",
                                    "audit.attack_audit.sources", "audit.attacks.targets"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
