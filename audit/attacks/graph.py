"""ONNX graphs rewritten into a form onnx2torch converts, without changing what they compute.

Each pass is generic (no exporter special cases) and is checked in tests against ONNX Runtime on the
original graph. `canonical_for_torch` applies them in order.
"""

from __future__ import annotations

from typing import Any


def canonical_for_torch(model: Any) -> Any:
    """`model` rewritten for onnx2torch: nodes in topological order, constants held by nodes as
    initializers. Modifies and returns `model`.

    Example:
        >>> module = onnx2torch.convert(canonical_for_torch(onnx.load("model.onnx")))  # doctest: +SKIP
    """
    return constants_as_initializers(toposorted(model))


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
        nodes = [type(n)() for n in ordered]
        for new, old in zip(nodes, ordered):
            new.CopyFrom(old)
        del graph.node[:]
        graph.node.extend(nodes)
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
        nodes = [type(n)() for n in kept]
        for new, old in zip(nodes, kept):
            new.CopyFrom(old)
        del graph.node[:]
        graph.node.extend(nodes)
    return model
