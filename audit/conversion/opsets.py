"""Graph nodes brought to op versions onnx2torch 1.5 converts, computing the same.

onnx2torch picks a converter per (op, version the graph's opset gives it) and knows versions up to
opset 17; PyTorch's default (dynamo) exporter writes opset 18+. Here: which nodes lack a converter
(`unconvertible`), ops written out as the ONNX function that defines them (`functions_expanded`),
CastLike as Cast, and the whole graph lowered with ONNX's version converter (`opset_lowered`).
`audit.conversion.rewrite.canonical_for_torch` applies them.
"""

from __future__ import annotations

from typing import Any


def default_opset(model: Any) -> int:
    """The version of the default ONNX domain ('' or 'ai.onnx') that `model` imports (0 if none)."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def unconvertible(model: Any, version: int | None = None) -> list[tuple[str, int]]:
    """(op type, op version) of the default-domain nodes of `model` that onnx2torch has no converter for
    when the graph imports opset `version` (the graph's own by default), e.g. [('ReduceMean', 18)].

    Example:
        >>> unconvertible(onnx.load("resnet18-dynamo.onnx"))  # doctest: +SKIP
        [('ReduceMean', 18)]
    """
    from onnx import defs
    from onnx2torch.node_converters.registry import get_converter

    version = default_opset(model) if version is None else version
    missing = []
    for op in sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}):
        try:
            get_converter(op, version)
        except NotImplementedError:
            try:
                since = defs.get_schema(op, max_inclusive_version=version).since_version
            except Exception:  # an op ONNX does not define at this opset
                since = version
            missing.append((op, since))
    return missing


# onnx2torch 1.5 converts opsets 9 to 17 (LayerNormalization-17 is its newest standard op); lower bound
# of the search below: older targets gain nothing and the version converter's downward adapters end there
LOWEST_TARGET = 11


def opset_lowered(model: Any) -> Any:
    """`model` converted down to the highest default-domain opset at which onnx2torch has a converter for
    every node, when the graph's own opset lacks some (PyTorch's dynamo exporter writes opset 18+:
    ReduceMean-18 with axes as an input, Reshape-19, Shape-19, ...).

    ONNX's version converter does the lowering and checks each op's adapter. Nodes that use nothing
    their newer version added (`same_as_older`: Pad-19 without axes, Split-18 without num_outputs) pass
    through it untouched, since it has no adapter for them. Where it fails for every candidate opset,
    or the result still has nodes without a converter, `model` comes back unchanged (and onnx2torch
    names the op that stops it).

    Example:
        >>> default_opset(opset_lowered(onnx.load("resnet18-dynamo.onnx")))  # doctest: +SKIP
        17
    """
    from onnx import helper, version_converter

    own = default_opset(model)
    if not own or not unconvertible(model):
        return model
    for target in range(own - 1, LOWEST_TARGET - 1, -1):
        if unconvertible(model, target):  # an op this target has no converter for: no use trying
            continue
        staged = type(model)()
        staged.CopyFrom(model)
        kept = [n for n in staged.graph.node if n.domain in ("", "ai.onnx") and same_as_older(n, target)]
        for node in kept:
            node.domain = _STAND_IN
        if kept:
            staged.opset_import.append(helper.make_opsetid(_STAND_IN, 1))
        try:
            lowered = version_converter.convert_version(staged, target)
        except Exception:  # no adapter for some op (or its inputs are not constant): try an older opset
            continue
        for node in lowered.graph.node:
            if node.domain == _STAND_IN:
                node.domain = ""
        imports = [o for o in lowered.opset_import if o.domain != _STAND_IN]
        del lowered.opset_import[:]
        lowered.opset_import.extend(imports)
        if default_opset(lowered) == target and not unconvertible(lowered):
            return lowered
    return model


_STAND_IN = "robustaudit.same-as-older"  # a private domain the version converter leaves alone


def same_as_older(node: Any, target: int) -> bool:
    """Whether default-domain `node` computes what its op computes at opset `target`, using nothing the
    newer versions added, for ops ONNX's version converter has no downward adapter for: Pad (18 added the
    `axes` input, 19 the 'wrap' mode; pads as an input since 11), Split (18 added `num_outputs`; split
    sizes as an input since 13).

    Example:
        >>> same_as_older(onnx.helper.make_node("Pad", ["x", "pads"], ["y"]), 17)
        True
    """
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "Pad":
        mode = attrs["mode"].s if "mode" in attrs else b"constant"
        return target >= 11 and (len(node.input) < 4 or not node.input[3]) and mode != b"wrap"
    if node.op_type == "Split":
        return target >= 13 and "num_outputs" not in attrs
    return False


def functions_expanded(model: Any) -> Any:
    """`model` with each default-domain node that onnx2torch has no converter for, and that ONNX defines
    as a function of other ops, replaced by that function's nodes (Gelu-20, which PyTorch's dynamo
    exporter writes for nn.GELU, becomes Div, Erf, Sum, Mul on constants). The function bodies are ONNX's
    own (`onnx.defs`), at the graph's opset; a node whose body needs input types that shape inference
    cannot give, or refers to attributes it cannot resolve, stays as it is.

    Example:
        >>> [n.op_type for n in functions_expanded(gelu_model).graph.node]  # doctest: +SKIP
        ['Constant', 'CastLike', ..., 'Erf', 'Sum', 'Mul', 'Mul']
    """
    version = default_opset(model)
    missing = {op for op, _ in unconvertible(model)} if version else set()
    if not missing:
        return model
    types = value_types(model)
    nodes, changed = [], False
    for k, node in enumerate(model.graph.node):
        body = _function_body(node, version, types) if node.op_type in missing and node.domain in ("", "ai.onnx") else None
        expanded = _instantiated(body, node, version, f"{node.name or node.op_type}.{k}/") if body is not None else None
        nodes.extend(expanded if expanded is not None else [node])
        changed = changed or expanded is not None
    if changed:
        replace_nodes(model.graph, nodes)
    return model


def value_types(model: Any) -> dict[str, Any]:
    """name -> onnx TypeProto of every value shape inference types in `model` (inputs, initializers,
    intermediate values, outputs); {} where inference fails (a graph over 2 GB, an unknown op)."""
    from onnx import helper, shape_inference

    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # inference is a help here, not a requirement
        return {}
    graph = inferred.graph
    types = {t.name: helper.make_tensor_type_proto(t.data_type, list(t.dims)) for t in graph.initializer}
    for v in [*graph.input, *graph.value_info, *graph.output]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
            types[v.name] = v.type
    return types


def _function_body(node: Any, version: int, types: dict[str, Any]) -> Any:
    """The FunctionProto that defines `node`'s op at opset `version` in ONNX, or None."""
    import onnx
    from onnx import defs

    try:
        schema = defs.get_schema(node.op_type, max_inclusive_version=version)
    except Exception:  # not a standard op
        return None
    if schema.has_context_dependent_function:
        if any(i and i not in types for i in node.input):
            return None
        try:
            raw = schema.get_context_dependent_function(node.SerializeToString(),
                                                        [types[i].SerializeToString() for i in node.input if i])
        except Exception:  # the builder refused this node's types or attributes
            return None
        body = onnx.FunctionProto()
        body.ParseFromString(raw)
    elif schema.has_function:
        body = schema.function_body
    else:
        return None
    if any(o.domain not in ("", "ai.onnx") for o in body.opset_import) or not body.node:
        return None
    return body


