"""ONNX converters for recurrent layers (ONNX ``LSTM``/``GRU``, gates reordered) and
multi-head attention (``MatMul``/``Softmax`` nodes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from axon.onnx.export_builder import Builder, Layer, NotExportable
from axon.onnx.export_ops_basic import param
from axon.registry import name_of

__all__ = ["CONVERTERS"]

Converter = Callable[[Builder, Layer], Any]

_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign", "softplus": "Softplus",
                "hard_sigmoid": "HardSigmoid"}  # ONNX's HardSigmoid defaults (0.2, 0.5) are axon's

_GATES = {
    # ONNX gate order, and axon's input kernel, hidden kernel, input bias, hidden bias keys
    "lstm": [("wii", "whi", "bi", None), ("wio", "who", "bo", None), ("wif", "whf", "bf", None),
             ("wig", "whg", "bg", None)],
    "gru": [("wiz", "whz", "bz", None), ("wir", "whr", "br", None), ("win", "whn", "bin", "bhn")],
}
_CARRY = {"lstm": ("c", "h"), "gru": ("h",)}


def _activation(value: Any, what: str) -> str:
    name = value if isinstance(value, str) else (name_of("op", value) or "")
    name = name.removeprefix("axon.")
    if name not in _ACTIVATIONS:
        raise NotExportable(f"{what} {value!r} (ONNX recurrent ops take {sorted(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


def _named_inputs(layer: Layer) -> dict[str, Any]:
    """The layer inputs by their names in the op's ``layout`` option."""
    names = [n for n, kind in zip(layer.opts["layout"], layer.arg_kinds, strict=True) if kind == "layer"]
    return dict(zip(names, layer.inputs, strict=True))


def _recurrent(b: Builder, layer: Layer) -> Any:
    kind = layer.opts["kind"]
    inputs = _named_inputs(layer)
    carry_names = ("c", "h") if kind == "conv_lstm" else _CARRY.get(kind, ())
    if "key" in layer.opts["layout"] and carry_names and carry_names[0] not in inputs:
        raise NotExportable("a random initial state (recurrent_initializer)")
    if kind == "conv_lstm":
        return _conv_lstm(b, layer, inputs)
    if kind not in _GATES:
        raise NotExportable(f"recurrent kind {kind!r} (ONNX has LSTM and GRU)")
    gate = _activation(layer.opts.get("gate", "sigmoid"), "gate")
    act = _activation(layer.opts.get("activation", "tanh"), "activation")
    if "mask" in inputs:  # ONNX's LSTM/GRU take sequence lengths, not per-step masks: unroll
        return _unrolled(b, layer, kind, inputs, gate, act)
    units = int(layer.opts["units"])
    ik, hk = layer.params["input_kernel"], layer.params["hidden_kernel"]
    bias = layer.params.get("bias")
    rows = _GATES[kind]
    w = np.concatenate([np.asarray(ik[i]).T for i, _, _, _ in rows])[None]
    r = np.concatenate([np.asarray(hk[h]).T for _, h, _, _ in rows])[None]
    dtype = w.dtype
    zero = np.zeros(units, dtype)
    if bias is not None:
        wb = [np.broadcast_to(np.asarray(bias[k]), (units,)) for _, _, k, _ in rows]
        rb = [zero if k is None else np.broadcast_to(np.asarray(bias[k]), (units,)) for _, _, _, k in rows]
        bvec = np.concatenate(wb + rb).astype(dtype)[None]
    x = b.op("Transpose", [inputs["x"]], perm=[1, 0, 2])  # (time, batch, features)
    args = [x, param(b, layer, "input_kernel", w), param(b, layer, "hidden_kernel", r),
            "" if bias is None else param(b, layer, "bias", bvec), ""]
    carry = _CARRY[kind]
    given = [inputs.get(c) for c in carry]
    init = {c: (None if v is None else b.unsqueeze(v, [0])) for c, v in zip(carry, given, strict=True)}
    args.append(init["h"] or "")
    if kind == "lstm":
        args.append(init["c"] or "")
        attrs: dict[str, Any] = {"activations": [gate, act, act]}
        n_out = 3
    else:
        attrs = {"activations": [gate, act], "linear_before_reset": 1}
        n_out = 2
    while args and args[-1] == "":
        args.pop()
    outs = b.op(kind.upper(), args, outputs=n_out, hidden_size=units, **attrs)
    seq = b.op("Transpose", [b.squeeze(outs[0], [1])], perm=[1, 0, 2])
    h = b.squeeze(outs[1], [0])
    if kind == "lstm":
        return seq, (b.squeeze(outs[2], [0]), h)
    return seq, (h,)


