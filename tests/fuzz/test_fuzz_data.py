"""Fuzz the dataset readers: COCO json, CIFAR batches, CIFAR-10-C .npy, images, label maps.

Property: only robustaudit's own errors come out (one line), never another exception, never a hang.
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from audit.datasets import synthetic
from audit.datasets import open_dataset
from audit.datasets.coco import CocoDataset
from audit.io.images import image_ok, read_image
from audit.workflows.prerender import list_images
from tests.fuzz.helpers import BUDGETS, SCALARS, VALUES, fuzz_settings, only_our_errors, scratch

_COCO_KEYS = ["images", "annotations", "categories", "id", "file_name", "image_id", "category_id", "bbox", "area",
              "iscrowd", "segmentation", "name", "size", "counts"]
COCO_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.sampled_from(_COCO_KEYS) | st.text(max_size=5), inner, max_size=6),
                           max_leaves=25)


def _coco_folder(tmp_path):
    root = scratch(tmp_path)
    synthetic.write_coco(root, n_train=1, n_val=2, size=(32, 40))
    return root, root / "annotations" / "instances_val2017.json"


def _mutations(doc: dict):
    """A valid COCO document with one value somewhere replaced by a random one."""
    paths = [("images", 0, "id"), ("images", 0, "file_name"), ("annotations", 0, "bbox"), ("annotations", 0, "bbox", 2),
             ("annotations", 0, "category_id"), ("annotations", 0, "segmentation"), ("annotations", 0, "image_id"),
             ("annotations", 0, "area"), ("annotations", 0, "iscrowd"), ("categories", 0, "id"), ("categories", 0, "name"),
             ("categories",), ("images",), ("annotations", 0)]
    return st.tuples(st.sampled_from(paths), VALUES)


def _apply(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _use_coco(ann, images):
    ds = CocoDataset(ann, images)
    ds.check_files()
    gt = ds.coco_gt
    from faster_coco_eval import COCO

    COCO(gt)  # the evaluator indexes what the reader accepted
    list_images(images, ann)


@BUDGETS
def test_coco_reader_random_json(budget, tmp_path):
    root, ann = _coco_folder(tmp_path)

    @fuzz_settings(budget)
    @given(COCO_VALUES)
    def check(doc):
        ann.write_text(json.dumps(doc))
        only_our_errors(_use_coco, ann, root / "val2017")

    check()


@BUDGETS
def test_coco_reader_one_value_changed(budget, tmp_path):
    root, ann = _coco_folder(tmp_path)
    valid = json.loads(ann.read_text())

    @fuzz_settings(budget)
    @given(_mutations(valid))
    def check(change):
        doc = _apply(json.loads(json.dumps(valid)), *change)
        ann.write_text(json.dumps(doc))
        only_our_errors(_use_coco, ann, root / "val2017")

    check()


@BUDGETS
def test_coco_reader_random_bytes_and_truncations(budget, tmp_path):
    root, ann = _coco_folder(tmp_path)
    valid = ann.read_bytes()

    @fuzz_settings(budget)
    @given(st.binary(max_size=300) | st.integers(0, len(valid)).map(lambda n: valid[:n])
           | st.sampled_from([b"[" * 100_000, b"1" * 5000, b'{"images": 1e999999}', b"\xff\xfe{"]))
    def check(raw):
        ann.write_bytes(raw)
        only_our_errors(_use_coco, ann, root / "val2017")

    check()


def _cifar_folder(tmp_path):
    root = scratch(tmp_path)
    folder = synthetic.write_cifar10(root, n_train=2, n_test=4)
    return root, folder / "test_batch"


ARRAYS = st.builds(lambda dtype, shape: np.zeros(shape, dtype), st.sampled_from(["u1", "i8", "f4", "O", "U3", "?"]),
                   st.lists(st.integers(0, 3100), max_size=3).map(tuple).filter(lambda s: np.prod(s) <= 100_000))


@BUDGETS
def test_cifar_batch_random_structures_bytes_and_truncations(budget, tmp_path):
    root, batch = _cifar_folder(tmp_path)
    valid = batch.read_bytes()
    structures = st.recursive(SCALARS | st.binary(max_size=8) | ARRAYS,
                              lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                              | st.dictionaries(st.sampled_from([b"data", b"labels", "data", b"x"]), inner, max_size=3),
                              max_leaves=8)

    @fuzz_settings(budget)
    @given(st.one_of(structures.flatmap(lambda s: st.sampled_from([2, 4, 5]).map(lambda p: pickle.dumps(s, protocol=p))),
                     st.binary(max_size=200), st.integers(0, len(valid)).map(lambda n: valid[:n])))
    def check(raw):
        batch.write_bytes(raw)
        ds = only_our_errors(open_dataset, "cifar10", root)
        if ds is not None:
            ds.load_image(0), ds.target(0)

    check()


@BUDGETS
def test_cifar_c_npy_random_arrays_bytes_and_truncations(budget, tmp_path):
    root, _ = _cifar_folder(tmp_path)
    cc = scratch(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.zeros((20, 32, 32, 3), np.uint8))
    valid = buf.getvalue()

    def saved(arr):
        out = io.BytesIO()
        np.save(out, arr, allow_pickle=True)
        return out.getvalue()

    @fuzz_settings(budget)
    @given(st.one_of(ARRAYS.map(saved), st.binary(max_size=200), st.integers(0, len(valid)).map(lambda n: valid[:n]),
                     st.binary(max_size=60).map(lambda b: b"\x93NUMPY\x01\x00" + b)))
    def check(raw):
        from audit.datasets import classification

        classification._NPY_CACHE.clear()
        (cc / "fog.npy").write_bytes(raw)
        ds = open_dataset("cifar10", root, cifar_c=cc)
        only_our_errors(ds.load_corrupted, 0, "fog", 1)

    check()


def _encoded(fmt: str, mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return buf.getvalue()


_KINDS = [("PNG", "L"), ("PNG", "RGB"), ("PNG", "P"), ("PNG", "I;16"), ("PNG", "1"), ("PNG", "RGBA"), ("BMP", "RGB"),
          ("BMP", "L"), ("TIFF", "RGB"), ("TIFF", "I;16"), ("TIFF", "F"), ("GIF", "P"), ("JPEG", "RGB"), ("JPEG", "L"),
          ("WEBP", "RGB")]
IMAGES = st.builds(lambda kind, size: _encoded(*kind, size), st.sampled_from(_KINDS),
                   st.tuples(st.integers(1, 40), st.integers(1, 40)))


def _damaged(raw: bytes):
    return st.one_of(st.just(raw), st.integers(0, len(raw)).map(lambda n: raw[:n]),
                     st.tuples(st.integers(0, max(0, len(raw) - 1)), st.binary(min_size=1, max_size=8)).map(
                         lambda c: raw[:c[0]] + c[1] + raw[c[0] + len(c[1]):]))


@BUDGETS
def test_image_reader_random_bytes_and_damaged_files(budget, tmp_path):
    folder = scratch(tmp_path)

    @fuzz_settings(budget)
    @given(st.binary(max_size=300) | IMAGES.flatmap(_damaged), st.sampled_from(["png", "jpg", "bmp", "tif", "webp"]))
    def check(raw, suffix):
        path = folder / f"a.{suffix}"
        path.write_bytes(raw)
        only_our_errors(read_image, path)
        assert image_ok(path) is None or isinstance(image_ok(path), str)

    check()


@BUDGETS
def test_label_maps_random_bytes_and_damaged_pngs(budget, tmp_path):
    root = scratch(tmp_path)
    synthetic.write_ade20k(root, n_train=1, n_val=1, size=(24, 32))
    mask = next((root / "annotations" / "validation").glob("*.png"))
    ds = open_dataset("ade20k", root)

    @fuzz_settings(budget)
    @given(st.binary(max_size=300) | IMAGES.flatmap(_damaged))
    def check(raw):
        mask.write_bytes(raw)
        ds._labels.maps.clear()
        only_our_errors(ds.target, 0)

    check()
