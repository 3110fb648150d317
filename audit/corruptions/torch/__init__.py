"""The corruptions as PyTorch kernels (optional: the `gpu-corruptions` extra), for audits on a GPU.

`corrupt_torch(image, name, severity, seed=, image_id=, profile=)` corrupts a uint8 HxWx3 tensor or
NxHxWx3 batch where it lies (CPU or CUDA) and returns uint8 of the same shape on the same device,
equal to `audit.corruptions.corrupt` on the same (seed, image id) up to float rounding. Importing
this package needs torch; `audit` and `audit.corruptions` never import it.

Example:
    >>> import torch
    >>> from audit.corruptions.torch import corrupt_torch, torch_kernel_names
    >>> len(torch_kernel_names())
    19
    >>> corrupt_torch(torch.zeros(2, 32, 32, 3, dtype=torch.uint8), "fog", 1, image_id=["a", "b"]).shape
    torch.Size([2, 32, 32, 3])
"""

from audit.errors import require

require("torch", "gpu-corruptions", "The torch corruption kernels")

from audit.corruptions.torch.api import corrupt_torch, fast_random_names, has_torch_kernel, torch_kernel_names  # noqa: E402

__all__ = ["corrupt_torch", "fast_random_names", "has_torch_kernel", "torch_kernel_names"]
