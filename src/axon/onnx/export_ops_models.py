"""ONNX converters for the ops the transformer models of :mod:`axon.models` register
(``"axon.models.*"``: tied embeddings, learned positions, causal self-attention, small value
ops), so that a full-sequence ``gpt2``/``bert`` model exports (see
:mod:`axon.onnx.export_ops` for the table). The op names are matched as strings: this
module does not import :mod:`axon.models`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from axon.onnx.export_builder import Builder, Layer, NotExportable
from axon.onnx.export_ops_basic import option

__all__ = ["CONVERTERS", "NOT_EXPORTABLE"]

Converter = Callable[[Builder, Layer], Any]


def _args(b: Builder, layer: Layer) -> list[Any]:
    """The op's arguments in call order: layer inputs (tensor names, ``None`` for a missing
    optional value) and parameters (initializers named by their state paths)."""
    inputs, out = iter(layer.inputs), []
    params = iter(layer.params)
    for kind in layer.arg_kinds:
        if kind == "layer":
            out.append(next(inputs))
        else:
            name = next(params)
            out.append(b.initializer(f"{layer.path}.{name}", np.asarray(layer.params[name])))
    return out


def _clamped_ids(b: Builder, ids: str, dtype: np.dtype, size: int) -> tuple[str, np.dtype]:
    if dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        ids, dtype = b.cast(ids, np.int64), np.dtype(np.int64)
    return b.op("Clip", [ids, b.scalar(0, dtype), b.scalar(size - 1, dtype)]), dtype


def _tied_embedding(b: Builder, layer: Layer) -> tuple[str, str]:
    ids, table = _args(b, layer)
    size = int(np.asarray(layer.params["kernel"]).shape[0]) if "kernel" in layer.params else int(layer.in_values[1].shape[0])
    ids, _ = _clamped_ids(b, ids, np.dtype(layer.in_values[0].dtype), size)
    return b.op("Gather", [table, ids], axis=0), table


def _tied_logits(b: Builder, layer: Layer) -> str:
    hidden, table = _args(b, layer)
    return b.op("MatMul", [hidden, b.op("Transpose", [table], perm=[1, 0])])


def _positions(b: Builder, layer: Layer) -> str:
    args = _args(b, layer)
    table = args[1]
    offset = args[2] if len(args) > 2 else None
    t = int(layer.in_values[0].shape[-1])
    if offset is None:
        rows = b.op("Slice", [table, b.ints([0]), b.ints([t]), b.ints([0])])
    else:  # table[offset : offset + t] (lax.dynamic_slice clamps the start so the rows fit)
        size = int(np.asarray(next(iter(layer.params.values()))).shape[0])
        start = b.reshape(b.cast(offset, np.int64), [1])
        start = b.op("Clip", [start, b.const(np.asarray([0], np.int64)), b.const(np.asarray([size - t], np.int64))])
        rows = b.op("Slice", [table, start, b.op("Add", [start, b.ints([t])]), b.ints([0])])
    return b.unsqueeze(rows, [0])


def _default_positions(b: Builder, layer: Layer) -> str:
    t = int(layer.in_values[0].shape[-1])
    positions = b.const(np.arange(t, dtype=np.int32)[None], hint="positions")
    if len(layer.inputs) < 2 or layer.inputs[1] is None:
        return b.op("Identity", [positions])
    start = b.reshape(b.cast(layer.inputs[1], np.int32), [])
    return b.op("Add", [start, positions])


def _select(b: Builder, layer: Layer) -> Any:
    return layer.inputs[0][layer.opts["index"]]


def _zeros_like(b: Builder, layer: Layer) -> str:
    dtype = np.dtype(layer.out.dtype)
    value = b.helper.make_tensor("value", int(b.helper.np_dtype_to_tensor_dtype(dtype)), [1], [0])
    return b.op("ConstantOfShape", [b.op("Shape", [layer.inputs[0]])], value=value)


def _all_true(b: Builder, layer: Layer) -> str:
    value = b.helper.make_tensor("value", b.onnx.TensorProto.BOOL, [1], [True])
    return b.op("ConstantOfShape", [b.op("Shape", [layer.inputs[0]])], value=value)


def _first_token(b: Builder, layer: Layer) -> str:
    return b.op("Gather", [layer.inputs[0], b.const(np.asarray(0, np.int64), hint="index")], axis=1)


def _not_zero(b: Builder, layer: Layer) -> str:
    x = layer.inputs[0]
    if np.dtype(layer.in_values[0].dtype) == np.dtype(bool):
        return b.op("Identity", [x])
    return b.op("Not", [b.op("Equal", [x, b.scalar(0, np.dtype(layer.in_values[0].dtype))])])


def _gelu_tanh(b: Builder, layer: Layer) -> str:
    x = layer.inputs[0]
    dtype = np.dtype(layer.out.dtype)
    if np.dtype(layer.in_values[0].dtype) != dtype:
        x = b.cast(x, dtype)

    def c(v: float) -> str:
        return b.scalar(v, dtype)

    cube = b.op("Mul", [b.op("Mul", [x, x]), x])
    inner = b.op("Mul", [c(math.sqrt(2.0 / math.pi)), b.op("Add", [x, b.op("Mul", [c(0.044715), cube])])])
    return b.op("Mul", [b.op("Mul", [c(0.5), x]), b.op("Add", [c(1.0), b.op("Tanh", [inner])])])


def _causal_self_attention(b: Builder, layer: Layer) -> str:
    qkv = layer.inputs[0]
    key_mask = layer.inputs[1] if len(layer.inputs) > 1 else None
    _, t, d3 = (int(n) for n in layer.in_values[0].shape)
    heads = int(option(layer, "num_heads"))
    d = d3 // 3
    size = d // heads
    dtype = np.dtype(layer.out.dtype)
    parts = b.op("Split", [qkv, b.ints([d, d, d])], outputs=3, axis=-1)

    def split_heads(x: str) -> str:  # (B, T, D) -> (B, heads, T, size)
        return b.op("Transpose", [b.reshape(x, [0, t, heads, size])], perm=[0, 2, 1, 3])

    q, k, v = (split_heads(x) for x in parts)
    logits = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])])
    logits = b.op("Mul", [logits, b.scalar(1.0 / math.sqrt(size), dtype)])
    mask = b.const(np.tril(np.ones((t, t), bool)), hint="causal_mask")
    if key_mask is not None:
        keep = key_mask
        if np.dtype(layer.in_values[1].dtype) != np.dtype(bool):
            keep = b.op("Not", [b.op("Equal", [key_mask, b.scalar(0, np.dtype(layer.in_values[1].dtype))])])
        mask = b.op("And", [mask, b.unsqueeze(keep, [1, 2])])
    logits = b.op("Where", [mask, logits, b.scalar(np.finfo(dtype).min, dtype)])
    weights = b.op("Softmax", [logits], axis=-1)
    out = b.op("Transpose", [b.op("MatMul", [weights, v])], perm=[0, 2, 1, 3])
    return b.reshape(out, [0, t, d])


def _not_exportable(reason: str) -> Converter:
    def convert(b: Builder, layer: Layer) -> Any:
        raise NotExportable(reason)
    return convert


CONVERTERS: dict[str, Converter] = {
    "axon.models.positions": _positions,
    "axon.models.tied_embedding": _tied_embedding,
    "axon.models.tied_logits": _tied_logits,
    "axon.models.select": _select,
    "axon.models.zeros_like": _zeros_like,
    "axon.models.all_true": _all_true,
    "axon.models.first_token": _first_token,
    "axon.models.not_zero": _not_zero,
    "axon.models.gelu_tanh": _gelu_tanh,
    "axon.models.causal_self_attention": _causal_self_attention,
    "axon.models.default_positions": _default_positions,
}
"""Registered op name -> converter, for the ops of the transformer models."""

NOT_EXPORTABLE: dict[str, str] = {
    "axon.models.cached_self_attention": (
        "the decode step's key/value cache is updated in place at a traced offset; export the "
        "full-sequence model (decode=False), which recomputes every position"
    ),
}
"""Registered op name -> why it has no converter."""
