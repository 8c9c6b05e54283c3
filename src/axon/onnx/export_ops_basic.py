"""ONNX converters for activations, element-wise combinators, shape layers, dropout,
dense/bilinear/bias and embedding (see :mod:`axon.onnx.export_ops` for the table)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from axon.onnx.export_builder import Builder, Layer, NotExportable
from axon.registry import find

__all__ = ["CONVERTERS", "option", "param", "positional"]

Converter = Callable[[Builder, Layer], Any]


def option(layer: Layer, name: str) -> Any:
    """The layer's option ``name``, or the default of the registered op's signature."""
    if name in layer.opts:
        return layer.opts[name]
    fn = find("op", layer.op)
    default = inspect.signature(fn).parameters[name].default if fn is not None else inspect.Parameter.empty
    if default is inspect.Parameter.empty:
        raise NotExportable(f"option {name!r} has no value")
    return default


def param(b: Builder, layer: Layer, name: str, value: Any = None, suffix: str | None = None) -> str:
    """An initializer for parameter ``name`` (or ``value`` derived from it), named
    ``"<layer path>.<name>"``."""
    arr = layer.params[name] if value is None else value
    return b.initializer(f"{layer.path}.{name}{suffix or ''}", np.asarray(arr))


def positional(convert: Converter) -> Converter:
    """A converter for an op whose operands may be layer inputs or parameters in any order
    (a model imported from ONNX adds a bias parameter with ``axon.add``): the wrapped
    ``convert`` sees every operand in ``layer.inputs``/``layer.in_values``, in call order,
    parameters as initializers named ``"<layer path>.<name>"``.

    Args:
        convert: a converter that reads its operands from ``layer.inputs``.

    Returns:
        The converter for layers whose operands include parameters.
    """
    @functools.wraps(convert)
    def wrapped(b: Builder, layer: Layer) -> Any:
        if "parameter" not in layer.arg_kinds:
            return convert(b, layer)
        inputs, values = iter(zip(layer.inputs, layer.in_values, strict=True)), iter(layer.params.items())
        names, structs = [], []
        for kind in layer.arg_kinds:
            if kind == "layer":
                name, value = next(inputs)
            else:
                pname, arr = next(values)
                arr = np.asarray(arr)
                name, value = param(b, layer, pname), jax.ShapeDtypeStruct(arr.shape, arr.dtype)
            names.append(name)
            structs.append(value)
        return convert(b, dataclasses.replace(layer, inputs=names, in_values=structs, params={}, arg_kinds=()))
    return wrapped


def _x(layer: Layer) -> str:
    x = layer.inputs[0]
    if not isinstance(x, str):
        raise NotExportable(f"expected one array input, got the container {x!r}")
    return x


def _dtype(layer: Layer, i: int = 0) -> np.dtype:
    return np.dtype(layer.in_values[i].dtype)


def _float_input(b: Builder, layer: Layer) -> str:
    """The input, cast to float32 when it is an integer (axon's activations promote it)."""
    x = _x(layer)
    if not np.issubdtype(_dtype(layer), np.floating):
        return b.cast(x, layer.out.dtype)
    return x


def _scalar(b: Builder, layer: Layer, value: float) -> str:
    return b.scalar(value, np.dtype(layer.out.dtype))


# ---------------------------------------------------------------------------------------
# activations


def _unary(op_type: str, **attrs: Any) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        return b.op(op_type, [_float_input(b, layer)], **attrs)
    return convert


def _axes(layer: Layer) -> list[int]:
    axis = option(layer, "axis")
    rank = len(layer.shape(0))
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % rank for a in axes)


