"""`audit run` through the CLI: exit codes, one-line errors, the summary it prints."""

import pytest
from click.testing import CliRunner

from audit.cli.main import cli

NORM = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]


def run(*args):
    return CliRunner().invoke(cli, ["run", *map(str, args), "--quiet", "--workers", "0", "--examples", "0"])


def test_summary_and_gate_exit_codes(classifier_onnx, cifar_dir, tmp_path):
    ok = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "a",
             "--corruptions", "contrast", "--severities", "5", *NORM, "--fail-under-rpc", "0.01")
    assert ok.exit_code == 0, ok.output
    assert "clean P" in ok.output and "verdict: PASS" in ok.output and "results.json" in ok.output
    gate = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "b",
               "--corruptions", "contrast", "--severities", "5", *NORM, "--fail-under-mpc", "0.9999")
    assert gate.exit_code == 2
    assert "verdict: FAIL" in gate.output and "error: robustness gate failed: mPC" in gate.output
    assert (tmp_path / "b" / "results.json").is_file()  # everything written before exit 2


def test_bad_inputs_are_one_line_errors(classifier_onnx, cifar_dir, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    cases = [
        (run(broken, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "c"), "is not a valid ONNX model"),
        (run(classifier_onnx, "--task", "cifar10", "--data", tmp_path / "nowhere", "--out", tmp_path / "d"), "data path not found"),
        (run(tmp_path / "missing.onnx", "--task", "cifar10", "--data", cifar_dir), "model file not found"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--provider", "cuda", "--out", tmp_path / "e"),
         "provider cuda"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--corruptions", "rain"), "unknown corruption or set 'rain'"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--corruptions", "noise,fogg"),
         "error: unknown corruption or set 'fogg'; did you mean 'fog'? (see 'audit list corruptions')"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--corruptions", "cbarr"), "did you mean 'cbar'?"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--output-convention", "clasification_logits"),
         "unknown output convention 'clasification_logits'; did you mean 'classification_logits'"),
        (run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--severities", "1,7"), "severity must be an integer from 1 to 5"),
    ]
    for result, message in cases:
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


@pytest.mark.parametrize("args, message", [
    (["--fp16"], "--fp16 does nothing with --provider cpu"),
    (["--trt-cache", "cache"], "--trt-cache does nothing with --provider cpu"),
    (["--ray-address", "auto"], "--ray-address does nothing with --executor local"),
    (["--num-classes", "4"], "--num-classes does nothing with --task cifar10"),
    (["--annotations", "x.json"], "--annotations does nothing with --task cifar10"),
])
def test_flags_that_would_do_nothing_are_one_line_errors(classifier_onnx, cifar_dir, tmp_path, args, message):
    """--fp16 on the CPU used to run in fp32 and record fp32: a flag the provider or task ignores is refused."""
    result = run(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "o", *NORM, *args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}") and lines[0].endswith("drop it"), result.output
    assert not (tmp_path / "o" / "results.json").exists()
