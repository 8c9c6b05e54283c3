"""``LSTM`` and ``GRU`` (ONNX's default activations) as ``axon.lstm`` and ``axon.gru``: ONNX's
stacked gate weights are split into axon's per-gate kernels, and its time-major layout
``(time, batch, features)`` is transposed around the batch-major axon layer. A bidirectional
node becomes two axon layers, the backward one reading the sequence reversed."""

from __future__ import annotations

from typing import Any

import numpy as np

import axon
from axon import layers
from axon.onnx._import_context import Const, Context, Sym
from axon.onnx._import_ops._table import handles
from axon.onnx._import_ops.shape import reshape_to

_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_DIRECTIONS = {"forward": ("forward",), "reverse": ("backward",), "bidirectional": ("forward", "backward")}
_REVERSE = {"starts": (-1,), "ends": (-(2**31) + 1,), "axes": (1,), "steps": (-1,)}  # the whole time axis, backwards


def _check(ctx: Context, node: Any, attrs: dict) -> tuple[str, ...]:
    direction = attrs.get("direction", "forward")
    if direction not in _DIRECTIONS:
        raise ctx.error(f"unknown direction {direction!r}")
    acts = attrs.get("activations")
    default = _DEFAULT_ACTIVATIONS[node.op_type]
    if acts is not None and list(acts) != default * len(_DIRECTIONS[direction]):
        raise ctx.error(f"activations={list(acts)} are not supported (only {default} per direction)")
    for key in ("clip", "input_forget", "activation_alpha", "activation_beta"):
        if attrs.get(key):
            raise ctx.error(f"{key}={attrs[key]} is not supported")
    if int(attrs.get("layout", 0)):
        raise ctx.error("layout=1 is not supported (only the time-major layout 0)")
    if len(node.input) > 4 and node.input[4]:
        raise ctx.error("sequence_lens is not supported: every sequence runs the full length")
    if len(node.input) > 7 and node.input[7]:
        raise ctx.error("peephole weights P are not supported")
    return _DIRECTIONS[direction]


def _initial(ctx: Context, node: Any, index: int, direction: int) -> axon.Axon | None:
    """The initial state of one direction, ``(batch, hidden)``, or None for zeros."""
    if len(node.input) <= index or not node.input[index]:
        return None
    v = ctx.get(node.input[index])
    if isinstance(v, Const):
        if not np.any(v.value):
            return None
        return ctx.graph(Const(v.value[direction]))
    part = ctx.sym(axon.layer(layers.slice_axes, [v.graph], starts=(direction,), ends=(direction + 1,), axes=(0,),
                              name=ctx.layer_name(f"_initial_{direction}"), op_name="slice"))
    return reshape_to(ctx, part, list(v.shape[1:])).graph


def _batch_major(ctx: Context, x: Any) -> Sym:
    if not isinstance(x, Sym):
        raise ctx.error("the input sequence is a constant; axon imports recurrent layers on computed values only")
    return ctx.sym(axon.transpose(x.graph, (1, 0, 2), name=ctx.layer_name("_batch_major")))


def _reversed(ctx: Context, graph: axon.Axon, suffix: str) -> axon.Axon:
    return axon.layer(layers.slice_axes, [graph], name=ctx.layer_name(suffix), op_name="reverse", **_REVERSE)


def _outputs(ctx: Context, node: Any, runs: list[tuple[axon.Axon, list[axon.Axon]]]) -> list:
    """ONNX's outputs: ``Y`` ``(time, directions, batch, hidden)``, then each state ``(directions, batch, hidden)``."""
    out: list[Any] = []
    for i, name in enumerate(node.output):
        if not name:
            out.append(None)
            continue
        parts = []
        for seq, states in runs:
            if i == 0:
                y = ctx.sym(axon.transpose(seq, (1, 0, 2), name=ctx.layer_name("_time_major")))
                parts.append(reshape_to(ctx, y, [y.shape[0], 1, *y.shape[1:]]))
            else:
                s = ctx.sym(states[i - 1])
                parts.append(reshape_to(ctx, s, [1, *s.shape]))
        if len(parts) == 1:
            out.append(parts[0])
        else:
            out.append(ctx.sym(axon.concatenate([p.graph for p in parts], axis=1 if i == 0 else 0, name=ctx.layer_name(f"_output_{i}"))))
    return out


def _run(ctx: Context, node: Any, x: Sym, direction: str, layer: Any) -> tuple[axon.Axon, list[axon.Axon]]:
    """One direction: ``layer(sequence, name)`` on the sequence (reversed for ``"backward"``)."""
    seq_in = x.graph if direction == "forward" else _reversed(ctx, x.graph, "_reversed_input")
    seq, states = layer(seq_in)
    if direction == "backward":
        seq = _reversed(ctx, seq, "_reversed_output")
    return seq, states


