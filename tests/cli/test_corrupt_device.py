"""`audit run --corrupt-device cpu|cuda`: the torch corruption kernels inside a real audit, equal to the NumPy
path within the kernels' stated PSNR, recorded, resumed only on the same device, refused where they cannot run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from audit.cli.main import cli
from audit.datasets import open_dataset
from audit.execution.context import PrepareContext
from audit.spec.model import ModelSpec

torch = pytest.importorskip("torch", reason="the torch corruption kernels need torch (the gpu-corruptions extra)")

NORM = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]
CELLS = ["--corruptions", "gaussian_noise,defocus_blur,fog,jpeg_compression", "--severities", "3"]
# docs/corruptions.md: torch kernels against the NumPy kernels on 32x32 CIFAR-10-format images with the cifar-10-c
# constants, every corruption and severity: worst 57.9 dB (glass_blur), 61.4 dB defocus_blur, bit-identical noises
STATED_PSNR_DB = 57.0


def run(*args):
    return CliRunner().invoke(cli, ["run", *map(str, args), "--quiet", "--workers", "0", "--examples", "0"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_the_worker_path_gives_the_numpy_pixels_within_the_stated_psnr(cifar_dir):
    dataset = open_dataset("cifar10", str(cifar_dir))
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32))
    numpy_ctx = PrepareContext(dataset, spec, seed=4, profile="cifar-10-c")
    torch_ctx = PrepareContext(dataset, spec, seed=4, profile="cifar-10-c", device="cpu")
    for index in range(4):
        image, image_id = dataset.load_image(index), dataset.image_id(index)
        for name in ("gaussian_noise", "defocus_blur", "glass_blur", "fog", "jpeg_compression", "elastic_transform"):
            for severity in (1, 5):
                ours = torch_ctx.corrupt(image, name, severity, image_id)
                reference = numpy_ctx.corrupt(image, name, severity, image_id)
                assert ours.dtype == np.uint8 and ours.shape == reference.shape
                assert psnr(ours, reference) >= STATED_PSNR_DB, (name, severity, psnr(ours, reference))
        # the same seed and image id: a different image id draws other noise
        other = torch_ctx.corrupt(image, "gaussian_noise", 3, image_id + "x")
        assert not np.array_equal(other, numpy_ctx.corrupt(image, "gaussian_noise", 3, image_id))


def test_an_audit_on_the_torch_kernels_scores_as_the_numpy_one_and_says_so(classifier_onnx, cifar_dir, tmp_path):
    base = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "numpy", *NORM, *CELLS)
    device = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "torch", *NORM, *CELLS,
                 "--corrupt-device", "cpu")
    assert base.exit_code == 0 and device.exit_code == 0, base.output + device.output
    a = json.loads((tmp_path / "numpy" / "results.json").read_text())
    b = json.loads((tmp_path / "torch" / "results.json").read_text())
    assert a["corruption"]["device"] is None and b["corruption"]["device"] == "cpu"
    assert "torch kernels on cpu" in b["corruption"]["source"]
    images = a["cells"][0]["num_images"]
    for ca, cb in zip(a["cells"], b["cells"]):
        assert (ca["corruption"], ca["severity"]) == (cb["corruption"], cb["severity"])
        # pixels equal up to float rounding: at most one image of the cell may flip its top-1
        assert abs(ca["metrics"]["top1"] - cb["metrics"]["top1"]) <= 1 / images + 1e-9, (ca, cb)
    resumed = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "torch", *NORM, *CELLS,
                  "--resume")
    assert resumed.exit_code == 1 and "corrupt_device" in resumed.output, resumed.output


@pytest.mark.parametrize("args, message", [
    (["--corruptions", "sparkles", "--corrupt-device", "cpu"], "sparkles has no torch kernel"),
    (["--corrupt-device", "cpu", "--reference-corruptions"], "give one of them"),
])
def test_what_the_torch_kernels_cannot_do_is_one_line(classifier_onnx, cifar_dir, tmp_path, args, message):
    result = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "o", *NORM, *args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(classifier_onnx, cifar_dir, tmp_path):
    result = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "o", *NORM,
                 "--corrupt-device", "cuda")
    assert result.exit_code == 1 and "torch sees no CUDA device" in result.output, result.output
