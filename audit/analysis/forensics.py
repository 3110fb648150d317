"""Where an INT8 (QDQ) model loses precision: per-tensor SQNR between an FP32 / INT8 pair, per condition.

Uses ONNX Runtime's QDQ debugging tools (`onnxruntime.quantization.qdq_loss_debug`) as a library:
both graphs are augmented to output every float tensor, run on the same inputs, and matched by
tensor name. Per tensor:

- local (`qdq_err`): SQNR of the tensor before its QuantizeLinear vs after its DequantizeLinear
  inside the INT8 graph: the error that quantising this tensor adds;
- accumulated (`xmodel_err`): SQNR of the FP32 model's tensor vs the INT8 graph's dequantised one.

One correction to ORT's pairing: its quantiser removes a Relu or Clip (ReLU6) that follows a Conv
and lets the quantised range clip the values, so the "pre-QDQ" tensor of such an output still holds
them. Its pre-QDQ values are clipped here as the removed node would, else every such tensor reads ~2 dB.

SQNR is energy-weighted: a tensor with one outlier channel keeps a high SQNR (the outlier carries
the energy) while the other channels lose their resolution; the damage then shows at the layer that
reads it. So layers are named by the compute node that produces a tensor in the INT8 graph, and
ranked by the accumulated SQNR they lose between their inputs and their output (`worst_added`: the
layers to keep in FP32, what `--keep-fp32 auto` keeps); the local SQNR is detail, since on a
residual network the worst local SQNR is often elsewhere than the damage.

Tensors quantised exactly are in no ranking (marked `exact`): those that an op selecting values
without arithmetic (MaxPool, Relu, Reshape, Flatten, ...) makes on its input's scale and zero point,
where re-quantising is lossless, and any whose local SQNR is at float32's noise floor on every
condition (e.g. a GlobalAveragePool over a 1x1 map); their SQNR changes are float noise.

Example:
    >>> images = condition_images("fp32.onnx", "cifar10", "data/cifar", ["gaussian_noise"], 3)  # doctest: +SKIP
    >>> doc = layer_errors("fp32.onnx", "int8.onnx", images)  # doctest: +SKIP
    >>> worst_nodes(doc, 1)  # the first layer to keep in FP32  # doctest: +SKIP
    ['/6/Conv']
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import ModelError

FORENSICS_KIND = "robustaudit.forensics"
FORENSICS_VERSION = 2  # 2: rows carry `exact`; exactly quantised tensors are left out of the rankings
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_Q_INPUT = "_QuantizeLinear_Input"  # ORT's name for a graph output's tensor before its QuantizeLinear
EXACT_DB = 120.0  # float32's own noise floor: a local SQNR above it is rounding, not quantisation
# ops whose output values are some of their input's (no arithmetic): on their input's scale, re-quantising is exact
_SELECTING = frozenset({"MaxPool", "GlobalMaxPool", "ReduceMax", "ReduceMin", "Relu", "Reshape", "Flatten", "Transpose",
                        "Squeeze", "Unsqueeze", "Slice", "Gather", "GatherElements", "Split", "Identity", "Pad", "Expand",
                        "Tile", "DepthToSpace", "SpaceToDepth", "TopK"})


def condition_images(model: str | Path, task: str, data: str | Path, corruptions: str, severity: int,
                     images: int = 32, seed: int = 0, profile: str | None = None) -> dict[str, list[np.ndarray]]:
    """Preprocessed network inputs (CHW float32) of the first `images` images, clean and under each corruption,
    made exactly as `audit run` makes them (same loader, corruption seed and profile, same preprocessing)."""
    from audit.api import AuditConfig, prepare
    from audit.execution.cells import load_cell_image
    from audit.tasks.preprocess import preprocess

    setup = prepare(AuditConfig(model=str(model), task=task, data=str(data), corruptions=corruptions,
                                severities=[severity], limit=None, seed=seed, profile=profile, progress=False))
    n = min(images, len(setup.dataset))
    cells = [("clean", 0)] + [(c, severity) for c in setup.corruptions]
    return {_label(c, s): [preprocess(load_cell_image(setup.context, i, c, s), setup.spec)[0] for i in range(n)]
            for c, s in cells}


def _label(corruption: str, severity: int) -> str:
    return "clean" if corruption == "clean" else f"{corruption}@{severity}"


def layer_errors(fp32: str | Path, int8: str | Path, images_by_condition: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """The forensics document of the pair: per tensor the local and accumulated SQNR (dB) per condition,
    layers ranked by local error, and by how much their error grows under each corruption.

    Raises `ModelError` for an INT8 model without QDQ nodes or a pair whose tensors do not match.
    """
    import onnx

    q_graph = onnx.load(str(int8), load_external_data=False).graph
    if not any(n.op_type == "QuantizeLinear" for n in q_graph.node):
        raise ModelError(f"{int8} has no QuantizeLinear nodes: not a QDQ INT8 model; export it with "
                         "`audit export --precision int8` (onnxruntime quantize_static, QDQ format)")
    f_graph = onnx.load(str(fp32), load_external_data=False).graph
    if any(n.op_type == "QuantizeLinear" for n in f_graph.node):
        raise ModelError(f"{fp32} has QuantizeLinear nodes: give the FP32 model first, then the INT8 one")
    from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

    with tempfile.TemporaryDirectory() as tmp:  # both graphs augmented once, run once per condition
        augmented = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            augmented[name] = str(Path(tmp) / f"{name}.onnx")
            modify_model_output_intermediate_tensors(str(path), augmented[name])
        per_condition = {cond: _errors(augmented, arrays, q_graph, f_graph, fp32, int8)
                         for cond, arrays in images_by_condition.items()}
    return _document(fp32, int8, per_condition, _producers(q_graph, f_graph), images_by_condition, _node_inputs(f_graph),
                     shared_scale(q_graph))


def _node_inputs(f_graph) -> dict[str, list[str]]:
    """FP32 node name -> its input tensors (weights excluded): where a layer's incoming error is read."""
    weights = {i.name for i in f_graph.initializer}
    return {n.name: [i for i in n.input if i and i not in weights] for n in f_graph.node}


