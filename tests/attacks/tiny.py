"""A tiny classifier trained in the tests: 4 classes of faint oriented gratings on 16x16 noise.

Low-contrast patterns keep the clean accuracy high and the model breakable at budgets of a few
/255, so robust accuracy moves through the interesting range as eps grows.
"""

from __future__ import annotations

import numpy as np

from audit.spec.model import ModelSpec

SIZE = 16
CLASSES = 4
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def make_data(n: int, seed: int, size: int = SIZE, amplitude: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 [n, 3, size, size] in [0, 1] and labels: class k is a grating at angle k * 45 degrees."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % CLASSES
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = np.empty((n, 3, size, size), np.float32)
    for i, k in enumerate(y):
        angle = k * np.pi / 4
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / 5 + phase)
        base = rng.uniform(0.3, 0.7, size=(3, 1, 1))
        x[i] = base + amplitude * wave[None] + rng.normal(0, 0.03, size=(3, size, size))
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)


def spec(size: int = SIZE) -> ModelSpec:
    return ModelSpec(task="classification", output_convention="classification_logits", input_size=(size, size),
                     mean=MEAN, std=STD, class_names=[f"c{k}" for k in range(CLASSES)])


def train(seed: int = 0, steps: int = 200, quantise: bool = False, size: int = SIZE):
    """A small CNN on normalised input, trained with Adam; `quantise`: rounds its input to 1/255 first."""
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: threads only contend on a shared CI machine
    nn = torch.nn
    x, y = make_data(1024, seed=100 + seed, size=size)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    xt, yt = (torch.from_numpy(x) - mean) / std, torch.from_numpy(y)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (64,), generator=gen)
        loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    torch.set_num_threads(threads)
    return Quantised(net) if quantise else net


def Quantised(inner):
    """`inner` behind input quantisation round(x * 255) / 255 on the [0, 1] pixels: zero gradients."""
    import torch

    class Q(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

        def forward(self, x):
            pixels = torch.round((x * self.std + self.mean) * 255) / 255
            return self.inner((pixels - self.mean) / self.std)

    return Q().eval()


def export(model, path, size: int = SIZE):
    """torch.onnx export with a dynamic batch."""
    import torch

    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    return path
