"""Element-wise ONNX ops: arithmetic, comparisons, selection, casts and activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from axon import activations, layers
from axon.onnx._import_context import Const, Context
from axon.onnx._import_ops._common import apply, inputs
from axon.onnx._import_ops._table import handles


def _int_divide(x: Any, y: Any) -> Any:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        q = np.abs(x) // np.abs(y)
        return np.where((x < 0) != (y < 0), -q, q).astype(np.result_type(x, y))
    return x / y


_BINARY = {
    "Add": (layers.add, np.add, "add"),
    "Sub": (layers.subtract, np.subtract, "subtract"),
    "Mul": (layers.multiply, np.multiply, "multiply"),
    "Div": (layers.divide, _int_divide, "divide"),
    "Pow": (layers.power, lambda x, y: np.power(x, y).astype(np.asarray(x).dtype), "power"),
    "Equal": (layers.equal, np.equal, "equal"),
}


_LAYER_MODULE = {"add": "axon", "subtract": "axon", "multiply": "axon"}


@handles(*_BINARY, describe={
    k: f"`{_LAYER_MODULE.get(v[2], 'axon.layers')}.{v[2]}` (a float initializer operand becomes a trainable parameter)"
    for k, v in _BINARY.items()})
def binary(ctx: Context, node: Any, attrs: dict) -> list:
    """The element-wise layer of the op (float initializers become parameters)."""
    fn, fold, op_name = _BINARY[node.op_type]
    a, b = inputs(ctx, node)
    return [apply(ctx, fn, [a, b], op_name=op_name, fold=fold)]


_UNARY = {
    "Softplus": (activations.softplus, lambda x: np.logaddexp(x, 0), "softplus"),
    "Sqrt": (layers.sqrt, np.sqrt, "sqrt"),
    "Exp": (activations.exp, np.exp, "exp"),
    "Log": (layers.log, np.log, "log"),
    "Neg": (layers.negative, np.negative, "negative"),
    "Abs": (layers.absolute, np.abs, "absolute"),
    "Erf": (layers.erf, None, "erf"),
    "Relu": (activations.relu, lambda x: np.maximum(x, 0), "relu"),
    "Sigmoid": (activations.sigmoid, None, "sigmoid"),
    "Tanh": (activations.tanh, np.tanh, "tanh"),
}


@handles("Sum")
def sum_op(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.add`` of every input (float initializers become parameters)."""
    values = [v for v in inputs(ctx, node) if v is not None]
    if len(values) == 1:
        return values
    return [apply(ctx, layers.add, values, op_name="add", fold=lambda *xs: sum(xs[1:], xs[0]))]