def _instantiated(body: Any, node: Any, version: int, prefix: str) -> list[Any] | None:
    """The nodes of function `body` called as `node`: formal inputs and outputs renamed to the node's,
    internal values prefixed with `prefix`, attribute references resolved from the node or the op's
    defaults. None when a reference has no value or the body holds subgraphs."""
    from onnx import defs

    names = {f: a for f, a in zip(body.input, node.input)} | {f: "" for f in body.input[len(node.input):]}
    names |= {f: a for f, a in zip(body.output, node.output)}
    given = {a.name: a for a in node.attribute}
    defaults = defs.get_schema(node.op_type, max_inclusive_version=version).attributes
    out = []
    for j, inner in enumerate(body.node):
        new = type(inner)()
        new.CopyFrom(inner)
        new.name = f"{prefix}{inner.name or inner.op_type + str(j)}"
        for field in (new.input, new.output):
            for i, name in enumerate(field):
                field[i] = names.get(name, f"{prefix}{name}" if name else "")
        for attr in new.attribute:
            if attr.type in (attr.GRAPH, attr.GRAPHS):
                return None
            if attr.ref_attr_name:
                source = given.get(attr.ref_attr_name)
                if source is None:
                    default = defaults.get(attr.ref_attr_name)
                    source = default.default_value if default is not None and default.default_value.type else None
                if source is None:
                    return None
                name = attr.name
                attr.CopyFrom(source)
                attr.name = name
        out.append(new)
    return out


