"""`audit export`: a fine-tuned checkpoint or a torchvision / timm model -> ONNX (FP32/FP16/INT8) or TensorRT."""

from __future__ import annotations

import click


@click.command()
@click.argument("source")
@click.option("-o", "--out", required=True, help="Output .onnx (or .engine with --engine tensorrt).")
@click.option("--opset", default=17, show_default=True, type=int)
@click.option("--dynamic/--static", default=True, show_default=True, help="Dynamic input height / width.")
@click.option("--input-size", nargs=2, type=int, default=None, help="H W for models given by name.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--calibration", default=None,
              help="INT8 calibration images: any dataset root audit run reads (YOLO, VOC, Cityscapes, COCO, ADE20K, CIFAR-10 "
                   "batches) or a folder of images [default: a checkpoint's own fine-tuning data].")
@click.option("--calibration-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Images in the seeded calibration sample.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the calibration and parity samples.")
@click.option("--keep-fp32", default=None, metavar="NODE[,NODE...]|auto[:K]",
              help="INT8: keep these layers in FP32; auto[:K]: the K layers that lose the most SQNR on the calibration images.")
@click.option("--engine", type=click.Choice(["tensorrt"]), default=None, help="Build a TensorRT engine (GPU).")
@click.option("--weights", default=None, help="State dict for models given by name (nothing is downloaded).")
@click.option("--num-classes", default=None, type=click.IntRange(min=1), help="Classes for models given by name.")
@click.option("--parity-images", default=None, help="Dataset root or folder of task images for the parity check [default: "
              "--calibration, else the checkpoint's validation images, else noise].")
@click.option("--no-check", is_flag=True, help="Skip the parity check against PyTorch (e.g. to write an INT8 export "
              "that fails it, for `audit precision`; `--keep-fp32 auto` repairs one).")
def export(source, out, opset, dynamic, input_size, precision, calibration, calibration_size, seed, keep_fp32, engine,
           weights, num_classes, parity_images, no_check):
    """Export SOURCE (an `audit finetune` checkpoint, torchvision:NAME or timm:NAME) with robustaudit
    metadata, so that `audit run` needs only --task and --data; checks it against PyTorch at two sizes.

    Example:

        audit export runs/ft/checkpoint.pt -o model.onnx --precision int8

        audit export runs/ft/checkpoint.pt -o model.onnx --precision int8 --calibration data/VOCdevkit
    """
    from exporters.api import export_model

    result = export_model(source, out, opset=opset, dynamic=dynamic, precision=precision, calibration=calibration,
                          check=not no_check, weights=weights, num_classes=num_classes,
                          input_size=tuple(input_size) if input_size else None, engine=engine, parity_images=parity_images,
                          calibration_size=calibration_size, seed=seed, keep_fp32=keep_fp32)
    click.echo(f"wrote {result.path}")
    if result.calibration:
        cal = result.calibration
        click.echo(f"  calibrated on {cal['images']} of {cal['available']} images of {cal['source']} ({cal['format']}, seed {cal['seed']})")
    if result.keep:
        click.echo(f"  kept in FP32: {', '.join(result.keep.kept)} (layers {', '.join(result.keep.layers)})")
        for variant, c in result.keep.costs.items():
            click.echo(f"  {variant}: {c['bytes']} bytes, {c['latency_ms']:.3f} ms / image (ONNX Runtime CPU, 1 thread)")
    if result.parity:
        click.echo(f"  parity checked on {result.parity.inputs}")
        for size, figures in result.parity.figures.items():
            click.echo(f"  parity {size}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
        for note in result.parity.notes:
            click.echo(f"  note: {note}", err=True)