def _softmax_like(kind: str) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        x = _float_input(b, layer)
        axes = _axes(layer)
        if len(axes) == 1 and kind in ("Softmax", "LogSoftmax"):
            return b.op(kind, [x], axis=axes[0])
        m = b.reduce("ReduceMax", x, axes)
        shifted = b.op("Sub", [x, m])
        if kind == "ReduceLogSumExp":
            return b.op("Add", [b.reduce("ReduceLogSumExp", shifted, axes), m])
        e = b.op("Exp", [shifted])
        s = b.reduce("ReduceSum", e, axes)
        if kind == "Softmax":
            return b.op("Div", [e, s])
        return b.op("Sub", [shifted, b.op("Log", [s])])
    return convert


def _leaky_relu(b: Builder, layer: Layer) -> str:
    return b.op("LeakyRelu", [_float_input(b, layer)], alpha=float(option(layer, "alpha")))


def _elu(b: Builder, layer: Layer) -> str:
    return b.op("Elu", [_float_input(b, layer)], alpha=float(option(layer, "alpha")))


def _celu(b: Builder, layer: Layer) -> str:
    return b.op("Celu", [_float_input(b, layer)], alpha=float(option(layer, "alpha")))


def _selu(b: Builder, layer: Layer) -> str:
    return b.op("Selu", [_float_input(b, layer)], alpha=float(option(layer, "alpha")),
                gamma=float(option(layer, "gamma")))


def _hard_sigmoid(b: Builder, layer: Layer) -> str:
    return b.op("HardSigmoid", [_float_input(b, layer)], alpha=float(option(layer, "alpha")),
                beta=float(option(layer, "beta")))


def _hard_silu(b: Builder, layer: Layer) -> str:
    x = _float_input(b, layer)
    return b.op("Mul", [x, _hard_sigmoid(b, layer)])


def _clip(lo: float, hi: float) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        x = _float_input(b, layer)
        return b.op("Clip", [x, _scalar(b, layer, lo), _scalar(b, layer, hi)])
    return convert


def _gelu(b: Builder, layer: Layer) -> str:
    x = _float_input(b, layer)  # x * (erf(x / sqrt(2)) + 1) / 2, exactly as axon
    erf = b.op("Erf", [b.op("Div", [x, _scalar(b, layer, math.sqrt(2.0))])])
    return b.op("Div", [b.op("Mul", [x, b.op("Add", [erf, _scalar(b, layer, 1.0)])]), _scalar(b, layer, 2.0)])


def _silu(b: Builder, layer: Layer) -> str:
    x = _float_input(b, layer)
    return b.op("Mul", [x, b.op("Sigmoid", [x])])


def _mish(b: Builder, layer: Layer) -> str:
    x = _float_input(b, layer)
    return b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x])])])


def _log_sigmoid(b: Builder, layer: Layer) -> str:
    x = _float_input(b, layer)
    return b.op("Neg", [b.op("Softplus", [b.op("Neg", [x])])])


def _identity(b: Builder, layer: Layer) -> Any:
    return layer.inputs[0]


# ---------------------------------------------------------------------------------------
# combinators and shape layers


def _fold(op_type: str) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        xs = list(layer.inputs)
        out = xs[0]
        for x in xs[1:]:
            out = b.op(op_type, [out, x])
        return out if len(xs) > 1 else b.op("Identity", [out])
    return convert


def _concatenate(b: Builder, layer: Layer) -> str:
    return b.op("Concat", list(layer.inputs), axis=int(option(layer, "axis")))


