"""Fuzz the readers added for foreign models and comparisons: Ultralytics' ONNX metadata, the label
mapping against a dataset, `audit compare` on damaged run folders, and forensics documents shown by
`audit report --forensics`.

Property: only robustaudit's own errors come out (one line), never another exception, never a hang.
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from audit.engines.base import TensorInfo
from audit.spec.model import ModelSpec
from audit.tasks.labels import DatasetLabels, resolve_labels
from audit.spec.ultralytics import ultralytics_spec_fields
from tests.fuzz.helpers import BUDGETS, VALUES, fuzz_settings, only_our_errors, scratch

GOOD_META = {"author": "Ultralytics", "task": "detect", "names": "{0: 'cat', 1: 'dog'}", "imgsz": "[64, 64]", "stride": "32"}
OUTPUTS = [TensorInfo("output0", (1, 6, 84), "float32")]


@BUDGETS
def test_ultralytics_metadata(budget):
    literal = st.one_of(VALUES.map(repr), st.text(max_size=60),
                        st.sampled_from(["__import__('os').system('true')", "{0: " * 200, "[1e999, 2]", "{0: 'a', 2: 'b'}",
                                         "(" * 1000, "{True: 'x'}", "[-1, 64]", "9" * 5000]))

    @fuzz_settings(budget)
    @given(st.dictionaries(st.sampled_from(sorted(GOOD_META) + ["head", "end2end", "args"]), literal, max_size=6),
           st.sampled_from(["detection", "classification"]))
    def check(changes, task_type):
        only_our_errors(lambda: ModelSpec(**ultralytics_spec_fields({**GOOD_META, **changes}, OUTPUTS, task_type)))

    check()


@BUDGETS
def test_label_mapping_of_any_spec_and_dataset(budget):
    names = st.lists(st.text(max_size=8), max_size=6)

    @fuzz_settings(budget)
    @given(st.sampled_from([None, "index", "index+background", "category-id", "names"]), names,
           st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(0, 2**40)), max_size=6)),
           st.lists(st.integers(0, 2**31), max_size=6, unique=True), names,
           st.one_of(st.none(), st.integers(0, 100)), st.lists(st.integers(-5, 2**33), max_size=6), st.booleans())
    def check(space, model_names, table, ids, data_names, count, probe, ignore):
        spec = only_our_errors(ModelSpec, task="detection", output_convention="torchvision_detection", resize="none",
                               label_space=space, class_names=model_names, label_to_category=table)
        if spec is None:
            return
        data = DatasetLabels("detection", ids, (data_names + [f"c{i}" for i in range(len(ids))])[:len(ids)])
        mapping = only_our_errors(resolve_labels, spec, data, count, probe, "flag", ignore)
        if mapping is not None:
            import numpy as np

            only_our_errors(mapping.categories, np.asarray(probe, np.int64))

    check()


@BUDGETS
def test_compare_on_damaged_run_folders(budget, tmp_path):
    from audit.cli.main import cli
    from tests.reports.synth import make_results

    folder = scratch(tmp_path)
    for name in ("a", "b"):
        make_results(folder / name, examples=0)

    @fuzz_settings(budget)
    @given(st.one_of(VALUES.map(json.dumps), st.binary(max_size=60).map(lambda b: b.decode("latin1"))),
           st.binary(max_size=80))
    def check(manifest, cell):
        (folder / "b" / "run.json").write_text(manifest)
        (folder / "a" / "run.json").write_text(json.dumps({"num_images": 50, "seed": 0, "task": "coco"}))
        (folder / "a" / "cells").mkdir(exist_ok=True)
        (folder / "a" / "cells" / "clean-s0.json").write_bytes(cell)
        result = CliRunner().invoke(cli, ["compare", str(folder / "a"), str(folder / "b"), "--samples", "50"])
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)

    check()


@BUDGETS
def test_forensics_documents_in_the_report(budget, tmp_path):
    from audit.cli.main import cli
    from tests.reports.synth import make_results

    folder = scratch(tmp_path)
    run = make_results(folder / "run", examples=0)
    valid = {"kind": "robustaudit.forensics", "version": 1, "fp32": "a.onnx", "int8": "b.onnx", "conditions": ["clean"],
             "tensors": [{"tensor": "t", "node": "n", "op_type": "Conv", "local_db": {"clean": 1.0},
                          "accumulated_db": {"clean": 2.0}, "added_db": {"clean": 3.0}, "growth_db": {}}],
             "worst_local": ["t"], "worst_added": ["t"], "worst_growth": {}}

    @fuzz_settings(budget)
    @given(st.one_of(VALUES.map(json.dumps), st.tuples(st.sampled_from(sorted(valid)), VALUES).map(
        lambda kv: json.dumps({**valid, kv[0]: kv[1]}))))
    def check(text):
        doc = folder / "forensics.json"
        doc.write_text(text)
        result = CliRunner().invoke(cli, ["report", str(run), "-o", str(folder / "r.html"), "--forensics", str(doc)])
        assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)

    check()
