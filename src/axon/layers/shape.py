"""Functional shape layers and combinators: flatten, reshape, transpose, pad, element-wise
folds, concatenate, split.

>>> import jax.numpy as jnp
>>> flatten(jnp.arange(4.0).reshape(1, 2, 2)).tolist()
[[0.0, 1.0, 2.0, 3.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from axon.layers._utils import check_batched, check_channels
from axon.typing_aliases import Channels

__all__ = [
    "add",
    "concatenate",
    "flatten",
    "multiply",
    "pad",
    "reshape",
    "split",
    "subtract",
    "transpose",
]


def flatten(x: jax.Array) -> jax.Array:
    """Fold every axis but the batch axis: ``(batch, ...) -> (batch, prod(...))``. The input
    must have a batch axis and at least one more (rank >= 2), as in Axon.

    Args:
        x: the input, ``(batch, d1, ..., dn)``, rank >= 2.

    Returns:
        ``(batch, d1 * ... * dn)``.

    Raises:
        ValueError: ``x`` has rank below 2.

    >>> import jax.numpy as jnp
    >>> flatten(jnp.zeros((2, 3, 4))).shape
    (2, 12)
    """
    check_batched(x, "flatten")
    return jnp.reshape(x, (x.shape[0], -1))


def reshape(x: jax.Array, shape: Sequence[int | str]) -> jax.Array:
    """Reshape to ``shape``; ``"batch"`` stands for the input's batch size, ``"auto"`` (or -1)
    for the one inferred dimension.

    Args:
        x: the input.
        shape: the new shape: ints, ``"batch"`` (the input's first axis) and at most one
            ``"auto"`` or ``-1``.

    Returns:
        ``x`` reshaped.

    Raises:
        ValueError: an entry is not an int, ``"batch"`` or ``"auto"``, or the sizes do not match.

    >>> import jax.numpy as jnp
    >>> reshape(jnp.zeros((2, 6)), ("batch", 3, "auto")).shape
    (2, 3, 2)
    """
    dims = []
    for d in shape:
        if d == "batch":
            dims.append(x.shape[0])
        elif d == "auto":
            dims.append(-1)
        elif isinstance(d, int):
            dims.append(d)
        else:
            raise ValueError(f"reshape: dimensions must be ints, 'batch' or 'auto', got {d!r} in {tuple(shape)}")
    try:
        return jnp.reshape(x, tuple(dims))
    except TypeError as e:
        raise ValueError(f"reshape: cannot reshape input of shape {tuple(x.shape)} to {tuple(shape)}") from e


def transpose(x: jax.Array, permutation: Sequence[int] | None = None) -> jax.Array:
    """Permute all axes (the batch axis included); ``None`` reverses them.

    Args:
        x: the input.
        permutation: the new order of all axes; ``None`` (default): reversed.

    Returns:
        ``x`` with its axes permuted.

    Raises:
        ValueError: ``permutation`` is not a permutation of ``range(x.ndim)``.

    >>> import jax.numpy as jnp
    >>> transpose(jnp.zeros((2, 3, 4)), (0, 2, 1)).shape
    (2, 4, 3)
    """
    if permutation is not None and sorted(permutation) != list(range(x.ndim)):
        raise ValueError(
            f"transpose: permutation {tuple(permutation)} is not a permutation of the {x.ndim} axes of shape {tuple(x.shape)}"
        )
    return jnp.transpose(x, permutation)


def pad(
    x: jax.Array, config: Sequence[tuple[int, int]], value: float = 0.0, *, channels: Channels = "last"
) -> jax.Array:
    """Pad the spatial axes with ``(lo, hi)`` pairs (batch and channels are not padded).

    Args:
        x: the input, ``(batch, *spatial, channels)`` or ``(batch, channels, *spatial)``.
        config: one ``(lo, hi)`` pair of non-negative ints per spatial axis.
        value: the padding value (default 0).
        channels: ``"last"`` (default) or ``"first"``: where the channel axis is.

    Returns:
        ``x`` with each spatial axis grown by ``lo + hi``.

    Raises:
        ValueError: ``config`` does not have one pair per spatial axis, or ``channels`` is unknown.

    >>> import jax.numpy as jnp
    >>> pad(jnp.ones((1, 2, 1)), [(1, 0)]).tolist()
    [[[0.0], [1.0], [1.0]]]
    """
    check_channels(channels, "pad")
    config = [tuple(p) for p in config]
    if len(config) != x.ndim - 2:
        raise ValueError(
            f"pad: expected one (lo, hi) pair per spatial axis ({x.ndim - 2} for input shape {tuple(x.shape)}), got {config}"
        )
    full = [(0, 0), *config, (0, 0)] if channels == "last" else [(0, 0), (0, 0), *config]
    return jnp.pad(x, full, constant_values=value)


def _fold(op, name: str, xs: Sequence[jax.Array]) -> jax.Array:
    if len(xs) < 1:
        raise ValueError(f"{name}: expected at least one input")
    try:
        return functools.reduce(op, xs)
    except (TypeError, ValueError) as e:
        shapes = [tuple(x.shape) for x in xs]
        raise ValueError(f"{name}: inputs with shapes {shapes} cannot be broadcast together") from e


def add(*xs: jax.Array) -> jax.Array:
    """Element-wise sum of the inputs, with broadcasting.

    Args:
        *xs: one or more arrays that broadcast together.

    Returns:
        Their sum.

    Raises:
        ValueError: no inputs, or shapes that do not broadcast.

    >>> import jax.numpy as jnp
    >>> add(jnp.ones(2), jnp.ones(2), jnp.ones(2)).tolist()
    [3.0, 3.0]
    """
    return _fold(jnp.add, "add", xs)


def subtract(*xs: jax.Array) -> jax.Array:
    """Left fold of subtraction: ``x0 - x1 - x2 ...``.

    Args:
        *xs: one or more arrays that broadcast together.

    Returns:
        ``xs[0] - xs[1] - ...``.

    Raises:
        ValueError: no inputs, or shapes that do not broadcast.

    >>> import jax.numpy as jnp
    >>> subtract(jnp.full(2, 5.0), jnp.ones(2), jnp.ones(2)).tolist()
    [3.0, 3.0]
    """
    return _fold(jnp.subtract, "subtract", xs)


def multiply(*xs: jax.Array) -> jax.Array:
    """Element-wise product of the inputs, with broadcasting.

    Args:
        *xs: one or more arrays that broadcast together.

    Returns:
        Their product.

    Raises:
        ValueError: no inputs, or shapes that do not broadcast.

    >>> import jax.numpy as jnp
    >>> multiply(jnp.full(2, 2.0), jnp.full(2, 3.0)).tolist()
    [6.0, 6.0]
    """
    return _fold(jnp.multiply, "multiply", xs)


def concatenate(*xs: jax.Array, axis: int = -1) -> jax.Array:
    """Concatenate along ``axis``.

    Args:
        *xs: arrays of equal rank whose shapes agree except along ``axis``.
        axis: the axis to join along (default -1, the last).

    Returns:
        The joined array.

    Raises:
        ValueError: the shapes cannot be joined along ``axis``.

    >>> import jax.numpy as jnp
    >>> concatenate(jnp.zeros((1, 2)), jnp.ones((1, 3))).shape
    (1, 5)
    """
    try:
        return jnp.concatenate(xs, axis=axis)
    except (TypeError, ValueError) as e:
        shapes = [tuple(x.shape) for x in xs]
        raise ValueError(f"concatenate: cannot concatenate shapes {shapes} along axis {axis}") from e


def split(x: jax.Array, splits: int | Sequence[int], *, axis: int = -1) -> tuple[jax.Array, ...]:
    """Split into ``splits`` equal parts, or parts of the listed sizes, along ``axis``.

    Args:
        x: the input.
        splits: a number of equal parts, or the list of part sizes (summing to the axis size).
        axis: the axis to split (default -1, the last).

    Returns:
        A tuple of the parts, in order.

    Raises:
        ValueError: the axis does not divide evenly, or the sizes do not sum to it.

    >>> import jax.numpy as jnp
    >>> [p.shape for p in split(jnp.zeros((2, 6)), [1, 5])]
    [(2, 1), (2, 5)]
    """
    size = x.shape[axis]
    if isinstance(splits, int):
        if splits < 1 or size % splits:
            raise ValueError(f"split: axis {axis} of size {size} cannot be split into {splits} equal parts")
        sizes = [size // splits] * splits
    else:
        sizes = list(splits)
        if sum(sizes) != size:
            raise ValueError(f"split: sizes {sizes} sum to {sum(sizes)}, but axis {axis} has size {size}")
    offsets, acc = [], 0
    for s in sizes[:-1]:
        acc += s
        offsets.append(acc)
    return tuple(jnp.split(x, offsets, axis=axis))
