"""Conformance against timm: classifiers built offline (pretrained=False), exported with
torch.onnx.export, audited with their `pretrained_cfg` as `--model-config` (or nothing at all), give
timm's own evaluation transform and PyTorch's logits.

Tolerances (stated; measured values in the comments):
- network input: robustaudit's preprocessing equals timm's `create_transform(**resolve_data_config(model=...))`
  within INPUT_ATOL (measured 0.0: both resize with PIL, same filter, same crop);
- logits: max |ONNX Runtime - PyTorch| <= LOGIT_ATOL (measured <= 2.6e-7), top-1 identical.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from audit.datasets import synthetic
from audit.api import AuditConfig, run_audit
from audit.corruptions import corrupt
from audit.engines.base import open_engine
from audit.execution.cells import PrepareContext, cell_input
from audit.tasks import TaskAdapter, preprocess, resolve_spec
from audit.tasks.preprocess import normalise, to_input_geometry

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

INPUT_ATOL, LOGIT_ATOL = 1e-6, 1e-4
SIZES = [(150, 200), (240, 180), (97, 131)]  # non-square, both orientations, one smaller than the crop
# a non-default crop_pct and interpolation so that a policy ignoring them fails
MODELS = {"test_resnet": {"crop_pct": 0.9, "interpolation": "bicubic"},
          "test_vit": {"crop_pct": 0.95, "interpolation": "bilinear"}}


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(12)
    return [synthetic.draw_scene(rng, h, w, 2)[0] for h, w in SIZES]


def _export(model, path, size) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)


@pytest.fixture(scope="session")
def timm_models(tmp_path_factory):
    """name -> (eager model with the edited pretrained_cfg, ONNX path, pretrained_cfg JSON path)."""
    folder, out = tmp_path_factory.mktemp("timm"), {}
    for name, edit in MODELS.items():
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False).eval()
        model.pretrained_cfg = {**model.pretrained_cfg, **edit}
        onnx_path, cfg_path = folder / f"{name}.onnx", folder / f"{name}.json"
        _export(model, onnx_path, model.pretrained_cfg["input_size"][1:])
        cfg_path.write_text(json.dumps(model.pretrained_cfg, default=list))
        out[name] = (model, onnx_path, cfg_path)
    return out


def _timm_eval(model, image: np.ndarray):
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config({}, model=model))
    return transform(Image.fromarray(image))


@pytest.mark.parametrize("name", list(MODELS))
def test_pretrained_cfg_gives_timm_eval_and_logits(timm_models, name):
    model, onnx_path, cfg_path = timm_models[name]
    engine = open_engine(str(onnx_path))
    spec = resolve_spec(engine, "classification", model_config=cfg_path)
    assert (spec.resize, spec.crop_pct, spec.interpolation) == ("center_crop", *MODELS[name].values())
    assert spec.provenance["spec_source"] == "timm pretrained_cfg"
    adapter = TaskAdapter(spec, engine)
    for image in images():
        ref_x = _timm_eval(model, image)
        x, meta = preprocess(image, spec)
        assert x.shape == tuple(ref_x.shape) and np.abs(x - ref_x.numpy()).max() <= INPUT_ATOL
        with torch.no_grad():
            ref = model(ref_x[None])[0].numpy()
        got = adapter.infer([x], [meta])[0]
        assert np.abs(got - ref).max() <= LOGIT_ATOL and got.argmax() == ref.argmax()


def test_zero_flag_guess_is_timm_default_eval_and_says_so(timm_models):
    model, onnx_path, _ = timm_models["test_resnet"]
    spec = resolve_spec(open_engine(str(onnx_path)), "classification", overrides={}, benchmark="classification")
    assert (spec.resize, spec.crop_pct, spec.interpolation, spec.input_size) == ("center_crop", 0.875, "bilinear", (160, 160))
    assert set(spec.provenance["defaulted"]) == {"resize", "crop_pct", "interpolation", "mean", "std", "channel_order"}
    default_model = timm.create_model("test_resnet", pretrained=False)
    default_model.pretrained_cfg = {**default_model.pretrained_cfg, "crop_pct": None, "mean": spec.mean, "std": spec.std}
    for image in images():  # timm's defaults (crop_pct 0.875, bilinear) with ImageNet statistics
        assert np.abs(preprocess(image, spec)[0] - _timm_eval(default_model, image).numpy()).max() <= INPUT_ATOL


def test_exporter_writes_timm_pretrained_cfg():
    from exporters.sources import from_name

    spec = from_name("timm:test_vit", weights=None, num_classes=None, input_size=None).spec
    cfg = timm.create_model("test_vit", pretrained=False).pretrained_cfg
    assert spec.resize == "center_crop" and spec.crop_pct == cfg["crop_pct"] and spec.interpolation == cfg["interpolation"]
    assert spec.input_size == tuple(cfg["input_size"][1:]) and spec.mean == tuple(cfg["mean"])


def test_corrupt_at_input_corrupts_the_centre_crop(timm_models, tmp_path):
    root = synthetic.write_image_folder(tmp_path / "folder", n_per_class=1, size=200, seed=1)
    from audit.datasets import open_dataset

    ds = open_dataset("classification", str(root))
    spec = resolve_spec(open_engine(str(timm_models["test_resnet"][1])), "classification", overrides={}, benchmark="classification")
    ctx = PrepareContext(ds, spec, seed=3, profile="imagenet-c", corrupt_at="input")
    shown, x, _ = cell_input(ctx, 0, "gaussian_noise", 3)
    crop, _ = to_input_geometry(ds.load_image(0), spec)
    expected = corrupt(crop, "gaussian_noise", 3, seed=3, image_id=ds.image_id(0))  # seeded per image, as before
    assert shown.shape == (160, 160, 3) and np.array_equal(x, normalise(expected, spec))
    original = cell_input(PrepareContext(ds, spec, seed=3, profile="imagenet-c"), 0, "gaussian_noise", 3)
    assert original[0].shape == (200, 200, 3) and not np.array_equal(original[1], x)


def test_timm_classifier_audits_with_no_model_flags(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=len(synthetic.SHAPES)).eval()
    _export(model, tmp_path / "m.onnx", (160, 160))
    root = synthetic.write_image_folder(tmp_path / "folder", n_per_class=2, size=96, seed=1)
    doc = run_audit(AuditConfig(model=str(tmp_path / "m.onnx"), task="classification", data=str(root), out=str(tmp_path / "o"),
                                corruptions="gaussian_noise", severities=[2], workers=0, progress=False, examples=1,
                                report=False, overrides={})).document
    assert doc["corruption"]["corrupt_at"] == "input" and "160x160" in doc["corruption"]["resolution"]
    assert doc["model"]["metadata"]["resize"] == "center_crop"
    assert "crop_pct" in doc["model"]["spec_source"]["defaulted"]
    assert doc["summary"]["metrics"]["top1"]["cells"] == 1


@pytest.mark.parametrize("cfg, message", [
    ({"input_size": [3, 224, 224], "crop_pct": 0.9, "crop_mode": "border"}, "crop_mode 'border'"),
    ({"input_size": [3, 224, 224], "interpolation": "lanczos"}, "interpolation 'lanczos'"),
    ({"input_size": [224], "crop_pct": 0.9}, "input_size must be"),
])
def test_unsupported_timm_cfg_is_one_line_error(tmp_path, cfg, message):
    from audit.errors import ConfigError
    from audit.spec.config import spec_from_config

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=message):
        spec_from_config(path)


def test_center_crop_is_for_classifiers_only():
    from audit.errors import ConfigError
    from audit.spec.model import ModelSpec

    with pytest.raises(ConfigError, match="classification models only"):
        ModelSpec(task="segmentation", output_convention="segmentation_logits", input_size=(64, 64), resize="center_crop")
