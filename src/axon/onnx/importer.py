"""``axon.onnx.import_model``: an ONNX model as an ordinary axon graph and its ``ModelState``."""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

import axon
from axon._extras import require
from axon.model_state import ModelState
from axon.onnx._import_context import Const, Context, OnnxImportError, Sym, to_host
from axon.onnx._import_folding import check_dynamic_constants, keep_initializer, mark_dynamic
from axon.onnx._import_source import DEFAULT_DOMAINS, load

__all__ = ["OnnxImportError", "import_model", "supported_ops"]


def supported_ops() -> dict[str, str]:
    """The ONNX op types :func:`import_model` imports, each with what it becomes in axon.

    Returns:
        A dict ``{op_type: description}``, sorted by op type.

    >>> from axon.onnx.importer import supported_ops
    >>> supported_ops()["Softmax"]
    '`axon.softmax(axis)`'
    """
    from axon.onnx._import_ops import OPS
    from axon.onnx._import_ops._table import description

    return {op_type: description(op_type) for op_type in sorted(OPS)}


def import_model(source: str | os.PathLike | bytes | Any, *, dims: Mapping[str, int] | None = None) -> tuple[axon.Axon, ModelState]:
    """Import an ONNX model as an axon graph and its state.

    The graph is built with axon's public layers: ``Conv`` becomes ``axon.conv``, ``Gemm`` and
    ``MatMul`` by a weight become ``axon.dense``, ``BatchNormalization`` ``axon.batch_norm``,
    ``LSTM`` ``axon.lstm``, and so on; other ops become registered tensor ops
    (``axon.layers.gather``, ``slice_axes``, ...), so the model can be displayed, frozen,
    fine-tuned and saved like any other. The initializers become the state's parameters,
    under layer names taken from the ONNX names (``"layer1.0.conv1.weight"`` is the
    ``kernel`` of layer ``"layer1_0_conv1"``); batch-norm statistics are layer state.

    Inputs keep their ONNX names; a symbolic size (``"batch"``) becomes ``None`` unless
    ``dims`` fixes it. ONNX's NCHW layout is kept (``channels="first"`` layers). Sizes that
    torch computes at run time (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``) are folded
    on the static shapes. Importing never runs code from the file: it is parsed as data, and
    external tensor files are read only from inside the model's folder.

    Args:
        source: The model: a path to an ``.onnx`` file, its bytes, or an ``onnx.ModelProto``.
        dims: Sizes for symbolic dimensions, ``{"batch": 1}``; the others stay ``None``.

    Returns:
        ``(model, state)``: the axon graph (one output, or a container ``{name: output}`` for
        several) and its ``axon.ModelState``.

    Raises:
        ImportError: the ``onnx`` package is missing.
        TypeError: ``source`` is not a path, bytes or a ModelProto, or ``dims`` is not a dict of ints.
        axon.onnx.importer.OnnxImportError: the file is not a valid ONNX model, its opset is below
            13, it uses ops axon does not import (all listed with their counts), or a size
            cannot be resolved; the message names the node, the op and the values.

    >>> import pytest; _ = pytest.importorskip("onnx")  # the example needs the onnx extra
    >>> import numpy as np, jax.numpy as jnp
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> import axon.onnx
    >>> w = numpy_helper.from_array(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), "fc.weight")
    >>> graph = helper.make_graph(
    ...     [helper.make_node("MatMul", ["x", "fc.weight"], ["h"], name="fc"), helper.make_node("Relu", ["h"], ["y"], name="act")],
    ...     "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], [w])
    >>> model, state = axon.onnx.import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    >>> model
    <Axon inputs={'x': (None, 2)} output='act' nodes=3>
    >>> axon.predict(model, state, {"x": jnp.array([[1.0, 1.0], [1.0, -1.0]])}).tolist()
    [[4.0, 6.0], [0.0, 0.0]]
    """
    onnx = require("onnx", extra="onnx", feature="onnx.import_model")
    dims = _check_dims(dims)
    proto = load(onnx, source)
    _check_ops(proto)
    from axon.onnx._import_ops import OPS
    from axon.onnx._import_ops._common import attributes

    graph = proto.graph
    ctx = Context(onnx)
    for init in graph.initializer:
        ctx.values[init.name] = Const(onnx.numpy_helper.to_array(init), init.name)
    graph_inputs = [v for v in graph.input if v.name not in ctx.values]
    symbols = {d.dim_param for v in graph_inputs for d in v.type.tensor_type.shape.dim if d.HasField("dim_param")}
    unknown = sorted(set(dims) - symbols)
    if unknown:
        raise OnnxImportError(f"onnx.import_model: dims names {unknown}, which no input uses; the inputs' symbolic "
                              f"dimensions are {sorted(symbols)}")
    for value_info in graph_inputs:
        ctx.set(value_info.name, _input(ctx, value_info, dims))
    for node in graph.node:
        ctx.node = node
        check_dynamic_constants(ctx, node)
        outputs = OPS[node.op_type](ctx, node, attributes(onnx, node))
        outputs = keep_initializer(ctx, node, mark_dynamic(ctx, node, outputs))
        for name, value in zip(node.output, outputs):
            if name and value is not None:
                ctx.set(name, value)
    ctx.node = None
    outputs = {}
    for out in graph.output:
        value = ctx.get(out.name)
        outputs[out.name] = value.graph if isinstance(value, Sym) else axon.constant(to_host(value.value), name=ctx.unique(out.name))
    model = next(iter(outputs.values())) if len(outputs) == 1 else axon.container(outputs, name=ctx.unique("outputs"))
    return model, _state(ctx, model)


