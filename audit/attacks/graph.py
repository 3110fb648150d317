"""ONNX graphs rewritten into a form onnx2torch converts, without changing what they compute.

Each pass is generic (no exporter special cases) and is checked in tests against ONNX Runtime on the
original graph. `canonical_for_torch` applies them in order.
"""

from __future__ import annotations

from typing import Any


def canonical_for_torch(model: Any) -> Any:
    """`model` rewritten for onnx2torch: local functions inlined, standard ops onnx2torch lacks written
    out as the ONNX function that defines them (Gelu-20), CastLike as Cast, nodes of constants computed,
    the default domain's opset lowered to one onnx2torch converts (where ONNX's version converter can),
    nodes in topological order, constants held by nodes as initializers, Reshape's `allowzero=1` dropped
    where it changes nothing, LayerNormalization's normalised dimensions recorded where shape inference
    loses them. Returns the rewritten model (`model` itself is modified too, except by the
    inlining and the opset change). A graph these cannot make convertible comes back with its own
    opset, and onnx2torch names the op that stops it.

    Example:
        >>> module = onnx2torch.convert(canonical_for_torch(onnx.load("model.onnx")))  # doctest: +SKIP
    """
    model = cast_like_resolved(functions_expanded(functions_inlined(model)))
    model = opset_lowered(constants_folded(toposorted(model)))
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
        _replace_nodes(model.graph, nodes)
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
        _replace_nodes(graph, [n for n in kept if n.op_type != "Constant" or n.output[0] in used])
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


def _replace_nodes(graph: Any, nodes: list[Any]) -> None:
    """Sets `graph`'s node list to copies of `nodes` (protobuf lists hold copies, not references)."""
    copies = [type(n)() for n in nodes]
    for new, old in zip(copies, nodes):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(copies)


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
    their newer version added (`same_as_older`, e.g. Pad-19 without axes) pass through it untouched,
    since it has no adapter for them. Where it fails for every candidate opset, or the result still has
    nodes without a converter, `model` comes back unchanged (and onnx2torch names the op that stops it).

    Example:
        >>> default_opset(opset_lowered(onnx.load("resnet18-dynamo.onnx")))  # doctest: +SKIP
        17
    """
    from onnx import helper, version_converter

    own = default_opset(model)
    if not own or not unconvertible(model):
        return model
    staged = type(model)()
    staged.CopyFrom(model)
    kept = [n for n in staged.graph.node if n.domain in ("", "ai.onnx") and same_as_older(n)]
    for node in kept:
        node.domain = _STAND_IN
    if kept:
        staged.opset_import.append(helper.make_opsetid(_STAND_IN, 1))
    for target in range(own - 1, LOWEST_TARGET - 1, -1):
        if unconvertible(model, target):  # an op this target has no converter for: no use trying
            continue
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


def same_as_older(node: Any) -> bool:
    """Whether default-domain `node` computes what the op's version at LOWEST_TARGET (and every version
    up to its own) computes, using nothing newer versions added, for ops ONNX's version converter has no
    downward adapter for: Pad (18 added the `axes` input, 19 the 'wrap' mode).

    Example:
        >>> same_as_older(onnx.helper.make_node("Pad", ["x", "pads"], ["y"]))
        True
    """
    if node.op_type == "Pad":
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        return (len(node.input) < 4 or not node.input[3]) and mode != b"wrap"
    return False


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
        _replace_nodes(graph, ordered)
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
        _replace_nodes(graph, kept)
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
