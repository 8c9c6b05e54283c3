"""Activation layers: ``activation(x, "relu")`` and one shortcut per activation
(``axon.relu(x)``, ``axon.softmax(x, axis=-1)``...), each applying the function of the
same name in :mod:`axon.activations`.

>>> import axon, jax.numpy as jnp
>>> y = axon.input("x").pipe(axon.leaky_relu, alpha=0.5)
>>> axon.predict(y, {}, jnp.array([-2.0, 2.0])).tolist()
[-1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axon import activations as _activations
from axon.api.core import check_graph, layer
from axon.graph import Axon
from axon.typing_aliases import Activation, LayerName

__all__ = ["activation", *_activations.ACTIVATIONS]


def layer_label(op_name: str, name: Any) -> str:
    """How an error names a layer being constructed: the constructor, and the layer's name
    when one was given as a string (``dense 'encoder'``).

    >>> layer_label("dense", None), layer_label("dense", "encoder")
    ('dense', "dense 'encoder'")
    """
    return f"{op_name} {name!r}" if isinstance(name, str) else op_name


def resolve_activation(act: str | Callable[..., Any], where: str) -> Callable[..., Any]:
    """The activation function for ``act`` (a name or a function); an unknown name or a
    value that is neither raises an error that starts with ``where`` (the layer).

    Args:
        act: an activation name (``"relu"``) or a function.
        where: the layer the error names, e.g. ``layer_label("dense", name)``.

    Returns:
        The activation function.

    Raises:
        ValueError: an unknown name (the accepted names are listed).
        TypeError: neither a name nor a function.

    >>> resolve_activation("bogus", "dense")
    Traceback (most recent call last):
    ...
    ValueError: dense: unknown activation 'bogus'; expected a callable or one of: 'celu', ...
    """
    try:
        return _activations.get(act)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: {e}") from None


def activation(x: Axon, activation: Activation, *, name: LayerName = None, **opts: Any) -> Axon:
    """Apply an activation, by name (``"relu"``; the layer's op name is that name) or as a
    function (op name ``"custom"``); ``opts`` go to the function (``alpha``, ``axis``).

    Args:
        x: The input graph.
        activation: A name from ``axon.activations`` (``"relu"``, ``"softmax"``, ...) or a
            function of an array.
        name: The layer name (``None``: ``"<op_name>_<count>"``; a string, in which
            ``"{n}"`` is the count; or a function ``(op_name, op_counts) -> str``).
        **opts: Keyword options passed to the activation function (``alpha=``, ``axis=``).

    Returns:
        The graph of the activation's output (the input's shape).

    Raises:
        ValueError: ``activation`` is an unknown name.
        TypeError: ``x`` is not a graph, or an option is not one the function accepts.

    >>> import axon
    >>> axon.activation(axon.input("x"), "tanh").node.op_name
    'tanh'
    """
    check_graph(x, "activation")
    fn = resolve_activation(activation, layer_label("activation", name))
    op_name = activation if isinstance(activation, str) else "custom"
    return layer(fn, [x], name=name, op_name=op_name, **opts)


def _shortcut(act_name: str) -> Callable[..., Axon]:
    def shortcut(x: Axon, *, name: LayerName = None, **opts: Any) -> Axon:
        return activation(x, act_name, name=name, **opts)

    shortcut.__name__ = shortcut.__qualname__ = act_name
    shortcut.__module__ = __name__
    shortcut.__doc__ = (
        f"Add a ``{act_name}`` activation layer (see :func:`axon.activations.{act_name}`).\n\n"
        f"    Args:\n"
        f"        x: The input graph.\n"
        f"        name: The layer name (``None``: ``'{act_name}_<count>'``).\n"
        f"        **opts: Keyword options of :func:`axon.activations.{act_name}`, if any.\n\n"
        f"    Returns:\n"
        f"        The graph of the activation's output (the input's shape).\n\n"
        f"    >>> import axon\n"
        f"    >>> axon.{act_name}(axon.input('x')).node.op_name\n"
        f"    '{act_name}'\n"
    )
    return shortcut


for _name in _activations.ACTIVATIONS:
    globals()[_name] = _shortcut(_name)
del _name