def _check_dims(dims: Any) -> dict[str, int]:
    if dims is None:
        return {}
    if not isinstance(dims, Mapping) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                for k, v in dims.items()):
        raise TypeError(f"onnx.import_model: expected dims to be a dict of symbolic dimension names to positive ints, got {dims!r}")
    return dict(dims)


def _check_ops(proto: Any) -> None:
    """Raise one error listing every op type axon does not import, with its count."""
    from axon.onnx._import_ops import OPS

    unsupported: collections.Counter = collections.Counter()
    for node in proto.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            unsupported[f"{node.domain}:{node.op_type}"] += 1
        elif node.op_type not in OPS:
            unsupported[node.op_type] += 1
    if unsupported:
        listing = ", ".join(f"{op} ({count} node{'s' if count > 1 else ''})" for op, count in sorted(unsupported.items()))
        raise OnnxImportError(
            f"onnx.import_model: the model uses {len(unsupported)} op type(s) axon does not import: {listing}; "
            "see axon.onnx.importer.supported_ops() for the ops it does"
        )


def _input(ctx: Context, value_info: Any, dims: Mapping[str, int]) -> axon.Axon:
    tensor = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        raise OnnxImportError(f"onnx.import_model: input {value_info.name!r} is not a tensor")
    shape = None
    if tensor.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else dims.get(d.dim_param) for d in tensor.shape.dim
        )
    if shape is None:
        raise OnnxImportError(f"onnx.import_model: input {value_info.name!r} declares no shape; axon needs at least its rank")
    dtype = to_host(np.zeros((), ctx.onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))).dtype
    meta = {"onnx_name": value_info.name} if dtype == np.float32 else {"onnx_name": value_info.name, "dtype": dtype.name}
    return axon.input(value_info.name, shape=shape, meta=meta)


def _state(ctx: Context, model: axon.Axon) -> ModelState:
    """The state of the layers ``model`` uses (folded-away initializers are left out)."""
    used = {n.name for n in model.nodes.values() if isinstance(n.name, str)}
    data = {layer: params for layer, params in ctx.data.items() if layer in used}
    state_paths = [p for p in ctx.state_paths if p[0] in data]
    return ModelState(data, state_paths=state_paths)


