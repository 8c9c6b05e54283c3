"""Helpers shared by the op handlers: attributes, constant folding, parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import axon
from axon.onnx._import_context import Const, Context, Sym, Value, sanitize, to_host


def attributes(onnx: Any, node: Any) -> dict[str, Any]:
    """The node's attributes as Python values (tensors as NumPy arrays, bytes as str)."""
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def inputs(ctx: Context, node: Any) -> list[Value | None]:
    return [ctx.get(name) for name in node.input]


def all_const(values: list[Value | None]) -> bool:
    return all(v is None or isinstance(v, Const) for v in values)


def param_name(initializer: str | None, default: str) -> str:
    """The parameter name of an initializer: its last dotted component (``"bias"``)."""
    if not initializer:
        return default
    return sanitize(initializer.replace("/", ".").split(".")[-1]) or default


def operand(ctx: Context, value: Value, layer: str, default: str) -> axon.Axon | axon.Parameter:
    """A layer input for ``value``: a trainable parameter for a float initializer with more
    than one element (a model weight), a constant layer for other constants, the graph for
    a computed value."""
    if isinstance(value, Const) and value.initializer and value.value.dtype.kind == "f" and value.value.size > 1:
        return ctx.param(layer, param_name(value.initializer, default), value.value)
    return ctx.graph(value)


def apply(ctx: Context, fn: Callable[..., Any], values: list[Value], *, op_name: str, fold: Callable[..., Any] | None = None,
          **opts: Any) -> Value:
    """``fn(*values, **opts)``: folded with ``fold`` (default ``fn``) when every value is a
    constant, else a registered-op layer of the graph values, constants and initializers."""
    if all_const(values):
        f = fold or fn
        out = np.asarray(f(*[v.value for v in values], **opts))
        dynamic = sorted({out.ndim - v.value.ndim + a for v in values if v is not None for a in v.dynamic_axes})
        return Const(out, dynamic_axes=tuple(dynamic))
    name = ctx.layer_name()
    args = [operand(ctx, v, name, f"input_{i}") for i, v in enumerate(values)]
    return ctx.sym(axon.layer(fn, args, name=name, op_name=op_name, **opts))


def host(value: Any) -> np.ndarray:
    return to_host(value)


__all__ = ["Const", "Sym", "all_const", "apply", "attributes", "host", "inputs", "operand", "param_name"]
