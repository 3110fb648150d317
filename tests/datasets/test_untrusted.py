"""Readers of foreign data: nothing a file holds runs code, names leave their folder, or decodes unbounded."""

import json
import os
import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from audit.datasets import synthetic
from audit.datasets import open_dataset
from audit.errors import DatasetError
from audit.io.images import image_ok, read_image


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _one_line(err):
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_crafted_cifar_test_batch_runs_nothing(tmp_path):
    root = synthetic.write_cifar10(tmp_path / "c", n_train=2, n_test=4)
    marker = tmp_path / "pwned"
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _Touch(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError) as err:
        open_dataset("cifar10", root.parent)
    assert "test_batch" in _one_line(err) and "posix.system" in str(err.value)
    assert not marker.exists()


def test_a_crafted_cifar_meta_and_training_batch_run_nothing(tmp_path):
    from finetune.data import CifarTrain

    root = synthetic.write_cifar10(tmp_path / "c", n_train=2, n_test=4)
    marker = tmp_path / "pwned"
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": _Touch(marker)}))
    with pytest.raises(DatasetError, match="data_batch_1"):
        CifarTrain(root.parent)
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [_Touch(marker)]}))
    with pytest.raises(DatasetError, match="batches.meta"):
        open_dataset("cifar10", root.parent)
    assert not marker.exists()


def test_cifar_batches_of_the_wrong_shape_are_one_line(tmp_path):
    root = synthetic.write_cifar10(tmp_path / "c", n_train=2, n_test=4)
    cases = [({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8 N x 3072"),
             ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}, "non-negative integers"),
             ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
             ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]}, "outside the"),
             ([1, 2], "holds a list")]
    for batch, message in cases:
        (root / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
        with pytest.raises(DatasetError, match=message) as err:
            open_dataset("cifar10", root.parent)
        _one_line(err)


def test_cifar_c_npy_is_never_unpickled_and_must_be_uint8_images(tmp_path):
    root = synthetic.write_cifar10(tmp_path / "c", n_train=2, n_test=4)
    cc = tmp_path / "cc"
    cc.mkdir()
    marker = tmp_path / "pwned"
    np.save(cc / "fog.npy", np.array([_Touch(marker)], dtype=object), allow_pickle=True)
    np.save(cc / "snow.npy", np.zeros((20, 32, 32), np.uint8))
    ds = open_dataset("cifar10", root.parent, cifar_c=cc)
    with pytest.raises(DatasetError, match="fog.npy") as err:
        ds.load_corrupted(0, "fog", 1)
    assert "python objects" in _one_line(err).lower() and not marker.exists()
    with pytest.raises(DatasetError, match="uint8 N x 32 x 32 x 3"):
        ds.load_corrupted(0, "snow", 1)


def _coco_with(tmp_path, file_name):
    root = synthetic.write_coco(tmp_path / "coco", n_train=1, n_val=2, size=(40, 48))
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    doc["images"][0]["file_name"] = file_name
    ann.write_text(json.dumps(doc))
    return root, ann


@pytest.mark.parametrize("name", ["../../secret.png", "/etc/passwd", "a/../../secret.png", "C:\\secret.png"])
def test_coco_file_names_that_leave_the_image_folder_are_refused_naming_the_entry(tmp_path, name):
    root, ann = _coco_with(tmp_path, name)
    for skip_bad in (False, True):
        with pytest.raises(DatasetError) as err:
            open_dataset("coco", root, skip_bad=skip_bad)
        assert repr(name) in _one_line(err) and "file_name" in str(err.value)


def test_coco_file_name_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (40, 48)).save(secret)
    root, ann = _coco_with(tmp_path, "innocent.png")
    (root / "val2017" / "innocent.png").symlink_to(secret)
    with pytest.raises(DatasetError, match="leads out of"):
        open_dataset("coco", root)


def test_finetune_coco_reader_refuses_climbing_names(tmp_path):
    from finetune.data import open_split

    root, ann = _coco_with(tmp_path, "../../secret.png")
    with pytest.raises(DatasetError, match="climbs out"):
        open_split("coco", root, train=False)


