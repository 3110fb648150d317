"""Gradient masking: input quantisation inside the model zeroes the gradients, so PGD learns nothing
on the torch side, but the black-box Square attack on the deployed engine still breaks the model."""

from __future__ import annotations

import numpy as np
import pytest

from audit.attacks import Budget, EngineTarget, TorchTarget, onnx_target, run_attack

EPS = Budget("linf", 8 / 255)


def test_quantised_model_has_zero_gradients(masked_net, spec, points):
    import torch

    x, y = points
    xt = torch.from_numpy(x).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(TorchTarget(masked_net, spec).module()(xt), torch.from_numpy(y))
    grad, = torch.autograd.grad(loss, [xt])
    assert float(grad.abs().max()) == 0.0


def test_masking_defeats_pgd_but_not_square_on_the_engine(masked_net, masked_onnx, net, spec, points):
    from audit.engines.base import open_engine

    x, y = points
    unmasked = run_attack("pgd", TorchTarget(net, spec), x, y, EPS, seed=0)
    masked_pgd = run_attack("pgd", TorchTarget(masked_net, spec), x, y, EPS, seed=0)
    engine = EngineTarget(open_engine(masked_onnx, provider="cpu"), spec)
    clean = (engine.logits(x).argmax(1) == y).mean()
    square = run_attack("square", engine, x, y, EPS, seed=0, queries=1000)
    # the same weights fall to PGD without the rounding step; behind it only the random start acts
    assert unmasked.robust_accuracy <= 0.1
    assert masked_pgd.robust_accuracy >= 0.8 * clean
    assert square.robust_accuracy <= 0.1 and square.source == "engine"


def test_the_graph_converted_to_torch_masks_too(masked_onnx, spec, points):
    pytest.importorskip("onnx2torch")
    x, y = points
    target = onnx_target(masked_onnx, spec)
    pgd = run_attack("pgd", target, x, y, EPS, seed=0)
    square = run_attack("square", target, x, y, EPS, seed=0, queries=300)
    assert square.correct.sum() < pgd.correct.sum()
    assert pgd.robust_accuracy >= 0.8 * np.mean(target.logits(x).argmax(1) == y)
