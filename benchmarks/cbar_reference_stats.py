"""Generate tests/corruptions/data/cbar_reference.json from the public ImageNet-C-bar reference code.

The reference (facebookresearch/augmentation-corruption, MIT licence) is not on PyPI; CI has no
network. Run this once by hand with the reference's imagenet_c_bar/ folder exported somewhere
outside this repository; the JSON it writes holds numbers only.

    git -C <clone> archive ba4d5a5 imagenet_c_bar | tar -x -C /tmp/cbar_ref
    python benchmarks/cbar_reference_stats.py /tmp/cbar_ref/imagenet_c_bar

Three kinds of record, on the recipe images of tests/corruptions/cbar_signature.py:
- "draws": corruptions that are deterministic given their random draws. The reference runs with
  `record=True`; its draws (converted to our kernels' parameters) and a signature of its output
  (8x8-pooled output and 256 exact pixels) are stored, so a test can render the same draws with
  our kernel and compare.
- "distribution": corruptions whose draws are whole noise fields. Per severity, the statistics of
  `cbar_signature.stats` for SEEDS[name] reference seeds.
- "photos": caustic_refraction and sparkles (the two with edge and rounding details) on each of
  PHOTOS at each of PHOTO_SIZES, every severity: the reference's draws (sparkles: its seed, from
  which its ray lengths replay) and a digest and block sums of its whole output. `--save-outputs
  FILE.npz` also keeps the reference's outputs, to see where a mismatch lies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.corruptions.cbar_signature import (PHOTO_SIZES, PHOTOS, STAT_NAMES, block_sums, clean_image,  # noqa: E402
                                              digest, photo_image, signature, sparkle_lengths, stats)

COMMIT = "ba4d5a5e9132fe98fcd4be1ac90abedbbb188794"
SEEDS = {"checkerboard_cutout": 48, "blue_noise_sample": 16, "brownish_noise": 16, "perlin_noise": 8}  # the slow one gets fewer
DRAWS = ("caustic_refraction", "sparkles", "inverse_sparkles", "plasma_noise", "cocentric_sine_waves",
         "single_frequency_greyscale")
DISTRIBUTION = ("perlin_noise", "blue_noise_sample", "brownish_noise", "checkerboard_cutout")
PHOTO_RECORDS = ("caustic_refraction", "sparkles")


def severities(ref_dir: Path) -> dict[str, list[float]]:
    rows = [line.strip().split(",") for line in (ref_dir / "imagenet_c_bar.csv").read_text().splitlines() if line.strip()]
    return {r[0]: [float(v) for v in r[1:]] for r in rows}


def our_params(name: str, p: dict, severity: float) -> dict:
    """The reference's recorded draws as our render_<name> keyword arguments."""
    if name == "caustic_refraction":
        return {"time": p["time"], "size": p["size"], "lens_scale": p["lens_scale"], "lighting": p["lighting_amount"]}
    if name == "sparkles":
        lengths = sparkle_lengths(int(p["seed"]), np.asarray(p["nrays"]).tolist(), np.asarray(p["radii"]).tolist(),
                                  p["randomness"])
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


def photo_draws(name: str, p: dict) -> dict:
    """The reference's draws for a "photos" record, compact: sparkles keeps the seed its ray lengths replay from."""
    if name == "sparkles":
        return {"centers": np.asarray(p["centers"]).tolist(), "seed": int(p["seed"]), "nrays": np.asarray(p["nrays"]).tolist(),
                "radii": np.asarray(p["radii"]).tolist(), "randomness": float(p["randomness"])}
    return our_params(name, p, 0.0)


def photo_records(transform_finder, name: str, sev: list[float], outputs: dict) -> list[dict]:
    """Whole-output records of the reference on each photo recipe, size and severity."""
    records = []
    for k, (which, size) in enumerate((w, n) for w in PHOTOS for n in PHOTO_SIZES):
        img = photo_image(which, size)
        for i, s in enumerate(sev):
            np.random.seed(5000 + 10 * k + i)
            out, p = transform_finder.transform_dict[name](s, size, record=True)(img.copy())
            outputs[f"{name}/{which}/{size}/{i + 1}"] = out
            records.append({"photo": which, "size": size, "severity": i + 1, "draws": photo_draws(name, p),
                            "sha256": digest(out), "blocks": block_sums(out)})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the reference's imagenet_c_bar/ folder (commit ba4d5a5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/corruptions/data/cbar_reference.json")
    parser.add_argument("--only", default="", help="comma-separated corruption names (default: all ten)")
    parser.add_argument("--photos-only", action="store_true", help="write only the 'photos' records")
    parser.add_argument("--save-outputs", type=Path, help="also save the reference's 'photos' outputs to this .npz")
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
    doc.setdefault("photos", {})
    only = set(filter(None, args.only.split(",")))
    outputs: dict[str, np.ndarray] = {}
    for name in [n for n in PHOTO_RECORDS if not only or n in only]:
        start = time.time()
        doc["photos_numpy"] = np.__version__  # the reference computes in float32 / float64 by NumPy's promotion rules
        doc["photos"][name] = photo_records(transform_finder, name, sev[name], outputs)
        print(f"{name} photos: {time.time() - start:.0f} s", flush=True)
        args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    if args.save_outputs:
        np.savez_compressed(args.save_outputs, **outputs)
    for name in [n for n in (*DRAWS, *DISTRIBUTION) if (not only or n in only) and not args.photos_only]:
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
