"""Tiny ONNX models for the audit tests, trained for a few steps on the synthetic shapes data.

Built with torch (the `train` extra, installed for the tests); cached per session by the fixtures
in tests/conftest.py.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from audit.datasets import synthetic


def _torch():
    import torch

    torch.manual_seed(0)
    return torch


def train_classifier(path: Path, steps: int = 150, size: int = 32, dynamo: bool = False) -> Path:
    """A small CNN that learns the 4 shapes (well above chance), exported with a dynamic batch: opset 17
    by the TorchScript exporter, or with `dynamo` by PyTorch's default exporter (opset 18+). Trained
    once per (steps, size) in a session: both exports hold the same network."""
    torch = _torch()
    model = _trained_classifier(steps, size)
    if dynamo:
        torch.onnx.export(model, (torch.zeros(2, 3, size, size),), str(path), input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("n")},), dynamo=True, verbose=False)
        return path
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    return path


@functools.lru_cache(maxsize=2)
def _trained_classifier(steps: int, size: int):
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(0)
    labels = np.arange(512) % len(synthetic.SHAPES)
    images = np.stack([synthetic.draw_scene(rng, size, size, 1, [k])[0] for k in labels])
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1)
    y = torch.tensor(labels)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, len(synthetic.SHAPES)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        idx = torch.randint(0, len(x), (64,))
        loss = nn.functional.cross_entropy(model((x[idx] - mean) / std), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def train_segmenter(path: Path, steps: int = 120, size: tuple[int, int] = (48, 64)) -> Path:
    """A small fully convolutional segmenter for shapes vs background (5 classes incl. 'other' 0).

    Trained on labels with ADE20K's reduce_zero_label semantics: outputs 4 classes (shape k), the
    background is ignored.
    """
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(1)
    scenes = [synthetic.draw_scene(rng, size[0], size[1], 2) for _ in range(96)]
    x = torch.tensor(np.stack([s[0] for s in scenes])).permute(0, 3, 1, 2).float() / 255
    y = np.full((len(scenes), *size), 255, np.int64)
    for i, (_, inst) in enumerate(scenes):
        for obj in inst:
            y[i][obj.mask] = obj.label
    y = torch.tensor(y)
    model = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 24, 3, padding=2, dilation=2), nn.ReLU(),
                          nn.Conv2d(24, 24, 3, padding=4, dilation=4), nn.ReLU(), nn.Conv2d(24, len(synthetic.SHAPES), 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (16,))
        loss = nn.functional.cross_entropy(model((x[idx] - 0.5) / 0.25), y[idx], ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    return path


def torchvision_detector(path: Path, num_classes: int = len(synthetic.SHAPES) + 1, masks: bool = False) -> Path:
    """A randomly initialised torchvision Faster / Mask R-CNN (MobileNet, small sizes), exported with
    the TorchScript-based exporter as a foreign model (no robustaudit metadata)."""
    torch = _torch()
    from torchvision.models import detection

    if masks:
        from torchvision.models.detection.backbone_utils import mobilenet_backbone

        backbone = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=6)
        model = detection.MaskRCNN(backbone, num_classes=num_classes, min_size=96, max_size=128,
                                   box_score_thresh=0.0, box_detections_per_img=20)
    else:
        model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=num_classes,
                                                                min_size=96, max_size=128, box_score_thresh=0.0,
                                                                box_detections_per_img=20)
    model.eval()
    names = ["boxes", "labels", "scores"] + (["masks"] if masks else [])
    torch.onnx.export(model, ([torch.rand(3, 96, 128)],), str(path), input_names=["image"], output_names=names,
                      dynamic_axes={"image": {1: "h", 2: "w"}, **{n: {0: "k"} for n in names}},
                      opset_version=17, dynamo=False)
    return path


def yolo_style_detector(path: Path, num_classes: int = len(synthetic.SHAPES), size: int = 64) -> Path:
    """A tiny randomly initialised model with Ultralytics YOLOv8's raw output layout [1, 4 + C, A]:
    one anchor per stride-8 cell, (cx, cy, w, h) in input pixels, then per-class scores."""
    torch = _torch()
    nn = torch.nn

    class TinyYolo(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 4 + num_classes, 3, stride=2, padding=1))
            g = torch.arange(size // 8, dtype=torch.float32) * 8 + 4
            self.register_buffer("cx", g.repeat(size // 8))
            self.register_buffer("cy", g.repeat_interleave(size // 8))

        def forward(self, x):
            out = self.body(x).flatten(2)  # [1, 4 + C, A]
            cx = self.cx + 4 * torch.tanh(out[:, 0])
            cy = self.cy + 4 * torch.tanh(out[:, 1])
            wh = 8 + 16 * torch.sigmoid(out[:, 2:4])
            return torch.cat([cx[:, None], cy[:, None], wh, torch.sigmoid(out[:, 4:])], dim=1)

    model = TinyYolo().eval()
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), input_names=["images"], output_names=["output0"],
                      opset_version=17, dynamo=False)
    return path


def constant_detector(path: Path, boxes, labels, scores, masks: bool = False) -> Path:
    """An ONNX graph in torchvision's detection layout (input [3, H, W]; outputs boxes, labels, scores)
    that answers every image with the given detections: a detector whose labels we control exactly."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    consts = {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "labels": np.asarray(labels, np.int64),
              "scores": np.asarray(scores, np.float32)}
    nodes = [helper.make_node("Constant", [], [f"{k}_c"], value=numpy_helper.from_array(v, f"{k}_v")) for k, v in consts.items()]
    nodes += [helper.make_node("Identity", [f"{k}_c"], [k]) for k in consts]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "h", "w"])
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["k", 4]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, ["k"]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["k"])]
    graph = helper.make_graph(nodes, "constant_detector", [image], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def outlier_channel(src: Path, dst: Path, conv: int = 1, channel: int = 3, factor: float = 1e3) -> Path:
    """A copy of a Conv-ReLU-MaxPool-Conv... ONNX model computing the same function in FP32 (up to
    rounding) whose INT8 export is damaged at one layer: output channel `channel` of Conv number `conv`
    is multiplied by `factor` and the next Conv's weights reading it divided by `factor` (ReLU and
    MaxPool commute with a positive scale). Per-tensor activation quantisation then spends its 8 bits
    on that channel, and per-channel weight quantisation of the next Conv rounds its weights on that
    channel to zero: the next Conv is the layer INT8 breaks."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    first, second = convs[conv], convs[conv + 1]

    def scale(name: str, index, by: float) -> None:
        arr = numpy_helper.to_array(inits[name]).copy()
        arr[index] *= by
        inits[name].CopyFrom(numpy_helper.from_array(arr, name))

    scale(first.input[1], channel, factor)
    scale(first.input[2], channel, factor)
    scale(second.input[1], (slice(None), channel), 1 / factor)
    onnx.save(model, str(dst))
    return dst


def calibrate_batch_norm(net, inputs) -> None:
    """Set every BatchNorm's statistics from one pass of `net` over `inputs` (what the net takes: a batch
    tensor, or torchvision detection's list of images), so a random-init network's features depend on
    the image instead of vanishing or saturating; the net is left in eval mode."""
    torch = _torch()
    net.eval()  # only the BatchNorms run in training mode below
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
        m.train()
    with torch.no_grad():
        net(inputs)
    net.eval()


# torchvision classifier -> (BatchNorm after the conv whose output channel is scaled up, the conv reading that
# channel, the reader's node in the ONNX export): a Conv-BN(-ReLU) whose output only that conv reads
TORCHVISION_DAMAGE = {
    "resnet18": ("layer1.0.bn1", "layer1.0.conv2", "/layer1/layer1.0/conv2/Conv"),
    # the t=1 block's 1x1 projection (no activation after it) read by the next block's 1x1 expansion
    "mobilenet_v2": ("features.1.conv.2", "features.2.conv.0.0", "/features/features.2/conv/conv.0/conv.0.0/Conv"),
}


def damaged_torchvision(arch: str, path: Path, num_classes: int = 3, size: int = 32, channel: int = 3,
                        factor: float = 1e3) -> tuple[Path, str, float]:
    """A torchvision classifier, randomly initialised with its BatchNorm statistics set on synthetic scenes
    and its last Linear fitted to their shapes (least squares: seconds, where training the whole net
    takes minutes on a CPU), so that its top-1 depends on the image; saved as a state dict at `path` for
    `audit export torchvision:ARCH --weights`. Its INT8 export is damaged at one layer: output channel
    `channel` of one BatchNorm is scaled by `factor` (weight and bias; a ReLU after it commutes) and the
    weights of the conv reading it divided by `factor`, so FP32 computes the same function.
    Returns (path, the reader's ONNX node, the largest FP32 logit change the damage makes)."""
    torch = _torch()
    import torchvision

    norm, reader, node = TORCHVISION_DAMAGE[arch]
    net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    rng = np.random.default_rng(0)
    labels = np.arange(96) % num_classes
    scenes = np.stack([synthetic.draw_scene(rng, size, size, 1, [k])[0] for k in labels])
    x = torch.tensor(scenes).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    calibrate_batch_norm(net, x)
    _fit_head(net, x, torch.tensor(labels), num_classes)
    modules = dict(net.named_modules())
    with torch.no_grad():
        before = net(x)
        modules[norm].weight[channel] *= factor
        modules[norm].bias[channel] *= factor
        modules[reader].weight[:, channel] /= factor
        change = float((net(x) - before).abs().max())
    torch.save(net.state_dict(), path)
    return path, node, change


def _fit_head(net, x, y, num_classes: int, ridge: float = 1e-2) -> None:
    """Set the last Linear of `net` to the ridge regression of one-hot `y` on its input features."""
    torch = _torch()
    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen = []
    hook = head.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        net(x)
        hook.remove()
        feats = torch.cat([seen[0], torch.ones(len(x), 1)], 1)
        target = torch.nn.functional.one_hot(y, num_classes).float()
        w = torch.linalg.solve(feats.T @ feats + ridge * torch.eye(feats.shape[1]), feats.T @ target)
        head.weight.copy_(w[:-1].T)
        head.bias.copy_(w[-1])


def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo); empty where they cannot be read."""
    try:
        return set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return set()


def int8_kernels_follow_qdq() -> bool:
    """Whether ONNX Runtime's fused integer kernels on this CPU compute an INT8 QDQ graph as its Q/DQ definition does.

    On x86-64 without VNNI they multiply uint8 x int8 pairs with VPMADDUBSW, whose int16 sums saturate (ONNX Runtime's
    quantization docs: "may suffer from saturation issues"), so a full-range INT8 graph can give other logits there
    (measured on an AVX2-only AMD EPYC: 3.35 where the Q/DQ arithmetic gives 6.45). Elsewhere they agree.
    """
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    flags = cpu_flags()
    return not flags or bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def qdq_reference_logits(path: Path, x01: np.ndarray, spec) -> np.ndarray:
    """An INT8 graph's logits by its Q/DQ arithmetic: ONNX Runtime with graph optimisations off (its float Quantize /
    DequantizeLinear kernels, no fused integer kernels), on the audit's normalised input."""
    import onnxruntime as ort

    from audit.attacks import normalise_batch

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: normalise_batch(x01, spec)})[0], np.float32)


def int8_engine_logits(path: Path, x01: np.ndarray, spec) -> np.ndarray:
    """What the tests compare a Q/DQ simulation with: ONNX Runtime's integer engine where its kernels follow the Q/DQ
    definition on this CPU (`int8_kernels_follow_qdq`), else the Q/DQ arithmetic itself (`qdq_reference_logits`)."""
    if not int8_kernels_follow_qdq():
        return qdq_reference_logits(path, x01, spec)
    from audit.attacks import EngineTarget
    from audit.engines.base import open_engine

    return EngineTarget(open_engine(path, provider="cpu"), spec).logits(x01)
