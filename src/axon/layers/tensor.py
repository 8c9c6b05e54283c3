"""Functional tensor ops: element-wise math, comparisons, selection, indexing, slicing,
broadcasting, reductions and casts, with NumPy's broadcasting rules.

They are the general-purpose pieces that models imported from other frameworks (see
``axon.onnx.import_model``) are written with; each is registered as ``"axon.<name>"`` so a
graph using them can be saved.

>>> import jax.numpy as jnp
>>> divide(jnp.array([6.0, 8.0]), jnp.array([2.0, 4.0])).tolist()
[3.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
from jax.scipy.special import erf as _erf

__all__ = [
    "absolute",
    "broadcast",
    "cast",
    "clip",
    "divide",
    "equal",
    "erf",
    "gather",
    "log",
    "matmul",
    "negative",
    "pad_axes",
    "power",
    "reduce",
    "remainder",
    "slice_axes",
    "sqrt",
    "where",
]

PadMode = Literal["constant", "reflect", "edge"]
ReduceKind = Literal["mean", "sum", "max", "min", "prod"]


def divide(x: jax.Array, y: jax.Array) -> jax.Array:
    """Element-wise ``x / y`` with broadcasting; integers divide with truncation toward zero
    (as C and ONNX do).

    Args:
        x: the dividend.
        y: the divisor, broadcastable with ``x``.

    Returns:
        The quotient.

    >>> import jax.numpy as jnp
    >>> divide(jnp.array([1.0, 3.0]), 2.0).tolist(), divide(jnp.array([-7, 7]), jnp.array([2, 2])).tolist()
    ([0.5, 1.5], [-3, 3])
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if jnp.issubdtype(x.dtype, jnp.integer) and jnp.issubdtype(y.dtype, jnp.integer):
        q = jnp.abs(x) // jnp.abs(y)
        return jnp.where((x < 0) != (y < 0), -q, q)
    return x / y


def power(x: jax.Array, y: jax.Array) -> jax.Array:
    """Element-wise ``x ** y`` with broadcasting (the result has ``x``'s dtype).

    Args:
        x: the base.
        y: the exponent, broadcastable with ``x``.

    Returns:
        ``x ** y``.

    >>> import jax.numpy as jnp
    >>> power(jnp.array([2.0, 3.0]), 2.0).tolist()
    [4.0, 9.0]
    """
    x = jnp.asarray(x)
    return jnp.power(x, jnp.asarray(y)).astype(x.dtype)


def matmul(x: jax.Array, y: jax.Array) -> jax.Array:
    """Matrix product with NumPy's rules (batched over leading axes, 1-d operands promoted).

    Args:
        x: ``(..., n, k)`` (or ``(k,)``).
        y: ``(..., k, m)`` (or ``(k,)``).

    Returns:
        ``(..., n, m)``.

    >>> import jax.numpy as jnp
    >>> matmul(jnp.ones((2, 3, 4)), jnp.ones((4, 5))).shape
    (2, 3, 5)
    """
    return jnp.matmul(x, y)


def remainder(x: jax.Array, y: jax.Array, *, fmod: bool = False) -> jax.Array:
    """Element-wise remainder of ``x / y``: with the divisor's sign (Python's ``%``), or with
    the dividend's sign when ``fmod`` (C's ``fmod``).

    Args:
        x: the dividend.
        y: the divisor, broadcastable with ``x``.
        fmod: take the dividend's sign (default ``False``: the divisor's).

    Returns:
        The remainder.

    >>> import jax.numpy as jnp
    >>> remainder(jnp.array([-7, 7]), 3).tolist(), remainder(jnp.array([-7, 7]), 3, fmod=True).tolist()
    ([2, 1], [-1, 1])
    """
    return jnp.fmod(x, y) if fmod else jnp.remainder(x, y)


def sqrt(x: jax.Array) -> jax.Array:
    """Element-wise square root.

    Args:
        x: the input.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> import jax.numpy as jnp
    >>> sqrt(jnp.array([4.0, 9.0])).tolist()
    [2.0, 3.0]
    """
    return jnp.sqrt(x)


def log(x: jax.Array) -> jax.Array:
    """Element-wise natural logarithm.

    Args:
        x: the input.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> import jax.numpy as jnp
    >>> log(jnp.array([1.0])).tolist()
    [0.0]
    """
    return jnp.log(x)


