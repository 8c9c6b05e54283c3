"""Normalization layers: ``batch_norm``, ``instance_norm``, ``layer_norm``, ``group_norm``,
``rms_norm``.

``gamma`` starts at ones and ``beta`` at zeros (Axon starts batch/instance/layer norm's
gamma from ``glorot_uniform``; a mature library starts from the identity transform).
Batch and instance norm keep running ``mean``/``var`` as layer state, updated in train
mode as ``(1 - momentum) * old + momentum * batch`` (PyTorch's convention for the same
default ``momentum=0.1``) and used in inference.

>>> import axon
>>> state = axon.init(axon.input("x", shape=(None, 4)).pipe(axon.batch_norm), axon.template((2, 4)))
>>> sorted(state["batch_norm_0"]), sorted(state.trainable_parameters()["batch_norm_0"])
(['beta', 'gamma', 'mean', 'var'], ['beta', 'gamma'])
"""

from __future__ import annotations

from typing import Any, Literal

from axon import layers
from axon.api.core import check_graph, layer, param
from axon.graph import Axon
from axon.registry import register_all
from axon.typing_aliases import Initializer, LayerName

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"]


def _channels(index: int):
    def shape(s):
        if not -len(s) <= index < len(s):
            raise ValueError(f"channel_index {index} is out of range for an input of shape {s}")
        return (s[index],)

    return shape


def _check_index(channel_index: Any, where: str) -> int:
    if not isinstance(channel_index, int) or isinstance(channel_index, bool):
        raise TypeError(f"{where}: expected channel_index to be an int, got {channel_index!r}")
    return channel_index


