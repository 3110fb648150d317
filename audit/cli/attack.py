"""`audit attack`: an adversarial audit of an ONNX model / TensorRT engine (robust accuracy, or for
segmentation robust mIoU, per budget)."""

from __future__ import annotations

import click

from audit.cli.options import FORMAT_CHOICES, FORMAT_HELP

TASK_CHOICES = ["cifar10", "classification", "coco", "detection", "ade20k", "segmentation"]  # the API refuses
# detection with one line, so users of `audit run`'s tasks learn why


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("--task", required=True, type=click.Choice(TASK_CHOICES), help="Dataset / task kind: cifar10, classification, ade20k, segmentation (detection is not supported).")
@click.option("--data", required=True, type=click.Path(path_type=str), help="Dataset root in its standard layout.")
@click.option("--format", "data_format", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--out", default=None, help="Output folder [default: runs/<model>-<task>-attack].")
@click.option("--attack", "attacks", default=None,
              help="Attack(s), comma-separated; the first gives the verdict: autoattack, apgd-ce, apgd-t, apgd-dlr, fab-t, fab, "
                   "pgd, fgsm, square; segmentation: pgd, segpgd, fgsm, square [default: autoattack, segmentation pgd; "
                   "square with --gradients none].")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default="linf", show_default=True)
@click.option("--eps", default=None, help="Budgets on [0, 1] pixels, e.g. 0,1/255,2/255,4/255,8/255 "
                                          "[default: that for linf; 0,0.25,0.5,1.0 for l2].")
@click.option("--gradients", default=None,
              help="Gradient source: engine-onnx (white-box on the deployed graph), checkpoint:PATH, torchvision:NAME, "
                   "timm:NAME (white-box on the PyTorch source, judged on the engine), none (black-box Square on the engine) "
                   "[default: engine-onnx for .onnx, none otherwise].")
@click.option("--transfer-to", "transfer_to", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="Another export (e.g. FP16 / INT8 .onnx) the same examples are judged on (repeatable).")
@click.option("--steps", default=None, type=click.IntRange(min=1), help="Iterations of gradient attacks [default: per attack].")
@click.option("--queries", default=None, type=click.IntRange(min=1), help="Query budget of Square per image [default: per attack].")
@click.option("--restarts", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--limit", default=500, show_default=True, type=click.IntRange(min=0),
              help="Attack a seeded subset of N images (attacks cost hundreds of passes per image); 0: all.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--resume", is_flag=True, help="Continue an interrupted adversarial audit in --out.")
