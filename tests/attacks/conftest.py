"""Session fixtures of the attack tests: one tiny classifier trained here, its ONNX export and engine,
the same classifier behind input quantisation (gradient masking), and the evaluation points."""

from __future__ import annotations

import pytest

from tests.attacks import tiny

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

N_POINTS = 48


@pytest.fixture(scope="session")
def spec():
    return tiny.spec()


@pytest.fixture(scope="session")
def points():
    """48 held-out images (float32 [N, 3, 16, 16] in [0, 1]) and labels, 12 per class."""
    return tiny.make_data(N_POINTS, seed=7)


@pytest.fixture(scope="session")
def net():
    return tiny.train()


@pytest.fixture(scope="session")
def torch_target(net, spec):
    from audit.attacks import TorchTarget

    return TorchTarget(net, spec, source="torch")


@pytest.fixture(scope="session")
def onnx_path(net, tmp_path_factory):
    return tiny.export(net, tmp_path_factory.mktemp("attack-models") / "tiny.onnx")


@pytest.fixture(scope="session")
def engine_target(onnx_path, spec):
    from audit.attacks import EngineTarget
    from audit.engines.base import open_engine

    return EngineTarget(open_engine(onnx_path, provider="cpu"), spec)


@pytest.fixture(scope="session")
def masked_net(net):
    """The same network behind round(x * 255) / 255 on its pixels: its gradients are zero."""
    return tiny.Quantised(net)


@pytest.fixture(scope="session")
def masked_onnx(masked_net, tmp_path_factory):
    return tiny.export(masked_net, tmp_path_factory.mktemp("attack-models") / "masked.onnx")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: one thread is faster than contending for the shared machine's cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
