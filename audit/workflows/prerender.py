"""Pre-render corrupted copies of an image folder or a COCO dataset (`audit corrupt`).

Writes OUT/<corruption>/<severity>/<relative path> for every image, keeping the file format. The
image id that seeds the corruption is the path relative to the image folder (the COCO file_name),
so these files hold exactly the pixels `audit run` makes on the fly with the same seed. Files are
written atomically; a second run skips what exists, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from audit.corruptions import corrupt, names
from audit.corruptions.api import check_severity
from audit.corruptions.plugins import load_files
from audit.errors import ConfigError, DatasetError
from audit.io.images import IMAGE_SUFFIXES, read_image, write_image
from audit.io.safety import atomic_write, check_inside, check_name, prepare_out, safe_join
from audit.io.safety import output_path as safe_output
from audit.io.progress import progress_bar


@dataclass
class PrerenderResult:
    """What `prerender` did: counts of files written and skipped, and the output folder."""

    out: Path
    images: int
    written: int = 0
    skipped: int = 0
    cells: list[tuple[str, int]] = field(default_factory=list)


def list_images(images: Path, coco: Path | None = None) -> list[str]:
    """Relative paths of the images to render: every image file under `images`, or the COCO json's."""
    if not images.is_dir():
        raise DatasetError(f"image folder not found: {images}")
    if coco is None:
        found = sorted(p.relative_to(images).as_posix() for p in images.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))
        for rel in found:
            check_inside(images, images / rel, "image", rel)
        if not found:
            raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {images}")
        return found
    try:
        doc = json.loads(Path(coco).read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file not found: {coco}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read COCO annotation file {coco} ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, an integer of 4300+ digits, nested too deep
        raise DatasetError(f"{coco} is not valid JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not all(isinstance(im, dict) for im in doc["images"]):
        raise DatasetError(f"{coco} is not a COCO annotation file (needs images[].file_name)")
    found = [im.get("file_name") for im in doc["images"]]
    missing = [f for f in found if not safe_join(images, f, f"{coco}: file_name").is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) listed in {coco} are missing under {images}, e.g. {missing[0]}")
    if not found:
        raise DatasetError(f"{coco} lists no images")
    return found


def dataset_images(data: Path, task: str | None, format: str | None, max_pixels: int | None) -> tuple[Path, list[str], dict | None]:
    """(image folder, image ids, COCO ground truth or None) of any dataset `audit run` reads (`--data`).

    The ids are the ones `audit run` seeds its corruptions with, so the files match an on-the-fly run.
    """
    from audit.datasets import open_dataset
    from audit.datasets.recognize import recognise_any

    task, format = recognise_any(data, task, format)
    ds = open_dataset(task, data, format=format, max_image_pixels=max_pixels)
    if ds.format == "cifar10":
        raise ConfigError("CIFAR-10 batches are not image files; the published CIFAR-10-C .npy files are its corrupted "
                          "copies (audit run --cifar-c)")
    rels = [ds.image_id(i) for i in range(len(ds))]
    first = str(ds._items[0]["path"])
    images = Path(first[: len(first) - len(rels[0])])  # the folder every id is relative to
    return images, rels, getattr(ds, "coco_gt", None)


def output_path(out: Path, corruption: str, severity: int, rel: str) -> Path:
    """Where the corrupted copy of image `rel` goes; `OutputError` if that would leave `out`."""
    return safe_output(out, corruption, str(severity), check_name(rel, "image"))


def _render_one(job: tuple) -> tuple[str, int]:
    images, out, rel, cells, seed, profile, reference, max_pixels, plugins = job
    load_files(plugins)  # a spawned worker starts with the built-ins only; once per process
    todo = [(c, s) for c, s in cells if not output_path(out, c, s, rel).exists()]
    if todo:
        image = read_image(safe_join(images, rel, "image"), max_pixels)
        for c, s in todo:
            write_image(output_path(out, c, s, rel), corrupt(image, c, s, seed=seed, image_id=rel, profile=profile,
                                                                 reference=reference))
    return rel, len(todo)


def prerender(
    images: str | Path | None,
    out: str | Path,
    *,
    corruptions: str | Sequence[str] = "benchmark",
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    seed: int = 0,
    profile: str = "imagenet-c",
    workers: int | None = None,
    coco: str | Path | None = None,
    progress: bool = True,
    reference: bool = False,
    max_image_pixels: int | None = None,
    data: str | Path | None = None,
    task: str | None = None,
    format: str | None = None,
    plugins: Sequence[str | Path] = (),
) -> PrerenderResult:
    """Write corrupted copies of every image for every (corruption, severity).

    With `data` (any dataset root `audit run` reads, its layout recognised or given by `task` /
    `format`) instead of `images`, the ids are the dataset's and detection ground truth is written
    to OUT/annotations/instances.json as a COCO document (file names relative to the image folder).

    Example:
        >>> prerender("val2017", "coco-c", corruptions="noise", severities=[1, 3])  # doctest: +SKIP
    """
    out = Path(out)
    plugins = tuple(str(p) for p in plugins)  # corruption plug-in files, imported here and by every worker
    load_files(plugins)
    cells = [(c, check_severity(s)) for c in names(corruptions) for s in sorted(set(severities))]
    if not cells:
        raise ConfigError("nothing to render: give --corruptions and --severities")
    if (images is None) == (data is None):
        raise ConfigError("give either --images (a folder of images) or --data (a dataset root), not both or neither")
    gt = None
    if data is not None:
        images, rels, gt = dataset_images(Path(data), task, format, max_image_pixels)
    else:
        images = Path(images)
        rels = list_images(images, Path(coco) if coco else None)
    workers = max(1, workers or os.cpu_count() or 1)
    result = PrerenderResult(out=out, images=len(rels), cells=cells)
    prepare_out(out)
    if gt is not None:
        text = json.dumps(gt).encode()
        atomic_write(safe_output(out, "annotations", "instances.json"), lambda fh: fh.write(text))
    if coco:
        data = Path(coco).read_bytes()
        atomic_write(safe_output(out, "annotations", Path(coco).name), lambda fh: fh.write(data))
    jobs = [(images, out, rel, cells, seed, profile, reference, max_image_pixels, plugins) for rel in rels]
    bar = progress_bar(len(rels) * len(cells), "corrupting", progress)
    try:
        for _, done in _map(jobs, workers):
            result.written += done
            result.skipped += len(cells) - done
            bar.update(len(cells))
    finally:
        bar.close()
    return result


def _map(jobs: list[tuple], workers: int) -> Iterator[tuple[str, int]]:
    if workers == 1:
        yield from map(_render_one, jobs)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_render_one, jobs, chunksize=1)