def negative(x: jax.Array) -> jax.Array:
    """Element-wise ``-x``.

    Args:
        x: the input.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> import jax.numpy as jnp
    >>> negative(jnp.array([1.0, -2.0])).tolist()
    [-1.0, 2.0]
    """
    return jnp.negative(x)


def absolute(x: jax.Array) -> jax.Array:
    """Element-wise ``|x|``.

    Args:
        x: the input.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> import jax.numpy as jnp
    >>> absolute(jnp.array([-1.5, 2.0])).tolist()
    [1.5, 2.0]
    """
    return jnp.abs(x)


def erf(x: jax.Array) -> jax.Array:
    """Element-wise Gauss error function.

    Args:
        x: the input.

    Returns:
        An array of ``x``'s shape and dtype.

    >>> import jax.numpy as jnp
    >>> erf(jnp.array([0.0])).tolist()
    [0.0]
    """
    return _erf(x)


def clip(x: jax.Array, *, min: float | None = None, max: float | None = None) -> jax.Array:
    """Clamp ``x`` to ``[min, max]`` (``None``: unbounded on that side).

    Args:
        x: the input.
        min: the lower bound, or ``None``.
        max: the upper bound, or ``None``.

    Returns:
        The clamped input.

    >>> import jax.numpy as jnp
    >>> clip(jnp.array([-2.0, 0.5, 9.0]), min=0.0, max=6.0).tolist()
    [0.0, 0.5, 6.0]
    """
    return jnp.clip(x, min, max)


def equal(x: jax.Array, y: jax.Array) -> jax.Array:
    """Element-wise ``x == y`` with broadcasting.

    Args:
        x: the first operand.
        y: the second operand, broadcastable with ``x``.

    Returns:
        A boolean array.

    >>> import jax.numpy as jnp
    >>> equal(jnp.array([1, 2]), jnp.array([1, 3])).tolist()
    [True, False]
    """
    return jnp.equal(x, y)