def _errors(augmented: dict[str, str], arrays: list[np.ndarray], q_graph, f_graph, fp32, int8) -> dict[str, dict[str, float]]:
    """{tensor: {"qdq_err", "xmodel_err"}} of one condition, from the augmented graphs."""
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching)

    feeds = _feeds(f_graph, arrays)
    acts = [collect_activations(augmented[name], feeds) for name in ("fp32", "int8")]
    matching = create_activation_matching(acts[1], acts[0])
    matched = {k: v for k, v in matching.items() if v.get("float")}
    ends = {t.name for t in (*f_graph.input, *f_graph.output)}
    if not set(matched) - ends:
        raise ModelError(f"no inner tensor of {int8} matches one of {fp32} by name: the two files are not an FP32 / INT8 "
                         "pair exported from the same model; quantise this FP32 file and compare with that")
    for name, (low, high) in _removed_activations(q_graph, f_graph).items():
        if name in matched:
            matched[name]["pre_qdq"] = [np.clip(a, low, high) for a in matched[name]["pre_qdq"]]
    return compute_activation_error(matched)


def _feeds(f_graph, arrays: list[np.ndarray], batch: int = 16) -> list[dict[str, np.ndarray]]:
    """Input feeds: batches of images for NCHW models, one CHW image at a time for the others (read
    from the graph's first input that is not a weight)."""
    weights = {i.name for i in f_graph.initializer}
    first = next(i for i in f_graph.input if i.name not in weights)
    if len(first.type.tensor_type.shape.dim) != 4:
        return [{first.name: a} for a in arrays]
    return [{first.name: np.stack(arrays[i:i + batch])} for i in range(0, len(arrays), batch)]


def _removed_activations(q_graph, f_graph) -> dict[str, tuple[float | None, float | None]]:
    """Relu / Clip outputs of the FP32 graph that the INT8 graph makes with another op (the activation was
    folded into the quantised range), with the bounds the removed node clipped at (None: unbounded)."""
    kept = {o for n in q_graph.node if n.op_type in ("Relu", "Clip") for o in n.output}
    out = {}
    for node in f_graph.node:
        if node.output[0] in kept:
            continue
        if node.op_type == "Relu":
            out[node.output[0]] = (0.0, None)
        elif node.op_type == "Clip":
            out[node.output[0]] = _clip_bounds(node, f_graph)
    return out


