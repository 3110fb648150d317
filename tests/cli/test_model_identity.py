"""A model's identity is every file it loads: a graph with its weights in external data (`model.onnx.data`).

Two different networks saved with external data have byte-identical `.onnx` graphs; swapping the
`.data` file must change `model.sha256` and make `--resume` refuse, for `audit run` and `audit attack`.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from audit.cli.main import cli
from audit.errors import ModelError
from audit.io.hashing import model_files, model_sha256, sha256_of

NORM = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]


def _export_external(folder, seed: int):
    """A random-init 4-class CNN saved as model.onnx + model.onnx.data (all weights outside the graph)."""
    import onnx
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "inline.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(tmp), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    tmp.unlink()
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    a, b = _export_external(root / "a", 1), _export_external(root / "b", 2)
    assert a.read_bytes() == b.read_bytes()  # the graphs alone cannot tell the two networks apart
    assert (root / "a" / "model.onnx.data").read_bytes() != (root / "b" / "model.onnx.data").read_bytes()
    return a, b


def _swap_weights(target, source) -> None:
    shutil.copyfile(source.parent / "model.onnx.data", target.parent / "model.onnx.data")


def test_identity_covers_external_data(two_models, tmp_path):
    a, b = two_models
    assert [p.name for p in model_files(a)] == ["model.onnx", "model.onnx.data"]
    assert model_sha256(a) != model_sha256(b)
    assert model_sha256(a) != sha256_of(a)
    renamed = tmp_path / "renamed"
    shutil.copytree(a.parent, renamed)
    (renamed / "model.onnx").rename(renamed / "other-name.onnx")  # a rename is the same model
    assert model_sha256(renamed / "other-name.onnx") == model_sha256(a)
    moved = tmp_path / "moved.onnx"
    shutil.copyfile(a, moved)  # the graph without its weights beside it
    with pytest.raises(ModelError, match="keeps weights in 'model.onnx.data'"):
        model_sha256(moved)


def _one_line_refusal(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_run_resume_refuses_swapped_weights(two_models, cifar_dir, tmp_path):
    a, b = two_models
    model = tmp_path / "m" / "model.onnx"
    shutil.copytree(a.parent, model.parent)
    flags = [model, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "out", "--corruptions", "contrast",
             "--severities", "5", "--limit", "8", *NORM, "--quiet", "--workers", "0", "--examples", "0", "--no-report"]
    first = CliRunner().invoke(cli, ["run", *map(str, flags)])
    assert first.exit_code == 0, first.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["model"]["sha256"] == model_sha256(model) != sha256_of(model)
    assert [f["path"] for f in doc["model"]["files"]] == ["model.onnx", "model.onnx.data"]
    _swap_weights(model, b)
    again = CliRunner().invoke(cli, ["run", *map(str, flags), "--resume"])
    assert "--resume: the model is not the one" in _one_line_refusal(again)


def test_attack_resume_refuses_swapped_weights(two_models, cifar_dir, tmp_path):
    a, b = two_models
    model = tmp_path / "m" / "model.onnx"
    shutil.copytree(a.parent, model.parent)
    flags = [model, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "out", "--attack", "fgsm",
             "--eps", "0,8/255", "--limit", "8", *NORM, "--quiet", "--no-report"]
    first = CliRunner().invoke(cli, ["attack", *map(str, flags)])
    assert first.exit_code == 0, first.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["model"]["sha256"] == model_sha256(model)
    _swap_weights(model, b)
    again = CliRunner().invoke(cli, ["attack", *map(str, flags), "--resume"])
    assert "--resume: the model is not the one" in _one_line_refusal(again)
