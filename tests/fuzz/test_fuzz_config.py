"""Fuzz the loaders of configuration and documents: model-config YAML, ONNX metadata, study YAML,
results documents (`audit report`), training checkpoints, finished cells.

Property: only robustaudit's own errors come out (one line), never another exception, never a hang.
"""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from audit.results.cellstore import CellStore
from audit.spec.config import spec_from_config
from audit.spec.model import ModelSpec
from audit.results.document import load as load_results
from audit.workflows.study import load_study
from tests.fuzz.helpers import BUDGETS, VALUES, fuzz_settings, only_our_errors, scratch

SPEC_KEYS = ["task", "output_convention", "input_size", "resize", "min_size", "max_size", "mean", "std", "channel_order",
             "class_names", "label_to_category", "label_space", "crop_pct", "interpolation", "ignore_index", "precision",
             "provenance"]
GOOD_SPEC = {"task": "classification", "output_convention": "classification_logits", "input_size": [32, 32],
             "class_names": ["a", "b"], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def _yaml_texts(structures):
    """YAML files as bytes: dumps of random structures, random text and bytes, and known troublemakers."""
    return st.one_of(structures.map(lambda v: yaml.safe_dump(v).encode()), st.text(max_size=200).map(str.encode),
                     st.binary(max_size=100),
                     st.sampled_from([b"a: &x [*x]", b"!!python/object/apply:os.system ['true']", b"- !!binary AAAA",
                                      b"a: [" * 5000, b"{a: 1, a: 2}", b"\x00", b"? [1]\n: 2", b"task: !!float nan",
                                      b"a: 2020-13-45", b"a: 2001-12-14t21:59:43.10-99:00", b"\xff\xfe", b"0: 1\nb: 2"]))


@BUDGETS
def test_model_config_yaml(budget, tmp_path):
    path = scratch(tmp_path) / "model.yaml"
    mappings = st.dictionaries(st.sampled_from(SPEC_KEYS), VALUES, max_size=5).map(lambda d: {**GOOD_SPEC, **d})

    @fuzz_settings(budget)
    @given(_yaml_texts(VALUES | mappings))
    def check(text):
        path.write_bytes(text)
        spec = only_our_errors(spec_from_config, path)
        if spec is not None:
            only_our_errors(ModelSpec.from_metadata, spec.to_metadata())

    check()


@BUDGETS
def test_onnx_metadata(budget, tmp_path):
    good = ModelSpec(**{**GOOD_SPEC, "input_size": (32, 32)}).to_metadata()
    values = st.one_of(st.text(max_size=30), VALUES.map(json.dumps))

    @fuzz_settings(budget)
    @given(st.dictionaries(st.sampled_from(SPEC_KEYS + ["robustaudit", "x"]), values, max_size=6))
    def check(changes):
        only_our_errors(ModelSpec.from_metadata, {**good, **changes})

    check()


@BUDGETS
def test_study_yaml(budget, tmp_path):
    folder = scratch(tmp_path)
    path = folder / "study.yaml"
    base = {"backbones": [{"name": "R", "arch": "resnet18", "weights": "none"}], "tasks": {"cifar10": {"data": "cifar"}},
            "modes": ["full"], "augment": ["none"]}
    keys = ["backbones", "tasks", "modes", "augment", "exclude", "finetune", "audit", "export", "seed", "name", "out"]
    mutated = st.dictionaries(st.sampled_from(keys), VALUES, max_size=3).map(lambda d: {**base, **d})

    @fuzz_settings(budget)
    @given(_yaml_texts(VALUES | mutated))
    def check(text):
        path.write_bytes(text)
        study = only_our_errors(load_study, path, folder / "out")
        if study is not None:
            [c.id for c in study.combinations()]

    check()


@BUDGETS
def test_results_documents_and_the_report_command(budget, tmp_path):
    from audit.cli.main import cli
    from tests.reports.synth import make_results

    folder = scratch(tmp_path)
    source = make_results(folder / "run")
    valid = json.loads(source.read_text())
    keys = sorted(valid)

    @fuzz_settings(budget)
    @given(st.one_of(VALUES.map(json.dumps), st.binary(max_size=100).map(lambda b: b.decode("latin1")),
                     st.sampled_from(["[" * 100_000, "1" * 5000, '{"kind": 1e999999}']),
                     st.tuples(st.sampled_from(keys), VALUES).map(lambda kv: json.dumps({**valid, kv[0]: kv[1]}))))
    def check(text):
        path = folder / "run" / "fuzzed.json"
        path.write_text(text)
        only_our_errors(load_results, path)
        result = CliRunner().invoke(cli, ["report", str(path), "-o", str(folder / "report.html")])
        assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        if result.exit_code == 1:
            assert len(result.output.strip().splitlines()) == 1, result.output

    check()


@BUDGETS
def test_training_checkpoints(budget, tmp_path):
    import torch

    from finetune.checkpoint import load_checkpoint, save_checkpoint

    folder = scratch(tmp_path)
    good = save_checkpoint({"task": "classification", "model": {"backbone": "resnet18"}, "state_dict": {"w": torch.zeros(2)},
                            "class_names": ["a"], "preprocessing": {}}, folder / "good.pt").read_bytes()
    path = folder / "fuzzed.pt"

    @fuzz_settings(budget)
    @given(st.one_of(st.binary(max_size=200), st.integers(0, len(good)).map(lambda n: good[:n]),
                     st.tuples(st.integers(0, len(good) - 1), st.binary(min_size=1, max_size=16)).map(
                         lambda c: good[:c[0]] + c[1] + good[c[0] + len(c[1]):])))
    def check(raw):
        path.write_bytes(raw)
        only_our_errors(load_checkpoint, path)

    check()


@BUDGETS
def test_finished_cells_and_run_manifest(budget, tmp_path):
    import numpy as np

    folder = scratch(tmp_path)
    store = CellStore(folder)

    @fuzz_settings(budget)
    @given(st.one_of(VALUES.map(json.dumps), st.binary(max_size=100).map(lambda b: b.decode("latin1"))), st.binary(max_size=100))
    def check(record, npz):
        store.save(("fog", 1), {"metrics": {}}, {"x": np.zeros(2)})
        (store.folder / "fog-s1.json").write_text(record)
        (store.folder / "fog-s1.npz").write_bytes(npz)
        only_our_errors(store.load, ("fog", 1))
        (folder / "run.json").write_text(record)
        only_our_errors(store.check_manifest, {"a": 1}, True)

    check()
