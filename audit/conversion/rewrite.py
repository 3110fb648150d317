"""ONNX graphs rewritten into a form onnx2torch converts, without changing what they compute.

Each pass is generic (no exporter special cases) and is checked in tests against ONNX Runtime on the
original graph. `canonical_for_torch` applies them in order, with those of `audit.conversion.opsets`
(op versions newer than onnx2torch knows).
"""

from __future__ import annotations

from typing import Any

from audit.conversion.opsets import (cast_like_resolved, default_opset, functions_expanded, opset_lowered, pad_axes_expanded,
                                  replace_nodes, split_sizes_explicit, value_types)


def canonical_for_torch(model: Any) -> Any:
    """`model` rewritten for onnx2torch: local functions inlined, standard ops onnx2torch lacks written
    out as the ONNX function that defines them (Gelu-20), CastLike as Cast, nodes of constants computed,
    Split's num_outputs as sizes, Pad's axes as pads for every dimension, the default domain's opset lowered to one onnx2torch converts (where ONNX's version converter can),
    nodes in topological order, constants held by nodes as initializers, Reshape's `allowzero=1` dropped
    where it changes nothing, LayerNormalization's normalised dimensions recorded where shape inference
    loses them. Returns the rewritten model (`model` itself is modified too, except by the
    inlining and the opset change). A graph these cannot make convertible comes back with its own
    opset, and onnx2torch names the op that stops it.

    Example:
        >>> module = onnx2torch.convert(canonical_for_torch(onnx.load("model.onnx")))  # doctest: +SKIP
    """
    model = cast_like_resolved(functions_expanded(functions_inlined(model)))
    model = opset_lowered(pad_axes_expanded(split_sizes_explicit(constants_folded(toposorted(model)))))
    return layer_norm_shapes_known(reshape_allowzero_cleared(constants_as_initializers(toposorted(model))))


def functions_inlined(model: Any) -> Any:
    """`model` with its model-local functions inlined (onnx2torch converts nodes of the standard domains
    only; an exporter may wrap a layer in a function of its own domain). Unchanged without functions.

    Example:
        >>> [n.op_type for n in functions_inlined(model).graph.node]  # doctest: +SKIP
        ['Conv', 'Relu', ...]
    """
    if not model.functions:
        return model
    from onnx.inliner import inline_local_functions

    return inline_local_functions(model)


# ops never folded: their value is not a function of their inputs, or folding gains nothing
_NOT_FOLDED = {"Constant", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
               "Bernoulli", "If", "Loop", "Scan"}


def constants_folded(model: Any) -> Any:
    """`model` (topologically sorted) with default-domain nodes whose inputs are all constants
    (initializers, Constant nodes, earlier folded values) replaced by initializers holding their value,
    computed by ONNX's reference evaluator. The graph computes the same (what ran per call is now done
    once); it removes ops onnx2torch or the version converter cannot handle when they only build
    constants, e.g. ConstantOfShape-20 making Swin's attention masks. Graph outputs stay nodes.

    Example:
        >>> [n.op_type for n in constants_folded(model).graph.node]  # doctest: +SKIP
        ['Conv', ...]
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    values = {t.name: t for t in graph.initializer}
    version = default_opset(model)
    outputs = {o.name for o in graph.output}
    kept, added = [], []
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output[0] not in outputs:
            try:
                values[node.output[0]] = numpy_helper.from_array(
                    ReferenceEvaluator(node, opsets={"": version}).run(None, {})[0], node.output[0])
            except Exception:  # a Constant the evaluator cannot read (sparse value, ...): keep the node
                pass
            kept.append(node)
            continue
        foldable = (node.domain in ("", "ai.onnx") and node.op_type not in _NOT_FOLDED and node.input
                    and all(i in values for i in node.input if i) and not outputs.intersection(node.output))
        result = _evaluated(node, values, version, ReferenceEvaluator) if foldable else None
        if result is None:
            kept.append(node)
            continue
        for name, array in zip(node.output, result):
            values[name] = numpy_helper.from_array(array, name)
            added.append(values[name])
    if added:
        graph.initializer.extend(added)
        used = {i for n in kept for i in n.input} | outputs
        replace_nodes(graph, [n for n in kept if n.op_type != "Constant" or n.output[0] in used])
    return model


def _evaluated(node: Any, values: dict[str, Any], version: int, evaluator: Any) -> list[Any] | None:
    """`node`'s outputs (NumPy arrays) on the constant `values`, or None if the evaluator fails."""
    import numpy as np
    from onnx import numpy_helper

    try:
        feeds = {i: numpy_helper.to_array(values[i]) for i in node.input if i}
        result = evaluator(node, opsets={"": version}).run(None, feeds)
    except Exception:  # an op or type the reference evaluator lacks: leave the node to the converter
        return None
    return [np.asarray(r) for r in result]