def _check_positive(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{where}: expected {what} to be a positive number, got {value!r}")
    return float(value)


def _running_norm(fn, op_name, x, gamma_initializer, beta_initializer, channel_index, epsilon, momentum, name, meta):
    check_graph(x, op_name)
    channel_index = _check_index(channel_index, op_name)
    epsilon = _check_positive(epsilon, "epsilon", op_name)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ValueError(f"{op_name}: expected momentum to be in [0, 1], got {momentum!r}")
    shape = _channels(channel_index)
    inputs = [
        x,
        param("gamma", shape, initializer=gamma_initializer),
        param("beta", shape, initializer=beta_initializer),
        param("mean", shape, initializer="zeros", kind="state"),
        param("var", shape, initializer="ones", kind="state"),
    ]
    return layer(
        fn, inputs, epsilon=epsilon, channel_index=channel_index, momentum=float(momentum),
        name=name, op_name=op_name, meta=meta,
    )


def batch_norm(
    x: Axon,
    *,
    gamma_initializer: Initializer = "ones",
    beta_initializer: Initializer = "zeros",
    channel_index: int = -1,
    epsilon: float = 1e-5,
    momentum: float = 0.1,
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Batch normalization over every axis but ``channel_index`` (see
    :func:`axon.layers.batch_norm`). Parameters ``gamma``, ``beta``; state ``mean``, ``var``.

    Args:
        x: The input graph.
        gamma_initializer: The scale ``gamma``'s initializer. Default ``"ones"``.
        beta_initializer: The offset ``beta``'s initializer. Default ``"zeros"``.
        channel_index: The feature axis (``gamma``/``beta`` have its size). Default ``-1``.
        epsilon: Added to the variance for numerical stability. Default ``1e-5``.
        momentum: Weight of the batch statistics in the running ones:
            ``new = (1 - momentum) · old + momentum · batch`` (PyTorch's convention). Default ``0.1``.
        name: The layer name (``None``: ``"batch_norm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the normalized input (the input's shape).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: An option is out of range.

    >>> import axon
    >>> axon.input("x").pipe(axon.batch_norm, momentum=0.01).node.opts["momentum"]
    0.01
    """
    return _running_norm(layers.batch_norm, "batch_norm", x, gamma_initializer, beta_initializer,
                         channel_index, epsilon, momentum, name, meta)


def instance_norm(
    x: Axon,
    *,
    gamma_initializer: Initializer = "ones",
    beta_initializer: Initializer = "zeros",
    channel_index: int = -1,
    epsilon: float = 1e-5,
    momentum: float = 0.1,
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Instance normalization over the spatial axes (see :func:`axon.layers.instance_norm`).

    Args:
        x: The input graph.
        gamma_initializer: The scale ``gamma``'s initializer. Default ``"ones"``.
        beta_initializer: The offset ``beta``'s initializer. Default ``"zeros"``.
        channel_index: The feature axis (``gamma``/``beta`` have its size). Default ``-1``.
        epsilon: Added to the variance for numerical stability. Default ``1e-5``.
        momentum: Weight of the batch statistics in the running ones:
            ``new = (1 - momentum) · old + momentum · batch`` (PyTorch's convention). Default ``0.1``.
        name: The layer name (``None``: ``"instance_norm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the normalized input (the input's shape).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: An option is out of range.

    >>> import axon
    >>> axon.input("x").pipe(axon.instance_norm).node.op_name
    'instance_norm'
    """
    return _running_norm(layers.instance_norm, "instance_norm", x, gamma_initializer, beta_initializer,
                         channel_index, epsilon, momentum, name, meta)


def layer_norm(
    x: Axon,
    *,
    gamma_initializer: Initializer = "ones",
    beta_initializer: Initializer = "zeros",
    channel_index: int = -1,
    epsilon: float = 1e-5,
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Layer normalization over the ``channel_index`` axis (see :func:`axon.layers.layer_norm`).

    Args:
        x: The input graph.
        gamma_initializer: The scale ``gamma``'s initializer. Default ``"ones"``.
        beta_initializer: The offset ``beta``'s initializer. Default ``"zeros"``.
        channel_index: The feature axis (``gamma``/``beta`` have its size). Default ``-1``.
        epsilon: Added to the variance for numerical stability. Default ``1e-5``.
        name: The layer name (``None``: ``"layer_norm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the normalized input (the input's shape).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: An option is out of range.

    >>> import axon
    >>> state = axon.init(axon.input("x", shape=(None, 5)).pipe(axon.layer_norm), axon.template((1, 5)))
    >>> state["layer_norm_0"]["gamma"].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    check_graph(x, "layer_norm")
    channel_index = _check_index(channel_index, "layer_norm")
    shape = _channels(channel_index)
    inputs = [x, param("gamma", shape, initializer=gamma_initializer), param("beta", shape, initializer=beta_initializer)]
    return layer(layers.layer_norm, inputs, epsilon=_check_positive(epsilon, "epsilon", "layer_norm"),
                 channel_index=channel_index, name=name, op_name="layer_norm", meta=meta)


def group_norm(
    x: Axon,
    num_groups: int,
    *,
    gamma_initializer: Initializer = "ones",
    beta_initializer: Initializer = "zeros",
    channel_index: int = -1,
    epsilon: float = 1e-5,
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Group normalization with ``num_groups`` groups of channels (see
    :func:`axon.layers.group_norm`).

    Args:
        x: The input graph.
        num_groups: The number of channel groups (must divide the channels).
        gamma_initializer: The scale ``gamma``'s initializer. Default ``"ones"``.
        beta_initializer: The offset ``beta``'s initializer. Default ``"zeros"``.
        channel_index: The feature axis (``gamma``/``beta`` have its size). Default ``-1``.
        epsilon: Added to the variance for numerical stability. Default ``1e-5``.
        name: The layer name (``None``: ``"group_norm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the normalized input (the input's shape).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: An option is out of range.

    >>> import axon
    >>> axon.input("x").pipe(axon.group_norm, 2).node.opts["num_groups"]
    2
    """
    check_graph(x, "group_norm")
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"group_norm: expected num_groups to be a positive int, got {num_groups!r}")
    channel_index = _check_index(channel_index, "group_norm")
    shape = _channels(channel_index)
    inputs = [x, param("gamma", shape, initializer=gamma_initializer), param("beta", shape, initializer=beta_initializer)]
    return layer(layers.group_norm, inputs, num_groups=num_groups, epsilon=_check_positive(epsilon, "epsilon", "group_norm"),
                 channel_index=channel_index, name=name, op_name="group_norm", meta=meta)


def rms_norm(
    x: Axon,
    *,
    gamma_initializer: Initializer = "ones",
    channel_index: int = -1,
    epsilon: float = 1e-6,
    shift: float = 0.0,
    upcast: Literal["normalization", "all"] = "normalization",
    name: LayerName = None,
    meta: dict | None = None,
) -> Axon:
    """Root-mean-square normalization (see :func:`axon.layers.rms_norm`); parameter ``gamma``.

    Args:
        x: The input graph.
        gamma_initializer: The scale ``gamma``'s initializer. Default ``"ones"``.
        channel_index: The feature axis (``gamma``/``beta`` have its size). Default ``-1``.
        epsilon: Added to the mean square for numerical stability. Default ``1e-6``.
        shift: Added to ``gamma`` before scaling (Gemma uses ``1.0``). Default ``0.0``.
        upcast: ``"normalization"`` (default) computes the normalization in float32, then
            scales in the input dtype (Llama); ``"all"`` also scales in float32 (Gemma).
        name: The layer name (``None``: ``"rms_norm_<count>"``; a string, in which ``"{n}"`` is
            the count; or a function ``(op_name, op_counts) -> str``).
        meta: Free-form metadata kept on the node.

    Returns:
        The graph of the normalized input (the input's shape).

    Raises:
        TypeError: ``x`` is not a graph.
        ValueError: An option is out of range.

    >>> import axon
    >>> axon.input("x").pipe(axon.rms_norm, upcast="all").node.opts["upcast"]
    'all'
    """
    check_graph(x, "rms_norm")
    if upcast not in ("normalization", "all"):
        raise ValueError(f"rms_norm: expected upcast to be 'normalization' or 'all', got {upcast!r}")
    channel_index = _check_index(channel_index, "rms_norm")
    inputs = [x, param("gamma", _channels(channel_index), initializer=gamma_initializer)]
    return layer(layers.rms_norm, inputs, epsilon=_check_positive(epsilon, "epsilon", "rms_norm"),
                 channel_index=channel_index, shift=float(shift), upcast=upcast, name=name, op_name="rms_norm", meta=meta)


# functional layers (axon.layers) as ops with permanent names "axon.<name>" (see axon.registry)
register_all("op", {
    "axon.batch_norm": layers.batch_norm,
    "axon.group_norm": layers.group_norm,
    "axon.instance_norm": layers.instance_norm,
    "axon.layer_norm": layers.layer_norm,
    "axon.rms_norm": layers.rms_norm,
})
