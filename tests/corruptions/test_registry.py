"""Properties every registered corruption must have, parametrised over the registry.

A new corruption registered with `@corruption(...)` is picked up here without further code.
"""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from audit.corruptions import PROFILES, corrupt, corrupt_batch, get, names
from audit.corruptions.reference import reference_corrupt
from audit.errors import ConfigError, CorruptionError

from .conftest import photo

ALL = names("all")
IMAGENET_C = names("benchmark,holdout")  # those with an imagecorruptions reference
SEVERITIES = [1, 2, 3, 4, 5]


def test_registry_holds_the_protocol():
    assert len(names("benchmark")) == 15 and len(names("holdout")) == 4 and len(names("cbar")) == 10 and len(ALL) == 29
    assert names("noise") == ["gaussian_noise", "shot_noise", "impulse_noise"]
    assert names("blur") == ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"]
    assert names("weather") == ["snow", "frost", "fog", "brightness"]
    assert names("digital") == ["contrast", "elastic_transform", "pixelate", "jpeg_compression"]
    assert names("holdout") == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert names("fog,noise,fog") == ["gaussian_noise", "shot_noise", "impulse_noise", "fog"]
    assert names(["holdout", "contrast"]) == ["contrast", *names("holdout")]
    assert names("none") == []


def test_unknown_selection_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown corruption or set 'gausian_noise'.*gaussian_noise"):
        names("gausian_noise")
    with pytest.raises(ConfigError, match="did you mean 'glass_blur'"):
        corrupt(np.zeros((32, 32, 3), np.uint8), "glas_blur", 1)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_shape_dtype_and_input_untouched(name, profile, small_photo):
    before = small_photo.copy()
    for severity in SEVERITIES:
        out = corrupt(small_photo, name, severity, seed=3, image_id="a.jpg", profile=profile)
        assert out.shape == small_photo.shape and out.dtype == np.uint8
        assert not np.shares_memory(out, small_photo)
    np.testing.assert_array_equal(small_photo, before)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_a_seed(name, small_photo):
    a = corrupt(small_photo, name, 3, seed=7, image_id="img/1.png")
    b = corrupt(small_photo, name, 3, seed=7, image_id="img/1.png")
    np.testing.assert_array_equal(a, b)
    if get(name).random:
        assert not np.array_equal(a, corrupt(small_photo, name, 3, seed=8, image_id="img/1.png"))
        assert not np.array_equal(a, corrupt(small_photo, name, 3, seed=7, image_id="img/2.png"))
    else:
        np.testing.assert_array_equal(a, corrupt(small_photo, name, 3, seed=8, image_id="other"))


def _corrupt_one(args):
    image, name, image_id = args
    return corrupt(image, name, 2, seed=11, image_id=image_id)


def test_independent_of_batch_and_process():
    images = [photo(40, 52), photo(33, 47, "coffee"), photo(64, 64, "chelsea")]
    ids = ["a.png", "b.png", "c.png"]
    with ProcessPoolExecutor(max_workers=2) as pool:
        for name in ALL:
            single = [corrupt(im, name, 2, seed=11, image_id=i) for im, i in zip(images, ids)]
            batch = corrupt_batch(images[::-1], name, 2, seed=11, image_ids=ids[::-1])[::-1]
            remote = list(pool.map(_corrupt_one, [(im, name, i) for im, i in zip(images, ids)]))
            for s, b, r in zip(single, batch, remote):
                np.testing.assert_array_equal(s, b)
                np.testing.assert_array_equal(s, r)


def _deviation(a, b):
    return float(np.abs(a.astype(np.float64) - b).mean())


def _monotonic(values, slack=0.0):
    return all(later >= earlier - slack for earlier, later in zip(values, values[1:]))


