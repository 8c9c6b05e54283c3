"""Shape ops. Values known at import time are folded with NumPy (torch computes reshape
targets at run time with ``Shape``/``Gather``/``Concat`` chains; on static shapes they fold
away); computed values become ``axon.reshape``, ``axon.transpose``, ``axon.concatenate``,
``axon.split`` and the tensor ops of :mod:`axon.layers.tensor`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import axon
from axon import layers
from axon.onnx._import_context import DYNAMIC, Const, Context, Sym, is_dynamic, public_shape
from axon.onnx._import_ops._common import apply, inputs
from axon.onnx._import_ops._table import handles


def reshape_to(ctx: Context, x: Sym, shape: list[int]) -> Sym:
    """``axon.reshape`` of ``x`` to ``shape`` (a tracked shape: one dynamic size at most,
    which becomes ``"auto"``)."""
    if tuple(shape) == tuple(x.shape):
        return x
    dynamic = [i for i, d in enumerate(shape) if is_dynamic(d)]
    if len(dynamic) > 1:
        raise ctx.error(f"cannot resolve the target shape {public_shape(shape)} of input shape {public_shape(x.shape)}: "
                        "more than one size depends on dynamic input sizes; pass fixed sizes with dims={...}")
    if not dynamic and any(is_dynamic(d) for d in x.shape):
        raise ctx.error(f"cannot reshape input shape {public_shape(x.shape)} with a dynamic size to the fixed shape {shape}")
    target = tuple("auto" if i in dynamic else int(d) for i, d in enumerate(shape))
    return ctx.sym(axon.reshape(x.graph, target, name=ctx.layer_name()))


def _axes(ctx: Context, node: Any, attrs: dict, index: int) -> list[int] | None:
    if len(node.input) > index and node.input[index]:
        return [int(a) for a in np.asarray(ctx.const(node.input[index], "axes")).reshape(-1)]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


@handles("Reshape")
def reshape(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.reshape`` (ONNX's 0 copies the input's size, -1 is inferred; one dynamic size becomes ``"auto"``)."""
    x, _ = inputs(ctx, node)
    target = [int(d) for d in ctx.const(node.input[1], "the target shape")]
    if isinstance(x, Const):
        return [Const(np.reshape(x.value, [x.value.shape[i] if d == 0 and not attrs.get("allowzero") else d for i, d in enumerate(target)]))]
    shape = [x.shape[i] if d == 0 and not int(attrs.get("allowzero", 0)) else d for i, d in enumerate(target)]
    if shape.count(-1) > 1:
        raise ctx.error(f"the target shape {target} has more than one -1")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        total = math.prod(x.shape)
        if known == 0 or total % known:
            raise ctx.error(f"cannot reshape input shape {public_shape(x.shape)} to {target}")
        shape[shape.index(-1)] = total // known
    if math.prod(shape) != math.prod(x.shape):
        raise ctx.error(f"cannot reshape input shape {public_shape(x.shape)} to {target} (resolved as {public_shape(shape)}); "
                        "the target may depend on dynamic sizes: pass fixed sizes with dims={...}")
    return [reshape_to(ctx, x, shape)]


