"""Generate tests/corruptions/data/cbar_reference.json from the public ImageNet-C-bar reference code.

The reference (facebookresearch/augmentation-corruption, MIT licence) is not on PyPI; CI has no
network. Run this once by hand with the reference's imagenet_c_bar/ folder exported somewhere
outside this repository; the JSON it writes holds numbers only.

    git -C <clone> archive ba4d5a5 imagenet_c_bar | tar -x -C /tmp/cbar_ref
    python benchmarks/cbar_reference_stats.py /tmp/cbar_ref/imagenet_c_bar

Two kinds of record, on the recipe image of tests/corruptions/cbar_signature.py (224x224):
- "draws": corruptions that are deterministic given their random draws. The reference runs with
  `record=True`; its draws (converted to our kernels' parameters) and a signature of its output
  (8x8-pooled output and 256 exact pixels) are stored, so a test can render the same draws with
  our kernel and compare.
- "distribution": corruptions whose draws are whole noise fields. Per severity, the statistics of
  `cbar_signature.stats` for SEEDS[name] reference seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.corruptions.cbar_signature import STAT_NAMES, clean_image, signature, stats  # noqa: E402

COMMIT = "ba4d5a5e9132fe98fcd4be1ac90abedbbb188794"
SEEDS = {"checkerboard_cutout": 48, "blue_noise_sample": 16, "brownish_noise": 16, "perlin_noise": 8}  # the slow one gets fewer
DRAWS = ("caustic_refraction", "sparkles", "inverse_sparkles", "plasma_noise", "cocentric_sine_waves",
         "single_frequency_greyscale")
DISTRIBUTION = ("perlin_noise", "blue_noise_sample", "brownish_noise", "checkerboard_cutout")


def severities(ref_dir: Path) -> dict[str, list[float]]:
    rows = [line.strip().split(",") for line in (ref_dir / "imagenet_c_bar.csv").read_text().splitlines() if line.strip()]
    return {r[0]: [float(v) for v in r[1:]] for r in rows}


def our_params(name: str, p: dict, severity: float) -> dict:
    """The reference's recorded draws as our render_<name> keyword arguments."""
    if name == "caustic_refraction":
        return {"time": p["time"], "size": p["size"], "lens_scale": p["lens_scale"], "lighting": p["lighting_amount"]}
    if name == "sparkles":
        rs = np.random.RandomState(seed=p["seed"])  # replays the reference's ray lengths
        lengths = [[max(1, r + p["randomness"] / 100.0 * r * rs.randn()) for _ in range(n)]
                   for n, r in zip(p["nrays"], p["radii"])]
        return {"centers": np.asarray(p["centers"]).tolist(), "lengths": lengths}
    if name == "inverse_sparkles":
        rs = np.random.RandomState(seed=p["seed"])
        r = p["radius"]
        lengths = [r + p["randomness"] / 100.0 * r * rs.randn() for _ in range(p["rays"])]
        return {"center": np.asarray(p["center"]).tolist(), "lengths": lengths, "exponent": (100 - p["amount"]) / 50.0}
    if name == "plasma_noise":
        return {k: float(p[k]) if k != "iterations" else int(p[k]) for k in ("time", "iterations", "sharpness", "scale", "intensity")}
    if name == "cocentric_sine_waves":
        return {"offset": np.asarray(p["offset"]).tolist(), "freq": p["freq"], "amplitude": p["amplitude"],
                "ring_width": p["ring_width"], "intensity": p["intensity"][0]}
    if name == "single_frequency_greyscale":
        return {"freq": np.asarray(p["freq"]).tolist(), "phase": p["phase"], "intensity": p["intensity"]}
    raise KeyError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the reference's imagenet_c_bar/ folder (commit ba4d5a5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/corruptions/data/cbar_reference.json")
    parser.add_argument("--only", default="", help="comma-separated corruption names (default: all ten)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.reference))
    import transform_finder  # the reference's own module, from the exported folder

    img = clean_image()
    sev = severities(args.reference)
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc.update({"reference": "facebookresearch/augmentation-corruption imagenet_c_bar", "commit": COMMIT,
                "script": "benchmarks/cbar_reference_stats.py", "image": "cbar_signature.clean_image()",
                "stat_names": STAT_NAMES, "severities": sev})
    doc.setdefault("draws", {})
    doc.setdefault("distribution", {})
    only = set(filter(None, args.only.split(",")))
    for name in [n for n in (*DRAWS, *DISTRIBUTION) if not only or n in only]:
        start = time.time()
        cls = transform_finder.transform_dict[name]
        if name in DRAWS:
            doc["draws"][name] = []
            for i, s in enumerate(sev[name]):
                np.random.seed(100 + i)
                out, p = cls(s, 224, record=True)(img.copy())
                doc["draws"][name].append({"params": our_params(name, p, s), **signature(out)})
        else:
            doc["distribution"][name] = []
            for i, s in enumerate(sev[name]):
                runs = []
                for k in range(SEEDS[name]):
                    np.random.seed(1000 * (i + 1) + k)
                    runs.append(np.round(stats(img, cls(s, 224)(img.copy())), 4).tolist())
                doc["distribution"][name].append(runs)
        print(f"{name}: {time.time() - start:.0f} s", flush=True)
        args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
