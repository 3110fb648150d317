"""PRIME and AugMix: shape, [0,1] range, determinism under a seed, and that they change images."""

from __future__ import annotations

import pytest
import torch

from finetune.augment import augmix, prime
from finetune.augment.augmix import jsd_loss
from finetune.upernet import adaptive_avg_pool

AUGMENTS = {
    "prime-dense": lambda x, g: prime(x, g, "imagenet"),
    "prime-cifar-geometric": lambda x, g: prime(x, g, "cifar", geometric=True),
    "augmix": augmix,
}


@pytest.fixture
def batch():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("name", AUGMENTS)
def test_shape_range_determinism_and_change(name, batch):
    fn = AUGMENTS[name]
    a = fn(batch.clone(), torch.Generator().manual_seed(1))
    b = fn(batch.clone(), torch.Generator().manual_seed(1))
    c = fn(batch.clone(), torch.Generator().manual_seed(2))
    assert a.shape == batch.shape and a.dtype == batch.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b), "same seed must give the same pixels"
    assert not torch.equal(a, c), "another seed must give other pixels"
    changed = (a - batch).abs().flatten(1).amax(1)
    assert bool((changed > 1e-3).all()), f"{name} left an image unchanged: {changed}"


def test_prime_on_non_square_images_skips_geometry():
    x = torch.rand(2, 3, 24, 40)
    out = prime(x, torch.Generator().manual_seed(0), "imagenet", geometric=True)
    assert out.shape == x.shape


def test_jsd_is_zero_for_equal_and_positive_for_different_logits():
    z = torch.randn(5, 4)
    assert float(jsd_loss(z, z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(jsd_loss(z, z + torch.randn(5, 4), z)) > 1e-3


@pytest.mark.parametrize("hw", [(7, 5), (13, 9), (4, 4), (3, 2)])
@pytest.mark.parametrize("bins", [2, 3, 6])
def test_exportable_adaptive_pool_equals_torch(hw, bins):
    x = torch.rand(2, 3, *hw)
    assert torch.allclose(adaptive_avg_pool(x, bins), torch.nn.functional.adaptive_avg_pool2d(x, bins), atol=1e-6)
