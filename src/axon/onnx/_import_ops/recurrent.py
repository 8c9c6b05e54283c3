"""``LSTM`` and ``GRU`` (forward direction, ONNX's default activations) as ``axon.lstm`` and
``axon.gru``: ONNX's stacked gate weights are split into axon's per-gate kernels, and its
time-major layout ``(time, batch, features)`` is transposed around the batch-major axon layer."""

from __future__ import annotations

from typing import Any

import numpy as np

import axon
from axon.onnx._import_context import Const, Context, Sym
from axon.onnx._import_ops._table import handles
from axon.onnx._import_ops.shape import reshape_to

_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _check(ctx: Context, node: Any, attrs: dict) -> None:
    if attrs.get("direction", "forward") != "forward":
        raise ctx.error(f"direction={attrs['direction']!r} is not supported (only 'forward')")
    acts = attrs.get("activations")
    if acts is not None and list(acts) != _DEFAULT_ACTIVATIONS[node.op_type]:
        raise ctx.error(f"activations={list(acts)} are not supported (only {_DEFAULT_ACTIVATIONS[node.op_type]})")
    for key in ("clip", "input_forget", "activation_alpha", "activation_beta"):
        if attrs.get(key):
            raise ctx.error(f"{key}={attrs[key]} is not supported")
    if int(attrs.get("layout", 0)):
        raise ctx.error("layout=1 is not supported (only the time-major layout 0)")
    if len(node.input) > 4 and node.input[4]:
        raise ctx.error("sequence_lens is not supported: every sequence runs the full length")
    if len(node.input) > 7 and node.input[7]:
        raise ctx.error("peephole weights P are not supported")


def _initial(ctx: Context, node: Any, index: int) -> axon.Axon | None:
    """The initial state ``(1, batch, hidden)`` as a ``(batch, hidden)`` graph, or None for zeros."""
    if len(node.input) <= index or not node.input[index]:
        return None
    v = ctx.get(node.input[index])
    if isinstance(v, Const):
        if not np.any(v.value):
            return None
        return ctx.graph(Const(v.value[0]))
    return reshape_to(ctx, v, list(v.shape[1:])).graph


def _batch_major(ctx: Context, x: Any) -> Sym:
    if not isinstance(x, Sym):
        raise ctx.error("the input sequence is a constant; axon imports recurrent layers on computed values only")
    return ctx.sym(axon.transpose(x.graph, (1, 0, 2), name=ctx.layer_name("_batch_major")))


def _outputs(ctx: Context, node: Any, seq: axon.Axon, states: list[axon.Axon]) -> list:
    """ONNX's outputs: ``Y`` ``(time, 1, batch, hidden)``, then each state ``(1, batch, hidden)``."""
    out: list[Any] = []
    for i, name in enumerate(node.output):
        if not name:
            out.append(None)
            continue
        if i == 0:
            y = ctx.sym(axon.transpose(seq, (1, 0, 2), name=ctx.layer_name("_time_major")))
            out.append(reshape_to(ctx, y, [y.shape[0], 1, *y.shape[1:]]))
        else:
            s = ctx.sym(states[i - 1])
            out.append(reshape_to(ctx, s, [1, *s.shape]))
    return out


def _layer_name(ctx: Context, node: Any) -> str:
    return ctx.layer_name() if node.name else ctx.unique(node.op_type.lower())


@handles("LSTM")
def lstm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.lstm`` (gates i, o, f, c split into axon's ``wii``/``wio``/``wif``/``wig``; the two ONNX biases summed)."""
    _check(ctx, node, attrs)
    x = _batch_major(ctx, ctx.get(node.input[0]))
    w, r = ctx.const(node.input[1], "W")[0], ctx.const(node.input[2], "R")[0]
    units = int(attrs.get("hidden_size", r.shape[-1]))
    b = ctx.const(node.input[3], "B")[0] if len(node.input) > 3 and node.input[3] else np.zeros(8 * units, np.float32)
    name = _layer_name(ctx, node)
    gates = dict(zip("iofg", range(4)))
    block = lambda m, g: m[gates[g] * units:(gates[g] + 1) * units]  # noqa: E731
    ctx.put(name, "input_kernel", {f"wi{g}": np.ascontiguousarray(block(w, g).T) for g in "ifgo"})
    ctx.put(name, "hidden_kernel", {f"wh{g}": np.ascontiguousarray(block(r, g).T) for g in "ifgo"})
    ctx.put(name, "bias", {f"b{g}": block(b[:4 * units], g) + block(b[4 * units:], g) for g in "ifgo"})
    h0, c0 = _initial(ctx, node, 5), _initial(ctx, node, 6)
    if (h0 is None) != (c0 is None):
        zeros = lambda: ctx.graph(Const(np.zeros((1, units), np.float32)))  # noqa: E731
        h0, c0 = h0 if h0 is not None else zeros(), c0 if c0 is not None else zeros()
    hidden = (c0, h0) if h0 is not None else units
    seq, (c, h) = axon.lstm(x.graph, hidden, units if h0 is not None else None, name=name)
    return _outputs(ctx, node, seq, [h, c])


@handles("GRU")
def gru(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.gru`` (PyTorch's GRU: ONNX's ``linear_before_reset=1``; gates z, r, h split into ``wiz``/``wir``/``win``)."""
    _check(ctx, node, attrs)
    if not int(attrs.get("linear_before_reset", 0)):
        raise ctx.error("linear_before_reset=0 is not supported: axon's GRU (as PyTorch's) applies the reset gate after "
                        "the hidden projection (linear_before_reset=1)")
    x = _batch_major(ctx, ctx.get(node.input[0]))
    w, r = ctx.const(node.input[1], "W")[0], ctx.const(node.input[2], "R")[0]
    units = int(attrs.get("hidden_size", r.shape[-1]))
    b = ctx.const(node.input[3], "B")[0] if len(node.input) > 3 and node.input[3] else np.zeros(6 * units, np.float32)
    name = _layer_name(ctx, node)
    gates = {"z": 0, "r": 1, "n": 2}
    block = lambda m, g: m[gates[g] * units:(gates[g] + 1) * units]  # noqa: E731
    wb, rb = b[:3 * units], b[3 * units:]
    ctx.put(name, "input_kernel", {f"wi{g}": np.ascontiguousarray(block(w, g).T) for g in "rzn"})
    ctx.put(name, "hidden_kernel", {f"wh{g}": np.ascontiguousarray(block(r, g).T) for g in "rzn"})
    ctx.put(name, "bias", {"br": block(wb, "r") + block(rb, "r"), "bz": block(wb, "z") + block(rb, "z"),
                           "bin": block(wb, "n"), "bhn": block(rb, "n")})
    h0 = _initial(ctx, node, 5)
    seq, (h,) = axon.gru(x.graph, (h0,) if h0 is not None else units, units if h0 is not None else None, name=name)
    return _outputs(ctx, node, seq, [h])
