"""Tiny synthetic datasets in the real formats, shared by the fine-tuning tests (built once per session)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from audit.datasets.synthetic import write_ade20k, write_cifar10, write_coco  # noqa: E402

TINY = "test_resnet"  # timm's smallest ResNet: a few thousand parameters, four feature levels


@pytest.fixture(scope="session")
def cifar(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar"), n_train=16, n_test=8).parent


@pytest.fixture(scope="session")
def coco(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp("coco"), n_train=4, n_val=2, size=(48, 64))


@pytest.fixture(scope="session")
def ade(tmp_path_factory):
    return write_ade20k(tmp_path_factory.mktemp("ade"), n_train=8, n_val=4, size=(48, 64))


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: the test machine's 2 cores are shared, and OpenMP threads that spin-wait
    on busy cores make small convolutions about 100x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