@handles("Flatten")
def flatten(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.reshape`` to ``(prod(shape[:axis]), prod(shape[axis:]))``."""
    (x,) = inputs(ctx, node)
    axis = int(attrs.get("axis", 1))
    if isinstance(x, Const):
        v = x.value
        axis %= max(v.ndim, 1)
        return [Const(v.reshape(math.prod(v.shape[:axis]), -1))]
    axis = axis % x.rank if x.rank else 0
    return [reshape_to(ctx, x, [math.prod(x.shape[:axis]), math.prod(x.shape[axis:])])]


@handles("Squeeze", "Unsqueeze", describe={
    "Squeeze": "`axon.reshape` (axes from the input or the attribute)", "Unsqueeze": "`axon.reshape` (axes from the input or the attribute)"})
def squeeze(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.reshape`` (axes from the input or the attribute)."""
    x = ctx.get(node.input[0])
    axes = _axes(ctx, node, attrs, 1)
    shape = list(x.value.shape if isinstance(x, Const) else x.shape)
    if node.op_type == "Squeeze":
        rank = len(shape)
        drop = {a % rank for a in axes} if axes is not None else {i for i, d in enumerate(shape) if d == 1}
        bad = [a for a in drop if shape[a] != 1]
        if bad:
            raise ctx.error(f"cannot squeeze axes {sorted(bad)} of shape {public_shape(shape)}: their size is not 1")
        new = [d for i, d in enumerate(shape) if i not in drop]
    else:
        rank = len(shape) + len(axes)
        new, rest = [], iter(shape)
        positions = {a % rank for a in axes}
        new = [1 if i in positions else next(rest) for i in range(rank)]
    if isinstance(x, Const):
        return [Const(x.value.reshape(new))]
    return [reshape_to(ctx, x, new)]


@handles("Transpose")
def transpose(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.transpose`` (the batch axis included)."""
    (x,) = inputs(ctx, node)
    rank = x.value.ndim if isinstance(x, Const) else x.rank
    perm = tuple(int(p) for p in attrs.get("perm", range(rank - 1, -1, -1)))
    if isinstance(x, Const):
        return [Const(np.transpose(x.value, perm))]
    return [ctx.sym(axon.transpose(x.graph, perm, name=ctx.layer_name()))]


@handles("Concat")
def concat(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.concatenate`` (folded when every part is known)."""
    values = [v for v in inputs(ctx, node) if v is not None]
    axis = int(attrs["axis"])
    if all(isinstance(v, Const) for v in values):
        return [Const(np.concatenate([v.value for v in values], axis=axis))]
    graphs = [ctx.graph(v) for v in values]
    if len(graphs) == 1:
        return [values[0]]
    return [ctx.sym(axon.concatenate(graphs, axis=axis, name=ctx.layer_name()))]


@handles("Split")
def split(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.split`` into the given sizes (from the input or the attribute) or equal parts."""
    x = ctx.get(node.input[0])
    axis = int(attrs.get("axis", 0))
    shape = x.value.shape if isinstance(x, Const) else x.shape
    size = shape[axis]
    if len(node.input) > 1 and node.input[1]:
        sizes = ctx.static_ints(node.input[1], "split")
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]
    else:
        parts = int(attrs.get("num_outputs", len(node.output)))
        if is_dynamic(size):
            raise ctx.error(f"cannot split the dynamic axis {axis} of shape {public_shape(shape)}")
        step = -(-size // parts)
        sizes = [min(step, size - i * step) for i in range(parts)]
    if isinstance(x, Const):
        return [Const(p) for p in np.split(x.value, np.cumsum(sizes)[:-1], axis=axis)]
    parts = axon.split(x.graph, sizes, axis=axis, name=ctx.layer_name())
    return [ctx.sym(p) for p in parts]


def _clamp_slice(start: int, end: int, step: int, size: int) -> tuple[int, int]:
    """ONNX's clamping of slice bounds to Python's (huge values and negative ends)."""
    limit = 2**31 - 1
    start, end = max(min(start, limit), -limit), max(min(end, limit), -limit)
    if not is_dynamic(size):
        start, end, _ = slice(start, end, step).indices(size)
        if step < 0 and end < 0:
            end = -size - 1  # runs to the start of the axis
    return start, end


@handles("Slice")
def slice_op(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.slice_axes`` (starts, ends, axes and steps known at import time)."""
    x = ctx.get(node.input[0])
    starts = [int(v) for v in ctx.const(node.input[1], "starts")]
    ends = [int(v) for v in ctx.const(node.input[2], "ends")]
    shape = x.value.shape if isinstance(x, Const) else x.shape
    axes = _axes(ctx, node, attrs, 3) or list(range(len(starts)))
    steps = ctx.static_ints(node.input[4], "steps") if len(node.input) > 4 and node.input[4] else [1] * len(starts)
    axes = [a % len(shape) for a in axes]
    for s, e, a in zip(starts, ends, axes):
        # a bound that is a dynamic size is resolved only as the end of that same dynamic axis
        if is_dynamic(s) or (is_dynamic(e) and not (e == DYNAMIC and shape[a] == DYNAMIC)):
            raise ctx.error(f"the slice bounds {public_shape([s, e])} of axis {a} (size {public_shape([shape[a]])[0]}) depend on "
                            "dynamic input sizes; pass fixed sizes with dims={...}")
    bounds = [_clamp_slice(s, e, st, shape[a]) for s, e, st, a in zip(starts, ends, steps, axes)]
    if isinstance(x, Const):
        if set(axes) & set(x.dynamic_axes):
            raise ctx.error(f"cannot slice axes {sorted(set(axes) & set(x.dynamic_axes))} of a constant whose size there depends on "
                            "dynamic input sizes; pass fixed sizes with dims={...}")
        index = [slice(None)] * x.value.ndim
        for (s, e), a, st in zip(bounds, axes, steps):
            index[a] = slice(s, e, st)
        return [Const(x.value[tuple(index)], dynamic_axes=x.dynamic_axes)]
    starts, ends = [s for s, _ in bounds], [e for _, e in bounds]
    return [apply(ctx, layers.slice_axes, [x], op_name="slice", starts=tuple(starts), ends=tuple(ends), axes=tuple(axes),
                  steps=tuple(steps))]


@handles("Gather")
def gather(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.embedding`` for a 2-d initializer table indexed on axis 0; ``axon.layers.gather`` otherwise."""
    data, indices = inputs(ctx, node)
    axis = int(attrs.get("axis", 0))
    if isinstance(data, Const) and isinstance(indices, Const):
        idx = np.asarray(indices.value)
        size = data.value.shape[axis]
        return [Const(np.take(data.value, np.where(idx < 0, idx + size, idx), axis=axis))]
    if isinstance(data, Const) and data.initializer and data.value.ndim == 2 and axis == 0 and data.value.dtype.kind == "f":
        name = ctx.param_layer_name(data.initializer)
        ctx.param(name, "kernel", data.value)
        vocab, dim = data.value.shape
        return [ctx.sym(axon.embedding(indices.graph, int(vocab), int(dim), name=name))]
    return [apply(ctx, layers.gather, [data, indices], op_name="gather", axis=axis)]


@handles("Shape")
def shape(ctx: Context, node: Any, attrs: dict) -> list:
    """Folded to a constant (a dynamic size stays symbolic until a reshape resolves it)."""
    (x,) = inputs(ctx, node)
    dims = np.array(x.value.shape if isinstance(x, Const) else x.shape, dtype=np.int64)
    if isinstance(x, Const):
        dims[list(x.dynamic_axes)] = DYNAMIC
    start, end = attrs.get("start", 0), attrs.get("end")
    return [Const(dims[start:end])]


@handles("Constant")
def constant(ctx: Context, node: Any, attrs: dict) -> list:
    """Folded to a constant."""
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return [Const(np.asarray(attrs[key], dtype=dtype))]
    raise ctx.error(f"unsupported Constant attributes {sorted(attrs)}")


@handles("ConstantOfShape")
def constant_of_shape(ctx: Context, node: Any, attrs: dict) -> list:
    """Folded to a constant (the shape must be static)."""
    dims = [int(d) for d in ctx.const(node.input[0], "the shape")]
    dynamic = tuple(i for i, d in enumerate(dims) if is_dynamic(d))
    if any(is_dynamic(d) and d != DYNAMIC for d in dims):
        raise ctx.error(f"cannot resolve the shape {public_shape(dims)}: it depends on dynamic input sizes; pass fixed sizes with dims={{...}}")
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)[0]
    shape = [1 if i in dynamic else d for i, d in enumerate(dims)]
    return [Const(np.full(shape, value, dtype=np.asarray(value).dtype), dynamic_axes=dynamic)]


@handles("Expand")
def expand(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.broadcast`` (folded when the input is known)."""
    x = ctx.get(node.input[0])
    dims = [int(d) for d in ctx.const(node.input[1], "the shape")]
    if isinstance(x, Const):
        if any(is_dynamic(d) for d in dims):
            raise ctx.error(f"cannot expand a constant to the shape {public_shape(dims)}, which depends on dynamic input sizes; "
                            "pass fixed sizes with dims={...}")
        return [Const(np.broadcast_to(x.value, np.broadcast_shapes(x.value.shape, tuple(dims))).copy())]
    rank = max(len(dims), x.rank)
    mine = [1] * (rank - x.rank) + list(x.shape)
    target = []
    for d, m in zip([1] * (rank - len(dims)) + dims, mine):
        if is_dynamic(d) and d != m:
            raise ctx.error(f"cannot expand shape {public_shape(x.shape)} to {public_shape(dims)}: a dynamic target size differs from the input's")
        target.append(1 if is_dynamic(d) else d)
    return [apply(ctx, layers.broadcast, [x], op_name="broadcast", shape=tuple(target))]


_REDUCE = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min", "ReduceProd": "prod"}


@handles(*_REDUCE, describe={k: f'`axon.layers.reduce(kind="{v}")`' for k, v in _REDUCE.items()})
def reduce(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.reduce`` with the op's kind."""
    x = ctx.get(node.input[0])
    axes = _axes(ctx, node, attrs, 1)
    keepdims = bool(int(attrs.get("keepdims", 1)))
    if axes is not None and not axes:
        axes = None
    if axes is None and int(attrs.get("noop_with_empty_axes", 0)):
        return [x]
    kind = _REDUCE[node.op_type]
    fold = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}[kind]
    return [apply(ctx, layers.reduce, [x], op_name="reduce", kind=kind, axes=None if axes is None else tuple(axes),
                  keepdims=keepdims, fold=lambda v, kind, axes, keepdims: fold(v, axis=axes, keepdims=keepdims))]


@handles("Pad")
def pad(ctx: Context, node: Any, attrs: dict) -> list:
    """``axon.layers.pad_axes`` (constant, reflect or edge; negative pads crop)."""
    x = ctx.get(node.input[0])
    rank = x.value.ndim if isinstance(x, Const) else x.rank
    pads = ctx.static_ints(node.input[1], "pads") if len(node.input) > 1 else [int(p) for p in attrs["pads"]]
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(np.asarray(ctx.const(node.input[2], "constant_value")).reshape(-1)[0])
    axes = _axes(ctx, node, {}, 3) or list(range(rank))
    pairs = [(0, 0)] * rank
    for i, a in enumerate(axes):
        pairs[a % rank] = (pads[i], pads[i + len(axes)])
    mode = attrs.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.error(f"mode={mode!r} is not supported (constant, reflect or edge)")
    return [apply(ctx, layers.pad_axes, [x], op_name="pad", pads=tuple(pairs), method=mode, value=value)]


__all__ = ["DYNAMIC", "reshape_to"]
