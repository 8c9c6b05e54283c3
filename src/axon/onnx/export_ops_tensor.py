"""ONNX converters for the general tensor ops of :mod:`axon.layers.tensor` (``divide``,
``matmul``, ``where``, ``gather``, ``slice_axes``, ``reduce``, ``pad_axes``, ...), the ops
models imported with :func:`axon.onnx.import_model` are written with, so that an imported
model exports back to ONNX (see :mod:`axon.onnx.export_ops` for the table).

Operands of different dtypes are cast to the dtype axon's result has (NumPy's promotion,
as ``jax.numpy`` does), so the ONNX nodes see one dtype as the ONNX operators require.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from axon.onnx.export_builder import Builder, Layer, NotExportable
from axon.onnx.export_ops_basic import option, positional

__all__ = ["CONVERTERS"]

Converter = Callable[[Builder, Layer], Any]


def _out_dtype(layer: Layer) -> np.dtype:
    return np.dtype(layer.out.dtype)


def _in_dtype(layer: Layer, i: int) -> np.dtype:
    return np.dtype(layer.in_values[i].dtype)


def _as(b: Builder, layer: Layer, i: int, dtype: Any) -> str:
    """Input ``i``, cast to ``dtype`` when it has another dtype."""
    x = layer.inputs[i]
    if not isinstance(x, str):
        raise NotExportable(f"expected array inputs, got the container {x!r}")
    return x if _in_dtype(layer, i) == np.dtype(dtype) else b.cast(x, dtype)


def _binary(op_type: str, *, compare: bool = False) -> Converter:
    def convert(b: Builder, layer: Layer) -> str:
        if compare:
            dtype = np.dtype(jnp.result_type(*(_in_dtype(layer, i) for i in range(2))))
        else:
            dtype = _out_dtype(layer)
        return b.op(op_type, [_as(b, layer, 0, dtype), _as(b, layer, 1, dtype)])
    return convert


def _unary(op_type: str) -> Converter:
    """An element-wise op computed in the output's dtype (an integer input to ``sqrt``,
    ``log`` or ``erf`` is promoted to float first, as axon does)."""
    def convert(b: Builder, layer: Layer) -> str:
        return b.op(op_type, [_as(b, layer, 0, _out_dtype(layer))])
    return convert


def _power(b: Builder, layer: Layer) -> str:
    # axon computes in the promoted dtype and casts back to the base's dtype
    dtype = np.dtype(jnp.result_type(_in_dtype(layer, 0), _in_dtype(layer, 1)))
    y = b.op("Pow", [_as(b, layer, 0, dtype), _as(b, layer, 1, dtype)])
    return y if dtype == _out_dtype(layer) else b.cast(y, _out_dtype(layer))


def _remainder(b: Builder, layer: Layer) -> str:
    dtype = _out_dtype(layer)
    x, y = _as(b, layer, 0, dtype), _as(b, layer, 1, dtype)
    is_float = np.issubdtype(dtype, np.floating)
    if option(layer, "fmod"):
        return b.op("Mod", [x, y], fmod=1)
    if not is_float:  # Mod with fmod=0 takes the divisor's sign, as Python's %
        return b.op("Mod", [x, y], fmod=0)
    # floats: the truncated remainder, moved by one divisor where its sign differs from the divisor's
    r = b.op("Mod", [x, y], fmod=1)
    zero = b.scalar(0, dtype)
    differs = b.op("Xor", [b.op("Less", [r, zero]), b.op("Less", [y, zero])])
    fix = b.op("And", [b.op("Not", [b.op("Equal", [r, zero])]), differs])
    return b.op("Where", [fix, b.op("Add", [r, y]), r])


def _divide(b: Builder, layer: Layer) -> str:
    # ONNX's integer Div truncates toward zero, as axon's divide
    return _binary("Div")(b, layer)


def _clip(b: Builder, layer: Layer) -> str:
    dtype = _out_dtype(layer)
    lo, hi = option(layer, "min"), option(layer, "max")
    bounds = ["" if v is None else b.scalar(v, dtype) for v in (lo, hi)]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return b.op("Clip", [_as(b, layer, 0, dtype), *bounds])


def _where(b: Builder, layer: Layer) -> str:
    dtype = _out_dtype(layer)
    cond = _as(b, layer, 0, bool)
    return b.op("Where", [cond, _as(b, layer, 1, dtype), _as(b, layer, 2, dtype)])


def _cast(b: Builder, layer: Layer) -> str:
    dtype = _out_dtype(layer)
    x = layer.inputs[0]
    # Cast truncates floats toward zero when it makes integers, as axon's cast
    return b.op("Identity", [x]) if _in_dtype(layer, 0) == dtype else b.cast(x, dtype)


def _gather(b: Builder, layer: Layer) -> str:
    axis = int(option(layer, "axis"))
    size = layer.shape(0)[axis]
    dtype = _in_dtype(layer, 1)
    if dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        dtype = np.dtype(np.int64)
    ids = _as(b, layer, 1, dtype)
    # negative indices count from the end; out-of-range ones are clamped, as axon's gather
    ids = b.op("Where", [b.op("Less", [ids, b.scalar(0, dtype)]), b.op("Add", [ids, b.scalar(size, dtype)]), ids])
    ids = b.op("Clip", [ids, b.scalar(0, dtype), b.scalar(size - 1, dtype)])
    return b.op("Gather", [layer.inputs[0], ids], axis=axis)


def _slice_axes(b: Builder, layer: Layer) -> str:
    axes = [int(a) for a in option(layer, "axes")]
    steps = option(layer, "steps")
    steps = [1] * len(axes) if steps is None else [int(s) for s in steps]
    starts = [int(s) for s in option(layer, "starts")]
    ends = [int(e) for e in option(layer, "ends")]
    if not axes:
        return b.op("Identity", [layer.inputs[0]])
    return b.op("Slice", [layer.inputs[0], b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])


def _broadcast(b: Builder, layer: Layer) -> str:
    # Expand broadcasts both ways, as axon's broadcast
    return b.op("Expand", [layer.inputs[0], b.ints([int(d) for d in option(layer, "shape")])])


_REDUCE = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd"}


def _reduce(b: Builder, layer: Layer) -> str:
    kind = option(layer, "kind")
    if kind not in _REDUCE:
        raise NotExportable(f"reduce kind {kind!r}")
    rank = len(layer.shape(0))
    axes = option(layer, "axes")
    axes = list(range(rank)) if axes is None else sorted(int(a) % rank for a in axes)
    x = _as(b, layer, 0, _out_dtype(layer))
    if not axes:  # nothing reduced (ONNX would read empty axes as "all")
        return b.op("Identity", [x])
    return b.reduce(_REDUCE[kind], x, axes, keepdims=bool(option(layer, "keepdims")))


def _pad_axes(b: Builder, layer: Layer) -> str:
    pads = [(int(lo), int(hi)) for lo, hi in option(layer, "pads")]
    method = option(layer, "method")
    x = layer.inputs[0]
    crops = [(i, max(-lo, 0), max(-hi, 0)) for i, (lo, hi) in enumerate(pads) if lo < 0 or hi < 0]
    if crops:  # negative sizes crop first, as axon does
        ends = [-hi if hi else np.iinfo(np.int64).max for _, _, hi in crops]
        x = b.op("Slice", [x, b.ints([lo for _, lo, _ in crops]), b.ints(ends), b.ints([i for i, _, _ in crops])])
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    if not any(lo or hi for lo, hi in grow):
        return x if crops else b.op("Identity", [x])
    amounts = b.ints([lo for lo, _ in grow] + [hi for _, hi in grow])
    if method == "constant":
        value = b.scalar(option(layer, "value"), _in_dtype(layer, 0))
        return b.op("Pad", [x, amounts, value], mode="constant")
    return b.op("Pad", [x, amounts], mode=method)


CONVERTERS: dict[str, Converter] = {
    "axon.divide": positional(_divide),
    "axon.power": positional(_power),
    "axon.remainder": positional(_remainder),
    "axon.matmul": positional(_binary("MatMul")),
    "axon.sqrt": positional(_unary("Sqrt")),
    "axon.log": positional(_unary("Log")),
    "axon.negative": positional(_unary("Neg")),
    "axon.absolute": positional(_unary("Abs")),
    "axon.erf": positional(_unary("Erf")),
    "axon.clip": positional(_clip),
    "axon.equal": positional(_binary("Equal", compare=True)),
    "axon.where": positional(_where),
    "axon.cast": positional(_cast),
    "axon.gather": positional(_gather),
    "axon.slice_axes": positional(_slice_axes),
    "axon.broadcast": positional(_broadcast),
    "axon.reduce": positional(_reduce),
    "axon.pad_axes": positional(_pad_axes),
}
"""Registered op name -> converter, for the ops of :mod:`axon.layers.tensor`."""
