"""Export an axon graph to ONNX, layer by layer: each layer's registered op
(``"axon.dense"``, ``"axon.conv"``, ...) is converted by a small function of
:mod:`axon.onnx.export_ops` into ONNX nodes; nothing is traced through JAX.

Parameters become initializers named by their state paths (``"dense_0.kernel"``), inputs
keep their axon names, and with ``dynamic_batch=True`` the leading dimension of every input
and output is the symbolic ``"batch"``. Layers run in inference mode: dropout is the
identity, normalization layers use their running statistics.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from axon._extras import require
from axon.compiler import trace_values
from axon.graph import Axon, layer_names, topological_order
from axon.model_state import ModelState, get_path
from axon.onnx.export_builder import BATCH, Builder, Layer, NotExportable
from axon.onnx.export_ops import CONVERTERS, NOT_EXPORTABLE
from axon.registry import name_of
from axon.tree import fill_structure
from axon.values import NoneValue

__all__ = ["MAX_OPSET", "MIN_OPSET", "UnexportableLayersError", "export"]

MIN_OPSET = 13
"""The lowest ONNX opset :func:`export` writes."""
MAX_OPSET = 21
"""The highest ONNX opset :func:`export` writes (checked with onnxruntime)."""


class UnexportableLayersError(ValueError):
    """Some layers of the graph have no ONNX counterpart; ``layers`` lists
    ``(layer, op, reason)`` for each of them."""

    def __init__(self, layers: list[tuple[str, str, str]]) -> None:
        self.layers = layers
        lines = "\n".join(f"  - layer {path!r} (op {op}): {reason}" for path, op, reason in layers)
        super().__init__(f"onnx.export: {len(layers)} layer(s) cannot be exported to ONNX:\n{lines}")


def _op_name(node: Any) -> str:
    if isinstance(node.op, str):
        return node.op
    return name_of("op", node.op) or getattr(node.op, "__qualname__", repr(node.op))


def _structure_leaves(value: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(value, is_leaf=lambda v: isinstance(v, str))



_FAILED = object()
"""The value of a layer that could not be converted (its dependents are skipped)."""


class _Exporter:
    def __init__(self, onnx: Any, builder: Builder, data: Mapping[str, Any], traced: Mapping[int, Any]) -> None:
        self.onnx = onnx
        self.b = builder
        self.data = data
        self.traced = traced
        self.failures: list[tuple[str, str, str]] = []
        self.graph_inputs: list[Any] = []

    def elem_type(self, dtype: Any) -> int:
        return int(self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    def value_info(self, name: str, struct: Any, batched: bool) -> Any:
        dims: list[Any] = [int(d) for d in struct.shape]
        if batched and self.b.dynamic_batch and dims:
            dims[0] = BATCH
        return self.onnx.helper.make_tensor_value_info(name, self.elem_type(struct.dtype), dims)

    def run(self, graph: Axon, scope: tuple[str, ...], inputs: Mapping[str, Any] | None) -> Any:
        names = layer_names(graph)
        values: dict[int, Any] = {}
        for nid in topological_order(graph):
            node = graph.nodes[nid]
            sc, name = names[nid]
            full = (*scope, *sc, name)
            path = ".".join(full)
            parents = [values[p] for p in node.parents]
            values[nid] = self.node_value(node, nid, full, path, parents, inputs)
        return values[graph.output]

    def node_value(self, node: Any, nid: int, full: tuple[str, ...], path: str, parents: list[Any],
                   inputs: Mapping[str, Any] | None) -> Any:
        traced = self.traced.get(nid)
        op = node.op
        if op == "input":
            if inputs is not None:  # a block's input
                return inputs[node.name]
            if traced is None or isinstance(traced, NoneValue):
                return None
            name = self.b.reserve(node.name)
            if self.b.batch_size is None and traced.shape:
                self.b.batch_size = int(traced.shape[0])
            self.graph_inputs.append(self.value_info(name, traced, batched=True))
            return name
        if op == "constant":
            return self.b.initializer(path, np.asarray(node.opts["value"]))
        if op == "container":
            return fill_structure(node.opts["structure"], parents)
        if op == "optional":
            return None if isinstance(traced, NoneValue) else parents[0]
        if op == "or_else":
            first = self.traced.get(node.parents[0])
            return parents[1] if first is None or isinstance(first, NoneValue) else parents[0]
        if op == "namespace":
            return parents[0]
        if op == "block":
            if any(p is _FAILED for p in parents):
                return _FAILED
            blk = node.opts["block"]
            return self.run(blk.graph, full, dict(zip(blk.input_names, parents)))
        return self.layer_value(node, nid, full, path, parents, traced)

    def layer_value(self, node: Any, nid: int, full: tuple[str, ...], path: str, parents: list[Any], traced: Any) -> Any:
        op_name = _op_name(node)
        if node.mode not in ("both", "inference"):  # a train-only layer passes its input through
            return parents[0] if parents else None
        if isinstance(traced, NoneValue):  # a missing optional input reached it: the layer does not run
            return None
        converter = CONVERTERS.get(op_name)
        if converter is None:
            reason = NOT_EXPORTABLE.get(op_name, "no ONNX converter is registered for this op")
            self.failures.append((path, op_name, reason))
            return _FAILED
        if any(p is _FAILED for p in parents):
            return _FAILED
        policy = node.policy
        if policy is not None and any(
            getattr(policy, role, None) is not None and np.dtype(getattr(policy, role)) != np.dtype(np.float32)
            for role in ("params", "compute", "output")
        ):
            self.failures.append((path, op_name, "a mixed-precision policy (export the float32 model)"))
            return _FAILED
        params, kinds = {}, {}
        for p in node.parameters:
            kinds[p.name] = p.kind
            try:
                value = get_path(self.data, (*full, p.name))
            except (KeyError, TypeError):
                if p.kind == "parameter":
                    raise ValueError(
                        f"onnx.export: the state has no value for parameter {p.name!r} of layer {path!r} "
                        f"(op {op_name}); was it initialized for this model?"
                    ) from None
                continue
            params[p.name] = jax.tree_util.tree_map(np.asarray, value)
        in_values = [self.traced.get(p) for p in node.parents]
        layer = Layer(path=path, op=op_name, opts=dict(node.opts), inputs=parents, in_values=in_values,
                      out=traced, params=params, param_kinds=kinds, arg_kinds=tuple(node.args))
        self.b.prefix = f"{path}/"
        try:
            return converter(self.b, layer)
        except NotExportable as e:
            self.failures.append((path, op_name, str(e)))
            return _FAILED
        finally:
            self.b.prefix = ""


def _check_template_shapes(model: Axon, traced: Mapping[int, Any]) -> None:
    """An ONNX file declares its input shapes: a template that does not match the model's
    declared shapes (which axon runs anyway, with a warning) is an error here."""
    for nid in topological_order(model):
        node = model.nodes[nid]
        declared, value = node.opts.get("shape") if node.op == "input" else None, traced.get(nid)
        if declared is None or value is None or isinstance(value, NoneValue):
            continue
        got = tuple(int(d) for d in value.shape)
        if len(got) != len(declared) or any(d is not None and d != g for d, g in zip(declared, got, strict=False)):
            raise ValueError(
                f"onnx.export: input {node.name!r} has shape {got}, but the model declares "
                f"{tuple(declared)} (None marks a dimension of any size)"
            )


def _check_opset(opset: Any) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"onnx.export: expected opset to be an int from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    return opset


def export(
    path: str | os.PathLike | None,
    model: Axon,
    state: ModelState | Mapping[str, Any],
    template: Any,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Any:
    """Write ``model`` with the parameters of ``state`` as an ONNX file, converting it layer
    by layer (each axon op maps to ONNX nodes; see :data:`axon.onnx.export_ops.CONVERTERS`).

    The model runs in inference mode: dropout layers are the identity and normalization
    layers use their running statistics. Inputs keep their axon names and the template's
    dtypes; outputs are named after the output layer (``"dense_1"``, or ``"container_0_0"``,
    ``"container_0_1"``, ... for the leaves of a container output, in ``jax.tree_util``
    order). Parameters become initializers named by their state paths (``"conv_0.kernel"``),
    in ONNX's layouts (a channels-last conv kernel is stored transposed to ``OI...``).
    Channels-last layers are written with ``Transpose`` nodes around ONNX's channels-first
    ops. Layer hooks (``axon.attach_hook``) are Python callbacks and are not exported. The
    model is checked with ``onnx.checker.check_model(full_check=True)``.

    Args:
        path: the ``.onnx`` file to write, or ``None`` to only return the model.
        model: the graph.
        state: its ``ModelState`` (or the nested dict of its parameters).
        template: input templates or arrays (one, or a dict by input name), as for
            ``axon.build``'s init function: they fix every shape but the batch.
        opset: the ONNX opset, from 13 to 21 (default 17).
        dynamic_batch: make the leading dimension of inputs and outputs the symbolic
            ``"batch"`` (default ``True``); ``False`` keeps the template's batch size.

    Returns:
        The ``onnx.ModelProto`` written.

    Raises:
        ImportError: onnx is not installed (the ``onnx`` extra).
        ValueError: an opset outside 13..21, a template the model does not accept, or a state
            without a parameter of the model.
        UnexportableLayersError: layers without an ONNX counterpart, all listed with their op.
        TypeError: ``model`` is not a graph.

    >>> import axon, numpy as np
    >>> model = axon.input("x", shape=(None, 3)).pipe(axon.dense, 2, activation="relu")
    >>> init_fn, _ = axon.build(model)
    >>> state = init_fn(axon.template((1, 3)), None)
    >>> proto = axon.onnx.export(None, model, state, axon.template((1, 3)))  # doctest: +SKIP
    >>> [n.op_type for n in proto.graph.node]  # doctest: +SKIP
    ['MatMul', 'Add', 'Relu']
    """
    onnx = require("onnx", extra="onnx", feature="onnx.export")
    if not isinstance(model, Axon):
        raise TypeError(f"onnx.export: expected an axon graph (axon.Axon), got {type(model).__name__}: {model!r}")
    opset = _check_opset(opset)
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"onnx.export: expected dynamic_batch to be a bool, got {dynamic_batch!r}")
    data = state.data if isinstance(state, ModelState) else state
    if not isinstance(data, Mapping):
        raise TypeError(f"onnx.export: expected state to be a ModelState or a dict of parameters, got {type(state).__name__}")
    with warnings.catch_warnings():  # a shape that differs from the declared one is an error below
        warnings.filterwarnings("ignore", message=r".*but the model declares shape")
        _, traced = trace_values(model, template, mode="inference", where="onnx.export")
    _check_template_shapes(model, traced)
    builder = Builder(onnx, opset, dynamic_batch, None)
    exporter = _Exporter(onnx, builder, data, traced)
    out = exporter.run(model, (), None)
    if exporter.failures:
        raise UnexportableLayersError(exporter.failures)
    proto = _make_model(onnx, exporter, model, out, opset)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save_model(proto, os.fspath(path))
    return proto


def _make_model(onnx: Any, exporter: _Exporter, model: Axon, out: Any, opset: int) -> Any:
    b = exporter.b
    leaves = _structure_leaves(out)
    traced_leaves = jax.tree_util.tree_leaves(exporter.traced[model.output])
    base = model.output_name
    outputs = []
    for i, (tensor, struct) in enumerate(zip(leaves, traced_leaves, strict=True)):
        name = b.fresh(base if len(leaves) == 1 else f"{base}_{i}")
        b.nodes.append(onnx.helper.make_node("Identity", [tensor], [name], name=b.fresh(f"node:output:{name}")))
        batched = bool(struct.shape) and struct.shape[0] == b.batch_size
        outputs.append(exporter.value_info(name, struct, batched))
    graph = onnx.helper.make_graph(b.nodes, "axon", exporter.graph_inputs, outputs, list(b.initializers.values()))
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="axon")
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else (9 if opset <= 20 else 10))
    return proto