def where(condition: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """``x`` where ``condition`` holds, else ``y`` (all three broadcast together).

    Args:
        condition: a boolean array.
        x: the values where ``condition`` is true.
        y: the values where it is false.

    Returns:
        The selected values.

    >>> import jax.numpy as jnp
    >>> where(jnp.array([True, False]), jnp.ones(2), jnp.zeros(2)).tolist()
    [1.0, 0.0]
    """
    return jnp.where(condition, x, y)


def cast(x: jax.Array, *, dtype: str) -> jax.Array:
    """Convert ``x`` to ``dtype`` (floats to integers truncate toward zero).

    Args:
        x: the input.
        dtype: the name of the new dtype, such as ``"float32"``, ``"int32"`` or ``"bool"``.

    Returns:
        ``x`` as ``dtype``.

    >>> import jax.numpy as jnp
    >>> cast(jnp.array([1.7, -1.7]), dtype="int32").tolist()
    [1, -1]
    """
    return jnp.asarray(x).astype(jnp.dtype(dtype))


def gather(x: jax.Array, indices: jax.Array, *, axis: int = 0) -> jax.Array:
    """Take the entries ``indices`` along ``axis`` (``numpy.take``); negative indices count
    from the end. The output shape is ``x.shape[:axis] + indices.shape + x.shape[axis+1:]``.

    Args:
        x: the array to index.
        indices: integer indices into ``x``'s axis ``axis``.
        axis: the axis to index (default 0).

    Returns:
        The gathered entries.

    >>> import jax.numpy as jnp
    >>> gather(jnp.arange(6.0).reshape(3, 2), jnp.array([2, -3]), axis=0).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    indices = jnp.asarray(indices)
    size = x.shape[axis]
    indices = jnp.where(indices < 0, indices + size, indices)
    return jnp.take(x, indices, axis=axis, mode="clip")


def slice_axes(
    x: jax.Array,
    *,
    starts: Sequence[int],
    ends: Sequence[int],
    axes: Sequence[int],
    steps: Sequence[int] | None = None,
) -> jax.Array:
    """Python slicing ``x[start:end:step]`` on each of ``axes`` (the other axes are kept
    whole); bounds are clamped to each axis as in Python.

    Args:
        x: the input.
        starts: one start per axis.
        ends: one (exclusive) end per axis.
        axes: the axes to slice.
        steps: one step per axis (default 1 each; negative steps walk backwards).

    Returns:
        The sliced array.

    Raises:
        ValueError: the lists have different lengths or a step is zero.

    >>> import jax.numpy as jnp
    >>> slice_axes(jnp.arange(10), starts=[1], ends=[8], axes=[0], steps=[3]).tolist()
    [1, 4, 7]
    """
    steps = [1] * len(axes) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError(f"slice_axes: starts {list(starts)}, ends {list(ends)}, axes {list(axes)} and steps {steps} must have equal lengths")
    if any(s == 0 for s in steps):
        raise ValueError(f"slice_axes: steps must be non-zero, got {steps}")
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def broadcast(x: jax.Array, *, shape: Sequence[int]) -> jax.Array:
    """Broadcast ``x`` with an array of ``shape`` (both ways, as NumPy's ``x * ones(shape)``:
    a 1 in ``shape`` keeps ``x``'s size).

    Args:
        x: the input.
        shape: the shape to broadcast with.

    Returns:
        ``x`` broadcast to ``numpy.broadcast_shapes(x.shape, shape)``.

    >>> import jax.numpy as jnp
    >>> broadcast(jnp.ones((3, 1)), shape=(1, 4)).shape
    (3, 4)
    """
    return jnp.broadcast_to(x, jnp.broadcast_shapes(x.shape, tuple(int(d) for d in shape)))


def reduce(x: jax.Array, *, kind: ReduceKind = "sum", axes: Sequence[int] | None = None, keepdims: bool = True) -> jax.Array:
    """Reduce ``x`` over ``axes`` (``None``: all axes) with ``kind``: ``"mean"``, ``"sum"``,
    ``"max"``, ``"min"`` or ``"prod"``.

    Args:
        x: the input.
        kind: the reduction (default ``"sum"``).
        axes: the axes to reduce, or ``None`` for all of them.
        keepdims: keep the reduced axes with size 1 (default ``True``).

    Returns:
        The reduced array.

    Raises:
        ValueError: ``kind`` is unknown.

    >>> import jax.numpy as jnp
    >>> reduce(jnp.arange(6.0).reshape(2, 3), kind="max", axes=[1], keepdims=False).tolist()
    [2.0, 5.0]
    """
    fns = {"mean": jnp.mean, "sum": jnp.sum, "max": jnp.max, "min": jnp.min, "prod": jnp.prod}
    if kind not in fns:
        raise ValueError(f"reduce: expected kind to be one of {list(fns)}, got {kind!r}")
    return fns[kind](x, axis=None if axes is None else tuple(int(a) for a in axes), keepdims=keepdims)


def pad_axes(x: jax.Array, *, pads: Sequence[tuple[int, int]], method: PadMode = "constant", value: float = 0.0) -> jax.Array:
    """Pad every axis with one ``(before, after)`` pair (batch and channel axes included);
    negative sizes crop. ``method``: ``"constant"`` (fill with ``value``), ``"reflect"`` or
    ``"edge"``.

    Args:
        x: the input.
        pads: one ``(before, after)`` pair per axis of ``x``.
        method: how to fill: ``"constant"`` (default), ``"reflect"`` or ``"edge"``.
        value: the fill value of the ``"constant"`` method (default 0).

    Returns:
        The padded array.

    Raises:
        ValueError: ``pads`` has not one pair per axis, or ``method`` is unknown.

    >>> import jax.numpy as jnp
    >>> pad_axes(jnp.array([1.0, 2.0]), pads=[(1, 2)], method="edge").tolist()
    [1.0, 1.0, 2.0, 2.0, 2.0]
    """
    pads = [(int(lo), int(hi)) for lo, hi in pads]
    if len(pads) != x.ndim:
        raise ValueError(f"pad_axes: expected one (before, after) pair per axis ({x.ndim}), got {pads}")
    if method not in ("constant", "reflect", "edge"):
        raise ValueError(f"pad_axes: expected method to be one of ['constant', 'reflect', 'edge'], got {method!r}")
    crop = tuple(slice(max(-lo, 0), x.shape[i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pads))
    x = x[crop]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    if method == "constant":
        return jnp.pad(x, grow, constant_values=jnp.asarray(value, x.dtype))
    return jnp.pad(x, grow, mode=method)
