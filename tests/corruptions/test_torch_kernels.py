"""The torch kernels (audit.corruptions.torch) against the NumPy kernels, parametrised over both tables.

Every torch kernel draws the NumPy kernel's random fields from the same Generator, so the two agree
up to float rounding: PSNR(torch, NumPy) >= 50 dB at every severity, for every profile, on a
224x224 photo (imagenet-c) and a 32x32 one (cifar-10-c), and at 480x640 for one severity (all five:
`-m slow`). Measured on CPU (torch 2.14.1, OpenCV 5.0, Pillow 13): the noises, frost, fog,
brightness, contrast, pixelate, JPEG, spatter and saturate are bit-identical; the filters and
resamplers (blurs, snow, elastic) differ by float summation order (an occasional value truncated to
the neighbouring integer): >= 62 dB on these images, and snow, whose threshold amplifies it, 61.6 dB
at worst over 100 seeds x 5 severities at 480x640. JPEG is bit-identical here because
torchvision and Pillow + OpenCV link the same libjpeg-turbo; nvJPEG on a CUDA tensor is not, which
the `gpu` test measures against the imagecorruptions reference as test_fidelity does.
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audit.corruptions import corrupt, get, names  # noqa: E402
from audit.corruptions.torch import corrupt_torch, fast_random_names, has_torch_kernel, torch_kernel_names  # noqa: E402
from audit.errors import ConfigError, CorruptionError  # noqa: E402

from .conftest import photo  # noqa: E402
from .test_fidelity import psnr, reference  # noqa: E402

NAMES = torch_kernel_names()
MIN_PSNR = 50.0  # dB, every kernel (measured minimum 61.6 dB, see the module docstring)
SIZES = {"imagenet-c": (224, 224), "cifar-10-c": (32, 32)}


def _pair(img, name, severity, profile="imagenet-c", seed=3, image_id="img/7.jpg"):
    ours = corrupt_torch(torch.from_numpy(img), name, severity, seed=seed, image_id=image_id, profile=profile).numpy()
    return ours, corrupt(img, name, severity, seed=seed, image_id=image_id, profile=profile)


def test_every_imagenet_c_corruption_has_a_torch_kernel():
    assert NAMES == names("benchmark,holdout")
    assert not has_torch_kernel("blue_noise_sample")  # ImageNet-C-bar: NumPy only


@pytest.mark.parametrize("profile", list(SIZES))
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_numpy_kernel(name, profile):
    img = photo(*SIZES[profile], which="coffee")
    for severity in range(1, 6):
        value = psnr(*_pair(img, name, severity, profile))
        assert value >= MIN_PSNR, f"{name} {profile} severity {severity}: PSNR {value:.1f} dB"


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_numpy_kernel_at_photo_size(name):
    value = psnr(*_pair(photo(480, 640), name, 3))
    assert value >= MIN_PSNR, f"{name} severity 3 at 480x640: PSNR {value:.1f} dB"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_numpy_kernel_at_photo_size_every_severity(name):
    img = photo(480, 640, which="chelsea")
    for severity in range(1, 6):
        value = psnr(*_pair(img, name, severity, seed=severity))
        assert value >= MIN_PSNR, f"{name} severity {severity} at 480x640: PSNR {value:.1f} dB"


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_device_input_and_determinism(name):
    img = torch.from_numpy(photo(40, 52))
    before = img.clone()
    out = corrupt_torch(img, name, 4, seed=5, image_id="a")
    assert out.shape == img.shape and out.dtype == torch.uint8 and out.device == img.device
    assert out.data_ptr() != img.data_ptr()
    assert torch.equal(img, before)
    assert torch.equal(out, corrupt_torch(img, name, 4, seed=5, image_id="a"))
    other = corrupt_torch(img, name, 4, seed=6, image_id="a")
    assert torch.equal(out, other) != get(name).random  # random kernels follow the seed, the others ignore it
    decoded_view = img.permute(2, 0, 1).contiguous().permute(1, 2, 0)  # as a worker gets it from decode_jpeg
    assert not decoded_view.is_contiguous() and torch.equal(corrupt_torch(decoded_view, name, 4, seed=5, image_id="a"), out)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_per_image(name):
    images = torch.stack([torch.from_numpy(photo(48, 64, which=w)) for w in ("astronaut", "coffee", "chelsea")])
    ids = ["a.png", "b.png", "c.png"]
    batch = corrupt_torch(images, name, 3, seed=2, image_id=ids)
    assert batch.shape == images.shape and batch.is_contiguous()
    for k in range(3):
        assert torch.equal(batch[k], corrupt_torch(images[k], name, 3, seed=2, image_id=ids[k])), f"{name}: image {k}"


def test_fast_random_kernels_are_the_noises():
    assert fast_random_names() == ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]


@pytest.mark.parametrize("name", fast_random_names())
def test_fast_random_matches_the_reference_in_distribution(name):
    # test_fidelity's measure for random corruptions: per severity, the mean PSNR between corrupted
    # and clean images over images and seeds within 0.5 dB of imagecorruptions'
    images = [photo(120, 160, which=w) for w in ("astronaut", "coffee", "chelsea")]
    for severity in range(1, 6):
        ours = [psnr(corrupt_torch(torch.from_numpy(img), name, severity, seed=k, image_id="f", fast_random=True).numpy(), img)
                for img in images for k in range(2)]
        ref = [psnr(reference(img, name, severity, seed=1000 + k), img) for img in images for k in range(2)]
        delta = np.mean(ours) - np.mean(ref)
        assert abs(delta) <= 0.5, f"{name} severity {severity}: mean PSNR differs by {delta:+.2f} dB"


@pytest.mark.parametrize("name", fast_random_names())
def test_fast_random_is_seeded_per_image(name):
    images = torch.stack([torch.from_numpy(photo(40, 52, which=w)) for w in ("astronaut", "coffee")])
    fast = corrupt_torch(images, name, 3, seed=4, image_id=["a", "b"], fast_random=True)
    assert torch.equal(fast[1], corrupt_torch(images[1], name, 3, seed=4, image_id="b", fast_random=True))
    assert not torch.equal(fast, corrupt_torch(images, name, 3, seed=5, image_id=["a", "b"], fast_random=True))
    assert not torch.equal(fast, corrupt_torch(images, name, 3, seed=4, image_id=["a", "b"]))  # not NumPy's draws


def test_parallel_shuffle_equals_the_sequential_scan():
    # glass blur's in-place scan (numba, the NumPy kernel's) against its pointer-jumping resolution
    from audit.corruptions.blur import _shuffle_pixels
    from audit.corruptions.torch.blur import _shuffle

    rng = np.random.default_rng(0)
    for delta, iterations, (h, w) in [(1, 2, (9, 13)), (4, 3, (40, 31)), (2, 1, (64, 64))]:
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        offsets = rng.integers(-delta, delta, size=(iterations, (h - 2 * delta) * (w - 2 * delta), 2), dtype=np.int64)
        expected = img.copy()
        _shuffle_pixels(expected, offsets, delta)
        ours = _shuffle(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(offsets)[None], delta)
        np.testing.assert_array_equal(ours[0].permute(1, 2, 0).numpy(), expected)
        assert not np.array_equal(expected, img)


def test_unknown_or_numpy_only_corruption_lists_the_torch_kernels():
    img = torch.zeros(32, 32, 3, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="unknown corruption 'glas_blur'; did you mean 'glass_blur'"):
        corrupt_torch(img, "glas_blur", 1)
    with pytest.raises(ConfigError, match="'blue_noise_sample' has no torch kernel; available: gaussian_noise, .*saturate$"):
        corrupt_torch(img, "blue_noise_sample", 1)


@pytest.mark.parametrize(
    "image, kwargs, error, message",
    [
        (np.zeros((32, 32, 3), np.uint8), {}, CorruptionError, "expected a torch.Tensor"),
        (torch.zeros(32, 32, 3), {}, CorruptionError, "expected a uint8 image tensor"),
        (torch.zeros(3, 32, 32, dtype=torch.uint8), {}, CorruptionError, "channels last.*permute"),
        (torch.zeros(31, 40, 3, dtype=torch.uint8), {}, CorruptionError, "40x31 is smaller than the 32x32"),
        (torch.zeros(2, 32, 32, 3, dtype=torch.uint8), {"image_id": "a"}, ConfigError, "needs a sequence of 2 image ids"),
        (torch.zeros(2, 32, 32, 3, dtype=torch.uint8), {"image_id": ["a"]}, ConfigError, "needs a sequence of 2"),
        (torch.zeros(32, 32, 3, dtype=torch.uint8), {"severity": 6}, ConfigError, "severity must be an integer"),
        (torch.zeros(32, 32, 3, dtype=torch.uint8), {"profile": "tiny"}, ConfigError, "unknown corruption profile 'tiny'"),
    ],
)
def test_bad_input_gets_one_line_errors(image, kwargs, error, message):
    severity = kwargs.pop("severity", 1)
    with pytest.raises(error, match=message) as info:
        corrupt_torch(image, "contrast", severity, **kwargs)
    assert "\n" not in str(info.value)


def test_audit_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import audit, audit.corruptions as c; assert len(c.names('all')) == 29\n"
        "from audit.errors import MissingDependencyError\n"
        "try:\n    import audit.corruptions.torch\nexcept MissingDependencyError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'robustaudit[gpu-corruptions]'" in done.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", NAMES)
def test_on_cuda(name):
    img = photo(224, 224, which="coffee")
    for severity in range(1, 6):
        out = corrupt_torch(torch.from_numpy(img).cuda(), name, severity, seed=3, image_id="g")
        assert out.is_cuda and out.dtype == torch.uint8
        ours = out.cpu().numpy()
        value = psnr(ours, corrupt(img, name, severity, seed=3, image_id="g"))
        if name == "jpeg_compression":  # nvJPEG is another codec: held to test_fidelity's measure instead
            assert psnr(ours, reference(img, name, severity)) >= 40, f"{name} severity {severity} on CUDA vs reference"
        else:
            assert value >= MIN_PSNR, f"{name} severity {severity} on CUDA: PSNR {value:.1f} dB"