def _split_part(b: Builder, layer: Layer) -> str:
    sizes, index, axis = layer.opts["sizes"], layer.opts["index"], option(layer, "axis")
    size = layer.shape(0)[axis]
    parts = [size // sizes] * sizes if isinstance(sizes, int) else list(sizes)
    start = sum(parts[:index])
    return b.op("Slice", [_x(layer), b.ints([start]), b.ints([start + parts[index]]), b.ints([axis])])


def _split(b: Builder, layer: Layer) -> tuple[str, ...]:
    sizes, axis = layer.opts["splits"], option(layer, "axis")
    size = layer.shape(0)[axis]
    parts = [size // sizes] * sizes if isinstance(sizes, int) else list(sizes)
    starts = np.cumsum([0, *parts])
    return tuple(b.op("Slice", [_x(layer), b.ints([int(lo)]), b.ints([int(hi)]), b.ints([axis])])
                 for lo, hi in itertools.pairwise(starts))


def _flatten(b: Builder, layer: Layer) -> str:
    return b.op("Flatten", [_x(layer)], axis=1)


def _reshape(b: Builder, layer: Layer) -> str:
    spec = list(layer.opts["shape"])
    out = layer.out_shape
    target = []
    for i, d in enumerate(spec):
        if d == "batch":
            if i != 0 and b.dynamic_batch:
                raise NotExportable(f"'batch' at position {i} of shape {tuple(spec)} (a symbolic batch moves only as axis 0)")
            target.append(0 if b.dynamic_batch else out[i])
        elif d in ("auto", -1):
            target.append(-1)
        else:
            target.append(int(d))
    return b.reshape(_x(layer), target)


def _transpose(b: Builder, layer: Layer) -> str:
    perm = layer.opts.get("permutation")
    rank = len(layer.shape(0))
    perm = list(range(rank))[::-1] if perm is None else list(perm)
    return b.op("Transpose", [_x(layer)], perm=perm)


def _pad(b: Builder, layer: Layer) -> str:
    config = [tuple(p) for p in layer.opts["config"]]
    channels = option(layer, "channels")
    full = [(0, 0), *config, (0, 0)] if channels == "last" else [(0, 0), (0, 0), *config]
    pads = [lo for lo, _ in full] + [hi for _, hi in full]
    value = b.scalar(float(option(layer, "value")), _dtype(layer))
    return b.op("Pad", [_x(layer), b.ints(pads), value], mode="constant")


def _reverse(b: Builder, layer: Layer) -> str:
    return reverse(b, _x(layer), int(layer.opts["axis"]))


def reverse(b: Builder, x: str, axis: int) -> str:
    """``x`` flipped along ``axis`` (a ``Slice`` with step -1)."""
    return b.op("Slice", [x, b.ints([-1]), b.ints([np.iinfo(np.int64).min]), b.ints([axis]), b.ints([-1])])


def _unreverse(b: Builder, layer: Layer) -> Any:
    axis = int(layer.opts["axis"])
    ref = layer.in_values[1]
    ax = axis % len(ref.shape)

    def visit(value: Any, traced: Any) -> Any:
        if isinstance(value, str):
            is_seq = len(traced.shape) > ax + 1 and traced.shape[ax] == ref.shape[ax]
            return reverse(b, value, axis) if is_seq else value
        if isinstance(value, dict):
            return {k: visit(v, traced[k]) for k, v in value.items()}
        return type(value)(visit(v, t) for v, t in zip(value, traced, strict=True))

    return visit(layer.inputs[0], layer.in_values[0])


def _leaf(b: Builder, layer: Layer) -> Any:
    value = layer.inputs[0]
    for k in layer.opts["path"]:
        value = value[k]
    return value


def _mask_from_tokens(b: Builder, layer: Layer) -> str:
    eos = b.scalar(layer.opts["eos_token"], _dtype(layer))
    return b.cast(b.op("Equal", [_x(layer), eos]), np.int32)


# ---------------------------------------------------------------------------------------
# linear layers


def _dense(b: Builder, layer: Layer) -> str:
    y = b.op("MatMul", [_float_input(b, layer), param(b, layer, "kernel")])
    if "bias" in layer.params:
        y = b.op("Add", [y, param(b, layer, "bias")])
    return y


def _quantized_dense(b: Builder, layer: Layer) -> str:
    """axon's int8 weight-only dense: ``(x·value - sum(x)·zero_point)·scale + bias``."""
    q = layer.params["kernel"]
    dtype = np.dtype(layer.out.dtype)
    x = _float_input(b, layer)
    value = b.cast(param(b, layer, "kernel", np.asarray(q.value), suffix=".value"), dtype)
    zero = param(b, layer, "kernel", np.asarray(q.zero_point).astype(dtype), suffix=".zero_point")
    scale = param(b, layer, "kernel", np.asarray(q.scale).astype(dtype), suffix=".scale")
    total = b.reduce("ReduceSum", x, [-1])
    y = b.op("Mul", [b.op("Sub", [b.op("MatMul", [x, value]), b.op("Mul", [total, zero])]), scale])
    if "bias" in layer.params:
        y = b.op("Add", [y, param(b, layer, "bias")])
    return y


def _bias(b: Builder, layer: Layer) -> str:
    return b.op("Add", [_x(layer), param(b, layer, "bias")])


def _bilinear(b: Builder, layer: Layer) -> str:
    x1, x2 = layer.inputs[0], layer.inputs[1]
    y = b.op("Einsum", [x1, param(b, layer, "kernel"), x2], equation="...i,oij,...j->...o")
    if "bias" in layer.params:
        y = b.op("Add", [y, param(b, layer, "bias")])
    return y


def _embedding(b: Builder, layer: Layer) -> str:
    kernel = layer.params["kernel"]
    ids = _x(layer)
    dtype = _dtype(layer)
    if dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        ids, dtype = b.cast(ids, np.int64), np.dtype(np.int64)
    # out-of-range ids are clamped, as axon's gather does
    ids = b.op("Clip", [ids, b.scalar(0, dtype), b.scalar(kernel.shape[0] - 1, dtype)])
    return b.op("Gather", [param(b, layer, "kernel"), ids], axis=0)


CONVERTERS: dict[str, Converter] = {
    # activations
    "axon.celu": _celu,
    "axon.elu": _elu,
    "axon.exp": _unary("Exp"),
    "axon.gelu": _gelu,
    "axon.hard_sigmoid": _hard_sigmoid,
    "axon.hard_silu": _hard_silu,
    "axon.hard_tanh": _clip(-1.0, 1.0),
    "axon.leaky_relu": _leaky_relu,
    "axon.linear": _identity,
    "axon.log_sigmoid": _log_sigmoid,
    "axon.log_softmax": _softmax_like("LogSoftmax"),
    "axon.log_sumexp": _softmax_like("ReduceLogSumExp"),
    "axon.mish": _mish,
    "axon.relu": _unary("Relu"),
    "axon.relu6": _clip(0.0, 6.0),
    "axon.selu": _selu,
    "axon.sigmoid": _unary("Sigmoid"),
    "axon.silu": _silu,
    "axon.softmax": _softmax_like("Softmax"),
    "axon.softplus": _unary("Softplus"),
    "axon.softsign": _unary("Softsign"),
    "axon.tanh": _unary("Tanh"),
    # dropout: the identity in inference mode
    "axon.dropout": _identity,
    "axon.alpha_dropout": _identity,
    "axon.feature_alpha_dropout": _identity,
    "axon.spatial_dropout": _identity,
    # combinators and shape layers
    "axon.add": positional(_fold("Add")),
    "axon.subtract": positional(_fold("Sub")),
    "axon.multiply": positional(_fold("Mul")),
    "axon.concatenate": positional(_concatenate),
    "axon.split_part": _split_part,
    "axon.split": _split,
    "axon.flatten": _flatten,
    "axon.reshape": _reshape,
    "axon.transpose": _transpose,
    "axon.pad": _pad,
    "axon.reverse": _reverse,
    "axon.unreverse": _unreverse,
    "axon.leaf": _leaf,
    "axon.mask_from_tokens": _mask_from_tokens,
    # linear layers
    "axon.dense": _dense,
    "axon.bias": _bias,
    "axon.bilinear": _bilinear,
    "axon.embedding": _embedding,
    "axon.quantization.weight_only_quantized_dense": _quantized_dense,
}
