"""Linear layers: ``dense``, ``bilinear``, ``embedding``, ``bias``.

>>> import axon
>>> model = axon.input("x", shape=(None, 784)).pipe(axon.dense, 128, activation="relu")
>>> [n.op_name for n in model.nodes.values()]
['input', 'dense', 'relu']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axon import layers
from axon.api.activation import activation as _activation
from axon.api.activation import layer_label, resolve_activation
from axon.api.core import check_graph, check_name, layer, param
from axon.graph import Axon
from axon.registry import register_all
from axon.typing_aliases import Activation, Initializer, LayerName

__all__ = ["bias", "bilinear", "dense", "embedding"]


def _units(value: Any, where: str, what: str = "units") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: expected {what} to be a positive int, got {value!r}")
    return value


def _maybe_activation(x: Axon, act: str | Callable[..., Any] | None) -> Axon:
    """``x`` followed by the activation layer ``act`` (none for ``None``); an unknown
    activation is an error naming the layer ``x`` (its constructor and given name)."""
    if act is None:
        return x
    resolve_activation(act, layer_label(x.node.op_name, x.node.name))
    return _activation(x, act)


def dense(
    x: Axon,
    units: int,
    *,
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A fully connected layer: ``activation(x @ kernel + bias)`` over the last axis.

    Parameters: ``kernel`` ``(in, units)``, ``bias`` ``(units,)``. With ``activation`` a
    separate activation layer follows (``dense_0`` then ``relu_0``), as in Axon.

    Args:
        x: The input graph, ``(..., in)``.
        units: The number of output features.
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"dense_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, ``(..., units)``.

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: ``units`` is not a positive int.

    >>> import axon
    >>> state = axon.init(axon.input("x", shape=(None, 784)).pipe(axon.dense, 128), axon.template((1, 784)))
    >>> state["dense_0"]["kernel"].shape, state["dense_0"]["bias"].shape
    ((784, 128), (128,))
    """
    check_graph(x, "dense")
    _units(units, "dense")
    check_name(name, "dense")
    kernel = param("kernel", lambda s: (s[-1], units), initializer=kernel_initializer)
    inputs = [x, kernel]
    if use_bias:
        inputs.append(param("bias", (units,), initializer=bias_initializer))
    meta = {"units": units, "use_bias": use_bias} if meta is None else meta
    out = layer(layers.dense, inputs, name=name, op_name="dense", meta=meta)
    return _maybe_activation(out, activation)


def bilinear(
    x1: Axon,
    x2: Axon,
    units: int,
    *,
    activation: Activation | None = None,
    use_bias: bool = True,
    kernel_initializer: Initializer = "glorot_uniform",
    bias_initializer: Initializer = "zeros",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A bilinear layer: ``y[..., k] = x1 · kernel[k] · x2 + bias[k]``.

    Parameters: ``kernel`` ``(units, in1, in2)``, ``bias`` ``(units,)``.

    Args:
        x1: The first input graph, ``(..., in1)``.
        x2: The second input graph, ``(..., in2)``.
        units: The number of output features.
        activation: An activation applied after the layer, as a separate layer (a name
            from ``axon.activations`` or a function). Default ``None``: none.
        use_bias: Whether to add a trainable bias. Default ``True``.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"glorot_uniform"``.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"bilinear_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the output, ``(..., units)``.

    Raises:
        TypeError: An input is not a graph.
        ValueError: ``units`` is not a positive int.

    >>> import axon
    >>> model = axon.bilinear(axon.input("a", shape=(None, 2)), axon.input("b", shape=(None, 4)), 1)
    >>> state = axon.init(model, {"a": axon.template((3, 2)), "b": axon.template((3, 4))})
    >>> state["bilinear_0"]["kernel"].shape
    (1, 2, 4)
    """
    check_graph(x1, "bilinear", "x1")
    check_graph(x2, "bilinear", "x2")
    _units(units, "bilinear")
    kernel = param("kernel", lambda s1, s2: (units, s1[-1], s2[-1]), initializer=kernel_initializer)
    inputs = [x1, x2, kernel]
    if use_bias:
        inputs.append(param("bias", (units,), initializer=bias_initializer))
    out = layer(layers.bilinear, inputs, name=name, op_name="bilinear", meta=meta)
    return _maybe_activation(out, activation)


def embedding(
    x: Axon,
    vocab_size: int,
    embedding_size: int,
    *,
    kernel_initializer: Initializer = "uniform",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """A lookup table of ``vocab_size`` vectors of size ``embedding_size`` for integer ids.

    Parameter: ``kernel`` ``(vocab_size, embedding_size)``; the output has the input's
    shape plus ``(embedding_size,)``.

    Args:
        x: The graph of integer ids in ``[0, vocab_size)``.
        vocab_size: The number of ids (rows of the table).
        embedding_size: The size of each vector.
        kernel_initializer: The kernel's initializer (a name from ``axon.initializers``
            or ``init(key, shape, dtype)``). Default ``"uniform"``.
        name: The layer name (``None``: ``"embedding_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the vectors, ``(*x.shape, embedding_size)``.

    Raises:
        ValueError: A size is not a positive int.

    >>> import axon
    >>> model = axon.input("ids", shape=(None, 5)).pipe(axon.embedding, 100, 8)
    >>> axon.init(model, axon.template((1, 5), "s32"))["embedding_0"]["kernel"].shape
    (100, 8)
    """
    check_graph(x, "embedding")
    _units(vocab_size, "embedding", "vocab_size")
    _units(embedding_size, "embedding", "embedding_size")
    kernel = param("kernel", (vocab_size, embedding_size), initializer=kernel_initializer)
    return layer(layers.embedding, [x, kernel], name=name, op_name="embedding", meta=meta)


def bias(x: Axon, *, bias_initializer: Initializer = "zeros", name: LayerName = None, meta: dict | None = None) -> Axon:
    """Add a trainable ``bias`` of the size of the last axis.

    Args:
        x: The input graph.
        bias_initializer: The bias's initializer. Default ``"zeros"``.
        name: The layer name (``None``: ``"bias_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of ``x + bias`` (the input's shape).

    >>> import axon
    >>> axon.init(axon.input("x", shape=(None, 3)).pipe(axon.bias), axon.template((1, 3)))["bias_0"]["bias"].shape
    (3,)
    """
    check_graph(x, "bias")
    b = param("bias", lambda s: (s[-1],), initializer=bias_initializer)
    return layer(layers.bias, [x, b], name=name, op_name="bias", meta=meta)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.bias": layers.bias,
    "axon.bilinear": layers.bilinear,
    "axon.dense": layers.dense,
    "axon.embedding": layers.embedding,
})
