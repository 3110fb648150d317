"""Fidelity of the ImageNet-C-bar kernels to the reference (facebookresearch/augmentation-corruption
ba4d5a5), against numbers committed in data/cbar_reference.json (benchmarks/cbar_reference_stats.py).

- Deterministic given their draws (caustic_refraction, sparkles, inverse_sparkles, plasma_noise,
  cocentric_sine_waves, single_frequency_greyscale): our render of the reference's recorded draws
  matches its output exactly (PSNR on the 8x8-pooled output and on 256 exact pixels, floors in
  FLOORS / EXACT) at every severity.
- Noise fields (perlin_noise, blue_noise_sample, brownish_noise, checkerboard_cutout): over seeds,
  the mean of each statistic of cbar_signature.stats is within TOL_SIGMA standard errors (reference
  spread and ours, floor FLOOR / DEFAULT_FLOOR) of the reference's, at every severity.
- Whole outputs on photos (caustic_refraction, sparkles): our render of the reference's draws on
  three photos at three square sizes, every severity, is the reference's output value for value
  (sha256 of the uint8 output; block sums say where a mismatch lies).
- Each check is shown to fail for the wrong severity: the next one's parameters (draws), or the
  severity table shifted by one, pooled over severities (distribution).
- Bilinear sampling outside the image reads zero beyond every edge, as the reference's
  `bilinear_interpolation` (written out again, pixel by pixel, in this file).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from audit.corruptions import _cbar_fields as fields
from audit.corruptions import cbar, corrupt, get, names

from .cbar_signature import (STAT_NAMES, block_sums, clean_image, digest, photo_image, pixel_positions, pooled,
                             sparkle_lengths, stats)

DATA = json.loads(Path(os.environ.get("CBAR_REFERENCE", Path(__file__).parent / "data/cbar_reference.json")).read_text())
# (pooled, pixels) PSNR floors in dB. Measured: all six reproduce the reference's pixels exactly
# (pooled >= 98 dB: the stored means are rounded to 0.01; one grey level off in 256 pixels is 77 dB).
FLOORS: dict[str, tuple[float, float]] = {}
EXACT = (80.0, 80.0)
TOL_SIGMA, FLOOR = 4.0, {"mean_abs_diff": 0.5, "lowpass_share": 0.01}
DEFAULT_FLOOR = 1.0
OUR_SEEDS = {"checkerboard_cutout": 64}  # its few, large cells vary a lot; it is fast
DEFAULT_SEEDS = 16


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _render(name: str, params: dict) -> np.ndarray:
    out = getattr(cbar, f"render_{name}")(clean_image(), **{k: np.asarray(v) if isinstance(v, list) and k != "lengths" else v for k, v in params.items()})
    return np.clip(out, 0, 255).astype(np.uint8)


def test_the_suite():
    assert len(names("cbar")) == 10
    assert set(names("cbar")) == set(DATA["severities"])
    assert all(get(n).group == "cbar" and get(n).subset == "cbar" for n in names("cbar"))
    assert not set(names("cbar")) & set(names("benchmark"))
    for n in names("cbar"):
        assert get(n).params["imagenet-c"] == tuple(DATA["severities"][n]), n
    assert DATA["commit"].startswith("ba4d5a5")


@pytest.mark.parametrize("name", sorted(DATA["draws"]))
def test_deterministic_given_the_draws(name):
    rows, cols = pixel_positions()
    for severity, rec in enumerate(DATA["draws"][name], 1):
        out = _render(name, rec["params"])
        pooled_db = psnr(pooled(out), rec["pooled"])
        pixel_db = psnr(out[rows, cols], rec["pixels"])
        low_pooled, low_pixels = FLOORS.get(name, EXACT)
        assert pooled_db >= low_pooled and pixel_db >= low_pixels, f"{name} s{severity}: {pooled_db:.1f} / {pixel_db:.1f} dB"


@pytest.mark.parametrize("name", sorted(DATA["draws"]))
def test_draws_keep_the_severity(name):
    # our draw at the reference's severity gives the same severity-derived parameters it recorded
    ref_params = DATA["draws"][name]
    for severity in range(1, 6):
        ours = getattr(cbar, f"draw_{name}")(np.random.default_rng(0), get(name).param("imagenet-c", severity), 224, 224)
        for key in ("intensity", "lens_scale", "lighting", "exponent"):
            if key in ours:
                assert ours[key] == pytest.approx(ref_params[severity - 1]["params"][key]), (name, key, severity)


def _ours(name: str, severity: int) -> np.ndarray:
    img = clean_image()
    return np.array([stats(img, corrupt(img, name, severity, seed=k, image_id="cbar")) for k in range(OUR_SEEDS.get(name, DEFAULT_SEEDS))])


def _mismatch(ours: np.ndarray, ref: np.ndarray) -> list[str]:
    """Statistics whose means differ by more than the tolerance."""
    bad = []
    for j, stat in enumerate(STAT_NAMES):
        err = np.sqrt(ref[:, j].var(ddof=1) / len(ref) + ours[:, j].var(ddof=1) / len(ours))
        tol = max(TOL_SIGMA * err, FLOOR.get(stat, DEFAULT_FLOOR))
        if abs(ours[:, j].mean() - ref[:, j].mean()) > tol:
            bad.append(f"{stat}: ours {ours[:, j].mean():.3f} ref {ref[:, j].mean():.3f} (tol {tol:.3f})")
    return bad


@pytest.mark.parametrize("name", sorted(DATA["distribution"]))
def test_noise_fields_match_in_distribution(name):
    refs = [np.array(r) for r in DATA["distribution"][name]]
    ours = [_ours(name, s) for s in range(1, 6)]
    for s in range(5):
        assert not _mismatch(ours[s], refs[s]), f"{name} s{s + 1}: {_mismatch(ours[s], refs[s])}"
    # the check can fail: our severities shifted by one (a wrong severity table) are rejected
    assert _shift_detected(ours, refs), f"{name}: a shifted severity table passes"


def _shift_detected(ours: list[np.ndarray], refs: list[np.ndarray]) -> bool:
    """Whether ours at severity s + 1 differs from the reference at s, pooled over s = 1..4."""
    for j, stat in enumerate(STAT_NAMES):
        d = np.mean([ours[s + 1][:, j].mean() - refs[s][:, j].mean() for s in range(4)])
        err = np.sqrt(sum(refs[s][:, j].var(ddof=1) / len(refs[s]) + ours[s + 1][:, j].var(ddof=1) / len(ours[s + 1])
                          for s in range(4))) / 4
        if abs(d) > max(TOL_SIGMA * err, FLOOR.get(stat, DEFAULT_FLOOR)):
            return True
    return False


@pytest.mark.parametrize("name", sorted(DATA["draws"]))
def test_deterministic_check_rejects_the_wrong_severity(name):
    recs = DATA["draws"][name]
    rows, cols = pixel_positions()
    for s in range(4):
        params = dict(recs[s]["params"])
        wrong = dict(recs[s + 1]["params"])
        for key in ("intensity", "lens_scale", "lighting", "exponent"):
            if key in wrong:
                params[key] = wrong[key]
        if params == recs[s]["params"]:  # sparkles: the severity is the radius, in the ray lengths
            ratio = DATA["severities"][name][s + 1] / DATA["severities"][name][s]
            params["lengths"] = [list(np.asarray(l) * ratio) for l in params["lengths"]]
        out = _render(name, params)
        low_pooled, low_pixels = FLOORS.get(name, EXACT)
        assert psnr(pooled(out), recs[s]["pooled"]) < low_pooled or psnr(out[rows, cols], recs[s]["pixels"]) < low_pixels


def _photo_params(name: str, draws: dict) -> dict:
    if name == "sparkles":
        return {"centers": np.asarray(draws["centers"]),
                "lengths": sparkle_lengths(draws["seed"], draws["nrays"], draws["radii"], draws["randomness"])}
    return draws


@pytest.mark.parametrize("name", sorted(DATA["photos"]))
def test_whole_outputs_on_photos_are_the_references(name):
    images = {}
    mismatched = []
    for rec in DATA["photos"][name]:
        key = (rec["photo"], rec["size"])
        if key not in images:
            images[key] = photo_image(*key)
        out = getattr(cbar, f"render_{name}")(images[key], **_photo_params(name, rec["draws"]))
        out = np.clip(out, 0, 255).astype(np.uint8)
        if digest(out) != rec["sha256"]:
            diff = np.abs(np.array(block_sums(out)) - np.array(rec["blocks"]))
            mismatched.append(f"{key[0]} {key[1]}px s{rec['severity']}: blocks (row, col) {np.argwhere(diff).tolist()} "
                              f"differ by up to {diff.max()}")
    assert {r["size"] for r in DATA["photos"][name]} == {96, 160, 224} and len(DATA["photos"][name]) == 45
    assert not mismatched, f"{name}: {len(mismatched)} outputs differ from the reference: " + "; ".join(mismatched)


def _reference_bilinear(image: np.ndarray, py: float, px: float) -> np.ndarray:
    """The reference's bilinear_interpolation, one point at a time: a neighbour outside reads 0."""
    l, u = int(np.floor(py)), int(np.floor(px))
    h, w = image.shape[:2]

    def at(r: int, c: int) -> np.ndarray:
        return image[r, c] if 0 <= r < h and 0 <= c < w else np.zeros(image.shape[2])

    fy, fx = py - l, px - u
    top = at(l, u) * (1 - fx) + at(l, u + 1) * fx
    bottom = at(l + 1, u) * (1 - fx) + at(l + 1, u + 1) * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize(("py", "px", "expected"), [
    (-2.5, 1, 0.0), (-1.5, 1, 0.0), (-0.5, 1, 0.5),  # above the top edge
    (1, -2.5, 0.0), (1, -1.5, 0.0), (1, -0.5, 0.5),  # left of the left edge
    (3.5, 1, 0.5), (4.5, 1, 0.0), (5.5, 1, 0.0),  # below the bottom edge
    (1, 3.5, 0.5), (1, 4.5, 0.0), (1, 5.5, 0.0),  # right of the right edge
    (-2.5, -2.5, 0.0), (-0.5, -0.5, 0.25), (-2.5, 5.5, 0.0), (-0.5, 3.5, 0.25),  # corners
    (5.5, -2.5, 0.0), (3.5, -0.5, 0.25), (5.5, 5.5, 0.0), (3.5, 3.5, 0.25),
    (-7.25, 1, 0.0), (1.5, 1.5, 1.0),
])
def test_bilinear_reads_zero_beyond_every_edge(py, px, expected):
    ones = np.ones((4, 4, 3))
    got = fields.bilinear_zero(ones, np.array([[py]], float), np.array([[px]], float))
    assert got.shape == (1, 1, 3)
    np.testing.assert_allclose(got[0, 0], expected, atol=1e-12)


def test_bilinear_matches_the_references_formula_around_the_image():
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, (5, 6, 3))
    py, px = np.meshgrid(np.arange(-3.75, 8, 0.25), np.arange(-3.75, 9, 0.25), indexing="ij")
    got = fields.bilinear_zero(image, py, px)
    want = np.array([[_reference_bilinear(image, a, b) for a, b in zip(ra, rb)] for ra, rb in zip(py, px)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