def toposorted(model: Any) -> Any:
    """`model` with its graph's nodes in topological order, which onnx2torch needs.

    ONNX Runtime's FP16 converter (exporters/precision.py `to_fp16`) appends the input / output Cast
    nodes at the end of the node list; ONNX Runtime does not care, onnx2torch does. Nodes whose inputs
    never become available (names from an enclosing graph) keep their relative order at the end.
    """
    graph = model.graph
    known = {""} | {i.name for i in graph.input} | {t.name for t in graph.initializer}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            ordered += pending
            break
        for n in ready:
            known.update(n.output)
        ordered += ready
        pending = [n for n in pending if not any(n is r for r in ready)]
    if [id(n) for n in ordered] != [id(n) for n in graph.node]:
        replace_nodes(graph, ordered)
    return model


def constants_as_initializers(model: Any) -> Any:
    """`model` (topologically sorted) with constants held by nodes turned into initializers, which
    onnx2torch needs for weights: `Constant` nodes, and `Identity` nodes that alias an initializer
    (PyTorch's TorchScript exporter, as timm's `onnx_export` calls it, stores equal tensors once, e.g.
    identical conv biases, and aliases the copies through Identity). Graph outputs stay nodes.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    kept = []
    for node in graph.node:
        name = node.output[0] if len(node.output) == 1 else None
        if name is None or name in outputs:
            kept.append(node)
        elif node.op_type == "Identity" and node.input[0] in inits:
            inits[name] = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[0]]), name)
            graph.initializer.append(inits[name])
        elif node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            inits[name] = numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), name)
            graph.initializer.append(inits[name])
        else:
            kept.append(node)
    if len(kept) != len(graph.node):
        replace_nodes(graph, kept)
    return model


def reshape_allowzero_cleared(model: Any) -> Any:
    """`model` with `allowzero=1` removed from Reshape nodes whose shape is an initializer holding no 0.

    allowzero only decides what a 0 in the shape means (copy the input's dimension, or an empty one); with
    no 0 the two readings are the same reshape. onnx2torch refuses allowzero=1, which PyTorch's dynamo
    exporter writes on every Reshape. Run after `constants_as_initializers`; other Reshapes are left.

    Example:
        >>> reshape_allowzero_cleared(model)  # doctest: +SKIP
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
            continue
        attrs = {a.name: a for a in node.attribute}
        if "allowzero" not in attrs or attrs["allowzero"].i == 0 or node.input[1] not in inits:
            continue
        if (numpy_helper.to_array(inits[node.input[1]]) != 0).all():
            node.attribute.remove(attrs["allowzero"])
    return model


def layer_norm_shapes_known(model: Any) -> Any:
    """`model` with a value_info giving the normalised (trailing) dimensions of each LayerNormalization
    input whose inferred shape has its rank but not those dimensions, taken from the node's Scale
    initializer (of that rank: the normalised shape itself). onnx2torch builds nn.LayerNorm from the
    inferred input shape and reads an unknown dimension as 0; shape inference loses them after Concat of
    computed shapes (Swin's patch merging from the TorchScript exporter). Annotation only: no node changes.

    Example:
        >>> layer_norm_shapes_known(onnx.load("swin_t.onnx"))  # doctest: +SKIP
    """
    graph = model.graph
    norms = [n for n in graph.node if n.op_type == "LayerNormalization" and n.domain in ("", "ai.onnx")]
    inits = {t.name: list(t.dims) for t in graph.initializer}
    if not any(len(n.input) > 1 and n.input[1] in inits for n in norms):
        return model
    types, known = value_types(model), {v.name for v in graph.input}
    for node in norms:
        given = types.get(node.input[0])
        scale = inits.get(node.input[1]) if len(node.input) > 1 else None
        if given is None or scale is None or node.input[0] in known or not given.tensor_type.HasField("shape"):
            continue
        dims = given.tensor_type.shape.dim
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1) % max(len(dims), 1)
        trailing = dims[axis:]
        if len(trailing) != len(scale) or all(d.HasField("dim_value") for d in trailing):
            continue
        for dim, size in zip(trailing, scale):
            dim.dim_value = size
        for old in [v for v in graph.value_info if v.name == node.input[0]]:
            graph.value_info.remove(old)
        graph.value_info.add(name=node.input[0]).type.CopyFrom(given)
    return model
