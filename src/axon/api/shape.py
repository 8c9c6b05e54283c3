"""Shape layers: ``flatten``, ``reshape``, ``transpose``, ``pad``.

>>> import axon
>>> axon.input("x", shape=(None, 2, 3)).pipe(axon.flatten).node.op_name
'flatten'
"""

from __future__ import annotations

from collections.abc import Sequence

from axon import layers
from axon.api.core import check_graph, layer
from axon.graph import Axon
from axon.layers._utils import check_channels
from axon.registry import register_all
from axon.typing_aliases import Channels, LayerName

__all__ = ["flatten", "pad", "reshape", "transpose"]


def flatten(x: Axon, *, name: LayerName = None, meta: dict | None = None) -> Axon:
    """Fold all axes but the batch axis: ``(batch, ...) -> (batch, prod(...))``.

    Args:
        x: The input graph, ``(batch, ...)``.
        name: The layer name (``None``: ``"flatten_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the flattened input, ``(batch, prod(...))``.

    >>> import axon, jax.numpy as jnp
    >>> axon.predict(axon.flatten(axon.input("x")), {}, jnp.arange(4.0).reshape(1, 2, 2)).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    """
    check_graph(x, "flatten")
    return layer(layers.flatten, [x], name=name, op_name="flatten", meta=meta)


def reshape(x: Axon, new_shape: Sequence[int | str], *, name: LayerName = None, meta: dict | None = None) -> Axon:
    """Reshape to ``new_shape``, the batch axis included: ``"batch"`` stands for the run-time
    batch size and ``"auto"`` for the one inferred dimension (as in Axon; the batch axis is
    not kept implicitly).

    Args:
        x: The input graph.
        new_shape: The new shape, batch axis included: ints, ``"batch"`` and at most one
            ``"auto"`` (or ``-1``).
        name: The layer name (``None``: ``"reshape_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the reshaped input.

    Raises:
        ValueError: A dimension is not an int, ``"batch"`` or ``"auto"``.

    >>> import axon, jax.numpy as jnp
    >>> y = axon.reshape(axon.input("x"), ("batch", 2, "auto"))
    >>> axon.predict(y, {}, jnp.zeros((3, 8))).shape
    (3, 2, 4)
    """
    check_graph(x, "reshape")
    new_shape = tuple(new_shape)
    bad = [d for d in new_shape if not (d in ("batch", "auto") or (isinstance(d, int) and d >= -1))]
    if bad:
        raise ValueError(f"reshape: dimensions must be ints, 'batch' or 'auto', got {bad} in {new_shape}")
    return layer(layers.reshape, [x], shape=new_shape, name=name, op_name="reshape", meta=meta)


def transpose(x: Axon, permutation: Sequence[int] | None = None, *, name: LayerName = None, meta: dict | None = None) -> Axon:
    """Permute the axes, the batch axis included (as in Axon); ``None`` reverses them all.

    Args:
        x: The input graph.
        permutation: The new order of the axes, batch axis included. Default ``None``: all
            axes reversed.
        name: The layer name (``None``: ``"transpose_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the transposed input.

    >>> import axon, jax.numpy as jnp
    >>> axon.predict(axon.transpose(axon.input("x"), (0, 2, 1)), {}, jnp.zeros((1, 2, 3))).shape
    (1, 3, 2)
    """
    check_graph(x, "transpose")
    perm = None if permutation is None else tuple(int(p) for p in permutation)
    return layer(layers.transpose, [x], permutation=perm, name=name, op_name="transpose", meta=meta)


def pad(
    x: Axon,
    config: Sequence[tuple[int, int]],
    value: float = 0.0,
    *,
    channels: Channels = "last",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Pad the spatial axes with one ``(lo, hi)`` pair each, filling with ``value``.

    Args:
        x: The input graph, ``(batch, *spatial, channels)`` (or channels first).
        config: One ``(low, high)`` pair of sizes per spatial axis.
        value: The fill value. Default ``0.0``.
        channels: ``"last"`` (default; ``(batch, *spatial, channels)``) or ``"first"``
            (``(batch, channels, *spatial)``).
        name: The layer name (``None``: ``"pad_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the padded input.

    Raises:
        ValueError: ``channels`` is invalid.

    >>> import axon, jax.numpy as jnp
    >>> y = axon.pad(axon.input("x"), [(1, 1)])
    >>> axon.predict(y, {}, jnp.ones((1, 2, 3))).shape
    (1, 4, 3)
    """
    check_graph(x, "pad")
    check_channels(channels, "pad")
    config = tuple((int(lo), int(hi)) for lo, hi in config)
    return layer(layers.pad, [x], config=config, value=float(value), channels=channels, name=name, op_name="pad", meta=meta)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.flatten": layers.flatten,
    "axon.pad": layers.pad,
    "axon.reshape": layers.reshape,
    "axon.transpose": layers.transpose,
})
