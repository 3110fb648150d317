"""File hashes, and a model's identity: the hash of every file it loads.

`sha256_of` is the one file-hash helper (models, checkpoints, plug-in files). `model_files` lists
what opening a model reads: an ONNX graph and its external data files (PyTorch's exporter writes the
weights beside the graph, `model.onnx.data`, so two different networks can share a byte-identical
`.onnx`), or a TensorRT engine and its spec sidecar (`model.engine.json`, which records the identity
of the ONNX source the engine was built from). `model_sha256` is the model's identity: the file's hash
when the model is one file, else a digest over every file's hash, so that
`--resume` and comparisons see a change in any of them (and not a rename).

Example:
    >>> model_sha256("model.onnx")  # doctest: +SKIP
    '3f1c...'
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

from audit.errors import ModelError

_CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks.

    Example:
        >>> sha256_of("model.onnx")  # doctest: +SKIP
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def model_files(path: str | Path) -> list[Path]:
    """Every file opening the model at `path` reads: the model first, then its companions in a fixed order.

    Example:
        >>> [p.name for p in model_files("resnet18.onnx")]  # doctest: +SKIP
        ['resnet18.onnx', 'resnet18.onnx.data']
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        companions = _onnx_external_files(path)
    elif (path.parent / f"{path.name}.json").is_file():  # a TensorRT engine's spec sidecar
        companions = [path.parent / f"{path.name}.json"]
    else:
        companions = []
    return [path, *companions]


def model_identity(path: str | Path) -> tuple[str, list[dict[str, str]]]:
    """The model's identity hash and, where it loads more than one file, each file and its hash."""
    files = model_files(path)
    hashes = [(f, sha256_of(f)) for f in files]
    if len(hashes) == 1:
        return hashes[0][1], []
    root = Path(path).parent
    rows = [{"path": _relative(f, root), "sha256": h} for f, h in hashes]
    # hashes only, in load order: renaming the model (and its sidecar) keeps its identity, and the graph's
    # own hash already covers the names it gives its data files
    digest = hashlib.sha256("\n".join(h for _, h in hashes).encode()).hexdigest()
    return digest, rows


def model_sha256(path: str | Path) -> str:
    """The model's identity: its file's hash, or a digest over all the files it loads (see `model_files`).

    Example:
        >>> model_sha256("model.onnx")  # doctest: +SKIP
    """
    return model_identity(path)[0]


def model_record(path: str | Path) -> dict[str, Any]:
    """The results document's view of the identity: `{"sha256": ...}`, plus `files` where the model loads several."""
    digest, rows = model_identity(path)
    return {"sha256": digest, **({"files": rows} if rows else {})}


def _relative(file: Path, root: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)


def _onnx_external_files(path: Path) -> list[Path]:
    """The external data files the graph's tensors point at (ONNX `location`, relative to the graph's folder)."""
    from audit.errors import require

    onnx = require("onnx", "cpu", "Reading ONNX models")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own types on a damaged file
        raise ModelError(f"{path} is not a valid ONNX model ({type(exc).__name__}); re-export it") from None
    locations: list[str] = []
    for tensor in _tensors(model.graph, model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location and location not in locations:
                locations.append(location)
    files = []
    for location in locations:
        file = path.parent / location
        if not file.is_file():  # ONNX Runtime would fail to open it later with a less clear message
            raise ModelError(f"{path} keeps weights in '{location}', which is not beside it ({file} not found); "
                             "copy the data file next to the graph")
        files.append(file)
    return files


def _tensors(graph: Any, model: Any = None) -> Iterator[Any]:
    """All tensors of a graph: initializers and tensor attributes, in subgraphs and functions too."""
    yield from graph.initializer
    for node in graph.node:
        yield from _attribute_tensors(node)
    if model is not None:
        for function in model.functions:
            for node in function.node:
                yield from _attribute_tensors(node)


def _attribute_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("g"):
            yield from _tensors(attr.g)
        for graph in attr.graphs:
            yield from _tensors(graph)
