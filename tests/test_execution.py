"""The execution layer: work units decode each image once, the numbers equal a cell-by-cell reference,
and the main process holds one group of cells' metrics at a time."""

import gc
import weakref

import numpy as np
import pytest

import audit.execution.cells
from audit.api import AuditConfig, prepare, run_audit
from audit.results.cellstore import CellStore
from audit.execution.local import LocalExecutor
from audit.execution.units import WorkUnit, image_cells, plan_units, prepare_unit
from audit.metrics import make_metric
from audit.execution.cells import all_cells, cell_input, run_cells
from audit.tasks.preprocess import normalise

from .conftest import NORM

CORRUPTIONS = "gaussian_noise,contrast,motion_blur"


def config(model, task, data, out, **kw):
    base = dict(model=str(model), task=task, data=str(data), out=str(out), corruptions=CORRUPTIONS, severities=[1, 4],
                workers=0, progress=False, examples=0, report=False, overrides=dict(NORM))
    base.update(kw)
    return AuditConfig(**base)


def reference_cells(cfg):
    """The numbers computed the old way: cell by cell, in this process, one image per engine call."""
    setup = prepare(cfg)
    out = []
    for cell in all_cells(setup.corruptions, setup.severities):
        metric = make_metric(setup.dataset, with_masks=setup.with_masks)
        for index in range(len(setup.dataset)):
            _, x, meta = cell_input(setup.context, index, *cell)
            metric.update(index, setup.adapter.infer([x], [meta])[0])
        out.append((cell[0], cell[1], metric.compute()))
    return out


@pytest.mark.parametrize("case", ["cifar10", "classification-input", "coco"])
def test_units_give_the_numbers_of_a_cell_by_cell_reference(case, classifier_onnx, detector_onnx, cifar_dir, coco_dir,
                                                            tmp_path, tmp_path_factory):
    if case == "cifar10":  # batched (8 per engine call), a worker process, two cells per unit
        cfg = config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "a", workers=1, batch_size=8)
    elif case == "classification-input":  # corrupted after the resize (ImageNet-C's way), batches of 5
        from audit.datasets import synthetic

        folder = synthetic.write_image_folder(tmp_path_factory.mktemp("folder"), n_per_class=3, size=48, seed=6)
        cfg = config(classifier_onnx, "classification", folder, tmp_path / "a", batch_size=5, corrupt_at="input",
                     overrides=dict(NORM, input_size=(32, 32), resize="center_crop"))
    else:  # a torchvision detector: one image per engine call, corrupted at the original resolution
        cfg = config(detector_onnx, "coco", coco_dir, tmp_path / "a", overrides={"label_space": "index+background"})
    doc = run_audit(cfg).document
    assert [(c["corruption"], c["severity"], c["metrics"]) for c in doc["cells"]] == reference_cells(cfg)


def test_a_unit_decodes_each_image_once_for_all_its_cells(classifier_onnx, cifar_dir, tmp_path, monkeypatch):
    from audit.datasets import synthetic

    folder = synthetic.write_image_folder(tmp_path / "folder", n_per_class=2, size=48, seed=1)
    setup = prepare(config(classifier_onnx, "classification", folder, tmp_path / "o",
                           overrides=dict(NORM, input_size=(32, 32), resize="center_crop")))
    ds, decoded = setup.dataset, []
    real = type(ds).load_image
    monkeypatch.setattr(type(ds), "load_image", lambda self, i: decoded.append(i) or real(self, i))
    cells = tuple(all_cells(setup.corruptions, setup.severities))
    unit, prepared = prepare_unit(WorkUnit(cells, (0, 1, 2)), setup.context)
    assert sorted(decoded) == [0, 1, 2]  # 7 cells, each image decoded once
    for cell in cells:
        images = prepared[cell].images
        assert [im.dtype for im in images] == [np.uint8] * 3 and images[0].shape == (32, 32, 3)
        for k, index in enumerate(unit.indices):  # the pixels of the cell-by-cell path
            _, x, _ = cell_input(setup.context, index, *cell)
            assert np.array_equal(normalise(images[k], setup.spec), x)