@click.option("--provider", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "tensorrt"]))
@click.option("--threads", default=None, type=click.IntRange(min=1), help="ONNX Runtime intra-op threads.")
@click.option("--model-config", default=None, help="YAML/JSON with the model's spec (foreign models).")
@click.option("--input-size", nargs=2, type=int, default=None, help="Network input H W.")
@click.option("--resize", type=click.Choice(["fixed", "center_crop"]), default=None)
@click.option("--crop-pct", default=None, type=click.FloatRange(0, 1, min_open=True), help="center_crop: kept fraction.")
@click.option("--interpolation", type=click.Choice(["bilinear", "bicubic", "nearest"]), default=None)
@click.option("--mean", nargs=3, type=float, default=None, help="Per-channel mean on [0, 1] pixels.")
@click.option("--std", nargs=3, type=float, default=None, help="Per-channel std on [0, 1] pixels.")
@click.option("--channel-order", type=click.Choice(["RGB", "BGR"]), default=None)
@click.option("--output-convention", default=None, help="How to read the outputs (see 'audit list conventions').")
@click.option("--label-space", type=click.Choice(["index", "names"]), default=None)
@click.option("--ignore-unmatched-labels", is_flag=True, help="Leave out classes without a counterpart (listed in the results).")
@click.option("--num-classes", default=None, type=click.IntRange(min=1), help="Segmentation folders: class count.")
@click.option("--ignore-index", default=255, show_default=True, type=int, help="Segmentation: the label map value ignored.")
@click.option("--fail-under-robust-acc", default=None, type=float,
              help="Exit 2 when the verdict attack's robust accuracy at the largest budget is under this (fraction); "
                   "for segmentation the robust mIoU.")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=0), help="Example images in the report.")
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def attack(model, task, data, data_format, out, attacks, norm, eps, gradients, transfer_to, steps, queries, restarts, limit,
           seed, batch_size, resume, provider, threads, model_config, input_size, resize, crop_pct, interpolation, mean,
           std, channel_order, output_convention, label_space, ignore_unmatched_labels, num_classes, ignore_index,
           fail_under_robust_acc, examples, no_report, quiet):
    """Attack MODEL (.onnx, or a TensorRT .engine) and measure its robust accuracy per budget
    (segmentation: robust mIoU and pixel accuracy).

    The threat model: a perturbation of the image on [0, 1] pixels at the network input geometry,
    before normalisation, within the --norm ball of radius --eps, clipped to [0, 1], fed to the
    engine in float (not re-quantised to uint8). Writes OUT/results.json with an `adversarial`
    section and OUT/report.html. Exit codes: 0 ok, 1 error, 2 --fail-under-robust-acc failed.

    Example:

        audit attack model.onnx --task cifar10 --data data/cifar --eps 0,1/255,8/255 --transfer-to model-int8.onnx

        audit attack segmenter.onnx --task ade20k --data ADEChallengeData2016 --input-size 512 512 --attack pgd,fgsm
    """
    from audit.attack_audit import AttackConfig, run_attack_audit
    from audit.errors import GateFailed

    overrides = {"input_size": input_size or None, "resize": resize, "crop_pct": crop_pct, "interpolation": interpolation,
                 "mean": mean or None, "std": std or None, "channel_order": channel_order,
                 "output_convention": output_convention, "label_space": label_space}
    config = AttackConfig(model=model, task=task, data=data, format=data_format, out=out,
                          attacks=_names(attacks), norm=norm, eps=parse_budgets(eps), gradients=gradients,
                          transfer_to=list(transfer_to), steps=steps, queries=queries, restarts=restarts,
                          limit=limit or None, seed=seed, batch_size=batch_size, resume=resume, provider=provider,
                          threads=threads, model_config=model_config, overrides=overrides,
                          ignore_unmatched_labels=ignore_unmatched_labels, num_classes=num_classes, ignore_index=ignore_index,
                          fail_under_robust_acc=fail_under_robust_acc,
                          examples=examples, report=not no_report, progress=not quiet)
    result = run_attack_audit(config)
    print_adversarial(result.document, str(result.out))
    if result.verdict["status"] == "fail":
        raise GateFailed("robustness gate failed: " + "; ".join(result.verdict["reasons"]))


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        from audit.errors import ConfigError

        raise ConfigError("--attack is empty; give one or more attack names, e.g. autoattack or pgd,fgsm")
    return names


def parse_budgets(text: str | None) -> list[float] | None:
    """--eps text -> budgets (audit.attacks.parse_eps: numbers or fractions such as 8/255; NumPy only)."""
    if text is None:
        return None
    from audit.attacks import parse_eps

    return parse_eps(text)


def print_adversarial(doc: dict, out: str) -> None:
    """Robust accuracy (segmentation: robust mIoU) per attack and budget, one column per engine."""
    adv = doc["adversarial"]
    names = [e["name"] for e in adv["engines"]]
    key = "miou" if adv.get("metric") == "miou" else "accuracy"
    click.echo(f"adversarial audit of {doc['model']['name']} ({adv['gradients']['source']}: {adv['gradients']['description']})")
    if key == "miou":
        click.echo("clean mIoU: " + ", ".join(f"{n} {adv['clean_miou'][n] * 100:.1f}%" for n in names)
                   + "; pixel accuracy: " + ", ".join(f"{n} {adv['clean'][n] * 100:.1f}%" for n in names))
    else:
        click.echo("clean top-1: " + ", ".join(f"{n} {adv['clean'][n] * 100:.1f}%" for n in names))
    click.echo(f"{'attack':<12}{'eps':>10}  " + "".join(f"{n[:22]:>24}" for n in names) + f"{'success':>10}{'queries':>10}"
               + ("   (robust mIoU per engine)" if key == "miou" else ""))
    for c in adv["cells"]:
        eps = f"{c['eps'] * 255:.3g}/255" if c["norm"] == "linf" else f"{c['eps']:.3g}"
        accs = "".join(f"{c['engines'][n][key] * 100:>23.1f}%" for n in names)
        success = "-" if c["success_rate"] is None else f"{c['success_rate'] * 100:.1f}%"
        queries = "-" if c["queries_mean"] is None else f"{c['queries_mean']:.0f}"
        click.echo(f"{c['attack']:<12}{eps:>10}  {accs}{success:>10}{queries:>10}")
    v = doc["verdict"]
    click.echo(f"verdict: {v['status']}" + (f" ({'; '.join(v['reasons'])})" if v["reasons"] else ""))
    click.echo(f"results: {out}/results.json")
