"""``bidirectional``: run a graph function over a sequence forwards and backwards and merge
the two results, with the ops it adds to the graph (``reverse``, ``unreverse``, ``leaf``).

>>> import axon
>>> x = axon.input("x", shape=(None, 6, 3))
>>> seq = axon.bidirectional(x, lambda v: axon.gru(v, 2)[0], axon.add)
>>> axon.get_output_shape(seq, axon.template((1, 6, 3)))
(1, 6, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from axon.api.core import block, check_graph, check_name, layer
from axon.graph import Axon
from axon.registry import register
from axon.tree import at_path, flatten_with_paths, unflatten
from axon.typing_aliases import LayerName

__all__ = ["bidirectional"]


@register("op", "axon.reverse")
def reverse_op(x: jax.Array, *, axis: int) -> jax.Array:
    """Reverse ``x`` along ``axis`` (the backward input of :func:`bidirectional`).

    >>> import jax.numpy as jnp
    >>> reverse_op(jnp.array([[1, 2, 3]]), axis=1).tolist()
    [[3, 2, 1]]
    """
    return jnp.flip(x, axis)


def _is_sequence(leaf: Any, reference: jax.Array, axis: int) -> bool:
    ax = axis % reference.ndim
    return hasattr(leaf, "ndim") and leaf.ndim > ax + 1 and leaf.shape[ax] == reference.shape[ax]


@register("op", "axon.unreverse")
def unreverse_op(value: Any, reference: jax.Array, *, axis: int) -> Any:
    """Reverse back, along ``axis``, the leaves of ``value`` that are sequences: leaves with
    an axis after ``axis`` and the length of ``reference`` (the layer input) along ``axis``.
    Other leaves (final states) are returned as they are.

    >>> import jax.numpy as jnp
    >>> seq, h = unreverse_op((jnp.array([[[1], [2]]]), jnp.array([[5, 6]])), jnp.zeros((1, 2, 1)), axis=1)
    >>> seq[0, :, 0].tolist(), h.tolist()
    ([2, 1], [[5, 6]])
    """
    return jax.tree_util.tree_map(lambda v: jnp.flip(v, axis) if _is_sequence(v, reference, axis) else v, value)


@register("op", "axon.leaf")
def leaf_op(value: Any, *, path: tuple[Any, ...]) -> Any:
    """The entry of a nested value at ``path`` (a tuple of keys and indices).

    >>> leaf_op(("seq", ("c", "h")), path=(1, 0))
    'c'
    """
    return at_path(value, path)


def bidirectional(
    x: Axon,
    forward_fn: Callable[[Axon], Any],
    merge_fn: Callable[[Axon, Axon], Axon],
    *,
    axis: int = 1,
    name: LayerName = None,
) -> Any:
    """Run ``forward_fn`` over ``x`` and over ``x`` reversed along ``axis``, and merge the two
    results leaf by leaf with ``merge_fn(forward, backward)`` (e.g. ``axon.concatenate`` or
    ``axon.add``).

    ``forward_fn`` maps a graph to a graph or to nested tuples/lists/dicts of graphs (such as
    ``lstm``'s ``(output_sequence, (c, h))``); the result has the same structure. As in
    Axon, ``forward_fn`` is wrapped in one :func:`axon.block`, so **both directions share
    their parameters** (nested under the block's name, ``block_<k>`` or ``name``); a
    PyTorch/Keras bidirectional RNN has separate weights per direction. The backward
    results that are sequences (an axis after ``axis``, with the input's length along it)
    are reversed back, so that step ``t`` of both directions lines up; final states are
    merged as they are (Axon reverses every leaf back, which is harmless there because its
    states carry a size-1 time axis).

    Args:
        x: The input sequence graph.
        forward_fn: A function from a graph to a graph or nested tuples, lists and dicts of
            graphs (run once per direction, with shared parameters).
        merge_fn: A function of the forward and backward graphs of one leaf, returning a
            graph (``axon.concatenate``, ``axon.add``, ...).
        axis: The time axis. Default ``1``.
        name: The name of the block holding the shared parameters (``None``:
            ``"block_<count>"``).

    Returns:
        The merged results, in the structure ``forward_fn`` returns (dicts with their keys
        sorted, as ``jax.tree_util`` rebuilds them).

    Raises:
        TypeError: ``x`` is not a graph, a function is not callable, ``axis`` is not an
            int, or ``forward_fn``/``merge_fn`` return something other than graphs.

    >>> import axon
    >>> x = axon.input("x", shape=(None, 6, 3))
    >>> seq, (c, h) = axon.bidirectional(x, lambda v: axon.lstm(v, 4), axon.concatenate)
    >>> model = axon.container((seq, h))
    >>> axon.get_output_shape(model, axon.template((2, 6, 3)))
    ((2, 6, 8), (2, 8))
    >>> [name for name, op in axon.properties(model).items() if op == "block"]  # one block: shared parameters
    ['block_0']
    """
    where = "bidirectional"
    check_graph(x, where)
    if not callable(forward_fn):
        raise TypeError(f"{where}: expected forward_fn to be a function from a graph to graphs, got {forward_fn!r}")
    if not callable(merge_fn):
        raise TypeError(f"{where}: expected merge_fn to be a function of two graphs, got {merge_fn!r}")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{where}: expected axis to be an int, got {axis!r}")
    check_name(name, where)
    captured: list[Any] = []

    def body(inp: Axon) -> Any:
        out = forward_fn(inp)
        captured.append(out)
        return out

    shared = block(body, name=name)
    fwd = shared(x)
    leaves, treedef = flatten_with_paths(captured[0])
    for _, leaf in leaves:
        if not isinstance(leaf, Axon):
            raise TypeError(
                f"{where}: forward_fn must return a graph or nested tuples, lists and dicts of graphs, found {leaf!r}"
            )
    bwd = shared(layer(reverse_op, [x], axis=axis, op_name="reverse"))
    bwd = layer(unreverse_op, [bwd, x], axis=axis, op_name="reverse")
    merged = []
    for path, _ in leaves:
        f = fwd if not path else layer(leaf_op, [fwd], path=path, op_name="elem")
        b = bwd if not path else layer(leaf_op, [bwd], path=path, op_name="elem")
        out = merge_fn(f, b)
        if not isinstance(out, Axon):
            raise TypeError(f"{where}: merge_fn must return a graph, got {out!r}")
        merged.append(out)
    return unflatten(treedef, merged)