def _unrolled(b: Builder, layer: Layer, kind: str, inputs: dict[str, Any], gate: str, act: str) -> Any:
    """The recurrence written step by step (``T`` is static): where the step's mask is
    nonzero the previous state is kept, as axon does."""
    units = int(layer.opts["units"])
    ik, hk, bias = layer.params["input_kernel"], layer.params["hidden_kernel"], layer.params.get("bias")
    cell = {"lstm": (("wii", "wif", "wig", "wio"), ("whi", "whf", "whg", "who"), ("bi", "bf", "bg", "bo")),
            "gru": (("wir", "wiz", "win"), ("whr", "whz", "whn"), ("br", "bz", "bin"))}[kind]
    wx = np.concatenate([np.asarray(ik[k]) for k in cell[0]], axis=1)
    wh = np.concatenate([np.asarray(hk[k]) for k in cell[1]], axis=1)
    x = inputs["x"]
    steps = int(layer.in_values[0].shape[1])
    zx = b.op("MatMul", [x, param(b, layer, "input_kernel", wx)])
    if bias is not None:
        bx = np.concatenate([np.broadcast_to(np.asarray(bias[k]), (units,)) for k in cell[2]])
        zx = b.op("Add", [zx, param(b, layer, "bias", bx)])
    bhn = None if bias is None or kind != "gru" else param(b, layer, "bias", np.asarray(bias["bhn"]), suffix=".bhn")
    wh_name = param(b, layer, "hidden_kernel", wh)
    zeros = None
    carry = []
    for name in _CARRY[kind]:
        if name in inputs:
            carry.append(inputs[name])
            continue
        if zeros is None:
            batch = b.op("Slice", [b.op("Shape", [x]), b.ints([0]), b.ints([1])])
            zeros = b.op("ConstantOfShape", [b.op("Concat", [batch, b.ints([units])], axis=0)],
                         value=b.numpy_helper.from_array(np.zeros(1, wx.dtype)))
        carry.append(zeros)
    n_gates = len(cell[0])

    def gates(z: str) -> list[str]:
        return [b.op("Slice", [z, b.ints([k * units]), b.ints([(k + 1) * units]), b.ints([-1])]) for k in range(n_gates)]

    outputs = []
    for t in range(steps):
        xs = gates(b.op("Gather", [zx, b.ints([t])], axis=1))
        xs = [b.squeeze(v, [1]) for v in xs]
        h = carry[-1]
        hs = gates(b.op("MatMul", [h, wh_name]))
        if kind == "lstm":
            c = carry[0]
            zi, zf, zg, zo = (b.op("Add", [a, h_]) for a, h_ in zip(xs, hs, strict=True))
            new_c = b.op("Add", [b.op("Mul", [b.op(gate, [zf]), c]), b.op("Mul", [b.op(gate, [zi]), b.op(act, [zg])])])
            new = [new_c, b.op("Mul", [b.op(gate, [zo]), b.op(act, [new_c])])]
        else:
            r = b.op(gate, [b.op("Add", [xs[0], hs[0]])])
            z = b.op(gate, [b.op("Add", [xs[1], hs[1]])])
            hn = hs[2] if bhn is None else b.op("Add", [hs[2], bhn])
            n = b.op(act, [b.op("Add", [xs[2], b.op("Mul", [r, hn])])])
            one = b.scalar(1.0, wx.dtype)
            new = [b.op("Add", [b.op("Mul", [b.op("Sub", [one, z]), n]), b.op("Mul", [z, h])])]
        m = b.op("Gather", [inputs["mask"], b.ints([t])], axis=1)  # (batch, 1)
        keep = b.op("Not", [b.op("Equal", [m, b.scalar(0, np.dtype(layer.in_values[list(inputs).index("mask")].dtype))])])
        carry = [b.op("Where", [keep, old, value]) for old, value in zip(carry, new, strict=True)]
        outputs.append(b.unsqueeze(carry[-1], [1]))
    seq = outputs[0] if steps == 1 else b.op("Concat", outputs, axis=1)
    return seq, tuple(carry)


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """XLA's ``"SAME"`` padding (it depends on the stride)."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _conv_lstm(b: Builder, layer: Layer, inputs: dict[str, Any]) -> Any:
    """ConvLSTM written step by step: ``Conv`` for the input and hidden projections."""
    conv = layer.opts["conv"]
    x = inputs["x"]
    shape = [int(d) for d in layer.in_values[0].shape]  # (batch, time, channels, *spatial)
    n = len(shape) - 3
    ik, hk = np.asarray(layer.params["input_kernel"]), np.asarray(layer.params["hidden_kernel"])
    units = ik.shape[0] // 4
    ks, hks = ik.shape[2:], hk.shape[2:]
    strides = conv["strides"]
    strides = (strides,) * n if isinstance(strides, int) else tuple(strides)
    padding = conv["padding"]
    if isinstance(padding, str):
        if padding.lower() == "same":
            pads = [_same_pads(size, k, st) for size, k, st in zip(shape[3:], ks, strides, strict=True)]
        else:
            pads = [(0, 0)] * n
        hidden_pads = [_same_pads(1, k, 1) for k in hks]
    else:
        pads = hidden_pads = [tuple(p) for p in padding]
    out = [(size + lo + hi - k) // st + 1 for size, k, st, (lo, hi) in zip(shape[3:], ks, strides, pads, strict=True)]
    w_in, w_h = param(b, layer, "input_kernel"), param(b, layer, "hidden_kernel")
    bias = param(b, layer, "bias", np.broadcast_to(np.asarray(layer.params["bias"]), (4 * units,)).copy()) \
        if "bias" in layer.params else None

    def flat(p: list[tuple[int, int]]) -> list[int]:
        return [lo for lo, _ in p] + [hi for _, hi in p]

    carry, rank_up = [], True
    for name in ("c", "h"):
        if name in inputs:
            v = inputs[name]
            state_shape = layer.in_values[list(inputs).index(name)].shape
            rank_up = len(state_shape) == n + 3
            carry.append(b.squeeze(v, [1]) if rank_up else v)
        else:
            batch = b.op("Slice", [b.op("Shape", [x]), b.ints([0]), b.ints([1])])
            zeros = b.op("ConstantOfShape", [b.op("Concat", [batch, b.ints([units, *out])], axis=0)],
                         value=b.numpy_helper.from_array(np.zeros(1, ik.dtype)))
            carry.append(zeros)
    one = b.scalar(1.0, ik.dtype)
    outputs = []
    for t in range(shape[1]):
        x_t = b.op("Gather", [x, b.const(np.asarray(t, np.int64), hint="step")], axis=1)
        gates = b.op("Conv", [x_t, w_in] + ([bias] if bias is not None else []), strides=list(strides),
                     pads=flat(pads), kernel_shape=list(ks))
        c, h = carry
        gates = b.op("Add", [gates, b.op("Conv", [h, w_h], strides=[1] * n, pads=flat(hidden_pads),
                                         kernel_shape=list(hks))])
        i, g, f, o = (b.op("Slice", [gates, b.ints([k * units]), b.ints([(k + 1) * units]), b.ints([1])])
                      for k in range(4))
        new_c = b.op("Add", [b.op("Mul", [b.op("Sigmoid", [b.op("Add", [f, one])]), c]),
                             b.op("Mul", [b.op("Sigmoid", [i]), b.op("Tanh", [g])])])
        new = [new_c, b.op("Mul", [b.op("Sigmoid", [o]), b.op("Tanh", [new_c])])]
        if "mask" in inputs:
            m = b.op("Gather", [inputs["mask"], b.ints([t])], axis=1)
            m = b.reshape(m, [0] + [1] * (n + 1))
            keep = b.op("Not", [b.op("Equal", [m, b.scalar(0, np.dtype(layer.in_values[list(inputs).index("mask")].dtype))])])
            new = [b.op("Where", [keep, old, value]) for old, value in zip(carry, new, strict=True)]
        carry = new
        outputs.append(b.unsqueeze(carry[1], [1]))
    seq = outputs[0] if len(outputs) == 1 else b.op("Concat", outputs, axis=1)
    state = tuple(b.unsqueeze(v, [1]) if rank_up else v for v in carry)
    return seq, state


def _recurrent_output(b: Builder, layer: Layer) -> Any:
    seq, state = layer.inputs[0]
    index = layer.opts.get("index")
    return seq if index is None else state[index]


def _attention(b: Builder, layer: Layer) -> str:
    inputs = _named_inputs(layer)
    query = inputs["query"]
    key = inputs.get("key", query)
    value = inputs.get("value", key)
    shapes = {n: tuple(int(d) for d in v.shape) for n, v in zip(_named_inputs(layer), layer.in_values, strict=True)}
    t = shapes["query"][1]
    s = shapes.get("key", shapes["query"])[1]
    p = layer.params
    heads, key_size = np.asarray(p["query_kernel"]).shape[1:]
    value_size = np.asarray(p["value_kernel"]).shape[2]
    dtype = np.asarray(p["query_kernel"]).dtype

    def project(x: str, which: str, size: int, length: int) -> str:
        kernel = np.asarray(p[f"{which}_kernel"])
        y = b.op("MatMul", [x, param(b, layer, f"{which}_kernel", kernel.reshape(kernel.shape[0], -1))])
        if f"{which}_bias" in p:
            y = b.op("Add", [y, param(b, layer, f"{which}_bias", np.asarray(p[f"{which}_bias"]).reshape(-1))])
        y = b.reshape(y, [0, length, heads, size])
        return b.op("Transpose", [y], perm=[0, 2, 1, 3])  # (batch, heads, length, size)

    q = project(query, "query", key_size, t)
    k = project(key, "key", key_size, s)
    v = project(value, "value", value_size, s)
    logits = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])])
    logits = b.op("Mul", [logits, b.scalar(1.0 / math.sqrt(key_size), dtype)])
    masks = []
    if "mask" in inputs:
        m = inputs["mask"]
        rank = len(shapes["mask"])
        if rank == 2:
            m = b.unsqueeze(m, [1, 2])
        elif rank == 3:
            m = b.unsqueeze(m, [1])
        masks.append(m)
    if layer.opts.get("causal"):
        masks.append(b.const(np.tril(np.ones((t, s), bool)), hint="causal_mask"))
    if masks:
        m = masks[0] if len(masks) == 1 else b.op("And", masks)
        logits = b.op("Where", [m, logits, b.scalar(np.finfo(dtype).min, dtype)])
    weights = b.op("Softmax", [logits], axis=-1)
    out = b.op("Transpose", [b.op("MatMul", [weights, v])], perm=[0, 2, 1, 3])  # (batch, t, heads, value)
    out = b.reshape(out, [0, t, heads * value_size])
    kernel = np.asarray(p["output_kernel"])
    y = b.op("MatMul", [out, param(b, layer, "output_kernel", kernel.reshape(-1, kernel.shape[-1]))])
    if "output_bias" in p:
        y = b.op("Add", [y, param(b, layer, "output_bias")])
    return y


CONVERTERS: dict[str, Converter] = {
    "axon.recurrent": _recurrent,
    "axon.recurrent_output": _recurrent_output,
    "axon.multi_head_attention": _attention,
}