def _base_name(ctx: Context, node: Any) -> str:
    return node.name or node.op_type.lower()


@handles("LSTM")
def lstm(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.lstm`` (gates i, o, f, c split into axon's ``wii``/``wio``/``wif``/``wig``; the two ONNX biases summed; bidirectional as two layers)."""
    directions = _check(ctx, node, attrs)
    x = _batch_major(ctx, ctx.get(node.input[0]))
    w_all, r_all = ctx.const(node.input[1], "W"), ctx.const(node.input[2], "R")
    units = int(attrs.get("hidden_size", r_all.shape[-1]))
    has_b = len(node.input) > 3 and node.input[3]
    b_all = ctx.const(node.input[3], "B") if has_b else np.zeros((len(directions), 8 * units), np.float32)
    gates = dict(zip("iofg", range(4)))
    runs = []
    for d, direction in enumerate(directions):
        w, r, b = w_all[d], r_all[d], b_all[d]
        name = ctx.unique(_base_name(ctx, node) + ("" if len(directions) == 1 else f"_{direction}"))
        block = lambda m, g: m[gates[g] * units:(gates[g] + 1) * units]  # noqa: E731
        ctx.put(name, "input_kernel", {f"wi{g}": np.ascontiguousarray(block(w, g).T) for g in "ifgo"})
        ctx.put(name, "hidden_kernel", {f"wh{g}": np.ascontiguousarray(block(r, g).T) for g in "ifgo"})
        ctx.put(name, "bias", {f"b{g}": block(b[:4 * units], g) + block(b[4 * units:], g) for g in "ifgo"})
        h0, c0 = _initial(ctx, node, 5, d), _initial(ctx, node, 6, d)
        if (h0 is None) != (c0 is None):
            raise ctx.error("an initial hidden state without an initial cell state (or the reverse) is not supported")

        def layer(seq: axon.Axon, name: str = name, h0: Any = h0, c0: Any = c0) -> tuple[axon.Axon, list[axon.Axon]]:
            out, (c, h) = axon.lstm(seq, (c0, h0), units, name=name) if h0 is not None else axon.lstm(seq, units, name=name)
            return out, [h, c]

        runs.append(_run(ctx, node, x, direction, layer))
    return _outputs(ctx, node, runs)


@handles("GRU")
def gru(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.gru`` (PyTorch's GRU: ONNX's ``linear_before_reset=1``; gates z, r, h split into ``wiz``/``wir``/``win``; bidirectional as two layers)."""
    directions = _check(ctx, node, attrs)
    if not int(attrs.get("linear_before_reset", 0)):
        raise ctx.error("linear_before_reset=0 is not supported: axon's GRU (as PyTorch's) applies the reset gate after "
                        "the hidden projection (linear_before_reset=1)")
    x = _batch_major(ctx, ctx.get(node.input[0]))
    w_all, r_all = ctx.const(node.input[1], "W"), ctx.const(node.input[2], "R")
    units = int(attrs.get("hidden_size", r_all.shape[-1]))
    has_b = len(node.input) > 3 and node.input[3]
    b_all = ctx.const(node.input[3], "B") if has_b else np.zeros((len(directions), 6 * units), np.float32)
    gates = {"z": 0, "r": 1, "n": 2}
    runs = []
    for d, direction in enumerate(directions):
        w, r, b = w_all[d], r_all[d], b_all[d]
        name = ctx.unique(_base_name(ctx, node) + ("" if len(directions) == 1 else f"_{direction}"))
        block = lambda m, g: m[gates[g] * units:(gates[g] + 1) * units]  # noqa: E731
        wb, rb = b[:3 * units], b[3 * units:]
        ctx.put(name, "input_kernel", {f"wi{g}": np.ascontiguousarray(block(w, g).T) for g in "rzn"})
        ctx.put(name, "hidden_kernel", {f"wh{g}": np.ascontiguousarray(block(r, g).T) for g in "rzn"})
        ctx.put(name, "bias", {"br": block(wb, "r") + block(rb, "r"), "bz": block(wb, "z") + block(rb, "z"),
                               "bin": block(wb, "n"), "bhn": block(rb, "n")})
        h0 = _initial(ctx, node, 5, d)

        def layer(seq: axon.Axon, name: str = name, h0: Any = h0) -> tuple[axon.Axon, list[axon.Axon]]:
            out, (h,) = axon.gru(seq, (h0,), units, name=name) if h0 is not None else axon.gru(seq, units, name=name)
            return out, [h]

        runs.append(_run(ctx, node, x, direction, layer))
    return _outputs(ctx, node, runs)
