"""Session fixtures: tiny ONNX models trained in the tests and synthetic datasets in the real formats."""

from __future__ import annotations

import os
import sys

# One intra-op thread for torch / OpenMP / BLAS in the tests (and the CLI subprocesses they start): the
# models and batches are tiny, and on a 2-core machine the second OpenMP thread spin-waits far more than
# it computes; training the helper classifier took about 6x the CPU time with 2 threads. Set before torch
# or a BLAS is first imported; an explicit value in the environment wins.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

from audit.datasets import synthetic
from tests.helpers import models

NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}  # what the helper models were trained with


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The environment above sets the thread count only where torch is imported after this file."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != int(os.environ["OMP_NUM_THREADS"]):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def classifier_onnx(tmp_path_factory):
    return models.train_classifier(tmp_path_factory.mktemp("models") / "classifier.onnx")


@pytest.fixture(scope="session")
def segmenter_onnx(tmp_path_factory):
    return models.train_segmenter(tmp_path_factory.mktemp("models") / "segmenter.onnx", steps=60)


@pytest.fixture(scope="session")
def detector_onnx(tmp_path_factory):
    return models.torchvision_detector(tmp_path_factory.mktemp("models") / "detector.onnx")


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    synthetic.write_cifar10(root, n_train=8, n_test=96, seed=3)
    return root


@pytest.fixture(scope="session")
def ade_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade")
    synthetic.write_ade20k(root, n_train=2, n_val=12, size=(48, 64), seed=4)
    return root


@pytest.fixture(scope="session")
def coco_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    synthetic.write_coco(root, n_train=1, n_val=5, size=(96, 128), seed=5)
    return root
