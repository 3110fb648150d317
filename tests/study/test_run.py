"""The shipped tiny CPU study end to end: interrupted, run again without redoing finished stages, one
report row per combination; and a failing combination under --keep-going."""

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("timm")

from audit.results import document as results  # noqa: E402
from audit.cli.main import cli  # noqa: E402
from audit.errors import StudyError  # noqa: E402
from audit.workflows.study import load_study, run_study  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHANCE = {"top1": 0.25, "mIoU": 0.2}  # 4 shapes; mIoU of a constant guess is at most ~1/5 of the classes


def _mtimes(out: Path, combo_id: str) -> dict[str, float]:
    files = ["finetune/checkpoint.pt", "model.onnx", "audit/results.json"]
    return {f: (out / combo_id / f).stat().st_mtime_ns for f in files if (out / combo_id / f).exists()}


# Slow: the shipped 12-combination study, fine-tuned end to end (about 170 CPU s, a quarter of the default
# run). By default a study's resume is covered by the two-combination tests below (an interrupted
# fine-tuning resumed, a failure kept with --keep-going, changed settings refused), and fine-tune ->
# export -> audit -> report with a rerun that redoes nothing by tests/test_demo.py
@pytest.mark.slow
def test_tiny_study_interrupted_then_resumed_reports_every_combination(tmp_path, monkeypatch):
    study = load_study(REPO / "studies" / "tiny-cpu.yaml", out=tmp_path / "study")
    combos = study.combinations()
    assert len(combos) == 12

    import audit.api

    real, calls = audit.api.run_audit, []

    def interrupted(config):  # Ctrl-C during the third combination's audit
        calls.append(config.out)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(config)

    monkeypatch.setattr(audit.api, "run_audit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, progress=False, log=lambda m: None)
    manifest = json.loads((study.out / "study.json").read_text())
    stages = {c["id"]: c["stages"] for c in manifest["combinations"]}
    assert stages[combos[2].id]["audit"]["status"] == "interrupted"
    assert stages[combos[2].id]["export"]["status"] == "done" and stages[combos[3].id]["finetune"]["status"] == "pending"
    before = {c.id: _mtimes(study.out, c.id) for c in combos[:3]}

    monkeypatch.setattr(audit.api, "run_audit", real)
    result = run_study(study, progress=False, log=lambda m: None)
    assert result.ran[combos[0].id] == [] and result.ran[combos[1].id] == []  # finished: nothing redone
    assert result.ran[combos[2].id] == ["audit"]  # only the interrupted stage
    assert all(result.ran[c.id] == ["finetune", "export", "audit"] for c in combos[3:])
    for c in combos[:2]:
        assert _mtimes(study.out, c.id) == before[c.id]
    assert {k: v for k, v in _mtimes(study.out, combos[2].id).items() if k != "audit/results.json"} == \
        {k: v for k, v in before[combos[2].id].items() if k != "audit/results.json"}

    for c in combos:  # the models learned: every clean metric is well above chance
        doc = results.load(study.out / c.id / "audit" / "results.json")
        metric = doc["task"]["primary_metric"]
        assert doc["summary"]["metrics"][metric]["P"] > CHANCE[metric] + 0.3, c.id
        assert doc["model"]["metadata"]["provenance"]["lr"] == c.lr
        assert doc["model"]["metadata"]["provenance"]["augment"] == c.augment

    page = result.report.read_text()
    rows = re.findall(r'data-combination="([^"]+)"', page)
    assert sorted(rows) == sorted(c.id for c in combos)  # one row per combination
    for anchor in ("figure1", "groups", "figure5", "prime"):
        section = page.split(f'id="{anchor}"')[1].split("</section>")[0]
        assert "<svg" in section or "<table" in section, anchor
    assert "needs" not in page.split('id="figure5"')[1].split("</section>")[0]  # cifar10 has a 2-lr PRIME sweep

    again = CliRunner().invoke(cli, ["study", str(REPO / "studies" / "tiny-cpu.yaml"), "--out", str(study.out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "already done" in again.output and " done (" not in again.output.replace("already done", "")
    listing = CliRunner().invoke(cli, ["study", str(REPO / "studies" / "tiny-cpu.yaml"), "--out", str(study.out), "--list"])
    assert listing.output.count("audit:done") == 12


def _small_study(tmp_path: Path, weights_b: str) -> Path:
    doc = {"name": "small", "out": str(tmp_path / "out"),
           "backbones": [{"name": "A", "arch": "test_resnet", "weights": "none"},
                         {"name": "B", "arch": "test_resnet", "weights": weights_b}],
           "tasks": {"cifar10": {"synthetic": {"n_train": 64, "n_val": 32}, "lrs": [0.05],
                                 "finetune": {"epochs": 1, "batch_size": 32, "threads": 1}}},
           "audit": {"corruptions": "contrast", "severities": [3], "workers": 0, "examples": 0}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_failing_combination_stops_the_study_or_is_recorded_with_keep_going(tmp_path):
    garbage = tmp_path / "broken.pth"
    garbage.write_bytes(b"not a checkpoint")
    path = _small_study(tmp_path, str(garbage))
    with pytest.raises(StudyError, match=r"cifar10-b-full-none-lr0.05: .*finished stages are kept"):
        run_study(load_study(path), progress=False, log=lambda m: None)

    result = CliRunner().invoke(cli, ["study", str(path), "--keep-going", "--quiet"])
    assert result.exit_code == 1
    assert "1 combination(s) failed: cifar10-b-full-none-lr0.05" in result.output
    manifest = json.loads((tmp_path / "out" / "study.json").read_text())
    by_id = {c["id"]: c for c in manifest["combinations"]}
    assert by_id["cifar10-a-full-none-lr0.05"]["stages"]["audit"]["status"] == "done"
    assert by_id["cifar10-b-full-none-lr0.05"]["stages"]["finetune"]["status"] == "failed"
    page = (tmp_path / "out" / "report.html").read_text()
    assert "finetune failed" in page and "1 failed" in page


def test_settings_changed_under_a_finished_combination_are_refused(tmp_path):
    path = _small_study(tmp_path, "none")
    study = load_study(path)
    run_study(study, only=["*-a-*"], progress=False, log=lambda m: None, report=False)
    doc = yaml.safe_load(path.read_text())
    doc["tasks"]["cifar10"]["finetune"]["epochs"] = 2
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(StudyError, match="fine-tuned with other settings .*epochs 1 vs 2"):
        run_study(load_study(path), only=["*-a-*"], progress=False, log=lambda m: None)


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["study", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    path = _small_study(tmp_path, "none")
    nothing = runner.invoke(cli, ["study", str(path), "--only", "coco-*"])
    assert nothing.exit_code == 1 and "matches no combination" in nothing.output
    no_report = runner.invoke(cli, ["study", str(path), "--report-only"])
    assert no_report.exit_code == 1 and "no study.json yet" in no_report.output


def test_a_study_interrupted_during_fine_tuning_resumes_from_the_last_epoch(tmp_path, monkeypatch):
    import finetune.train

    path = _small_study(tmp_path, "none")
    doc = yaml.safe_load(path.read_text())
    doc["tasks"]["cifar10"]["finetune"]["epochs"] = 3
    path.write_text(yaml.safe_dump(doc))
    real, started = finetune.train._Run.epoch, []

    def interrupted(self, epoch, log):  # Ctrl-C during the second epoch of the first combination
        started.append(epoch)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real(self, epoch, log)

    monkeypatch.setattr(finetune.train._Run, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(path), only=["*-a-*"], progress=False, log=lambda m: None)
    combo = "cifar10-a-full-none-lr0.05"
    manifest = json.loads((tmp_path / "out" / "study.json").read_text())
    assert next(c for c in manifest["combinations"] if c["id"] == combo)["stages"]["finetune"]["status"] == "interrupted"
    assert (tmp_path / "out" / combo / "finetune" / "checkpoint.pt").exists()  # epoch 1 was saved

    started.clear()
    monkeypatch.setattr(finetune.train._Run, "epoch", lambda self, epoch, log: started.append(epoch) or real(self, epoch, log))
    messages = []
    result = run_study(load_study(path), only=["*-a-*"], progress=False, log=messages.append, report=False)
    assert started == [1, 2]  # epoch 0 is not trained again
    assert any("resuming the fine-tuning" in m and "from epoch 1" in m for m in messages)
    assert result.ran[combo] == ["finetune", "export", "audit"]
    doc = results.load(tmp_path / "out" / combo / "audit" / "results.json")
    assert doc["model"]["metadata"]["provenance"]["epochs"] == 3