@handles("Reciprocal")
def reciprocal(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.divide`` of 1 by the input."""
    (x,) = inputs(ctx, node)
    dtype = x.value.dtype if isinstance(x, Const) else x.dtype
    return [apply(ctx, layers.divide, [Const(np.ones((), dtype)), x], op_name="divide", fold=np.divide)]


@handles("Mod")
def mod(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.remainder`` (``fmod`` as ONNX's attribute)."""
    a, b = inputs(ctx, node)
    fmod = bool(int(attrs.get("fmod", 0)))
    return [apply(ctx, layers.remainder, [a, b], op_name="remainder", fmod=fmod,
                  fold=lambda x, y, fmod: np.fmod(x, y) if fmod else np.mod(x, y))]


@handles(*_UNARY, describe={
    k: f"`axon.{v[2]}`" if v[2] in ("relu", "sigmoid", "tanh", "exp", "softplus") else f"`axon.layers.{v[2]}`"
    for k, v in _UNARY.items()})
def unary(ctx: Context, node: Any, attrs: dict) -> list:
    """The element-wise function or activation of the op."""
    fn, fold, op_name = _UNARY[node.op_type]
    (x,) = inputs(ctx, node)[:1]
    return [apply(ctx, fn, [x], op_name=op_name, fold=None if fold is None else (lambda v: fold(v)))]


@handles("LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Gelu", "Softmax", "LogSoftmax", describe={
    "HardSwish": "`axon.hard_silu(alpha=1/6, beta=0.5)`",
    "LeakyRelu": "`axon.leaky_relu(alpha)`", "Elu": "`axon.elu(alpha)`", "Selu": "`axon.selu(alpha, gamma)`",
    "HardSigmoid": "`axon.hard_sigmoid(alpha, beta)`", "Gelu": "`axon.gelu` (exact; `approximate=\"none\"`)",
    "Softmax": "`axon.softmax(axis)`", "LogSoftmax": "`axon.log_softmax(axis)`"})
def activation(ctx: Context, node: Any, attrs: dict) -> list:
    """The axon activation with ONNX's options."""
    (x,) = inputs(ctx, node)[:1]
    kind = node.op_type
    if kind == "LeakyRelu":
        return [apply(ctx, activations.leaky_relu, [x], op_name="leaky_relu", alpha=float(attrs.get("alpha", 0.01)))]
    if kind == "Elu":
        return [apply(ctx, activations.elu, [x], op_name="elu", alpha=float(attrs.get("alpha", 1.0)))]
    if kind == "Selu":
        return [apply(ctx, activations.selu, [x], op_name="selu", alpha=float(attrs.get("alpha", 1.67326319217681884765625)),
                      gamma=float(attrs.get("gamma", 1.05070102214813232421875)))]
    if kind == "HardSigmoid":
        return [apply(ctx, activations.hard_sigmoid, [x], op_name="hard_sigmoid", alpha=float(attrs.get("alpha", 0.2)),
                      beta=float(attrs.get("beta", 0.5)))]
    if kind == "HardSwish":
        return [apply(ctx, activations.hard_silu, [x], op_name="hard_silu", alpha=1.0 / 6.0, beta=0.5)]
    if kind == "Gelu":
        if attrs.get("approximate", "none") != "none":
            raise ctx.error(f"approximate={attrs['approximate']!r} is not supported (only 'none', the exact GELU)")
        return [apply(ctx, activations.gelu, [x], op_name="gelu")]
    fn = activations.softmax if kind == "Softmax" else activations.log_softmax
    return [apply(ctx, fn, [x], op_name=fn.__name__, axis=int(attrs.get("axis", -1)))]


@handles("Clip")
def clip(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.clip`` with the bounds (inputs known at import time)."""
    values = inputs(ctx, node)
    bounds = [None if v is None else float(ctx.const(node.input[i + 1], f"the {w} bound"))
              for i, (v, w) in enumerate(zip(values[1:3], ("min", "max")))]
    bounds += [None] * (2 - len(bounds))
    return [apply(ctx, layers.clip, [values[0]], op_name="clip", fold=lambda v, min, max: np.clip(v, min, max),
                  min=bounds[0], max=bounds[1])]


@handles("Where")
def where(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.where``."""
    return [apply(ctx, layers.where, inputs(ctx, node), op_name="where", fold=np.where)]


@handles("Cast")
def cast(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.cast`` (64-bit types become 32-bit ones, as in JAX)."""
    onnx = ctx.onnx
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
    (x,) = inputs(ctx, node)
    if isinstance(x, Const):
        return [Const(x.value.astype(dtype))]
    jax_dtype = {"float64": "float32", "int64": "int32", "uint64": "uint32"}.get(dtype.name, dtype.name)
    if x.dtype == np.dtype(jax_dtype):
        return [x]
    return [apply(ctx, layers.cast, [x], op_name="cast", dtype=jax_dtype)]


@handles("Identity", "Dropout", describe={
    "Identity": "the input itself (no layer)", "Dropout": "the input itself: ONNX graphs run dropout in inference mode"})
def identity(ctx: Context, node: Any, attrs: dict) -> list:
    """The input itself (``Dropout`` is the identity in an inference graph)."""
    x = inputs(ctx, node)[0]
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise ctx.error("the dropout mask output is not supported")
    return [x]