def test_image_folder_and_segmentation_masks_linking_out_are_refused(tmp_path):
    outside = tmp_path / "private.png"
    Image.new("L", (32, 40)).save(outside)
    folder = synthetic.write_image_folder(tmp_path / "f", n_per_class=1, size=32)
    (folder / "circle" / "stolen.png").symlink_to(outside)
    with pytest.raises(DatasetError, match="stolen.png"):
        open_dataset("classification", folder)
    ade = synthetic.write_ade20k(tmp_path / "ade", n_train=1, n_val=2, size=(32, 40))
    mask = sorted((ade / "annotations" / "validation").glob("*.png"))[0]
    mask.unlink()
    mask.symlink_to(outside)
    with pytest.raises(DatasetError, match="label map"):
        open_dataset("ade20k", ade)


def _png_header_only(path, width, height):
    """A tiny PNG that claims width x height pixels (the IDAT holds almost nothing)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_refused_before_decoding_and_the_limit_can_be_raised(tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 200
    with pytest.raises(DatasetError, match="10000000000 pixels.*--max-image-pixels") as err:
        read_image(bomb)
    _one_line(err)
    assert "too many pixels" in image_ok(bomb)
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(big)
    with pytest.raises(DatasetError, match="over the limit of 50000"):
        read_image(big, max_pixels=50_000)
    assert read_image(big, max_pixels=60_000).shape == (200, 300, 3)
    # raised past Pillow's own bomb threshold (2 x 89M), our limit is the one that counts
    claims = _png_header_only(tmp_path / "claims.png", 20_000, 10_000)
    with pytest.raises(DatasetError) as err:
        read_image(claims, max_pixels=300_000_000)
    assert "over the limit" not in str(err.value) and "cannot read image" in _one_line(err)


def test_the_pixel_limit_reaches_the_readers_through_open_dataset(tmp_path):
    folder = synthetic.write_image_folder(tmp_path / "f", n_per_class=1, size=32)
    ds = open_dataset("classification", folder, max_image_pixels=1000)
    with pytest.raises(DatasetError, match="over the limit of 1000"):
        ds.load_image(0)
    assert len(open_dataset("classification", folder, max_image_pixels=1024)) == len(ds)
    ade = synthetic.write_ade20k(tmp_path / "ade", n_train=1, n_val=2, size=(32, 40))
    seg = open_dataset("ade20k", ade, max_image_pixels=1000)
    with pytest.raises(DatasetError, match="label map .* over the limit"):
        seg.target(0)


def test_a_png_text_chunk_bomb_is_one_line(tmp_path):
    # a zTXt chunk of a few kB that inflates to 50 MB: Pillow's text limits stop it, we report it
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    raw = good.read_bytes()
    text = b"Comment\x00\x00" + zlib.compress(b"A" * 50_000_000, 9)
    chunk = struct.pack(">I", len(text)) + b"zTXt" + text + struct.pack(">I", zlib.crc32(b"zTXt" + text))
    bomb = tmp_path / "text.png"
    bomb.write_bytes(raw[:33] + chunk + raw[33:])  # after the 8-byte signature and the 25-byte IHDR chunk
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DatasetError, match="Decompressed") as err:
        read_image(bomb)
    _one_line(err)


def test_pipes_and_devices_in_place_of_files_are_refused_without_blocking(tmp_path):
    root = synthetic.write_cifar10(tmp_path / "c", n_train=2, n_test=4)
    (root / "test_batch").unlink()
    os.mkfifo(root / "test_batch")  # a read would block forever
    with pytest.raises(DatasetError, match="not a regular file"):
        open_dataset("cifar10", root.parent)
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(DatasetError, match="not a regular file"):
        read_image(tmp_path / "pipe.png")
    assert image_ok(tmp_path / "pipe.png") == "not a regular file"
    with pytest.raises(DatasetError, match="not a regular file"):
        read_image("/dev/zero")