def split_sizes_explicit(model: Any) -> Any:
    """`model` with each Split that gives `num_outputs` (Split-18) given its sizes as an input instead,
    where shape inference knows the split dimension: ceil(dim / num_outputs) each, the last one smaller,
    as ONNX defines it. The same split, which `same_as_older` then lets pass the version converter.

    Example:
        >>> split_sizes_explicit(model)  # doctest: +SKIP
    """
    import numpy as np
    from onnx import numpy_helper

    splits = [n for n in model.graph.node if n.op_type == "Split" and n.domain in ("", "ai.onnx")
              and any(a.name == "num_outputs" for a in n.attribute) and (len(n.input) < 2 or not n.input[1])]
    types = value_types(model) if splits else {}
    for k, node in enumerate(splits):
        attrs = {a.name: a for a in node.attribute}
        known = types.get(node.input[0])
        dims = known.tensor_type.shape.dim if known is not None and known.tensor_type.HasField("shape") else []
        axis = attrs["axis"].i if "axis" in attrs else 0
        if not dims or not -len(dims) <= axis < len(dims) or not dims[axis].HasField("dim_value"):
            continue
        size, parts = dims[axis].dim_value, attrs["num_outputs"].i
        chunk = -(-size // parts)
        sizes = [chunk] * (parts - 1) + [size - chunk * (parts - 1)]
        if parts != len(node.output) or min(sizes) < 0:
            continue
        name = f"{node.name or 'Split'}.{k}/sizes"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(sizes, np.int64), name))
        del node.input[1:]
        node.input.append(name)
        node.attribute.remove(attrs["num_outputs"])
    return model


def pad_axes_expanded(model: Any) -> Any:
    """`model` with each Pad that names its `axes` (Pad-18) given pads for every dimension instead, where
    pads and axes are constants and shape inference knows the input's rank: 0 before and after each
    dimension not in axes, as ONNX defines it. The same padding, which `same_as_older` then lets pass the
    version converter (it has no adapter for Pad below 18).

    Example:
        >>> pad_axes_expanded(model)  # doctest: +SKIP
    """
    import numpy as np
    from onnx import numpy_helper

    pads = [n for n in model.graph.node if n.op_type == "Pad" and n.domain in ("", "ai.onnx")
            and len(n.input) >= 4 and n.input[3]]
    if not pads:
        return model
    values = {t.name: t for t in model.graph.initializer}
    values.update({n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant"
                   for a in n.attribute if a.name == "value"})
    types = value_types(model)
    for k, node in enumerate(pads):
        known = types.get(node.input[0])
        if node.input[1] not in values or node.input[3] not in values or known is None \
                or not known.tensor_type.HasField("shape"):
            continue
        rank = len(known.tensor_type.shape.dim)
        given = numpy_helper.to_array(values[node.input[1]]).astype(np.int64).ravel()
        axes = numpy_helper.to_array(values[node.input[3]]).astype(np.int64).ravel()
        if not rank or len(given) != 2 * len(axes) or ((axes < -rank) | (axes >= rank)).any() \
                or len(set((axes % rank).tolist())) != len(axes):
            continue
        full = np.zeros(2 * rank, np.int64)
        full[axes % rank] = given[:len(axes)]
        full[rank + axes % rank] = given[len(axes):]
        name = f"{node.name or 'Pad'}.{k}/pads"
        model.graph.initializer.append(numpy_helper.from_array(full, name))
        node.input[1] = name
        del node.input[3:]
        while node.input and not node.input[-1]:  # a trailing empty constant_value input
            del node.input[-1]
    return model


def cast_like_resolved(model: Any) -> Any:
    """`model` with each CastLike whose second input has a known element type (shape inference) turned
    into Cast to that type, the same computation, which onnx2torch converts (ONNX's function bodies,
    e.g. Gelu's, cast their constants with CastLike).

    Example:
        >>> [n.op_type for n in cast_like_resolved(model).graph.node]  # doctest: +SKIP
        ['Cast', ...]
    """
    from onnx import helper

    like = [n for n in model.graph.node if n.op_type == "CastLike" and n.domain in ("", "ai.onnx")]
    if not like:
        return model
    types = value_types(model)
    for node in like:
        target = types.get(node.input[1])
        if target is None:
            continue
        cast = helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name,
                                to=target.tensor_type.elem_type)
        node.CopyFrom(cast)
    return model


def replace_nodes(graph: Any, nodes: list[Any]) -> None:
    """Sets `graph`'s node list to copies of `nodes` (protobuf lists hold copies, not references)."""
    copies = [type(n)() for n in nodes]
    for new, old in zip(copies, nodes):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(copies)