@pytest.mark.parametrize("name", IMAGENET_C)
def test_stronger_with_severity_where_the_reference_is(name):
    img = photo(96, 128)
    seeds = range(1 if not get(name).random else 3 if name == "glass_blur" else 10)
    ours = [np.mean([_deviation(corrupt(img, name, s, seed=k, image_id="m"), img) for k in seeds]) for s in SEVERITIES]
    ref = [np.mean([_deviation(reference_corrupt(img, name, s, seed=k), img) for k in seeds]) for s in SEVERITIES]
    # Where the reference grows with severity (most corruptions), ours must too; a few (frost's
    # texture, spatter's switch to mud) are not monotonic in the reference either.
    if _monotonic(ref, slack=0.02 * max(ref)):
        assert _monotonic(ours, slack=0.05 * max(ours)), f"{name}: {ours} (reference {ref})"
    assert ours[-1] > 0.5, f"{name} at severity 5 barely changes the image"


@pytest.mark.parametrize("name", names("cbar"))
def test_cbar_stronger_with_severity(name):
    # ImageNet-C-bar's reference is not importable here (see test_cbar.py); its published severities
    # are chosen to grow in strength, so ours must, on the mean over 10 seeds.
    img = photo(96, 128)
    ours = [np.mean([_deviation(corrupt(img, name, s, seed=k, image_id="m"), img) for k in range(10)]) for s in SEVERITIES]
    assert _monotonic(ours, slack=0.05 * max(ours)), f"{name}: {ours}"
    assert ours[-1] > 0.5, f"{name} at severity 5 barely changes the image"


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1), (33, 47, 3)])
@pytest.mark.parametrize("name", ALL)
def test_grayscale_and_odd_sizes(name, shape):
    img = photo(shape[0], shape[1])[..., 0]
    img = img.reshape(shape) if len(shape) == 3 and shape[2] == 1 else (photo(*shape[:2]) if len(shape) == 3 else img)
    out = corrupt(img, name, 4, seed=1, image_id="g")
    assert out.shape == (*shape[:2], 3) and out.dtype == np.uint8


def test_cifar_profile_accepts_32x32_and_imagenet_refuses_smaller():
    tiny = photo(32, 32)
    for name in ALL:
        assert corrupt(tiny, name, 5, profile="cifar-10-c").shape == (32, 32, 3)
    with pytest.raises(CorruptionError, match="31x31 is smaller than the 32x32.*cifar-10-c"):
        corrupt(photo(31, 31), "fog", 1)


@pytest.mark.parametrize("severity", [0, 6, "3", True, 2.0])
def test_bad_severity(severity, small_photo):
    with pytest.raises(ConfigError, match="severity must be an integer from 1 to 5"):
        corrupt(small_photo, "contrast", severity)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((40, 40, 3), np.float32), "expected a uint8 image"),
        (np.zeros((40, 40, 4), np.uint8), "drop alpha channels"),
        (np.zeros((40,), np.uint8), "expected an HxW or HxWx3 image"),
        ([[0] * 40] * 40, "expected a NumPy array"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(CorruptionError, match=message):
        corrupt(image, "contrast", 1)


def test_unknown_profile(small_photo):
    with pytest.raises(ConfigError, match="unknown corruption profile 'cifar'.*imagenet-c"):
        corrupt(small_photo, "contrast", 1, profile="cifar")


def test_batch_needs_one_id_per_image(small_photo):
    with pytest.raises(ConfigError, match="2 images but 1 image ids"):
        corrupt_batch([small_photo, small_photo], "contrast", 1, image_ids=["a"])


def test_reference_code_path_is_seeded_and_is_the_reference(small_photo):
    a = corrupt(small_photo, "shot_noise", 2, seed=4, image_id="x", reference=True)
    np.testing.assert_array_equal(a, corrupt(small_photo, "shot_noise", 2, seed=4, image_id="x", reference=True))
    assert not np.array_equal(a, corrupt(small_photo, "shot_noise", 2, seed=5, image_id="x", reference=True))
    np.testing.assert_array_equal(corrupt(small_photo, "contrast", 2, reference=True), reference_corrupt(small_photo, "contrast", 2))
    with pytest.raises(ConfigError, match="imagenet-c constants only"):
        corrupt(photo(32, 32), "fog", 1, profile="cifar-10-c", reference=True)
