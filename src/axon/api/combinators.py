"""Combinators: ``add``, ``subtract``, ``multiply``, ``concatenate``, ``split``, ``cond``.

``add``/``subtract``/``multiply``/``concatenate`` take two graphs or a list of graphs.
Unlike Axon, their inputs are their direct parents (Axon packs them in an extra container
node first), so a graph has one node fewer per combinator and later ``container_k`` names
count from a lower number; layer names otherwise match.

>>> import axon, jax.numpy as jnp
>>> a, b = axon.input("a", shape=(None, 1)), axon.input("b", shape=(None, 1))
>>> axon.predict(axon.subtract(a, b), {}, {"a": jnp.array([[3.0]]), "b": jnp.array([[1.0]])}).tolist()
[[2.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from axon import layers
from axon.api.core import check_graph, check_name, layer
from axon.graph import Axon
from axon.registry import register, register_all
from axon.typing_aliases import LayerName

__all__ = ["add", "concatenate", "cond", "multiply", "split", "subtract"]


def _collect(where: str, x: Axon | Sequence[Axon], rest: tuple[Axon, ...]) -> list[Axon]:
    graphs = list(x) if isinstance(x, (list, tuple)) else [x, *rest]
    if isinstance(x, (list, tuple)) and rest:
        raise TypeError(f"{where}: pass either a list of graphs or graphs as arguments, not both")
    if len(graphs) < 2 and not (isinstance(x, (list, tuple)) and len(graphs) == 1):
        raise ValueError(f"{where}: expected at least two inputs, got {len(graphs)}")
    for g in graphs:
        check_graph(g, where)
    return graphs


def _elementwise(fn: Callable[..., Any], op_name: str):
    def combinator(x: Axon | Sequence[Axon], *more: Axon, name: LayerName = None, meta: dict | None = None) -> Axon:
        graphs = _collect(op_name, x, more)
        return layer(fn, graphs, name=check_name(name, op_name), op_name=op_name, meta=meta)

    combinator.__name__ = combinator.__qualname__ = op_name
    combinator.__module__ = __name__
    return combinator


add = _elementwise(layers.add, "add")
add.__doc__ = """Element-wise sum of two or more graphs (with broadcasting).

    Args:
        x: The first input graph, or a list of two or more graphs.
        *more: The other input graphs (when ``x`` is a single graph).
        name: The layer name (``None``: ``"add_<count>"``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the result (the inputs' broadcast shape).

    Raises:
        TypeError: An input is not a graph, or both a list and more graphs were given.
        ValueError: Fewer than two inputs.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x")
    >>> axon.predict(axon.add([x, x, x]), {}, jnp.array([1.0])).tolist()
    [3.0]
    """
subtract = _elementwise(layers.subtract, "subtract")
subtract.__doc__ = """Left fold of subtraction: ``x0 - x1 - ...`` (with broadcasting).

    Args:
        x: The first input graph, or a list of two or more graphs.
        *more: The other input graphs (when ``x`` is a single graph).
        name: The layer name (``None``: ``"subtract_<count>"``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the result (the inputs' broadcast shape).

    Raises:
        TypeError: An input is not a graph, or both a list and more graphs were given.
        ValueError: Fewer than two inputs.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x")
    >>> axon.predict(axon.subtract(x, x), {}, jnp.array([1.0])).tolist()
    [0.0]
    """
multiply = _elementwise(layers.multiply, "multiply")
multiply.__doc__ = """Element-wise product of two or more graphs (with broadcasting).

    Args:
        x: The first input graph, or a list of two or more graphs.
        *more: The other input graphs (when ``x`` is a single graph).
        name: The layer name (``None``: ``"multiply_<count>"``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the result (the inputs' broadcast shape).

    Raises:
        TypeError: An input is not a graph, or both a list and more graphs were given.
        ValueError: Fewer than two inputs.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x")
    >>> axon.predict(axon.multiply(x, x), {}, jnp.array([3.0])).tolist()
    [9.0]
    """


def concatenate(
    x: Axon | Sequence[Axon], *more: Axon, axis: int = -1, name: LayerName = None, meta: dict | None = None
) -> Axon:
    """Concatenate two or more graphs along ``axis`` (the last by default).

    Args:
        x: The first input graph, or a list of two or more graphs.
        *more: The other input graphs (when ``x`` is a single graph).
        axis: The axis to join along; negative counts from the end. Default ``-1``.
        name: The layer name (``None``: ``"concatenate_<count>"``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the concatenation.

    Raises:
        TypeError: An input is not a graph, or ``axis`` is not an int.
        ValueError: Fewer than two inputs.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x", shape=(None, 2))
    >>> axon.predict(axon.concatenate(x, x), {}, jnp.ones((1, 2))).shape
    (1, 4)
    """
    graphs = _collect("concatenate", x, more)
    if not isinstance(axis, int):
        raise TypeError(f"concatenate: expected axis to be an int, got {axis!r}")
    return layer(layers.concatenate, graphs, axis=axis, name=check_name(name, "concatenate"), op_name="concatenate", meta=meta)


def split(
    x: Axon, splits: int | Sequence[int], *, axis: int = -1, name: LayerName = None, meta: dict | None = None
) -> tuple[Axon, ...]:
    """Split a graph into ``splits`` equal parts (or parts of the listed sizes) along
    ``axis``; returns a tuple of graphs. ``name`` may be a list with one name per part.

    Args:
        x: The input graph.
        splits: The number of equal parts, or the size of each part.
        axis: The axis to split. Default ``-1``.
        name: The layer name for every part, or a list with one name per part.
        meta: Free-form metadata kept on each part's node.

    Returns:
        A tuple of graphs, one per part.

    Raises:
        ValueError: ``splits`` is not positive, or the names do not match the parts.

    >>> import axon, jax.numpy as jnp
    >>> a, b = axon.split(axon.input("x", shape=(None, 4)), 2)
    >>> axon.predict(b, {}, jnp.arange(4.0).reshape(1, 4)).tolist()
    [[2.0, 3.0]]
    """
    check_graph(x, "split")
    count = splits if isinstance(splits, int) else len(splits)
    if isinstance(splits, int):
        if splits < 1:
            raise ValueError(f"split: expected a positive number of splits, got {splits}")
    elif not all(isinstance(s, int) and s > 0 for s in splits):
        raise ValueError(f"split: expected split sizes to be positive ints, got {splits!r}")
    names = list(name) if isinstance(name, (list, tuple)) else [name] * count
    if len(names) != count:
        raise ValueError(f"split: got {len(names)} names for {count} splits")
    sizes = splits if isinstance(splits, int) else tuple(splits)
    return tuple(
        layer(split_part, [x], sizes=sizes, index=i, axis=axis, name=check_name(names[i], "split"), op_name="split", meta=meta)
        for i in range(count)
    )


@register("op", "axon.split_part")
def split_part(value: Any, *, sizes: int | tuple[int, ...], index: int, axis: int = -1) -> Any:
    """The op of :func:`split` layers: part ``index`` of ``layers.split(value, sizes, axis=axis)``.

    >>> import jax.numpy as jnp
    >>> split_part(jnp.arange(4.0), sizes=2, index=1).tolist()
    [2.0, 3.0]
    """
    return layers.split(value, sizes, axis=axis)[index]


def cond(
    parent: Axon,
    cond_fn: Callable[[Any], Any],
    true_graph: Axon,
    false_graph: Axon,
    *,
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Choose between two graphs at run time: ``true_graph`` where ``cond_fn(parent)`` (a
    boolean scalar) holds, else ``false_graph``. Both branches must have equal shapes.

    Args:
        parent: The graph ``cond_fn`` is applied to.
        cond_fn: A function of ``parent``'s value returning a boolean scalar (traced; use
            ``jax.numpy``). Register it with ``axon.register_layer`` to save the model.
        true_graph: The graph whose value is used where the condition holds.
        false_graph: The graph whose value is used otherwise.
        name: The layer name (``None``: ``"cond_<count>"``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the chosen branch's value.

    Raises:
        TypeError: A branch or ``parent`` is not a graph, or ``cond_fn`` is not callable.

    >>> import axon, jax.numpy as jnp
    >>> x = axon.input("x")
    >>> y = axon.cond(x, lambda v: v.sum() > 0, axon.relu(x), axon.tanh(x))
    >>> axon.predict(y, {}, jnp.array([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    for g, what in ((parent, "parent"), (true_graph, "true_graph"), (false_graph, "false_graph")):
        check_graph(g, "cond", what)
    if not callable(cond_fn):
        raise TypeError(f"cond: expected cond_fn to be a function, got {cond_fn!r}")

    return layer(cond_op, [parent, true_graph, false_graph], cond_fn=cond_fn, name=check_name(name, "cond"),
                 op_name="cond", meta=meta)


@register("op", "axon.cond")
def cond_op(parent: Any, on_true: Any, on_false: Any, *, cond_fn: Callable[[Any], Any]) -> Any:
    """The op of :func:`cond` layers: ``on_true`` where ``cond_fn(parent)`` (a boolean
    scalar) holds, else ``on_false`` (``cond_fn`` is kept in the layer's options, so a model
    using it can be saved once it is registered with ``axon.register_layer``).

    >>> import jax.numpy as jnp
    >>> cond_op(jnp.ones(2), jnp.ones(1), jnp.zeros(1), cond_fn=lambda v: v.sum() > 0).tolist()
    [1.0]
    """
    pred = cond_fn(parent)
    if getattr(pred, "shape", ()) != ():
        raise ValueError(f"cond: cond_fn must return a scalar, got shape {pred.shape}")
    return jax.lax.cond(pred, lambda a, b: a, lambda a, b: b, on_true, on_false)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.add": layers.add,
    "axon.concatenate": layers.concatenate,
    "axon.multiply": layers.multiply,
    "axon.split": layers.split,
    "axon.subtract": layers.subtract,
})
