"""A real interruption: `audit run` killed with SIGKILL mid-run, then resumed, equals an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

from audit.results import document as results

ARGS = ["--task", "cifar10", "--corruptions", "noise,blur", "--severities", "1,2,3", "--workers", "0", "--batch-size", "4",
        "--examples", "0", "--no-report", "--quiet", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]


def audit(*args):
    return [sys.executable, "-c", "from audit.cli.main import main; main()", "run", *map(str, args)]


def test_kill_9_then_resume_equals_uninterrupted(classifier_onnx, cifar_dir, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(audit(classifier_onnx, "--data", cifar_dir, "--out", out, *ARGS),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "cells").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "cells").glob("*.json")))
    assert 2 <= done < 23, f"the run was killed after {done} of 23 cells"
    assert not (out / "results.json").exists()
    resumed = subprocess.run(audit(classifier_onnx, "--data", cifar_dir, "--out", out, *ARGS, "--resume"),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(audit(classifier_onnx, "--data", cifar_dir, "--out", tmp_path / "straight", *ARGS),
                              capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    a, b = results.load(out / "results.json"), results.load(tmp_path / "straight" / "results.json")
    assert [c["metrics"] for c in a["cells"]] == [c["metrics"] for c in b["cells"]]
    assert a["summary"] == b["summary"]
