"""Adversarial audits end to end (audit.attack_audit) on the tiny classifier trained in the tests.

The attacks themselves are tested in tests/attacks; here: the document, eps 0 == `audit run`'s clean
accuracy on the same images, robust accuracy never rising with the budget, the black-box path,
transfer to an INT8 export, resume bit for bit, and the gate.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from audit.results import document as results
from audit.attack_audit import AttackConfig, run_attack_audit
from audit.attack_audit.api import AttackCellStore
from audit.api import AuditConfig, run_audit
from audit.errors import ConfigError
from tests.conftest import NORM

EPS = [0.0, 2 / 255, 8 / 255]
LIMIT = 24


def config(model, data, out, **kw) -> AttackConfig:
    base = dict(model=str(model), task="cifar10", data=str(data), out=str(out), attacks=["pgd", "fgsm"], eps=EPS, steps=5,
                limit=LIMIT, batch_size=16, overrides=dict(NORM), progress=False, report=False)
    return AttackConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def int8_onnx(classifier_onnx, cifar_dir, tmp_path_factory):
    from audit.spec.model import ModelSpec
    from exporters.precision import to_int8

    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32), **NORM)
    return to_int8(classifier_onnx, tmp_path_factory.mktemp("int8") / "classifier-int8.onnx", spec, cifar_dir)


@pytest.fixture(scope="module")
def attacked(classifier_onnx, cifar_dir, int8_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "run"
    return run_attack_audit(config(classifier_onnx, cifar_dir, out, transfer_to=[str(int8_onnx)], examples=2, report=True))


def test_document_validates_and_states_the_threat_model(attacked):
    doc = results.load(attacked.out / "results.json")
    adv = doc["adversarial"]
    assert doc["schema_version"] == results.SCHEMA_VERSION == "1.5"
    assert adv["threat_model"]["requantised"] is False and adv["threat_model"]["clip"] == [0.0, 1.0]
    assert adv["gradients"] == {**adv["gradients"], "source": "engine-onnx", "white_box": True, "transfer": False}
    assert [c["eps"] for c in adv["cells"]] == EPS * 2 and adv["verdict_attack"] == "pgd"
    assert [e["role"] for e in adv["engines"]] == ["engine", "transfer"]
    assert doc["cells"][0]["corruption"] == "clean" and doc["corruption"]["corruptions"] == []
    assert (attacked.out / "report.html").is_file()
    for ex in adv["examples"]:
        assert all((attacked.out / ex[k]).is_file() for k in ("clean", "adversarial", "perturbation"))
        assert 0 < ex["linf"] <= 8 / 255 + 1e-6


def test_eps_zero_equals_audit_run_clean_accuracy(attacked, classifier_onnx, cifar_dir, tmp_path):
    clean = run_audit(AuditConfig(model=str(classifier_onnx), task="cifar10", data=str(cifar_dir), out=str(tmp_path / "run"),
                                  corruptions="none", limit=LIMIT, overrides=dict(NORM), workers=0, examples=0,
                                  report=False, progress=False))
    top1 = clean.document["cells"][0]["metrics"]["top1"]
    adv = attacked.adversarial
    name = adv["engines"][0]["name"]
    assert adv["clean"][name] == top1 == attacked.document["cells"][0]["metrics"]["top1"]
    assert all(c["accuracy"] == top1 for c in adv["cells"] if c["eps"] == 0)
    assert 0.5 < top1 < 1.0  # a model the attacks can break, but one that learnt something


def test_robust_accuracy_never_rises_with_the_budget_and_attacks_do_something(attacked):
    adv = attacked.adversarial
    for attack in adv["attacks"]:
        for engine in (e["name"] for e in adv["engines"]):
            accs = [c["engines"][engine]["accuracy"] for c in adv["cells"] if c["attack"] == attack]
            assert accs == sorted(accs, reverse=True), (attack, engine, accs)
    top = {c["attack"]: c for c in adv["cells"] if c["eps"] == max(EPS)}
    assert top["pgd"]["accuracy"] < adv["cells"][0]["accuracy"]  # 8/255 breaks some images
    assert top["pgd"]["accuracy"] <= top["fgsm"]["accuracy"]  # PGD (5 steps, random start) at least as strong as FGSM
    assert top["pgd"]["success_rate"] > 0 and top["pgd"]["queries_mean"] > 1


def test_transfer_to_int8_gives_per_engine_numbers(attacked, int8_onnx):
    adv = attacked.adversarial
    assert adv["engines"][1]["name"] == int8_onnx.name
    for c in adv["cells"]:
        assert set(c["engines"]) == {e["name"] for e in adv["engines"]}
        assert all(0 <= v["accuracy"] <= 1 for v in c["engines"].values())
    # the INT8 engine's clean accuracy is its own (judged like audit run judges it), not the FP32 one copied
    assert set(adv["clean"]) == {e["name"] for e in adv["engines"]}


def test_resume_is_bit_exact(classifier_onnx, cifar_dir, tmp_path):
    kw = dict(attacks=["pgd"], eps=[0.0, 4 / 255, 8 / 255], limit=12)
    first = run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "a", **kw))
    store = AttackCellStore(first.out)
    saved = {c: store.load(c)[1] for c in [("pgd", "linf", e) for e in kw["eps"]]}
    # an interruption: the last cell never finished, the middle one left only its state file
    last, middle = ("pgd", "linf", 8 / 255), ("pgd", "linf", 4 / 255)
    for suffix in (".json", ".npz"):
        (store.folder / (store.key(last) + suffix)).unlink()
    (store.folder / (store.key(middle) + ".json")).unlink()
    (first.out / "results.json").unlink()
    with pytest.raises(ConfigError, match="--resume"):
        run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "a", **kw))
    resumed = run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "a", resume=True, **kw))
    strip = lambda doc: [{k: v for k, v in c.items() if k != "seconds"} for c in doc["adversarial"]["cells"]]  # noqa: E731
    assert strip(resumed.document) == strip(first.document)
    for cell, state in saved.items():
        again = store.load(cell)[1]
        assert sorted(again) == sorted(state) and all(np.array_equal(again[k], state[k]) for k in state)
    with pytest.raises(ConfigError, match="holds a different audit"):
        run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "a", resume=True, **{**kw, "eps": [0.0, 1 / 255]}))


def test_white_box_pgd_on_a_dynamo_export(classifier_onnx, cifar_dir, tmp_path):
    """The network of `classifier_onnx` exported by PyTorch's default (dynamo) exporter, opset 18+: the
    default gradient source (the ONNX graph via onnx2torch) converts it, and PGD breaks images."""
    import onnx

    from audit.conversion.opsets import default_opset
    from tests.helpers.models import train_classifier

    path = train_classifier(tmp_path / "dynamo.onnx", dynamo=True)
    assert default_opset(onnx.load(str(path), load_external_data=False)) >= 18
    out = run_attack_audit(config(path, cifar_dir, tmp_path / "out", attacks=["pgd"], eps=[0.0, 8 / 255], limit=12))
    adv = out.adversarial
    assert adv["gradients"]["source"] == "engine-onnx" and adv["gradients"]["white_box"] is True
    clean, robust = adv["cells"][0]["accuracy"], adv["cells"][-1]["accuracy"]
    assert clean > 0.5 and robust < clean and adv["cells"][-1]["success_rate"] > 0
    results.validate(out.document)


def test_black_box_square_on_the_engine(classifier_onnx, cifar_dir, tmp_path):
    out = run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "sq", gradients="none", attacks=None, queries=60,
                                  eps=[0.0, 16 / 255], limit=12))
    adv = out.adversarial
    assert adv["attacks"] == ["square"] and adv["gradients"]["white_box"] is False
    top = adv["cells"][-1]
    assert top["accuracy"] <= adv["cells"][0]["accuracy"] and top["source"] == "engine"
    assert top["queries_mean"] is not None and 1 < top["queries_mean"] <= 61 + 1
    results.validate(out.document)


def test_gate(classifier_onnx, cifar_dir, tmp_path):
    kw = dict(attacks=["fgsm"], eps=[0.0, 8 / 255], limit=12)
    failed = run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "f", fail_under_robust_acc=1.0, **kw))
    passed = run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "p", fail_under_robust_acc=0.0, **kw))
    assert failed.verdict["status"] == "fail" and re.fullmatch(r"robust accuracy 0\.\d{4} under fgsm at linf eps 8/255 \(0\.0314\) is under the required 1\.0000",
                                                                failed.verdict["reasons"][0])
    assert passed.verdict["status"] == "pass"
    assert failed.document["thresholds"]["fail_under_robust_acc"] == 1.0


@pytest.mark.parametrize("change, message", [
    ({"task": "coco"}, "classification and segmentation only"),
    ({"norm": "l1"}, "unknown --norm 'l1'"),
    ({"attacks": ["deepfool"]}, "unknown attack 'deepfool'"),
    ({"gradients": "none", "attacks": ["pgd"]}, "needs gradients"),
    ({"gradients": "keras:x"}, "unknown --gradients"),
    ({"gradients": "checkpoint:/nowhere.pt"}, "no checkpoint file"),
    ({"eps": [0.0, 2.0]}, "--eps"),
    ({"fail_under_robust_acc": 1.5}, "fraction"),
    ({"transfer_to": ["/nowhere.onnx"]}, "no such model file"),
])
def test_bad_settings_are_one_line_errors(classifier_onnx, cifar_dir, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as err:
        run_attack_audit(config(classifier_onnx, cifar_dir, tmp_path / "x", **change))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()  # checked before anything is written


def test_cell_keys_are_stable_file_names():
    assert AttackCellStore.key(("apgd-ce", "linf", 8 / 255)) == "apgd-ce-linf-eps0.031372549"
    assert json.dumps(AttackCellStore.key(("pgd", "l2", 0.5))) == '"pgd-l2-eps0.5"'


def test_same_named_engines_are_told_apart():
    from types import SimpleNamespace

    from audit.attack_audit.api import _unique_names

    judges = [SimpleNamespace(name="model.onnx") for _ in range(3)]
    _unique_names(judges, ["fp32/model.onnx", "int8/model.onnx", "int8/model.onnx"])
    assert [j.name for j in judges] == ["model.onnx", "int8/model.onnx", "int8/model.onnx (3)"]


def _input_quantised(plain, out):
    """`plain` with its normalised input rounded to steps of 0.5 first: a step with zero gradient."""
    import onnx

    model = onnx.load(str(plain))
    graph, h = model.graph, onnx.helper
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(2.0, np.float32), "qk"))
    graph.node[0].input[0] = "quantised"
    for i, node in enumerate([h.make_node("Mul", ["images", "qk"], ["scaled"]), h.make_node("Round", ["scaled"], ["rounded"]),
                              h.make_node("Div", ["rounded", "qk"], ["quantised"])]):
        graph.node.insert(i, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def test_gradient_masking_is_caught_by_the_black_box_source(cifar_dir, tmp_path):
    """White-box PGD on an input-quantised graph finds nothing (zero gradients); Square on the engine does."""
    from audit.workflows import demo_models

    plain = demo_models.train_classifier(tmp_path / "plain.onnx", n=400)  # NumPy-trained, carries its own spec
    masked = _input_quantised(plain, tmp_path / "quantised.onnx")
    kw = dict(eps=[0.0, 16 / 255], steps=10, queries=200, limit=32, overrides={})
    pgd_plain = run_attack_audit(config(plain, cifar_dir, tmp_path / "p", attacks=["pgd"], **kw)).adversarial["cells"]
    pgd_masked = run_attack_audit(config(masked, cifar_dir, tmp_path / "m", attacks=["pgd"], **kw)).adversarial["cells"]
    square = run_attack_audit(config(masked, cifar_dir, tmp_path / "s", gradients="none", attacks=["square"], **kw)).adversarial["cells"]
    assert pgd_plain[1]["accuracy"] < pgd_plain[0]["accuracy"]  # the model itself is not robust
    assert pgd_masked[1]["accuracy"] == pgd_masked[0]["accuracy"]  # its masked gradients make PGD look robust
    assert square[1]["accuracy"] < pgd_masked[1]["accuracy"]  # the black-box attack is not fooled