def test_units_are_whole_batches_group_by_group():
    cells = all_cells(["fog", "snow"], [1, 2, 3])  # 7 cells
    units = plan_units(cells, 10, batch_size=4, cells_per_unit=3)
    assert [len(u.cells) for u in units] == [3] * 3 + [3] * 3 + [1] * 3
    assert [u.indices for u in units[:3]] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    assert [c for u in units[::3] for c in u.cells] == cells  # every cell once, in order


def test_main_process_holds_one_group_of_metrics(classifier_onnx, cifar_dir, tmp_path, monkeypatch):
    """Memory flat in the number of cells: finished cells are on disk only; in memory at most the group
    running and the group being saved, whatever the number of cells."""
    setup = prepare(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "o"))
    alive, most = weakref.WeakSet(), [0]

    def tracked(dataset, with_masks=False):
        metric = make_metric(dataset, with_masks=with_masks)
        alive.add(metric)
        gc.collect()  # count what is still referenced, not what waits for the cycle collector
        most[0] = max(most[0], len(alive))
        return metric

    monkeypatch.setattr(audit.execution.cells, "make_metric", tracked)
    cells = all_cells(setup.corruptions, setup.severities)  # 7 cells
    store = CellStore(tmp_path / "o")
    assert run_cells(cells, dataset=setup.dataset, adapter=setup.adapter, context=setup.context, store=store,
                     executor=LocalExecutor(0), batch_size=16, with_masks=False, cells_per_unit=2) is None
    assert all(store.has(c) for c in cells) and 2 <= most[0] <= 4 < len(cells)
    gc.collect()
    assert len(alive) == 0  # nothing kept after the run


def test_image_cells_of_a_prerendered_cell_read_its_own_file(classifier_onnx, tmp_path, monkeypatch):
    from audit.datasets import synthetic

    data = synthetic.write_cifar10(tmp_path / "cifar", n_train=4, n_test=6, seed=2)
    setup = prepare(config(classifier_onnx, "cifar10", data, tmp_path / "o"))
    ds = setup.dataset
    read = []
    monkeypatch.setattr(type(ds), "prerendered", lambda self: {("fog", 2)})
    monkeypatch.setattr(type(ds), "load_corrupted", lambda self, i, c, s: read.append((i, c, s)) or np.full((32, 32, 3), 7, np.uint8))
    out = image_cells(setup.context, 3, (("clean", 0), ("fog", 2), ("contrast", 1)))
    assert read == [(3, "fog", 2)] and (out[("fog", 2)][0] == 7).all()
    assert not np.array_equal(out[("clean", 0)][0], out[("contrast", 1)][0])


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_the_lookup_normaliser_equals_normalise_bit_for_bit(order):
    from audit.execution.normalise import Normaliser
    from audit.spec.model import ModelSpec

    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(30, 40),
                     mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channel_order=order)
    image = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image[0, :3] = [[0, 0, 0], [255, 255, 255], [1, 128, 254]]
    out, ref = Normaliser(spec)(image), normalise(image, spec)
    assert out.dtype == ref.dtype and out.shape == ref.shape and out.flags.c_contiguous
    assert out.tobytes() == ref.tobytes()
    flipped = image[:, :, ::-1]  # a strided view, as a crop hands over
    assert Normaliser(spec)(flipped).tobytes() == normalise(flipped, spec).tobytes()


def test_corruption_workers_yield_the_cpu_to_the_engine(classifier_onnx, cifar_dir, tmp_path, monkeypatch):
    """Where workers share the cores with a CPU engine, the engine's threads do not spin-wait and the
    workers run at a lower priority; without workers (or on a GPU provider) the engine spins as usual."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from types import SimpleNamespace

    import audit.execution.setup as setup_module
    from audit.execution.context import WORKER_NICENESS, init_worker

    seen = []
    real = setup_module.open_engine
    monkeypatch.setattr(setup_module, "open_engine", lambda path, **kw: seen.append(kw["spin"]) or real(path, **kw))
    for workers in (None, 1, 0):
        prepare(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / f"o{workers}", workers=workers))
    assert seen == [False, False, True]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=init_worker,
                             initargs=(SimpleNamespace(plugins=()),)) as pool:
        niceness = pool.submit(os.nice, 0).result()
    assert niceness == min(19, os.nice(0) + WORKER_NICENESS)
