"""Inspecting graphs: inputs, op counts, layer properties, output shapes, a node's own
parameters and options.

>>> import axon
>>> model = axon.input("input", shape=(None, 1)).pipe(axon.tanh).pipe(axon.tanh)
>>> axon.get_op_counts(model)
{'input': 1, 'tanh': 2}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax

from axon.compiler import Mode, trace_values
from axon.graph import Axon, Parameter, declared_inputs, layer_names, topological_order
from axon.values import NONE, NoneValue

__all__ = [
    "get_inputs",
    "get_op_counts",
    "get_options",
    "get_output_shape",
    "get_parameters",
    "properties",
    "set_options",
    "set_parameters",
]


def get_inputs(model: Axon) -> dict[str, tuple | None]:
    """Map each input name to its declared shape.

    Args:
        model: the graph.

    Returns:
        ``{input name: shape}``, the shape ``None`` when the input declares none.

    >>> import axon
    >>> axon.get_inputs(axon.add(axon.input("a", shape=(None, 1)), axon.input("b")))
    {'a': (None, 1), 'b': None}
    """
    return declared_inputs(model)


def get_op_counts(model: Axon) -> dict[str, int]:
    """Count the layers of each op name.

    Args:
        model: the graph.

    Returns:
        ``{op name: number of layers}``.

    >>> import axon
    >>> axon.get_op_counts(axon.input("input", shape=(None, 1)).pipe(axon.dense, 2))
    {'input': 1, 'dense': 1}
    """
    counts: dict[str, int] = {}
    for nid in topological_order(model):
        op_name = model.nodes[nid].op_name
        counts[op_name] = counts.get(op_name, 0) + 1
    return counts


def properties(model: Axon) -> dict[str, str]:
    """Map each layer name to its op name.

    Args:
        model: the graph.

    Returns:
        ``{layer name: op name}``.

    >>> import axon
    >>> axon.properties(axon.input("x").pipe(axon.dense, 2, activation="relu"))
    {'x': 'input', 'dense_0': 'dense', 'relu_0': 'relu'}
    """
    names = layer_names(model)
    return {".".join((*names[nid][0], names[nid][1])): model.nodes[nid].op_name for nid in topological_order(model)}


def get_output_shape(model: Axon, inputs: Any, *, mode: Mode = "inference") -> Any:
    """The output shape(s) for the given input templates (traced, nothing is computed).

    Built on the compiler's abstract evaluation (:func:`axon.compiler.trace_values`), the
    same run that ``axon.display`` shows.

    Args:
        model: the graph.
        inputs: input templates or arrays (one, or a dict by input name).
        mode: ``"inference"`` or ``"train"`` (the prediction's shape in train mode).

    Returns:
        The output's shape as a tuple, the same structure of shapes for a container output,
        or ``axon.NONE`` when the output is missing (it depends on an optional input that
        was not given).

    Raises:
        ValueError: bad inputs or mode; ``CompileError`` names a layer that cannot compute.

    >>> import axon
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 5)
    >>> axon.get_output_shape(model, axon.template((2, 3)))
    (2, 5)
    """
    _, outputs = trace_values(model, inputs, mode=mode, where="get_output_shape")
    out = outputs[model.output]
    if isinstance(out, NoneValue):
        return NONE
    return jax.tree_util.tree_map(
        lambda v: NONE if isinstance(v, NoneValue) else tuple(v.shape), out, is_leaf=lambda v: isinstance(v, NoneValue)
    )


def get_parameters(model: Axon) -> tuple[Parameter, ...]:
    """The output node's own parameters (not those of its parents).

    Args:
        model: the graph; only its output node is read.

    Returns:
        The output node's :func:`axon.param` declarations, in call order.

    >>> import axon
    >>> [p.name for p in axon.get_parameters(axon.input("x").pipe(axon.dense, 2))]
    ['kernel', 'bias']
    """
    return model.node.parameters


def set_parameters(model: Axon, parameters: Sequence[Parameter]) -> Axon:
    """A graph whose output node has ``parameters`` instead (same count, in call order).

    Args:
        model: the graph; only its output node changes.
        parameters: :func:`axon.param` values, as many as the node has.

    Returns:
        A new graph.

    Raises:
        ValueError: a different count, or an entry that is not an ``axon.param``.

    >>> import axon
    >>> m = axon.input("x").pipe(axon.dense, 2)
    >>> k, b = axon.get_parameters(m)
    >>> m2 = axon.set_parameters(m, [k, axon.param("bias", (2,), initializer="ones")])
    >>> axon.get_parameters(m2)[1].initializer is not b.initializer
    True
    """
    parameters = tuple(parameters)
    if len(parameters) != len(model.node.parameters) or not all(isinstance(p, Parameter) for p in parameters):
        raise ValueError(
            f"set_parameters: expected {len(model.node.parameters)} axon.param values "
            f"(the node has {[p.name for p in model.node.parameters]}), got {parameters!r}"
        )
    return _replace_output(model, parameters=parameters)


def get_options(model: Axon) -> dict[str, Any]:
    """The output node's own options.

    Args:
        model: the graph; only its output node is read.

    Returns:
        A new dict of the output node's options.

    >>> import axon
    >>> axon.get_options(axon.concatenate(axon.input("a"), axon.input("b"), axis=1))
    {'axis': 1}
    """
    return dict(model.node.opts)


def set_options(model: Axon, options: Mapping[str, Any]) -> Axon:
    """A graph whose output node has ``options`` instead; unknown options are rejected.

    Args:
        model: the graph; only its output node changes.
        options: the new options, replacing all the old ones.

    Returns:
        A new graph.

    Raises:
        TypeError: an option the node's op does not accept.

    >>> import axon
    >>> m = axon.concatenate(axon.input("a"), axon.input("b"), axis=1)
    >>> axon.get_options(axon.set_options(m, {"axis": 0}))
    {'axis': 0}
    """
    from axon.api.core import _accepted_keywords

    node = model.node
    if callable(node.op):
        accepted, var_kw = _accepted_keywords(node.op, len(node.args))
        unknown = [k for k in options if k not in accepted and not var_kw]
        if unknown:
            raise TypeError(f"set_options: unknown option(s) {unknown} for op {node.op_name}; accepted: {sorted(accepted - {'mode'})}")
    return _replace_output(model, opts=dict(options))


def _replace_output(model: Axon, **changes: Any) -> Axon:
    nodes = dict(model.nodes)
    nodes[model.output] = model.node.replace(**changes)
    return Axon(nodes, model.output)