def _clip_bounds(node, graph) -> tuple[float | None, float | None]:
    """A Clip's (min, max): attributes before opset 11, optional constant inputs since."""
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    values = {t.name: t for t in graph.initializer}
    values.update({n.output[0]: a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"})

    def bound(index: int, attr: str) -> float | None:
        if len(node.input) > index and node.input[index] in values:
            return float(numpy_helper.to_array(values[node.input[index]]))
        return float(attrs[attr]) if attr in attrs else None

    return bound(1, "min"), bound(2, "max")


def shared_scale(q_graph) -> set[str]:
    """Tensors of a QDQ graph quantised exactly: made by an op that selects values of its input
    (`_SELECTING`; Resize only by nearest neighbour) and quantised with its input's scale and zero point.

    Example:
        >>> shared_scale(onnx.load("int8.onnx").graph)  # doctest: +SKIP
        {'/maxpool/MaxPool_output_0', '/Flatten_output_0'}
    """
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in q_graph.initializer}
    q_params = {n.input[0]: tuple(n.input[1:3]) for n in q_graph.node if n.op_type == "QuantizeLinear"}
    dq_source = {n.output[0]: n.input[0] for n in q_graph.node if n.op_type == "DequantizeLinear"}
    q_source = {n.output[0]: n.input[0] for n in q_graph.node if n.op_type == "QuantizeLinear"}

    def params(tensor: str) -> list | None:
        names = q_params.get(tensor)
        return None if names is None or any(n and n not in consts for n in names) else [consts.get(n) for n in names]

    exact = set()
    for node in q_graph.node:
        selecting = node.op_type in _SELECTING or (node.op_type == "Resize" and _attr(node, "mode", b"nearest") == b"nearest")
        if not selecting or not node.input or not node.output:
            continue
        source = q_source.get(dq_source.get(node.input[0], ""), "")  # input <- DequantizeLinear <- QuantizeLinear <- tensor
        src, out = params(source), params(node.output[0])
        if src is not None and out is not None and all(_same(a, b) for a, b in zip(src, out)):
            exact.add(node.output[0].removesuffix(_Q_INPUT))
    return exact


def _attr(node, name: str, default):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.shape == b.shape and bool(np.all(a == b)))


def _producers(q_graph, f_graph) -> dict[str, tuple[str, str]]:
    """Tensor -> (node, op type) that computes it in the INT8 graph (QDQ nodes skipped), else in the FP32 graph."""
    out = {i.name: ("(input)", "Input") for i in f_graph.input}
    out.update({o: (n.name, n.op_type) for n in f_graph.node for o in n.output})
    for n in q_graph.node:
        if n.op_type not in _QDQ:
            out.update({o.removesuffix(_Q_INPUT): (n.name, n.op_type) for o in n.output})
    return out


def _document(fp32, int8, per_condition: dict, producers: dict, images: dict,
              node_inputs: dict[str, list[str]] | None = None, exact: set[str] = frozenset()) -> dict[str, Any]:
    conditions = list(per_condition)
    names = [t for t in per_condition[conditions[0]] if all(t in e for e in per_condition.values())]
    rows = []
    for t in names:
        node, op = producers.get(t, ("?", "?"))
        local = {c: round(per_condition[c][t]["qdq_err"], 3) for c in conditions}
        accumulated = {c: round(per_condition[c][t]["xmodel_err"], 3) for c in conditions}
        rows.append({"tensor": t, "node": node, "op_type": op, "local_db": local, "accumulated_db": accumulated,
                     "added_db": {c: _added(per_condition[c], (node_inputs or {}).get(node, []), accumulated[c])
                                  for c in conditions},
                     "growth_db": {c: round(local[conditions[0]] - local[c], 3) for c in conditions[1:]},
                     "exact": t in exact or all(v >= EXACT_DB for v in local.values())})
    base = conditions[0]
    ranked = [r for r in rows if not r["exact"]]
    return {"kind": FORENSICS_KIND, "version": FORENSICS_VERSION, "fp32": str(fp32), "int8": str(int8),
            "conditions": conditions, "num_images": {c: len(v) for c, v in images.items()},
            "tensors": rows,
            "worst_local": [r["tensor"] for r in sorted(ranked, key=lambda r: r["local_db"][base])],
            "worst_added": [r["tensor"] for r in sorted(ranked, key=lambda r: -(r["added_db"][base] or 0.0))],
            "worst_growth": {c: [r["tensor"] for r in sorted(ranked, key=lambda r: -r["growth_db"][c])]
                             for c in conditions[1:]}}


def _added(errors: dict, inputs: list[str], out_db: float) -> float | None:
    """How much accumulated SQNR a layer loses between its inputs and its output (dB): the error the layer
    adds, its own quantisation and the rounding of what it reads; None when no input is matched."""
    seen = [errors[i]["xmodel_err"] for i in inputs if i in errors]
    if not seen or not np.isfinite(out_db):
        return None
    base = min(min(seen), EXACT_DB)  # an exact input (inf dB) counts as float32's own noise floor
    return round(float(base - out_db), 3)


def worst_nodes(doc: dict[str, Any], k: int, by: str = "added") -> list[str]:
    """The compute nodes of the `k` tensors with the worst error on the first condition (no duplicates,
    exactly quantised tensors left out): `by` added (the accumulated SQNR the layer loses: the layers to
    keep in FP32) or local (the quantisation of the tensor itself)."""
    rows = {r["tensor"]: r for r in doc["tensors"]}
    seen: list[str] = []
    for row in (rows[t] for t in doc["worst_local" if by == "local" else "worst_added"]):
        if row["op_type"] != "Input" and row["node"] not in seen:
            seen.append(row["node"])
    return seen[:k]
