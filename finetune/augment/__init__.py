"""Training augmentations on [0,1] float image batches (before normalisation): PRIME and AugMix."""

from finetune.augment.augmix import augmix
from finetune.augment.prime import prime

__all__ = ["augmix", "prime"]
