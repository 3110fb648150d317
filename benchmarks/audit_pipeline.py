"""Benchmark: a whole corruption audit the way the mmdetection tool does it vs `audit run`.

Run by hand:  python benchmarks/audit_pipeline.py [--images 12] [--corruptions benchmark] [--severities 3] [--no-peer]

Both audit the same randomly initialised torchvision detector (Faster R-CNN, MobileNet-v3 FPN) on the
same synthetic COCO images, in one run:
- peer: PyTorch eager, imagecorruptions (our fixed reference copy), one image at a time, pycocotools;
- ours: `run_audit` on the model's ONNX export (ONNX Runtime, corruption workers, faster-coco-eval);
- bare: ONNX Runtime alone on the already corrupted, preprocessed inputs (the floor for ours).
Prints wall times and the ratios against the targets (ours >= 5x faster than the peer; ours within
1.3x of bare inference).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path


def build_model(path: Path):
    import torch
    from torchvision.models import detection

    torch.manual_seed(0)
    model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=5,
                                                            box_score_thresh=0.0, box_detections_per_img=50).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, ([torch.rand(3, 480, 640)],), str(path), input_names=["image"],
                          output_names=["boxes", "labels", "scores"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {1: "h", 2: "w"}, "boxes": {0: "k"}, "labels": {0: "k"}, "scores": {0: "k"}})
    return model


def peer(model, data: Path, cells) -> float:
    """mmdetection's test_robustness.py way: eager model, reference corruptions, pycocotools per cell."""
    import torch
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from audit.corruptions.reference import reference_corrupt
    from audit.io.images import read_image

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gt = COCO(str(data / "annotations" / "instances_val2017.json"))
        cats = sorted(gt.getCatIds())
        for corruption, severity in cells:
            dets = []
            for image_id in gt.getImgIds():
                info = gt.loadImgs(image_id)[0]
                img = read_image(data / "val2017" / info["file_name"])
                if corruption != "clean":
                    img = reference_corrupt(img, corruption, severity, seed=None)
                with torch.no_grad():
                    out = model([torch.from_numpy(img).permute(2, 0, 1).float() / 255])[0]
                for b, s, l in zip(out["boxes"].tolist(), out["scores"].tolist(), out["labels"].tolist()):
                    dets.append({"image_id": image_id, "category_id": cats[l - 1], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
            ev = COCOeval(gt, gt.loadRes(dets), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    return time.perf_counter() - t0


def ours(onnx: Path, data: Path, out: Path, corruptions: str, severities: list[int], workers: int) -> float:
    from audit.api import AuditConfig, run_audit

    t0 = time.perf_counter()
    # 5 classes = background + the 4 synthetic shapes: torchvision's fine-tuned layout (index+background)
    run_audit(AuditConfig(model=str(onnx), task="coco", data=str(data), out=str(out), corruptions=corruptions,
                          severities=severities, workers=workers, examples=0, report=False, progress=False,
                          overrides={"label_space": "index+background"}))
    return time.perf_counter() - t0


def bare(onnx: Path, data: Path, cells, seed: int = 0) -> float:
    """ONNX Runtime only, on inputs corrupted and preprocessed beforehand (not timed)."""
    from audit.datasets import open_dataset
    from audit.engines.base import open_engine
    from audit.execution.cells import PrepareContext, load_cell_image
    from audit.tasks import preprocess, resolve_spec

    ds = open_dataset("coco", data)
    engine = open_engine(onnx)
    spec = resolve_spec(engine, "detection", overrides={"label_space": "index+background"})
    ctx = PrepareContext(ds, spec, seed, "imagenet-c")
    inputs = [preprocess(load_cell_image(ctx, i, c, s), spec)[0] for c, s in cells for i in range(len(ds))]
    name = engine.inputs[0].name
    t0 = time.perf_counter()
    for x in inputs:
        engine.run({name: x})
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--corruptions", default="benchmark")
    parser.add_argument("--severities", default="3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="skip the mmdetection-style peer (minutes); ratio to bare only")
    args = parser.parse_args()
    from audit.datasets import synthetic
    from audit.corruptions import names

    severities = [int(s) for s in args.severities.split(",")]
    cells = [("clean", 0)] + [(c, s) for c in names(args.corruptions) for s in severities]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = synthetic.write_coco(tmp / "coco", n_train=1, n_val=args.images, size=(480, 640))
        model = build_model(tmp / "det.onnx")
        print(f"{args.images} images (480x640) x {len(cells)} cells, Faster R-CNN MobileNet-v3, 1 CPU machine")
        t_ours = ours(tmp / "det.onnx", data, tmp / "out", args.corruptions, severities, args.workers)
        print(f"audit run          {t_ours:8.1f} s", flush=True)
        t_bare = bare(tmp / "det.onnx", data, cells)
        print(f"bare ORT inference {t_bare:8.1f} s", flush=True)
        if args.no_peer:
            print(f"{'PASS' if t_ours / t_bare <= 1.3 else 'FAIL'} audit run takes {t_ours / t_bare:.2f}x the bare "
                  "inference time (target <= 1.3x)")
            return 0 if t_ours / t_bare <= 1.3 else 1
        t_peer = peer(model, data, cells)
        print(f"peer (mmdet way)   {t_peer:8.1f} s", flush=True)
    speedup, overhead = t_peer / t_ours, t_ours / t_bare
    print(f"{'PASS' if speedup >= 5 else 'FAIL'} audit run is {speedup:.1f}x faster than the peer (target >= 5x)")
    print(f"{'PASS' if overhead <= 1.3 else 'FAIL'} audit run takes {overhead:.2f}x the bare inference time (target <= 1.3x)")
    return 0 if speedup >= 5 and overhead <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
